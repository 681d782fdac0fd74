//! [`SerialGuard`]: named locks held until dropped.

use std::fmt;
use std::sync::Arc;

use super::nesting::Held;
use super::protocol::Mode;

/// One or more named groups held by this test, machine-wide (every process of this user),
/// until the guard drops.
///
/// Exclusive ([`lock`](Self::lock)), shared ([`shared`](Self::shared)) or at most N at
/// once ([`max_holders`](super::SerialBuilder::max_holders)). The kernel releases the
/// locks when the holder exits, even by `SIGKILL`, and a panicking test releases them as
/// it unwinds. The guard is `Send`: it may move to another thread or be held across
/// `.await`. For that reason it is not reentrant, as a [`Mutex`](std::sync::Mutex) is
/// not: a second request for a group it holds waits for it, on any thread (see
/// [`acquire`](super::SerialBuilder::acquire) for the one exception, `#[serial_group]`
/// functions).
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
