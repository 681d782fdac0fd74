//! [`SerialGuard`]: named locks held until dropped.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

use super::builder::SerialBuilder;
use super::nesting::Held;
use super::protocol::Mode;

/// One or more named groups held by this test, machine-wide (every process of this user),
/// until the guard drops.
///
/// Exclusive ([`lock`](Self::lock)), shared ([`shared`](Self::shared)) or at most N at
/// once ([`SerialBuilder::max_holders`]). The kernel releases the locks when the holder
/// exits, even by `SIGKILL`, and a panicking test releases them as it unwinds. The guard is
/// `Send`: it may move to another thread or be held across `.await`. For that reason it
/// is not reentrant, as a [`Mutex`](std::sync::Mutex) is not: a second request for a group
/// it holds waits for it, on any thread (see [`SerialBuilder::acquire`] for the one
/// exception, `#[serial_group]` functions).
///
/// ```
/// use isofix::SerialGuard;
///
/// # fn main() -> std::io::Result<()> {
/// let _ws = SerialGuard::lock("doc-guard-ws")?;
/// // ... use the one resource every test shares ...
/// # Ok(())
/// # }
/// ```
#[must_use = "the groups are released as soon as the guard is dropped"]
pub struct SerialGuard {
    held: Vec<Arc<Held>>,
    groups: Vec<String>,
    mode: Mode,
    /// The token of a `#[serial_group]` frame's guard, which requests of its thread nest
    /// on while it lives.
    _frame: Option<Arc<()>>,
}

impl SerialGuard {
    pub(crate) fn new(
        held: Vec<Arc<Held>>,
        groups: Vec<String>,
        mode: Mode,
        frame: Option<Arc<()>>,
    ) -> Self {
        Self {
            held,
            groups,
            mode,
            _frame: frame,
        }
    }

    /// Holds `group` alone, blocking until no one else holds it.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let _guard = isofix::SerialGuard::lock("doc-lock-ws")?;
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn lock(group: &str) -> io::Result<Self> {
        Self::group(group).acquire()
    }

    /// Holds `group` shared with other shared holders, blocking while it is held
    /// exclusively or an exclusive request waits for it.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let a = isofix::SerialGuard::shared("doc-shared")?;
    /// let b = std::thread::spawn(|| isofix::SerialGuard::shared("doc-shared")).join().unwrap()?;
    /// # drop((a, b));
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn shared(group: &str) -> io::Result<Self> {
        Self::group(group).shared().acquire()
    }

    /// Holds all `groups` alone, taken in one canonical order (sorted, duplicates merged),
    /// so that tests naming them in different orders never deadlock.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let guard = isofix::SerialGuard::lock_all(["doc-all-ws", "doc-all-db", "doc-all-ws"])?;
    /// assert_eq!(guard.groups(), ["doc-all-db", "doc-all-ws"]);
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn lock_all<I>(groups: I) -> io::Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        groups
            .into_iter()
            .fold(SerialBuilder::empty(), |b, g| b.group(g.as_ref()))
            .acquire()
    }

    /// A builder for `group`, for the rarer options: more groups, shared, at most N
    /// holders, a timeout, another lock directory, async acquisition.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let _guard = isofix::SerialGuard::group("doc-group-heavy").max_holders(4).acquire()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn group(group: impl Into<String>) -> SerialBuilder {
        SerialBuilder::empty().group(group)
    }

    /// [`lock`](Self::lock) for async tests: waits without blocking the runtime, and
    /// dropping the future gives the request up. See [`SerialBuilder::acquire_async`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let _guard = isofix::SerialGuard::lock_async("doc-lock-async").await?;
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn lock_async(group: &str) -> impl Future<Output = io::Result<Self>> + Send + 'static {
        Self::group(group).acquire_async()
    }

    /// [`shared`](Self::shared) for async tests. See [`SerialBuilder::acquire_async`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let _guard = isofix::SerialGuard::shared_async("doc-shared-async").await?;
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn shared_async(group: &str) -> impl Future<Output = io::Result<Self>> + Send + 'static {
        Self::group(group).shared().acquire_async()
    }

    /// The groups held, sorted and without duplicates.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let guard = isofix::SerialGuard::lock("doc-groups")?;
    /// assert_eq!(guard.groups(), ["doc-groups"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Whether the groups are held shared (or limited to N holders) rather than alone.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// assert!(isofix::SerialGuard::shared("doc-is-shared")?.is_shared());
    /// assert!(!isofix::SerialGuard::lock("doc-is-shared")?.is_shared());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_shared(&self) -> bool {
        self.mode != Mode::Exclusive
    }
}

impl Drop for SerialGuard {
    fn drop(&mut self) {
        // Last taken, first released.
        while let Some(held) = self.held.pop() {
            drop(held);
        }
    }
}

impl fmt::Debug for SerialGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialGuard")
            .field("groups", &self.groups)
            .field("mode", &self.mode)
            .field("held", &self.held)
            .finish()
    }
}
