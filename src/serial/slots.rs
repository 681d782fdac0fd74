//! Groups limited to N holders at once: N slot files, each held exclusively by one holder.
//!
//! A request first tries every slot without blocking. When all are busy, it waits only
//! while holding the group's gate, so that one request at a time is looking for a slot and
//! the others queue in the kernel behind the gate instead of polling. The gate holder then
//! blocks on one busy slot, chosen by rotation so that successive waiters spread over the
//! slots. It may wait for a slot while another one frees first: the limit is never
//! exceeded and nobody spins, at the cost of some idle capacity when holders take very
//! different times. Blocking on any one of N files would take N helper threads per wait,
//! which the common case (short tests, small N) does not repay.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::held::PooledFile;
use super::name::GroupFiles;
use crate::common::file_lock::{self, LockMode};

/// A free slot among the first `n`, locked, or `None` when all are busy.
pub(crate) fn try_take(files: &GroupFiles, n: usize) -> io::Result<Option<(usize, PooledFile)>> {
    for i in 0..n {
        let mut slot = PooledFile::open(files.slot(i))?;
        if file_lock::try_lock(slot.file(), LockMode::Exclusive)? {
            slot.set_locked();
            return Ok(Some((i, slot)));
        }
    }
    Ok(None)
}

static ROTATION: AtomicUsize = AtomicUsize::new(0);

/// A slot among the first `n`, waiting for one if all are busy. Call only while holding
/// the group's gate.
pub(crate) fn take(files: &GroupFiles, n: usize) -> io::Result<(usize, PooledFile)> {
    if let Some(found) = try_take(files, n)? {
        return Ok(found);
    }
    let i = (ROTATION.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize) % n;
    let mut slot = PooledFile::open(files.slot(i))?;
    file_lock::lock(slot.file(), LockMode::Exclusive)?;
    slot.set_locked();
    Ok((i, slot))
}
