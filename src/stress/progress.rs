//! The progress line of a long stress run, on stderr.
//!
//! Nothing shows for runs shorter than [`QUIET_FOR`]. On a terminal one line is redrawn
//! in place; elsewhere (a CI log, a captured test) a plain line is written now and then,
//! so logs stay short.

use std::io::{IsTerminal, Write};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Runs shorter than this show no progress.
const QUIET_FOR: Duration = Duration::from_secs(2);
/// How often the line is redrawn on a terminal.
const TERMINAL_EVERY: Duration = Duration::from_millis(250);
/// How often a line is written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the progress line shows.
pub(crate) struct Snapshot {
    pub(crate) done: u64,
    pub(crate) failed: u64,
    pub(crate) total: u64,
    pub(crate) elapsed: Duration,
}

/// Set once when the last worker is gone; the thread showing progress waits for it.
pub(crate) struct Progress {
    finished: Mutex<bool>,
    changed: Condvar,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        Progress {
            finished: Mutex::new(false),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn finish(&self) {
        *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Blocks until [`finish`](Progress::finish), drawing `snapshot()` while it waits.
    pub(crate) fn show_until_finished(&self, snapshot: impl Fn() -> Snapshot) {
        let terminal = std::io::stderr().is_terminal();
        let mut pause = QUIET_FOR;
        let mut shown = false;
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            // A timed wait is the tick of the display; the end wakes it at once.
            let (guard, _) = self
                .changed
                .wait_timeout_while(finished, pause, |finished| !*finished)
                .unwrap_or_else(|p| p.into_inner());
            finished = guard;
            if *finished {
                break;
            }
            draw(&snapshot(), terminal);
            shown = true;
            pause = if terminal { TERMINAL_EVERY } else { LOG_EVERY };
        }
        if shown && terminal {
            draw(&snapshot(), true);
            // Errors writing progress are of no consequence to the run.
            let _ = writeln!(std::io::stderr());
        }
    }
}

fn draw(s: &Snapshot, terminal: bool) {
    let rate = s.done as f64 / s.elapsed.as_secs_f64().max(1e-9);
    let total = if s.total == u64::MAX {
        String::new()
    } else {
        format!("/{}", s.total)
    };
    let line = format!(
        "stress: {}{total} runs, {} failed, {:.0} runs/s, {:.0} s",
        s.done,
        s.failed,
        rate,
        s.elapsed.as_secs_f64()
    );
    let mut err = std::io::stderr().lock();
    let _ = if terminal {
        write!(err, "\r{line}\x1b[K")
    } else {
        writeln!(err, "{line}")
    };
    let _ = err.flush();
}
