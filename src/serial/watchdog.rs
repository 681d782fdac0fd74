//! Deadlines of waiting requests: the wait warning and the timeout.
//!
//! A request blocked in `flock` cannot watch a clock, so one thread per process, started
//! on the first wait, does it for all of them: it sleeps on a condition variable until the
//! nearest deadline (or a new request), prints the warning of requests that waited too
//! long, once each, and fails those whose timeout passed. Nothing polls a lock.

use std::io::{self, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::diag::{describe_holders, Holder, TIMEOUT_VAR, WARN_VAR};
use super::held::Mode;
use super::name::GroupFiles;
use super::pending::Pending;
use crate::common::error::error;

/// One acquisition (of one or more groups) as its deadlines see it.
#[derive(Debug)]
pub(crate) struct Wait {
    pub(crate) holder: Holder,
    pub(crate) mode: Mode,
    started: Instant,
    warn_after: Duration,
    timeout: Option<Duration>,
    warned: AtomicBool,
}

impl Wait {
    pub(crate) fn new(
        holder: Holder,
        mode: Mode,
        warn_after: Duration,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            holder,
            mode,
            started: Instant::now(),
            warn_after,
            timeout,
            warned: AtomicBool::new(false),
        }
    }

    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn who(&self) -> String {
        match &self.holder.test {
            Some(test) => format!("test {test} (pid {})", self.holder.pid),
            None => format!("pid {}", self.holder.pid),
        }
    }

    fn warning(&self, files: &GroupFiles) -> String {
        format!(
            "isofix: {} has waited {:.1} s to take serial group {:?} {}; {}; it keeps \
             waiting (set {TIMEOUT_VAR} to fail instead, {WARN_VAR} to change when this \
             is printed)",
            self.who(),
            self.started.elapsed().as_secs_f64(),
            files.group,
            self.mode.describe(),
            describe_holders(files)
        )
    }

    fn timed_out(&self, files: &GroupFiles) -> io::Error {
        error(
            ErrorKind::TimedOut,
            format_args!(
                "acquire serial group {:?} {}: timed out after {:.1} s; {}",
                files.group,
                self.mode.describe(),
                self.started.elapsed().as_secs_f64(),
                describe_holders(files)
            ),
            format_args!(
                "find out why the holder keeps the group so long, or allow more time \
                 (SerialBuilder::timeout, or {TIMEOUT_VAR})"
            ),
        )
    }
}

struct Watch {
    id: u64,
    wait: Arc<Wait>,
    files: Arc<GroupFiles>,
    pending: Option<Arc<Pending>>,
}

impl Watch {
    // A deadline past what `Instant` can represent (`Duration::MAX`, `1e19` seconds) is
    // never reached: no deadline, rather than an overflow panic.
    fn warn_at(&self) -> Option<Instant> {
        if self.wait.warned.load(Ordering::Relaxed) {
            return None;
        }
        self.wait.started.checked_add(self.wait.warn_after)
    }

    fn timeout_at(&self) -> Option<Instant> {
        self.pending.as_ref()?;
        self.wait.started.checked_add(self.wait.timeout?)
    }
}

#[derive(Default)]
struct State {
    watches: Vec<Watch>,
    next_id: u64,
    running: bool,
    /// When the watchdog wakes next on its own (`None`: only when notified).
    sleeping_until: Option<Instant>,
}

#[derive(Default)]
struct Watchdog {
    state: Mutex<State>,
    wake: Condvar,
}

static WATCHDOG: LazyLock<Watchdog> = LazyLock::new(Watchdog::default);

fn state() -> MutexGuard<'static, State> {
    WATCHDOG
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Watches a request for `files` until the returned handle drops. With `pending`, the
/// request's timeout (if any) fails it; without, only the warning applies.
pub(crate) fn watch(
    wait: &Arc<Wait>,
    files: &Arc<GroupFiles>,
    pending: Option<Arc<Pending>>,
) -> io::Result<Watching> {
    let mut state = state();
    if !state.running {
        std::thread::Builder::new()
            .name("isofix-serial-watchdog".to_owned())
            .spawn(run)
            .map_err(|e| {
                crate::common::error::wrap(
                    e,
                    format_args!("start the wait watchdog for serial group {:?}", files.group),
                    "the process may be out of threads",
                )
            })?;
        state.running = true;
    }
    let id = state.next_id;
    state.next_id += 1;
    let watch = Watch {
        id,
        wait: Arc::clone(wait),
        files: Arc::clone(files),
        pending,
    };
    let due = [watch.warn_at(), watch.timeout_at()]
        .into_iter()
        .flatten()
        .min();
    // Waking the watchdog costs a context switch; only an earlier deadline needs it.
    let earlier = match (due, state.sleeping_until) {
        (Some(due), Some(until)) => due < until,
        (Some(_), None) => true,
        (None, _) => false,
    };
    state.watches.push(watch);
    if earlier {
        state.sleeping_until = due;
    }
    drop(state);
    if earlier {
        WATCHDOG.wake.notify_one();
    }
    Ok(Watching { id })
}

/// Ends a watch when dropped.
pub(crate) struct Watching {
    id: u64,
}

impl Drop for Watching {
    fn drop(&mut self) {
        state().watches.retain(|w| w.id != self.id);
    }
}

enum Due {
    Warn(Arc<Wait>, Arc<GroupFiles>),
    TimeOut(Arc<Wait>, Arc<GroupFiles>, Arc<Pending>),
}

fn run() {
    loop {
        let mut due = Vec::new();
        let mut state = state();
        loop {
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            state.watches.retain(|w| {
                if let Some(at) = w.timeout_at() {
                    if at <= now {
                        let pending = Arc::clone(w.pending.as_ref().expect("timeout_at"));
                        due.push(Due::TimeOut(
                            Arc::clone(&w.wait),
                            Arc::clone(&w.files),
                            pending,
                        ));
                        return false;
                    }
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
                if let Some(at) = w.warn_at() {
                    if at <= now {
                        if !w.wait.warned.swap(true, Ordering::Relaxed) {
                            due.push(Due::Warn(Arc::clone(&w.wait), Arc::clone(&w.files)));
                        }
                    } else {
                        next = Some(next.map_or(at, |n| n.min(at)));
                    }
                }
                true
            });
            if !due.is_empty() {
                break;
            }
            state.sleeping_until = next;
            state = match next {
                None => WATCHDOG
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    WATCHDOG
                        .wake
                        .wait_timeout(state, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        drop(state);
        // Reading the holders' records takes file system calls: done outside the lock.
        for item in due {
            match item {
                // Not `eprintln!`, which panics when stderr is a closed pipe: that would
                // end this thread, and with it every timeout of the process.
                Due::Warn(wait, files) => {
                    let _ = writeln!(io::stderr(), "{}", wait.warning(&files));
                }
                Due::TimeOut(wait, files, pending) => pending.time_out(wait.timed_out(&files)),
            }
        }
    }
}
