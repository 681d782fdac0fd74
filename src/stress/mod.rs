//! Prove a fix inside an ordinary test: run a body many times on many threads, and get
//! the flake rate with its confidence interval, or how rare a flake would have to be to
//! hide behind the clean result.
//!
//! ```
//! use isofix::{stress::Stress, EphemeralTcp};
//!
//! let report = Stress::new()
//!     .iterations(200)
//!     .workers(4)
//!     .run(|_iteration| -> std::io::Result<()> {
//!         let srv = EphemeralTcp::bind()?;
//!         let _client = srv.connect()?;
//!         srv.accept()?;
//!         Ok(())
//!     });
//! report.assert_clean(); // panics with the whole report if any iteration failed
//! assert_eq!(report.passed(), 200);
//! ```
//!
//! The body returns `()` or a `Result` whose error implements `Display`; a panic counts as
//! a failure too (it is caught, and its message kept). The statistics and their formulas
//! are in [`stats`]. How to find and fix the flakes this reveals is the subject of
//! `docs/diagnosing-flakes.md`.

mod outcome;
mod progress;
mod report;
pub mod stats;
#[cfg(feature = "tokio")]
mod tokio_run;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use outcome::Outcome;
pub use report::{Failure, StressReport};

/// How many failure messages a report keeps; the rest are only counted.
pub const KEPT_FAILURES: usize = 10;

/// The environment variable that fixes the seed, to replay a failing run.
pub const SEED_VAR: &str = "ISOFIX_STRESS_SEED";

/// A stress run to configure, then [`run`](Stress::run).
///
/// Defaults: 1,000 iterations, one worker per available CPU (at least 2), no time budget,
/// no fail-fast, a random seed (or [`SEED_VAR`] when set).
///
/// ```
/// use std::time::Duration;
/// use isofix::stress::Stress;
///
/// let report = Stress::new()
///     .name("parse")
///     .iterations(100)
///     .workers(2)
///     .time_budget(Duration::from_secs(60))
///     .fail_fast(true)
///     .seed(7)
///     .run(|it| assert!(it.index() < 100));
/// assert!(report.is_clean());
/// assert_eq!(report.seed(), 7);
/// ```
#[derive(Debug, Clone)]
pub struct Stress {
    name: String,
    iterations: u64,
    workers: usize,
    time_budget: Option<Duration>,
    fail_fast: bool,
    seed: Option<u64>,
}

/// One iteration of a stress run: its number and a seed of its own.
///
/// ```
/// use isofix::stress::Stress;
///
/// Stress::new().iterations(3).workers(1).seed(1).run(|it| {
///     assert!(it.index() < 3);
///     let _random = it.seed(); // the same for this index and run seed, every time
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iteration {
    index: u64,
    seed: u64,
}

impl Iteration {
    /// The iteration number, from 0.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// A seed for whatever the body randomizes, derived from the run's seed and the index,
    /// so a failing iteration can be replayed with [`Stress::seed`] or [`SEED_VAR`].
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl Default for Stress {
    fn default() -> Self {
        Stress::new()
    }
}

impl Stress {
    /// A stress run with the defaults.
    ///
    /// ```
    /// let report = isofix::stress::Stress::new().iterations(10).run(|_| ());
    /// assert_eq!(report.runs(), 10);
    /// ```
    pub fn new() -> Stress {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        Stress {
            name: crate::common::test_name::current()
                .map_or_else(|| "stress".to_owned(), |n| n.to_string()),
            iterations: 1_000,
            workers,
            time_budget: None,
            fail_fast: false,
            seed: None,
        }
    }

    /// What the report calls this run (default: the running test's name).
    ///
    /// ```
    /// let report = isofix::stress::Stress::new().name("bind").iterations(1).run(|_| ());
    /// assert_eq!(report.name(), "bind");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Stress {
        self.name = name.into();
        self
    }

    /// How many times to run the body.
    ///
    /// ```
    /// let report = isofix::stress::Stress::new().iterations(5).run(|_| ());
    /// assert_eq!(report.runs(), 5);
    /// ```
    pub fn iterations(mut self, iterations: u64) -> Stress {
        self.iterations = iterations;
        self
    }

    /// How many threads (tasks, for `run_async`) run the body at
    /// once; at least 1.
    ///
    /// ```
    /// let report = isofix::stress::Stress::new().iterations(8).workers(8).run(|_| ());
    /// assert_eq!(report.workers(), 8);
    /// ```
    pub fn workers(mut self, workers: usize) -> Stress {
        self.workers = workers.max(1);
        self
    }

    /// Stops starting iterations once this much time has passed; the report says how many
    /// ran and that the budget ended the run.
    ///
    /// ```
    /// use std::time::Duration;
    /// let report = isofix::stress::Stress::new()
    ///     .iterations(u64::MAX)
    ///     .time_budget(Duration::from_millis(50))
    ///     .run(|_| ());
    /// assert!(report.stopped_by_budget());
    /// ```
    pub fn time_budget(mut self, budget: Duration) -> Stress {
        self.time_budget = Some(budget);
        self
    }

    /// Stops starting iterations after the first failure.
    ///
    /// ```
    /// let report = isofix::stress::Stress::new()
    ///     .iterations(1_000)
    ///     .workers(1)
    ///     .fail_fast(true)
    ///     .run(|it| assert_ne!(it.index(), 3));
    /// assert_eq!((report.failed(), report.runs()), (1, 4));
    /// ```
    pub fn fail_fast(mut self, fail_fast: bool) -> Stress {
        self.fail_fast = fail_fast;
        self
    }

    /// The run's seed, from which each [`Iteration::seed`] derives. Without it the seed is
    /// [`SEED_VAR`] if set, else random; the report prints it either way.
    ///
    /// ```
    /// let seeds = |s| {
    ///     let seen = std::sync::Mutex::new(Vec::new());
    ///     isofix::stress::Stress::new().iterations(4).workers(1).seed(s)
    ///         .run(|it| seen.lock().unwrap().push(it.seed()));
    ///     seen.into_inner().unwrap()
    /// };
    /// assert_eq!(seeds(42), seeds(42));
    /// ```
    pub fn seed(mut self, seed: u64) -> Stress {
        self.seed = Some(seed);
        self
    }

    /// Runs `body` on the worker threads until every iteration ran (or the budget or
    /// fail-fast stopped the run), and reports. Panics in `body` are caught and counted.
    ///
    /// ```
    /// let report = isofix::stress::Stress::new()
    ///     .iterations(100)
    ///     .run(|it| if it.index() % 50 == 7 { Err("odd one") } else { Ok(()) });
    /// assert_eq!(report.failed(), 2);
    /// assert_eq!(report.failures()[0].message(), "odd one");
    /// ```
    pub fn run<O, F>(&self, body: F) -> StressReport
    where
        F: Fn(Iteration) -> O + Sync,
        O: Outcome,
    {
        let run = Run::start(self);
        let workers = self
            .workers
            .min(self.iterations.max(1).min(usize::MAX as u64) as usize);
        run.live_workers.store(workers as u64, Ordering::Relaxed);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let (run, body) = (&run, &body);
                scope.spawn(move || {
                    let _exit = WorkerExit(run);
                    while let Some(it) = run.next() {
                        let outcome = panic::catch_unwind(AssertUnwindSafe(|| body(it)));
                        run.record(
                            it,
                            outcome.map_or_else(|p| Err(panic_message(&*p)), O::into_result),
                        );
                    }
                });
            }
            run.show_progress();
        });
        run.finish()
    }

    fn seed_or_default(&self) -> u64 {
        self.seed
            .or_else(|| std::env::var(SEED_VAR).ok().and_then(|s| parse_seed(&s)))
            .unwrap_or_else(random_seed)
    }
}

/// The state the workers share while a run is under way.
struct Run {
    config: Stress,
    seed: u64,
    started: Instant,
    deadline: Option<Instant>,
    next: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
    stopped_by_budget: AtomicBool,
    failures: Mutex<Vec<Failure>>,
    live_workers: AtomicU64,
    progress: progress::Progress,
}

/// Tells the run a worker is gone, also when it unwinds.
struct WorkerExit<'a>(&'a Run);

impl Drop for WorkerExit<'_> {
    fn drop(&mut self) {
        if self.0.live_workers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.progress.finish();
        }
    }
}

impl Run {
    fn start(config: &Stress) -> Run {
        let started = Instant::now();
        Run {
            config: config.clone(),
            seed: config.seed_or_default(),
            started,
            deadline: config.time_budget.and_then(|b| started.checked_add(b)),
            next: AtomicU64::new(0),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stopped_by_budget: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
            live_workers: AtomicU64::new(0),
            progress: progress::Progress::new(),
        }
    }

    /// The next iteration to run, or `None` when the run is over.
    fn next(&self) -> Option<Iteration> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stopped_by_budget.store(true, Ordering::Relaxed);
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        if index >= self.config.iterations {
            // Keep the counter from wrapping when workers keep asking.
            self.next.store(self.config.iterations, Ordering::Relaxed);
            return None;
        }
        Some(Iteration {
            index,
            seed: splitmix64(self.seed ^ splitmix64(index)),
        })
    }

    fn record(&self, it: Iteration, result: Result<(), String>) {
        if let Err(message) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut kept = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if kept.len() < KEPT_FAILURES {
                kept.push(Failure::new(it, message));
            }
            if self.config.fail_fast {
                self.stop.store(true, Ordering::Relaxed);
            }
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Shows a progress line on stderr until the last worker is gone, if the run is long.
    fn show_progress(&self) {
        self.progress.show_until_finished(|| progress::Snapshot {
            done: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            total: self.config.iterations,
            elapsed: self.started.elapsed(),
        });
    }

    fn finish(&self) -> StressReport {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        failures.sort_by_key(|f| f.iteration());
        StressReport {
            name: self.config.name.clone(),
            requested: self.config.iterations,
            runs: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            workers: self.config.workers,
            elapsed: self.started.elapsed(),
            seed: self.seed,
            failures,
            stopped_by_budget: self.stopped_by_budget.load(Ordering::Relaxed),
            stopped_by_failure: self.stop.load(Ordering::Relaxed),
        }
    }
}

/// The message of a caught panic: its `&str` or `String` payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)");
    format!("panicked: {text}")
}

/// Reads a seed as decimal or `0x` hexadecimal.
fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// A seed nobody chose.
fn random_seed() -> u64 {
    crate::common::random::random_u64()
}

/// SplitMix64's output function: spreads nearby inputs over the whole range.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2a "), Some(42));
        assert_eq!(parse_seed("forty-two"), None);
    }

    #[test]
    fn iteration_seeds_differ_and_repeat() {
        let a: Vec<u64> = (0..4).map(|i| splitmix64(7 ^ splitmix64(i))).collect();
        let b: Vec<u64> = (0..4).map(|i| splitmix64(7 ^ splitmix64(i))).collect();
        assert_eq!(a, b);
        let mut unique = a.clone();
        unique.dedup();
        assert_eq!(unique.len(), 4);
    }
}
