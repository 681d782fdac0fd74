//! Waiting for a group: blocking, with a timeout, or async; the wait warning and the
//! timeout error.
//!
//! - Without a timeout, a request blocks in the kernel (`flock`), which hands the lock
//!   over fastest and costs nothing while it waits.
//! - A `flock` blocked in the kernel cannot be cancelled, and a helper thread per waiting
//!   request would pile up (one per timed-out request, for as long as the holder holds).
//!   So a request with a timeout, and an async one, polls instead: it tries without
//!   blocking, pausing between tries from 50 µs up to [`POLL_MAX`] (2 ms). It keeps its
//!   place on the gate between tries, so a waiting writer still keeps new readers out, and
//!   gives it up at once when it times out or its future is dropped.
//! - One watchdog thread per process, started on the first wait, wakes async requests
//!   when their next try is due and posts the warning of requests blocked in the kernel.
//! - One warner thread per process, started on the first warning, writes every wait
//!   warning. Writing to stderr may block for good (a pipe nobody reads, a paused
//!   terminal); only this thread waits for it, never a waiter or the watchdog, so wake-ups
//!   and timeouts still come. These two are the only threads isofix starts.
//! - A process that cannot start a thread loses its warnings, and its async requests have
//!   their executor poll them again at once instead of waiting for a wake-up that would
//!   never come.

use std::future::Future;
use std::io::{self, ErrorKind, Write};
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::lock_dir::LockDir;
use super::protocol::{Attempt, Locks, Mode, POLL_MAX};
use super::records::{self, Record, State};
use super::settings::{TIMEOUT_VAR, WARN_VAR};
use crate::common::error::error;

/// Where a timeout came from, for its hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeoutFrom {
    Builder,
    Attribute,
    Environment,
}

/// One request for one group, as its messages describe it.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) dir: Arc<LockDir>,
    pub(crate) name: String,
    pub(crate) stem: String,
    pub(crate) mode: Mode,
    pub(crate) test: Option<Arc<str>>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) started: Instant,
    pub(crate) warn_after: Duration,
    pub(crate) timeout: Option<(Duration, TimeoutFrom)>,
}

impl Request {
    fn who(&self) -> String {
        match &self.test {
            Some(test) => format!("test {test} (pid {})", records::pid()),
            None => format!("pid {}", records::pid()),
        }
    }

    /// `held by ...; also waiting: ...`, from the records, leaving out `own`.
    fn blockers(&self, own: &Record) -> String {
        let entries = match self.dir.holders(Some(&self.stem)) {
            Ok(entries) => entries,
            Err(e) => return format!("its holders could not be read: {e}"),
        };
        let list = |state| {
            let found: Vec<String> = entries
                .iter()
                .filter(|e| e.state == state && !own.is(e))
                .map(ToString::to_string)
                .collect();
            found.join(", ")
        };
        let (held, waiting) = (list(State::Held), list(State::Waiting));
        let mut text = match held.is_empty() {
            true => "no holder recorded (it may have just let go)".to_owned(),
            false => format!("held by {held}"),
        };
        if !waiting.is_empty() {
            text.push_str(&format!(
                "; also waiting (maybe queued before it): {waiting}"
            ));
        }
        text
    }

    fn warning(&self, own: &Record) -> String {
        let then = match self.timeout {
            Some((t, _)) => format!("it gives up after {:.1} s", t.as_secs_f64()),
            None => format!("it keeps waiting (set {TIMEOUT_VAR} to fail instead)"),
        };
        format!(
            "isofix: {} has waited {:.1} s to take serial group {:?} {} (at {}); {}; {then}; \
             set {WARN_VAR} to change when this is printed",
            self.who(),
            self.started.elapsed().as_secs_f64(),
            self.name,
            self.mode.describe(),
            self.location,
            self.blockers(own)
        )
    }

    fn timed_out(&self, own: &Record) -> io::Error {
        let hint = match self.timeout.map(|(_, from)| from) {
            Some(TimeoutFrom::Attribute) => "raise `timeout = N` in #[serial_group(..)]".to_owned(),
            Some(TimeoutFrom::Environment) => format!("raise {TIMEOUT_VAR}"),
            _ => "raise SerialBuilder::timeout".to_owned(),
        };
        error(
            ErrorKind::TimedOut,
            format_args!(
                "acquire serial group {:?} {} (at {}): timed out after {:.1} s; {}",
                self.name,
                self.mode.describe(),
                self.location,
                self.started.elapsed().as_secs_f64(),
                self.blockers(own)
            ),
            format_args!("find out why the holder keeps the group so long, or {hint}"),
        )
    }

    fn deadline(&self) -> Option<Instant> {
        self.started.checked_add(self.timeout?.0)
    }

    fn warn_at(&self) -> Option<Instant> {
        self.started.checked_add(self.warn_after)
    }

    /// Has the warner thread print the warning (see the module docs).
    fn warn(self: &Arc<Self>, own: &Arc<Record>) {
        let (req, own) = (Arc::clone(self), Arc::clone(own));
        warner::post(Box::new(move || {
            // Not `eprintln!`, which panics when stderr is a closed pipe.
            let _ = writeln!(io::stderr(), "{}", req.warning(&own));
        }));
    }
}

/// Waits for the group, blocking the calling thread; `own` is the request's record.
pub(crate) fn blocking(
    req: Arc<Request>,
    attempt: &mut Attempt,
    own: Arc<Record>,
) -> io::Result<Locks> {
    if req.timeout.is_none() {
        let warned = Arc::clone(&req);
        let watch = req.warn_at().and_then(|at| {
            watchdog::schedule(at, Action::Warn(Box::new(move || warned.warn(&own))))
        });
        let got = attempt.block(&req.dir, &req.stem);
        if let Some(id) = watch {
            watchdog::cancel(id);
        }
        return got;
    }
    let mut warned = false;
    let mut pause = Duration::from_micros(50);
    loop {
        if let Some(locks) = attempt.step(&req.dir, &req.stem)? {
            return Ok(locks);
        }
        let now = Instant::now();
        if req.deadline().is_some_and(|d| now >= d) {
            return Err(req.timed_out(&own));
        }
        if !warned && req.warn_at().is_some_and(|w| now >= w) {
            warned = true;
            req.warn(&own);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(POLL_MAX);
    }
}

/// Waits for the group without blocking: a future that polls (see the module docs).
pub(crate) struct Waiting {
    pub(crate) req: Arc<Request>,
    pub(crate) attempt: Attempt,
    pub(crate) own: Arc<Record>,
    pause: Duration,
    warned: bool,
    wake: Option<u64>,
}

impl Waiting {
    pub(crate) fn new(req: Arc<Request>, attempt: Attempt, own: Arc<Record>) -> Self {
        Self {
            req,
            attempt,
            own,
            pause: Duration::from_micros(50),
            warned: false,
            wake: None,
        }
    }
}

impl Future for Waiting {
    type Output = io::Result<Locks>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(id) = this.wake.take() {
            watchdog::cancel(id);
        }
        if let Some(locks) = this.attempt.step(&this.req.dir, &this.req.stem)? {
            return Poll::Ready(Ok(locks));
        }
        let now = Instant::now();
        if this.req.deadline().is_some_and(|d| now >= d) {
            return Poll::Ready(Err(this.req.timed_out(&this.own)));
        }
        if !this.warned && this.req.warn_at().is_some_and(|w| now >= w) {
            this.warned = true;
            this.req.warn(&this.own);
        }
        let at = now + this.pause;
        this.pause = (this.pause * 2).min(POLL_MAX);
        this.wake = watchdog::schedule(at, Action::Wake(cx.waker().clone()));
        if this.wake.is_none() {
            // No watchdog (the process cannot start a thread): have the executor poll
            // again at once rather than never, so the timeout still comes.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(id) = self.wake.take() {
            watchdog::cancel(id);
        }
    }
}

/// `mutex`, locked; every critical section here leaves its data consistent, so a panic
/// elsewhere poisons nothing.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the watchdog does when a moment comes.
pub(crate) enum Action {
    Warn(Box<dyn FnOnce() + Send>),
    Wake(Waker),
}

mod watchdog {
    use super::*;

    #[derive(Default)]
    struct State {
        due: Vec<(u64, Instant, Action)>,
        next_id: u64,
        running: bool,
        /// When the thread wakes next on its own (`None`: only when notified).
        sleeping_until: Option<Instant>,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);
    static WAKE: Condvar = Condvar::new();

    fn locked() -> MutexGuard<'static, Option<State>> {
        super::locked(&STATE)
    }

    /// Runs `action` at `at` (unless cancelled first); returns its id, or `None` if the
    /// watchdog thread cannot be started.
    pub(crate) fn schedule(at: Instant, action: Action) -> Option<u64> {
        let mut guard = locked();
        let state = guard.get_or_insert_with(State::default);
        let id = state.next_id;
        state.next_id += 1;
        state.due.push((id, at, action));
        // Waking the thread costs a context switch; only an earlier moment needs it.
        let earlier = match state.sleeping_until {
            Some(until) => at < until,
            None => true,
        };
        if earlier {
            state.sleeping_until = Some(at);
        }
        if !state.running {
            state.running = std::thread::Builder::new()
                .name("isofix-serial-watchdog".to_owned())
                .spawn(run)
                .is_ok();
            if !state.running {
                state.due.retain(|(i, _, _)| *i != id);
                state.sleeping_until = None;
                return None;
            }
        }
        drop(guard);
        if earlier {
            WAKE.notify_one();
        }
        Some(id)
    }

    /// Forgets the action `id` if it has not run.
    pub(crate) fn cancel(id: u64) {
        if let Some(state) = locked().as_mut() {
            state.due.retain(|(i, _, _)| *i != id);
        }
    }

    fn run() {
        let mut guard = locked();
        loop {
            let now = Instant::now();
            let state = guard.get_or_insert_with(State::default);
            let due = &mut state.due;
            let mut fired = Vec::new();
            let mut i = 0;
            while i < due.len() {
                if due[i].1 <= now {
                    fired.push(due.swap_remove(i).2);
                } else {
                    i += 1;
                }
            }
            let next = due.iter().map(|(_, at, _)| *at).min();
            state.sleeping_until = next;
            if !fired.is_empty() {
                drop(guard);
                // Outside the lock: a warning reads the records, a waker may poll at once.
                for action in fired {
                    match action {
                        Action::Warn(warn) => warn(),
                        Action::Wake(waker) => waker.wake(),
                    }
                }
                guard = locked();
                continue;
            }
            guard = match next {
                None => WAKE.wait(guard).unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    WAKE.wait_timeout(guard, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

mod warner {
    use super::*;

    /// Warnings kept while stderr does not drain; later ones are dropped.
    const QUEUE_MAX: usize = 32;

    type Warning = Box<dyn FnOnce() + Send>;

    struct State {
        queue: Vec<Warning>,
        running: bool,
    }

    static STATE: Mutex<State> = Mutex::new(State {
        queue: Vec::new(),
        running: false,
    });
    static POSTED: Condvar = Condvar::new();

    fn locked() -> MutexGuard<'static, State> {
        super::locked(&STATE)
    }

    /// Has the warner thread run `warning`; never blocks on stderr.
    pub(crate) fn post(warning: Warning) {
        let mut state = locked();
        if state.queue.len() >= QUEUE_MAX {
            return;
        }
        state.queue.push(warning);
        if !state.running {
            // A process that cannot start a thread only loses its warnings.
            state.running = std::thread::Builder::new()
                .name("isofix-serial-warner".to_owned())
                .spawn(run)
                .is_ok();
            if !state.running {
                state.queue.clear();
            }
        }
        drop(state);
        POSTED.notify_one();
    }

    fn run() {
        let mut state = locked();
        loop {
            let batch = std::mem::take(&mut state.queue);
            if batch.is_empty() {
                state = POSTED.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            drop(state);
            for warning in batch {
                warning();
            }
            state = locked();
        }
    }
}
