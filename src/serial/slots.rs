//! Groups limited to N holders at once: N slot files, each held exclusively by one holder.
//!
//! A request first tries every slot without blocking. When all are busy, it waits only
//! while holding the group's gate, so that one request at a time looks for a slot and the
//! others queue in the kernel behind the gate instead of polling. The gate holder then
//! retries the slots with a pause that doubles from 0.5 ms up to 10 ms: this is the one
//! place isofix polls, because the kernel cannot block on "any one of N files". Blocking
//! on one busy slot instead would let a waiter sit on the gate while another slot is free,
//! which stalls the whole group behind one long holder (and deadlocks a test whose other
//! holder waits for the stalled one); a helper thread per slot would leave threads behind
//! on every wait. One process polls per group, for as long as all N slots stay busy.

use std::io;
use std::time::Duration;

use super::held::PooledFile;
use super::name::GroupFiles;
use crate::common::file_lock::LockMode;

/// A free slot among the first `n`, locked, or `None` when all are busy.
pub(crate) fn try_take(files: &GroupFiles, n: usize) -> io::Result<Option<(usize, PooledFile)>> {
    for i in 0..n {
        let slot = PooledFile::try_lock(&files.slot(i), files.slot_key(i), LockMode::Exclusive)?;
        if let Some(slot) = slot {
            return Ok(Some((i, slot)));
        }
    }
    Ok(None)
}

/// First pause between two looks at busy slots, and the longest.
const FIRST_PAUSE: Duration = Duration::from_micros(500);
const LONGEST_PAUSE: Duration = Duration::from_millis(10);

/// A slot among the first `n`, waiting for one if all are busy. Call only while holding
/// the group's gate.
pub(crate) fn take(files: &GroupFiles, n: usize) -> io::Result<(usize, PooledFile)> {
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(found) = try_take(files, n)? {
            return Ok(found);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
