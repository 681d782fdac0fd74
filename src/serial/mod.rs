//! Cross-process named locks: [`SerialGuard`].
//!
//! Tests that share something outside the process (a fixed port, a database, a global
//! config file, the machine's CPU) take a named *group* for as long as they use it:
//!
//! ```
//! use isofix::SerialGuard;
//!
//! # fn main() -> std::io::Result<()> {
//! let _db = SerialGuard::lock("doc-mod-db")?; // alone
//! # drop(_db);
//! let _ro = SerialGuard::shared("doc-mod-db")?; // with other readers
//! let _cpu = SerialGuard::group("doc-mod-cpu").max_holders(2).acquire()?; // at most 2
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics
//!
//! - **Scope**: every process of this user on this machine, so the same lock serves
//!   `cargo test` (threads) and `cargo nextest run` (processes), and every project of the
//!   user: set `ISOFIX_LOCK_SCOPE` to keep a project's groups to itself. The lock files
//!   live in `ISOFIX_LOCK_DIR` (an absolute path) if set, else in
//!   `/tmp/isofix-<uid>/locks`; that directory must be a real directory owned by this
//!   user with mode 0700, or acquisition fails saying why.
//! - **Names**: any non-empty text. It maps to one file name (a readable slug plus a
//!   128-bit hash of the full name), never to a path.
//! - **Crash safety**: the locks are `flock`s, which the kernel drops when their holder
//!   exits however it exits. A panic releases them while unwinding.
//! - **Fairness**: a waiting exclusive request is not starved by new shared holders of
//!   other processes; waiting requests queue on a gate lock.
//! - **Order**: several groups are taken in one canonical order (sorted by name).
//! - **Nesting**: guards are not reentrant (they are `Send`): a second request for a group
//!   a guard holds waits for it, as a `Mutex` would. Inside a `#[serial_group]` function,
//!   whose hold cannot move, requests of its thread for its groups nest on it (counted;
//!   released when the last guard drops), except exclusively while it holds them shared,
//!   which fails at once with [`std::io::ErrorKind::WouldBlock`].
//! - **Waiting**: without a timeout a request blocks in the kernel (except for a group
//!   limited to N whose N slots are all busy: the first waiter looks for a free one every
//!   2 ms at most); with a timeout, or async, it polls every 2 ms at most and leaves the
//!   queue as soon as it gives up.
//! - **Bounds**: at most 24 descriptors and 2 threads of isofix's own besides the groups
//!   held, whatever the number of groups.
//! - **Settings**: `ISOFIX_LOCK_DIR`, `ISOFIX_LOCK_SCOPE`, `ISOFIX_WAIT_WARN_SECS` and
//!   `ISOFIX_LOCK_TIMEOUT_SECS` are read and checked on the first acquisition of the
//!   process.
//!
//! `docs/serial.md` describes the protocol, the on-disk layout and the diagnostics.

mod builder;
mod guard;
mod lock_dir;
mod name;
mod nesting;
pub(crate) mod private;
mod protocol;
mod records;
mod settings;
mod wait;

pub use builder::SerialBuilder;
pub use guard::SerialGuard;
pub use records::Holder;

use std::io;
use std::path::{Path, PathBuf};

/// The holders of serial groups in a lock directory, and the requests waiting for them,
/// as their processes recorded them (processes that are gone are left out): `lock_dir`,
/// else `ISOFIX_LOCK_DIR`, else the default one. A lock directory that does not exist has
/// none; listing creates nothing. Records are information, written by
/// every holder beside its locks; `docs/serial.md` describes their format.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let _guard = isofix::SerialGuard::lock("doc-holders")?;
/// for h in isofix::serial::holders(None)? {
///     println!("pid {} {} {} ({:?})", h.pid(), h.mode(), h.group_file(), h.test());
/// }
/// # Ok(())
/// # }
/// ```
pub fn holders(lock_dir: Option<&Path>) -> io::Result<Vec<Holder>> {
    in_existing(lock_dir, |dir| dir.holders(None))
}

/// The holder record files that processes which are gone left in a lock directory
/// (`lock_dir`, else `ISOFIX_LOCK_DIR`, else the default one); nothing is removed. Such
/// files are harmless (listings skip them, and the next process that takes a group in the
/// directory removes them); this is for tools that clean up on request.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// for path in isofix::serial::stale_records(None)? {
///     println!("left by a dead process: {}", path.display());
/// }
/// # Ok(())
/// # }
/// ```
pub fn stale_records(lock_dir: Option<&Path>) -> io::Result<Vec<PathBuf>> {
    in_existing(lock_dir, |dir| dir.stale_records(false))
}

/// Removes the holder record files that processes which are gone left in a lock directory
/// (as [`stale_records`] finds them), never a live process's, and returns their paths.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let removed = isofix::serial::remove_stale_records(None)?;
/// println!("{} stale record files removed", removed.len());
/// # Ok(())
/// # }
/// ```
pub fn remove_stale_records(lock_dir: Option<&Path>) -> io::Result<Vec<PathBuf>> {
    in_existing(lock_dir, |dir| dir.stale_records(true))
}

/// `f` of the lock directory `lock_dir`, else `ISOFIX_LOCK_DIR`'s, else the default one,
/// if it exists: these tools make nothing, so no lock directory means nothing to report.
fn in_existing<T: Default>(
    lock_dir: Option<&Path>,
    f: impl FnOnce(&lock_dir::LockDir) -> io::Result<T>,
) -> io::Result<T> {
    let settings = settings::get()?;
    let configured = lock_dir.or(settings.lock_dir.as_deref());
    match lock_dir::LockDir::get(configured, None, false) {
        Ok(dir) => f(&dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e),
    }
}
