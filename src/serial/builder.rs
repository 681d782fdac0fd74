//! [`SerialBuilder`]: the rarer options of a [`SerialGuard`].

use std::future::Future;
use std::io::{self, ErrorKind};
use std::panic::Location;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lock_dir::{LockDir, KEPT_FDS};
use super::nesting::{self, Held};
use super::protocol::{Attempt, Locks, Mode};
use super::records::{self, Record, State};
use super::settings::{self, DIR_VAR};
use super::wait::{self, Request, TimeoutFrom, Waiting};
use super::{name, SerialGuard};
use crate::common::error::{error, wrap};
use crate::common::test_name;
use crate::sys;

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
    /// Made by `#[serial_group]`, whose timeout is `timeout = N`.
    from_attribute: bool,
}

impl SerialBuilder {
    pub(crate) fn empty() -> Self {
        Self {
            groups: Vec::new(),
            shared: false,
            max_holders: None,
            timeout: None,
            lock_dir: None,
            from_attribute: false,
        }
    }

    /// Marks a builder made by `#[serial_group]`, so that messages speak its language.
    pub(crate) fn for_attribute(mut self) -> Self {
        self.from_attribute = true;
        self
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
    /// `n == 0` fails at acquisition. Requests that find all `n` busy queue on the group's
    /// gate; only the first of them looks for a free slot, every 2 ms at most.
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
    /// `/tmp/isofix-<uid>/locks`. A relative `dir` is taken relative to the working
    /// directory at acquisition. The directory is created 0700 if missing (its parent
    /// must exist), and refused unless it is a real directory owned by this user and
    /// closed to others. Only acquisitions using the same directory exclude each other.
    /// Once used, it must not be removed while the process runs: later requests in it
    /// fail rather than start a second lock space beside the first.
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

    /// Takes every group, blocking the calling thread until it holds them all (or the
    /// timeout passes).
    ///
    /// Like a [`Mutex`](std::sync::Mutex), a guard is not reentrant: asking again for a
    /// group that a guard of this thread holds waits for that guard (its timeout applies),
    /// because the guard may have moved to another thread or be held across `.await` by
    /// a task that now runs elsewhere. Only the hold of a `#[serial_group]` function,
    /// which cannot leave its stack frame, nests: inside it, a request for one of its
    /// groups is shared with it (counted; the group stays held until the last guard
    /// drops); asking exclusively for a group it holds shared fails at once with
    /// [`ErrorKind::WouldBlock`] instead of waiting for itself. Shared requests never wait
    /// for shared holds of their own process (see [`shared`](Self::shared)).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let outer = isofix::SerialGuard::group("doc-acquire").shared().acquire()?;
    /// let inner = isofix::SerialGuard::group("doc-acquire").shared().acquire()?; // readers: fine
    /// drop(outer);
    /// drop(inner); // released here
    /// # Ok(())
    /// # }
    /// ```
    #[track_caller]
    pub fn acquire(self) -> io::Result<SerialGuard> {
        self.acquire_blocking(None, Location::caller())
    }

    /// [`acquire`](Self::acquire) for the guard of a `#[serial_group]` frame, which later
    /// requests of this thread nest on (see [`super::nesting::reenter`]).
    #[track_caller]
    pub(crate) fn acquire_frame(self) -> io::Result<SerialGuard> {
        self.acquire_blocking(Some(Arc::new(())), Location::caller())
    }

    fn acquire_blocking(
        self,
        frame: Option<Arc<()>>,
        location: &'static Location<'static>,
    ) -> io::Result<SerialGuard> {
        let plan = self.plan(location)?;
        let mut held = Vec::with_capacity(plan.groups.len());
        for (name, stem) in &plan.groups {
            if let Some(outer) = nesting::reenter(&plan.dir, stem, plan.mode)? {
                held.push(outer);
                continue;
            }
            let got = match plan.start(name, stem)? {
                Ok(held) => held,
                Err((req, mut attempt, own)) => {
                    let locks = wait::blocking(Arc::clone(&req), &mut attempt, Arc::clone(&own))
                        .map_err(|e| failed(e, &req.dir, name, plan.mode))?;
                    finish(&req, locks, own)?
                }
            };
            held.push(nesting::register(got, frame.as_ref()));
        }
        Ok(SerialGuard::new(held, plan.names(), plan.mode, frame))
    }

    /// Takes every group without blocking the async runtime, on any executor: a request
    /// that has to wait tries again every 2 ms at most, woken by isofix's one watchdog
    /// thread. Dropping the future before it completes gives the request up at once (it
    /// leaves the group's queue) and leaves nothing held.
    ///
    /// Async acquisitions never nest (tasks move between threads): a task asking
    /// exclusively for a group it holds waits for itself, until its timeout if it has one.
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
    #[track_caller]
    pub fn acquire_async(self) -> impl Future<Output = io::Result<SerialGuard>> + Send + 'static {
        // Planned now, on the caller's thread, which is the one that knows the test's name.
        let plan = self.plan(Location::caller());
        async move {
            let plan = plan?;
            let mut held = Vec::with_capacity(plan.groups.len());
            for (name, stem) in &plan.groups {
                let got = match plan.start(name, stem)? {
                    Ok(held) => held,
                    Err((req, attempt, own)) => {
                        let locks = Waiting::new(Arc::clone(&req), attempt, Arc::clone(&own))
                            .await
                            .map_err(|e| failed(e, &req.dir, name, plan.mode))?;
                        finish(&req, locks, own)?
                    }
                };
                held.push(nesting::register(got, None));
            }
            Ok(SerialGuard::new(held, plan.names(), plan.mode, None))
        }
    }

    fn plan(self, location: &'static Location<'static>) -> io::Result<Plan> {
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
        let settings = settings::get()?;
        // Relative to the working directory of the request, not of later ones.
        let lock_dir = match self.lock_dir {
            Some(dir) if dir.is_relative() => Some(std::env::current_dir()?.join(dir)),
            other => other,
        };
        let configured = lock_dir.as_deref().or(settings.lock_dir.as_deref());
        let dir = LockDir::get(configured, None, true)?;
        let mut names = self.groups;
        names.sort_unstable();
        names.dedup();
        let groups = names
            .into_iter()
            .map(|g| Ok((name::stem(settings.scope.as_deref(), &g)?, g)))
            .map(|r: io::Result<_>| r.map(|(stem, g)| (g, stem)))
            .collect::<io::Result<_>>()?;
        let timeout = match (self.timeout, settings.timeout) {
            (Some(t), _) if self.from_attribute => Some((t, TimeoutFrom::Attribute)),
            (Some(t), _) => Some((t, TimeoutFrom::Builder)),
            (None, Some(t)) => Some((t, TimeoutFrom::Environment)),
            (None, None) => None,
        };
        Ok(Plan {
            dir,
            groups,
            mode,
            test: test_name::current(),
            timeout,
            warn_after: settings.warn_after,
            location,
        })
    }
}

/// The ways to acquire a guard, which all go through a [`SerialBuilder`] (here, so that
/// the guard's module does not depend on the builder's).
impl SerialGuard {
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
}

/// What an acquisition needs once its options are checked.
struct Plan {
    dir: Arc<LockDir>,
    /// `(name, stem)`, sorted by name.
    groups: Vec<(String, String)>,
    mode: Mode,
    test: Option<Arc<str>>,
    timeout: Option<(Duration, TimeoutFrom)>,
    warn_after: Duration,
    location: &'static Location<'static>,
}

/// A request that has to wait: what it is, its attempt so far, its waiting record.
type Queued = (Arc<Request>, Attempt, Arc<Record>);

impl Plan {
    fn names(&self) -> Vec<String> {
        self.groups.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Takes the group if that is possible at once; else the request, queued.
    fn start(&self, name: &str, stem: &str) -> io::Result<Result<Held, Queued>> {
        let skip_gate = self.mode != Mode::Exclusive && nesting::held_shared(&self.dir, stem);
        let mut attempt = Attempt::new(self.mode, skip_gate);
        let started = Instant::now();
        let failed = |e| failed(e, &self.dir, name, self.mode);
        let test = self.test.as_deref();
        if let Some(locks) = attempt.step(&self.dir, stem).map_err(failed)? {
            let line = records::line(State::Held, &self.mode.record(locks.slot_index), stem, test);
            let own = Arc::new(self.dir.record(&line, stem).map_err(failed)?);
            let (name, stem) = (name.to_owned(), stem.to_owned());
            let dir = Arc::clone(&self.dir);
            return Ok(Ok(Held::new(dir, name, stem, self.mode, locks, own)));
        }
        let line = records::line(State::Waiting, &self.mode.record(None), stem, test);
        let own = Arc::new(self.dir.record(&line, stem).map_err(failed)?);
        let req = Request {
            dir: Arc::clone(&self.dir),
            name: name.to_owned(),
            stem: stem.to_owned(),
            mode: self.mode,
            test: self.test.clone(),
            location: self.location,
            started,
            warn_after: self.warn_after,
            timeout: self.timeout,
        };
        Ok(Err((Arc::new(req), attempt, own)))
    }
}

/// Turns a waiting request that got its locks into a held group.
fn finish(req: &Request, locks: Locks, own: Arc<Record>) -> io::Result<Held> {
    // The lock file was checked when locked (see `Attempt`). A limited group may have held
    // it since before it waited for a slot, long enough for the directory to be removed;
    // `locks` go on failure.
    if let Mode::Limited(_) = req.mode {
        req.dir.still_there()?;
    }
    let line = records::line(
        State::Held,
        &req.mode.record(locks.slot_index),
        &req.stem,
        req.test.as_deref(),
    );
    own.rewrite(&line);
    Ok(Held::new(
        Arc::clone(&req.dir),
        req.name.clone(),
        req.stem.clone(),
        req.mode,
        locks,
        own,
    ))
}

/// An OS error met while taking a group, with the group, the directory and a hint that
/// fits the cause; isofix's own errors (a timeout) go through unchanged.
fn failed(e: io::Error, dir: &LockDir, name: &str, mode: Mode) -> io::Error {
    if e.get_ref().is_some() && e.raw_os_error().is_none() {
        return e;
    }
    // Files cannot be made in a directory that was removed under the request.
    if let Err(removed) = dir.still_there() {
        return removed;
    }
    if sys::is_symlink_refused(&e) {
        return wrap(
            e,
            format_args!(
                "acquire serial group {name:?} {}: one of its files in lock directory {} is \
                 a symbolic link, which isofix never follows",
                mode.describe(),
                dir.path().display()
            ),
            "remove the link (isofix makes its files itself), and find out who made it",
        );
    }
    let hint = if sys::is_out_of_descriptors(&e) {
        format!(
            "the process is out of file descriptors; isofix keeps at most {KEPT_FDS} of \
             its own plus 1-3 per group held or waited for: raise `ulimit -n`, or find what \
             else keeps so many open"
        )
    } else {
        format!("check that the lock directory is writable, or set {DIR_VAR}")
    };
    wrap(
        e,
        format_args!(
            "acquire serial group {name:?} {} in lock directory {}",
            mode.describe(),
            dir.path().display()
        ),
        hint,
    )
}
