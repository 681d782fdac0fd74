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
//!   `cargo test` (threads) and `cargo nextest run` (processes). The lock files live in
//!   `ISOFIX_LOCK_DIR` if set, else in `<temp dir>/isofix-<uid>/locks`; that directory must
//!   be a real directory owned by this user with mode 0700, or acquisition fails saying
//!   why.
//! - **Names**: any non-empty text. It maps to one file name (a readable slug plus a
//!   128-bit FNV-1a hash of the full name), never to a path.
//! - **Crash safety**: the locks are `flock`s, which the kernel drops when their holder
//!   exits however it exits; no counter or pid file decides who holds a group. A panic
//!   releases them while unwinding, and nothing is poisoned.
//! - **Fairness**: a waiting exclusive request is not starved by new shared holders; every
//!   waiting request queues on a gate lock in the kernel.
//! - **Order**: several groups are taken in one canonical order (sorted by name).
//! - **Nesting**: a thread may take a group it holds again (counted; released when the last
//!   guard drops), except exclusively while it holds it shared, which fails at once with
//!   [`std::io::ErrorKind::WouldBlock`].
//! - **Async**: [`SerialBuilder::acquire_async`] waits on a helper thread and works with
//!   any executor, so it needs no feature.
//! - **Diagnostics**: each holder records its pid, test name and start time in its
//!   process's record table under `<lock dir>/holders/`, a memory-mapped file, which costs
//!   no system call. A request that waited `ISOFIX_WAIT_WARN_SECS` (default 30) says once
//!   on stderr what it waits for and who holds it; [`SerialBuilder::timeout`] or
//!   `ISOFIX_LOCK_TIMEOUT_SECS` turns a long wait into an
//!   [`std::io::ErrorKind::TimedOut`] error naming the holders.
//! - **Settings**: `ISOFIX_LOCK_DIR`, `ISOFIX_WAIT_WARN_SECS` and `ISOFIX_LOCK_TIMEOUT_SECS`
//!   are read once per process, when first needed; set them before the tests start.

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
