//! [`SerialBuilder`]: the rarer options of a [`SerialGuard`].

use std::future::Future;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::acquire::{acquire_blocking, try_acquire};
use super::diag::{default_timeout, warn_after, Holder};
use super::held::{self, Held, Mode, DIR_VAR};
use super::name::GroupFiles;
use super::pending;
use super::watchdog::{self, Wait};
use super::SerialGuard;
use crate::common::error::error;
use crate::common::private_dir::{ensure_private_dir_cached, state_dir};

/// Options for acquiring one or more serial groups, from [`SerialGuard::group`].
///
/// ```
/// use std::time::Duration;
/// use isofix::SerialGuard;
///
/// # fn main() -> std::io::Result<()> {
/// let _heavy = SerialGuard::group("doc-builder-heavy")
///     .group("doc-builder-db")
///     .max_holders(2)
///     .timeout(Duration::from_secs(60))
///     .acquire()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until acquire() or acquire_async()"]
pub struct SerialBuilder {
    groups: Vec<String>,
    shared: bool,
    max_holders: Option<usize>,
    timeout: Option<Duration>,
    lock_dir: Option<PathBuf>,
}

/// What an acquisition needs once its options are checked.
struct Plan {
    targets: Vec<Arc<GroupFiles>>,
    groups: Vec<String>,
    mode: Mode,
    holder: Holder,
    timeout: Option<Duration>,
}

impl Plan {
    /// The waiting context, made on the first group that has to wait: the environment
    /// is read only then, off the uncontended path.
    fn wait(&self, wait: &mut Option<Arc<Wait>>) -> io::Result<Arc<Wait>> {
        if let Some(wait) = wait {
            return Ok(Arc::clone(wait));
        }
        let timeout = match self.timeout {
            Some(t) => Some(t),
            None => default_timeout()?,
        };
        let made = Arc::new(Wait::new(
            self.holder.clone(),
            self.mode,
            warn_after()?,
            timeout,
        ));
        *wait = Some(Arc::clone(&made));
        Ok(made)
    }
}

impl SerialBuilder {
    pub(crate) fn empty() -> Self {
        Self {
            groups: Vec::new(),
            shared: false,
            max_holders: None,
            timeout: None,
            lock_dir: None,
        }
    }

    /// Adds a group. All groups are taken in one canonical order (sorted, duplicates
    /// merged), so two acquisitions naming the same groups in different orders never
    /// deadlock.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let guard = isofix::SerialGuard::group("doc-group-ws").group("doc-group-db").acquire()?;
    /// assert_eq!(guard.groups(), ["doc-group-db", "doc-group-ws"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn group(mut self, name: impl Into<String>) -> Self {
        self.groups.push(name.into());
        self
    }

    /// Holds the groups shared: any number of shared holders at once, none while an
    /// exclusive holder has them. A waiting exclusive request keeps new shared ones out.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let reader = isofix::SerialGuard::group("doc-shared-db").shared().acquire()?;
    /// let other = isofix::SerialGuard::group("doc-shared-db").shared().acquire()?;
    /// # drop((reader, other));
    /// # Ok(())
    /// # }
    /// ```
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Lets at most `n` holders (machine-wide, all processes of this user) have each group
    /// at once. Limited holders share the group as [`shared`](Self::shared) ones do, so an
    /// exclusive holder still excludes them all. Use the same `n` for a group everywhere.
    /// `n == 0` fails at acquisition. Requests that find all `n` busy queue in the kernel;
    /// only the first of them looks for a free slot, every 0.5 to 10 ms.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let one = isofix::SerialGuard::group("doc-max-heavy").max_holders(2).acquire()?;
    /// let two = std::thread::spawn(|| {
    ///     isofix::SerialGuard::group("doc-max-heavy").max_holders(2).acquire()
    /// })
    /// .join()
    /// .unwrap()?;
    /// # drop((one, two));
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_holders(mut self, n: usize) -> Self {
        self.max_holders = Some(n);
        self
    }

    /// Gives up after waiting `timeout` in total, with an [`ErrorKind::TimedOut`] error
    /// naming the group, its holders and the time waited. Without it,
    /// `ISOFIX_LOCK_TIMEOUT_SECS` (if set) applies, else the wait is unbounded.
    ///
    /// ```
    /// use std::time::Duration;
    /// # fn main() -> std::io::Result<()> {
    /// let _guard = isofix::SerialGuard::group("doc-timeout")
    ///     .timeout(Duration::from_secs(30))
    ///     .acquire()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Keeps the lock files in `dir` instead of `ISOFIX_LOCK_DIR` or the default
    /// `<temp dir>/isofix-<uid>/locks`. The directory is created 0700 if missing, and
    /// refused unless it is a real directory owned by this user and closed to others.
    /// Only acquisitions using the same directory exclude each other.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let dir = std::env::temp_dir().join(format!("isofix-doc-{}", std::process::id()));
    /// let guard = isofix::SerialGuard::group("ws").lock_dir(&dir).acquire()?;
    /// drop(guard);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn lock_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.lock_dir = Some(dir.into());
        self
    }

    fn plan(self) -> io::Result<Plan> {
        let mode = match (self.shared, self.max_holders) {
            (_, Some(0)) => {
                return Err(error(
                    ErrorKind::InvalidInput,
                    format_args!(
                        "acquire serial groups {:?} with max_holders(0): nobody could ever \
                         hold them",
                        self.groups
                    ),
                    "pass at least 1 to max_holders",
                ))
            }
            (_, Some(n)) => Mode::Limited(n),
            (true, None) => Mode::Shared,
            (false, None) => Mode::Exclusive,
        };
        if self.groups.is_empty() {
            return Err(error(
                ErrorKind::InvalidInput,
                "acquire serial groups: no group named",
                "name at least one group, e.g. SerialGuard::lock_all([\"ws\"])",
            ));
        }
        let dir: &Path = match &self.lock_dir {
            Some(dir) => {
                ensure_private_dir_cached(dir, DIR_VAR)?;
                dir
            }
            None => default_lock_dir()?,
        };
        let mut groups = self.groups;
        groups.sort_unstable();
        groups.dedup();
        let targets = groups
            .iter()
            .map(|g| GroupFiles::get(dir, g))
            .collect::<io::Result<_>>()?;
        Ok(Plan {
            targets,
            groups,
            mode,
            holder: Holder::current(),
            timeout: self.timeout,
        })
    }

    /// Takes every group, blocking the calling thread until it holds them all (or the
    /// timeout passes). A group this thread already holds is shared with the outer guard
    /// and stays held until the last guard drops; asking exclusively for a group the thread
    /// holds shared fails at once with [`ErrorKind::WouldBlock`] instead of waiting for
    /// itself.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let outer = isofix::SerialGuard::group("doc-acquire").acquire()?;
    /// let inner = isofix::SerialGuard::group("doc-acquire").shared().acquire()?; // nested: fine
    /// drop(outer);
    /// drop(inner); // released here
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire(self) -> io::Result<SerialGuard> {
        let plan = self.plan()?;
        let mut held = Vec::with_capacity(plan.targets.len());
        let mut wait = None;
        for files in &plan.targets {
            if let Some(outer) = held::reentrant(files, plan.mode)? {
                held.push(outer);
                continue;
            }
            let got = match try_acquire(files, plan.mode, &plan.holder)? {
                Some(got) => got,
                None => wait_blocking(files, plan.wait(&mut wait)?)?,
            };
            held.push(held::register(got));
        }
        Ok(SerialGuard::new(held, plan.groups, plan.mode))
    }

    /// Takes every group without blocking the async runtime: the waiting happens in the
    /// kernel on a helper thread, which wakes the task. Dropping the future before it
    /// completes gives the request up and leaves nothing held. Works on any executor.
    ///
    /// Async acquisitions are not nested the way [`acquire`](Self::acquire) nests them
    /// (tasks move between threads): a task asking again for a group it holds waits for
    /// itself, until its timeout if it has one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let guard = isofix::SerialGuard::group("doc-async").acquire_async().await?;
    /// tokio::task::yield_now().await; // the guard is Send: hold it across awaits
    /// drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_async(self) -> impl Future<Output = io::Result<SerialGuard>> + Send + 'static {
        // Planned now, on the caller's thread, which is the one that knows the test's name.
        let plan = self.plan();
        async move {
            let plan = plan?;
            let mut held = Vec::with_capacity(plan.targets.len());
            let mut wait = None;
            for files in &plan.targets {
                let got = match try_acquire(files, plan.mode, &plan.holder)? {
                    Some(got) => got,
                    None => pending::start(Arc::clone(files), plan.wait(&mut wait)?)?.await?,
                };
                held.push(Arc::new(got));
            }
            Ok(SerialGuard::new(held, plan.groups, plan.mode))
        }
    }
}

/// `ISOFIX_LOCK_DIR`, else `<temp dir>/isofix-<uid>/locks`, resolved and checked once per
/// process (the variables are read then): resolving reads the environment, which takes a
/// process-wide lock, and asks the system for the user id. A failure is not kept, so the
/// next acquisition tries again and reports it again.
fn default_lock_dir() -> io::Result<&'static Path> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir);
    }
    let dir = state_dir(DIR_VAR, "locks")?;
    Ok(DIR.get_or_init(|| dir))
}

/// Waits for one group on the calling thread. Without a timeout it blocks right here in
/// the kernel, which hands the lock over fastest; with one, a helper thread blocks instead
/// so that the caller can stop waiting.
fn wait_blocking(files: &Arc<GroupFiles>, wait: Arc<Wait>) -> io::Result<Held> {
    if wait.timeout().is_some() {
        return pending::start(Arc::clone(files), wait)?.wait();
    }
    let _watching = watchdog::watch(&wait, files, None)?;
    acquire_blocking(files, wait.mode, &wait.holder)
}
