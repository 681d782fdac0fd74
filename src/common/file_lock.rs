//! Advisory whole-file locks that the kernel releases when their holder dies.
//!
//! Thin wrappers over std's `File::lock` family (`flock(2)` on Unix, `LockFileEx` on
//! Windows) that retry on `EINTR`, so a signal never turns a wait into an error. The lock
//! belongs to the open file description: two `File`s opened separately on the same path
//! exclude each other even within one process, which is what lets one primitive serve
//! threads (`cargo test`) and processes (`cargo nextest run`) alike.

use std::fs::{File, TryLockError};
use std::io::{self, ErrorKind};

/// How a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LockMode {
    /// Any number of shared holders at once.
    Shared,
    /// One holder, and no shared ones.
    Exclusive,
}

/// Blocks until `file` is locked in `mode` (`flock(fd, LOCK_SH | LOCK_EX)`).
pub(crate) fn lock(file: &File, mode: LockMode) -> io::Result<()> {
    loop {
        let result = match mode {
            LockMode::Shared => file.lock_shared(),
            LockMode::Exclusive => file.lock(),
        };
        match result {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Locks `file` in `mode` if that is possible at once (`flock(fd, … | LOCK_NB)`); returns
/// whether it did.
pub(crate) fn try_lock(file: &File, mode: LockMode) -> io::Result<bool> {
    loop {
        let result = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match result {
            Ok(()) => return Ok(true),
            Err(TryLockError::WouldBlock) => return Ok(false),
            Err(TryLockError::Error(e)) if e.kind() == ErrorKind::Interrupted => continue,
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Releases a lock taken on `file` (`flock(fd, LOCK_UN)`). Closing the file releases it too.
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    file.unlock()
}
