//! `isofix::stress`: every iteration runs once, on many threads at once; panics and errors
//! are caught and reported with their iteration numbers; fail-fast, time budgets, seeds and
//! the progress line behave as documented.

#[path = "support/child.rs"]
mod child;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use isofix::stress::{stats, Stress, KEPT_FAILURES, SEED_VAR};

#[test]
fn every_iteration_runs_exactly_once() {
    let seen = Mutex::new(vec![0u32; 5_000]);
    let report = Stress::new().iterations(5_000).workers(8).run(|it| {
        seen.lock().unwrap()[it.index() as usize] += 1;
    });
    assert!(seen.into_inner().unwrap().iter().all(|&n| n == 1));
    assert_eq!(
        (report.runs(), report.passed(), report.failed()),
        (5_000, 5_000, 0)
    );
    assert!(report.is_clean());
    report.assert_clean();
}

#[test]
fn workers_run_the_body_at_the_same_time() {
    // Each of the first 4 iterations waits for the other 3: it ends only if 4 run at once.
    let barrier = Barrier::new(4);
    let report = Stress::new().iterations(4).workers(4).run(|_| {
        barrier.wait();
    });
    assert_eq!(report.runs(), 4);
    assert_eq!(report.workers(), 4);
}

#[test]
fn panics_and_errors_are_failures_with_their_iteration() {
    let report = Stress::new()
        .iterations(300)
        .workers(3)
        .run(|it| match it.index() {
            7 => panic!("boom at {}", it.index()),
            70 => Err(format!("refused at {}", it.index())),
            _ => Ok(()),
        });
    assert_eq!(
        (report.runs(), report.failed(), report.passed()),
        (300, 2, 298)
    );
    let failures: Vec<_> = report
        .failures()
        .iter()
        .map(|f| (f.iteration(), f.message().to_owned()))
        .collect();
    assert_eq!(
        failures,
        [
            (7, "panicked: boom at 7".to_owned()),
            (70, "refused at 70".to_owned())
        ]
    );
    assert!(!report.is_clean());
}

#[test]
fn only_the_first_failures_are_kept_but_all_are_counted() {
    let report = Stress::new().iterations(100).workers(1).run(|it| {
        if it.index() % 2 == 0 {
            Err("even")
        } else {
            Ok(())
        }
    });
    assert_eq!(report.failed(), 50);
    assert_eq!(report.failures().len(), KEPT_FAILURES);
    let kept: Vec<u64> = report.failures().iter().map(|f| f.iteration()).collect();
    assert_eq!(
        kept,
        (0..KEPT_FAILURES as u64).map(|i| i * 2).collect::<Vec<_>>()
    );
}

#[test]
fn the_report_carries_the_statistics() {
    let report = Stress::new().iterations(1_000).run(|it| {
        if it.index() % 200 == 0 {
            Err("1 in 200")
        } else {
            Ok(())
        }
    });
    assert_eq!(report.failed(), 5);
    assert_eq!(report.flake_rate(), 0.005);
    assert_eq!(
        report.interval(0.95),
        stats::wilson_interval(5, 1_000, 0.95)
    );
    let text = report.to_string();
    assert!(
        text.contains("flake rate 0.50 % (95 % interval 0.21 % to 1.2 %, Wilson)"),
        "{text}"
    );
    assert!(text.contains("iteration 200 (seed"), "{text}");
    assert!(
        text.contains(&format!("replay with {SEED_VAR}={:#x}", report.seed())),
        "{text}"
    );
    assert!(
        text.contains("to see a 1.0 % flake with 99 % probability takes 459 runs"),
        "{text}"
    );

    let clean = Stress::new().iterations(2_000).run(|_| ());
    assert!((clean.rate_ruled_out(0.95) - stats::rate_ruled_out(2_000, 0.95)).abs() < 1e-15);
    let text = clean.to_string();
    assert!(
        text.contains("passed 2000, failed 0: a flake rate above 0.15 % would have shown with 95 % probability (above 0.23 % with 99 %)"),
        "{text}"
    );
}

#[test]
fn assert_clean_fails_with_the_whole_report() {
    let report = Stress::new()
        .name("the-name")
        .iterations(10)
        .workers(1)
        .run(|it| {
            if it.index() == 4 {
                Err("bad descriptor")
            } else {
                Ok(())
            }
        });
    let payload = panic::catch_unwind(AssertUnwindSafe(|| report.assert_clean())).unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    for part in [
        "stress run not clean",
        "\"the-name\"",
        "failed 1",
        "iteration 4",
        "bad descriptor",
        SEED_VAR,
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
}

#[test]
fn nothing_run_is_not_clean() {
    let report = Stress::new().iterations(0).run(|_| ());
    assert_eq!(report.runs(), 0);
    assert!(!report.is_clean());
    assert!(report.to_string().contains("nothing is proven"));
}

#[test]
fn fail_fast_stops_starting_iterations() {
    let ran = AtomicU64::new(0);
    let report = Stress::new()
        .iterations(10_000)
        .workers(1)
        .fail_fast(true)
        .run(|it| {
            ran.fetch_add(1, Ordering::Relaxed);
            if it.index() == 9 {
                Err("first")
            } else {
                Ok(())
            }
        });
    assert_eq!(
        (report.runs(), report.failed(), ran.into_inner()),
        (10, 1, 10)
    );
    assert!(report.to_string().contains("fail-fast ended the run"));
}

#[test]
fn a_time_budget_ends_an_endless_run() {
    let report = Stress::new()
        .iterations(u64::MAX)
        .time_budget(Duration::from_millis(20))
        .run(|_| ());
    // Under load the budget may even end before a worker starts: only the end is certain.
    assert!(report.stopped_by_budget());
    assert!(report.runs() < u64::MAX);
    assert!(report.to_string().contains("the time budget ended the run"));
}

#[test]
fn a_seed_replays_the_iteration_seeds() {
    let seeds = |seed| {
        let seen = Mutex::new(vec![0; 64]);
        let report = Stress::new().iterations(64).seed(seed).run(|it| {
            seen.lock().unwrap()[it.index() as usize] = it.seed();
        });
        assert_eq!(report.seed(), seed);
        seen.into_inner().unwrap()
    };
    assert_eq!(seeds(42), seeds(42));
    assert_ne!(seeds(42), seeds(43));
}

#[test]
fn the_seed_variable_sets_the_seed() {
    if child::role().as_deref() == Some("seed") {
        let report = Stress::new().iterations(1).run(|_| ());
        child::say(&report.seed().to_string());
        return;
    }
    let mut c = child::spawn(
        "the_seed_variable_sets_the_seed",
        "seed",
        &[(SEED_VAR, "0x2a")],
    );
    assert_eq!(c.read_marked(), "42");
    c.finish().assert_success();
}

#[test]
fn a_long_run_shows_progress_on_stderr() {
    if child::role().as_deref() == Some("progress") {
        // The first iteration lasts until the parent has seen a progress line and closes
        // our stdin; the rest run after it.
        let report = Stress::new().iterations(50).workers(2).run(|it| {
            if it.index() == 0 {
                child::wait_for_stdin_to_close();
            }
        });
        report.assert_clean();
        return;
    }
    let mut c = child::spawn(
        "a_long_run_shows_progress_on_stderr",
        "progress",
        &[("", ""); 0],
    );
    let mut line = String::new();
    assert!(
        c.read_stderr_line(&mut line),
        "no progress line before the end"
    );
    assert!(
        line.starts_with("stress: ") && line.contains("/50 runs, 0 failed"),
        "{line:?}"
    );
    c.finish().assert_success();
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_async_catches_panics_and_counts_every_iteration() {
    let report = Stress::new()
        .iterations(200)
        .workers(4)
        .run_async(|it| async move {
            tokio::task::yield_now().await;
            match it.index() {
                5 => panic!("async boom"),
                150 => Err("async error"),
                _ => Ok(()),
            }
        })
        .await;
    assert_eq!((report.runs(), report.failed()), (200, 2));
    let messages: Vec<_> = report
        .failures()
        .iter()
        .map(|f| (f.iteration(), f.message()))
        .collect();
    assert_eq!(
        messages,
        [(5, "panicked: async boom"), (150, "async error")]
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_async_tasks_run_at_the_same_time() {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(4));
    let report = Stress::new()
        .iterations(4)
        .workers(4)
        .run_async(move |_| {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
            }
        })
        .await;
    report.assert_clean();
}
