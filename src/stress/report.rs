//! What a stress run found, with its statistics.

use std::fmt;
use std::time::Duration;

use super::stats::{self, percent};
use super::{Iteration, SEED_VAR};

/// The result of a [`Stress`](super::Stress) run. Its `Display` is the whole report: counts,
/// throughput, the flake rate with its 95 % Wilson interval (or, when clean, the rates the
/// run rules out at 95 % and 99 %), the first failures and the seed to replay them.
///
/// ```
/// let report = isofix::stress::Stress::new()
///     .iterations(1_000)
///     .run(|it| assert!(it.index() % 100 != 1, "one in a hundred"));
/// assert_eq!((report.runs(), report.failed()), (1_000, 10));
/// assert!((report.flake_rate() - 0.01).abs() < 1e-12);
/// let (low, high) = report.interval(0.95);
/// assert!(low < 0.01 && 0.01 < high);
/// println!("{report}");
///
/// // A clean run says which flake rates it rules out.
/// let clean = isofix::stress::Stress::new().iterations(2_000).run(|_| ());
/// assert!(clean.to_string().contains("above 0.15 % would have shown with 95 % probability"));
/// ```
#[derive(Debug, Clone)]
pub struct StressReport {
    pub(super) name: String,
    pub(super) requested: u64,
    pub(super) runs: u64,
    pub(super) failed: u64,
    pub(super) workers: usize,
    pub(super) elapsed: Duration,
    pub(super) seed: u64,
    pub(super) failures: Vec<Failure>,
    pub(super) stopped_by_budget: bool,
    pub(super) stopped_by_failure: bool,
}

/// One failed iteration: its number, seed and message.
///
/// ```
/// let report = isofix::stress::Stress::new().iterations(3).workers(1)
///     .run(|it| if it.index() == 2 { Err("boom") } else { Ok(()) });
/// let failure = &report.failures()[0];
/// assert_eq!((failure.iteration(), failure.message()), (2, "boom"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    iteration: Iteration,
    message: String,
}

impl Failure {
    pub(super) fn new(iteration: Iteration, message: String) -> Failure {
        Failure { iteration, message }
    }

    /// The iteration number.
    pub fn iteration(&self) -> u64 {
        self.iteration.index()
    }

    /// The seed the iteration got ([`Iteration::seed`]).
    pub fn seed(&self) -> u64 {
        self.iteration.seed()
    }

    /// The error's text, or `panicked: <message>`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl StressReport {
    /// The run's name (the test's, by default).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Iterations that ran to the end, passed or failed.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Iterations that passed.
    pub fn passed(&self) -> u64 {
        self.runs - self.failed
    }

    /// Iterations that failed.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Whether every iteration that ran passed, and at least one ran.
    pub fn is_clean(&self) -> bool {
        self.failed == 0 && self.runs > 0
    }

    /// The worker threads or tasks that ran the body.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How long the run took.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Iterations per second.
    pub fn throughput(&self) -> f64 {
        self.runs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The run's seed; set [`SEED_VAR`] to it to replay.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The first failures ([`KEPT_FAILURES`](super::KEPT_FAILURES) at most), by iteration.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// Whether the time budget ended the run before every iteration ran.
    pub fn stopped_by_budget(&self) -> bool {
        self.stopped_by_budget
    }

    /// The observed flake rate, `failed / runs` (0 when nothing ran).
    pub fn flake_rate(&self) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            self.failed as f64 / self.runs as f64
        }
    }

    /// The Wilson interval of the flake rate at `confidence` (see [`stats::wilson_interval`]).
    pub fn interval(&self, confidence: f64) -> (f64, f64) {
        stats::wilson_interval(self.failed, self.runs, confidence)
    }

    /// The flake rate a clean run of this length rules out at `confidence`
    /// (see [`stats::rate_ruled_out`]).
    pub fn rate_ruled_out(&self, confidence: f64) -> f64 {
        stats::rate_ruled_out(self.runs, confidence)
    }

    /// Panics with the whole report unless [`is_clean`](StressReport::is_clean).
    ///
    /// ```should_panic
    /// isofix::stress::Stress::new().iterations(10).run(|_| Err("no")).assert_clean();
    /// ```
    #[track_caller]
    pub fn assert_clean(&self) {
        if !self.is_clean() {
            panic!("stress run not clean\n{self}");
        }
    }
}

impl fmt::Display for StressReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stress {:?}: {} of {} iterations ran on {} workers in {:.2} s ({:.0}/s); seed {:#x}",
            self.name,
            self.runs,
            self.requested,
            self.workers,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.seed
        )?;
        if self.stopped_by_budget {
            writeln!(f, "the time budget ended the run")?;
        }
        if self.stopped_by_failure {
            writeln!(f, "fail-fast ended the run at the first failure")?;
        }
        if self.runs == 0 {
            return writeln!(f, "no iteration ran: nothing is proven");
        }
        if self.failed == 0 {
            writeln!(
                f,
                "passed {0}, failed 0: a flake rate above {1} would have shown with 95 % probability \
                 (above {2} with 99 %)",
                self.runs,
                percent(self.rate_ruled_out(0.95)),
                percent(self.rate_ruled_out(0.99)),
            )?;
        } else {
            let (low, high) = self.interval(0.95);
            writeln!(
                f,
                "passed {}, failed {}: flake rate {} (95 % interval {} to {}, Wilson)",
                self.passed(),
                self.failed,
                percent(self.flake_rate()),
                percent(low),
                percent(high),
            )?;
            writeln!(f, "first failures:")?;
            for failure in &self.failures {
                writeln!(
                    f,
                    "  iteration {} (seed {:#x}): {}",
                    failure.iteration(),
                    failure.seed(),
                    failure.message
                )?;
            }
            writeln!(f, "replay with {SEED_VAR}={:#x}", self.seed)?;
        }
        for rate in [0.01, 0.001] {
            writeln!(
                f,
                "to see a {} flake with 99 % probability takes {} runs",
                percent(rate),
                stats::runs_needed(rate, 0.99)
            )?;
        }
        Ok(())
    }
}
