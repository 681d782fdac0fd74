//! The locking protocol of one group, over plain `flock`s the kernel releases when the
//! holder dies.
//!
//! - exclusive: lock `<group>.lock` exclusively;
//! - shared: under `<group>.gate`, lock `<group>.lock` shared;
//! - limited to N: under `<group>.gate`, lock `<group>.lock` shared and one of N slots.
//!
//! A request that has to wait does so holding the gate (exclusively, released as soon as
//! it has the lock). A waiting exclusive request therefore keeps every new shared or
//! limited request out, and a stream of them cannot starve it. An uncontended exclusive
//! request skips the gate: it can only get in when nobody holds the lock, which is when a
//! queued request would have got in too.

use std::io;
use std::sync::Arc;

use super::diag::Holder;
use super::held::{Held, Mode, PooledFile, DIR_VAR};
use super::name::GroupFiles;
use super::slots;
use crate::common::error::wrap;
use crate::common::file_lock::LockMode;

fn failed(e: io::Error, files: &Arc<GroupFiles>, mode: Mode) -> io::Error {
    wrap(
        e,
        format_args!(
            "acquire serial group {:?} {} (lock file {})",
            files.group,
            mode.describe(),
            files.main().display()
        ),
        format_args!("check that the lock directory is writable, or set {DIR_VAR}"),
    )
}

/// Takes the group if that is possible at once.
pub(crate) fn try_acquire(
    files: &Arc<GroupFiles>,
    mode: Mode,
    holder: &Holder,
) -> io::Result<Option<Held>> {
    try_acquire_inner(files, mode, holder).map_err(|e| failed(e, files, mode))
}

fn try_acquire_inner(
    files: &Arc<GroupFiles>,
    mode: Mode,
    holder: &Holder,
) -> io::Result<Option<Held>> {
    if mode == Mode::Exclusive {
        let lock = PooledFile::try_lock(files.main(), files.main_key(), LockMode::Exclusive)?;
        let Some(main) = lock else {
            return Ok(None);
        };
        return finish(files, mode, holder, main, None).map(Some);
    }
    let Some(gate) = PooledFile::try_lock(files.gate(), files.gate_key(), LockMode::Exclusive)?
    else {
        return Ok(None);
    };
    let Some(main) = PooledFile::try_lock(files.main(), files.main_key(), LockMode::Shared)? else {
        return Ok(None);
    };
    let slot = match mode {
        Mode::Limited(n) => match slots::try_take(files, n)? {
            Some(slot) => Some(slot),
            None => return Ok(None),
        },
        _ => None,
    };
    drop(gate);
    finish(files, mode, holder, main, slot).map(Some)
}

/// Takes the group, blocking in the kernel for as long as that takes.
pub(crate) fn acquire_blocking(
    files: &Arc<GroupFiles>,
    mode: Mode,
    holder: &Holder,
) -> io::Result<Held> {
    acquire_blocking_inner(files, mode, holder).map_err(|e| failed(e, files, mode))
}

fn acquire_blocking_inner(
    files: &Arc<GroupFiles>,
    mode: Mode,
    holder: &Holder,
) -> io::Result<Held> {
    let gate = PooledFile::lock(files.gate(), files.gate_key(), LockMode::Exclusive)?;
    let main_mode = match mode {
        Mode::Exclusive => LockMode::Exclusive,
        Mode::Shared | Mode::Limited(_) => LockMode::Shared,
    };
    let main = PooledFile::lock(files.main(), files.main_key(), main_mode)?;
    let slot = match mode {
        Mode::Limited(n) => Some(slots::take(files, n)?),
        _ => None,
    };
    drop(gate);
    finish(files, mode, holder, main, slot)
}

/// Leaves the holder's record and wraps up the locked files.
fn finish(
    files: &Arc<GroupFiles>,
    mode: Mode,
    holder: &Holder,
    main: PooledFile,
    slot: Option<(usize, PooledFile)>,
) -> io::Result<Held> {
    let (index, slot) = match slot {
        Some((i, file)) => (Some(i), Some(file)),
        None => (None, None),
    };
    let line = holder.record(mode, index, files.key_hex());
    let record = files.records().hold(&line)?;
    Ok(Held::new(Arc::clone(files), mode, main, slot, record))
}
