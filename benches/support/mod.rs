//! Timing helpers shared by the benchmarks: per-operation times, medians over interleaved
//! rounds, and ratios against an anchor.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Nanoseconds per operation.
pub fn per_op(total: Duration, n: u32) -> f64 {
    total.as_nanos() as f64 / f64::from(n)
}

/// Runs `f` `n` times after a warm-up of `n / 10`, and returns nanoseconds per call.
pub fn time(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    per_op(start.elapsed(), n)
}

/// The median of a sample.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Whether a target was met, as printed next to it.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// Prints one row: a name, nanoseconds per operation and the ratio to `anchor`.
pub fn row(name: &str, ns: f64, anchor: f64) {
    println!("  {name:<40} {ns:>10.0} ns  {:>6.2}x", ns / anchor);
}
