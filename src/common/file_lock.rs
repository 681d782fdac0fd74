//! Advisory whole-file locks that the kernel releases when their holder dies.
//!
//! Thin wrappers over `flock(2)` on Unix and `LockFileEx` on Windows (see `crate::sys`)
//! that retry on `EINTR`, so a signal never turns a wait into an error. The lock belongs
//! to the open file description: two `File`s opened separately on the same path exclude
//! each other even within one process, which is what lets one primitive serve threads
//! (`cargo test`) and processes (`cargo nextest run`) alike.

use std::fs::File;
use std::io;

use crate::sys::{self, FlockOp};

/// How a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LockMode {
    /// Any number of shared holders at once.
    Shared,
    /// One holder, and no shared ones.
    Exclusive,
}

impl LockMode {
    fn op(self) -> FlockOp {
        match self {
            LockMode::Shared => FlockOp::Shared,
            LockMode::Exclusive => FlockOp::Exclusive,
        }
    }
}

/// Blocks until `file` is locked in `mode` (`flock(fd, LOCK_SH | LOCK_EX)`).
pub(crate) fn lock(file: &File, mode: LockMode) -> io::Result<()> {
    sys::flock(file, mode.op(), true).map(drop)
}

/// Locks `file` in `mode` if that is possible at once (`flock(fd, … | LOCK_NB)`); returns
/// whether it did.
pub(crate) fn try_lock(file: &File, mode: LockMode) -> io::Result<bool> {
    sys::flock(file, mode.op(), false)
}

/// Releases a lock taken on `file` (`flock(fd, LOCK_UN)`). Closing the file releases it too.
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    sys::flock(file, FlockOp::Unlock, true).map(drop)
}
