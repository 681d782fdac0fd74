//! The statistics of repeated runs: how often a test flakes, how sure a count can make us,
//! and how many runs it takes to see a flake of a given rate.
//!
//! Every run of a test is taken as an independent trial that fails with some unknown
//! probability `p`, the flake rate. After `n` runs with `k` failures:
//!
//! - the observed rate is `k / n`;
//! - its confidence interval is the Wilson score interval ([`wilson_interval`]), which
//!   stays inside `[0, 1]` and is sound for small `k`, unlike the textbook `p ± z·σ`:
//!   `(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`, with `z` the normal quantile
//!   of the confidence level (1.96 for 95 %);
//! - if `k = 0`, the rates that `n` clean runs rule out at confidence `c` are those above
//!   `1 − (1 − c)^(1/n)` ([`rate_ruled_out`]), the exact one-sided Clopper–Pearson bound;
//!   at 95 % it is close to `3 / n`, the "rule of three";
//! - a flake of rate `p` shows at least once in `n` runs with probability `1 − (1 − p)^n`
//!   ([`detection_probability`]), so detecting it with probability `c` takes
//!   `n = ⌈ln(1 − c) / ln(1 − p)⌉` runs ([`runs_needed`]).
//!
//! ```
//! use isofix::stress::stats;
//!
//! // 2,000 clean runs rule out a flake rate above 0.15 % at 95 % confidence.
//! let bound = stats::rate_ruled_out(2_000, 0.95);
//! assert!((bound - 0.0015).abs() < 0.0001);
//! // A 2 % flake shows within 228 runs with 99 % probability.
//! assert_eq!(stats::runs_needed(0.02, 0.99), 228);
//! ```

/// The two-sided Wilson score interval `(low, high)` for `failures` in `runs` at
/// `confidence` (for example `0.95`). `(0.0, 1.0)` when `runs` is 0.
///
/// ```
/// let (low, high) = isofix::stress::stats::wilson_interval(5, 100, 0.95);
/// assert!((low - 0.0215).abs() < 0.0001 && (high - 0.1118).abs() < 0.0001);
/// ```
pub fn wilson_interval(failures: u64, runs: u64, confidence: f64) -> (f64, f64) {
    if runs == 0 {
        return (0.0, 1.0);
    }
    let n = runs as f64;
    let p = failures.min(runs) as f64 / n;
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    // At k = 0 or k = n one end is exactly 0 or 1; rounding must not move it.
    let low = if failures == 0 { 0.0 } else { centre - half };
    let high = if failures >= runs { 1.0 } else { centre + half };
    (low.max(0.0), high.min(1.0))
}

/// The flake rate that `runs` clean runs rule out at `confidence`: a test failing more
/// often than this would have failed at least once with probability `confidence`.
/// It is `1 − (1 − confidence)^(1/runs)`, about `3 / runs` at 95 % (the rule of three).
/// `1.0` when `runs` is 0.
///
/// ```
/// let bound = isofix::stress::stats::rate_ruled_out(1_000, 0.95);
/// assert!((bound - 0.002991).abs() < 0.000001); // the rule of three says 0.003
/// ```
pub fn rate_ruled_out(runs: u64, confidence: f64) -> f64 {
    if runs == 0 {
        return 1.0;
    }
    1.0 - (1.0 - confidence).powf(1.0 / runs as f64)
}

/// The probability that a flake of `rate` fails at least once in `runs` runs:
/// `1 − (1 − rate)^runs`.
///
/// ```
/// let p = isofix::stress::stats::detection_probability(0.02, 228);
/// assert!(p >= 0.99);
/// ```
pub fn detection_probability(rate: f64, runs: u64) -> f64 {
    let rate = rate.clamp(0.0, 1.0);
    1.0 - (1.0 - rate).powf(runs as f64)
}

/// How many runs it takes for a flake of `rate` to fail at least once with probability
/// `confidence`: `⌈ln(1 − confidence) / ln(1 − rate)⌉`. `u64::MAX` for a rate of 0 (no
/// number of runs shows what never happens), 1 for a rate of 1.
///
/// ```
/// use isofix::stress::stats::runs_needed;
/// assert_eq!(runs_needed(0.01, 0.99), 459);
/// assert_eq!(runs_needed(0.001, 0.99), 4603);
/// ```
pub fn runs_needed(rate: f64, confidence: f64) -> u64 {
    if rate.is_nan() || rate <= 0.0 {
        return u64::MAX;
    }
    if rate >= 1.0 || confidence <= 0.0 {
        return 1;
    }
    let n = ((1.0 - confidence).ln() / (1.0 - rate).ln()).ceil();
    if n >= u64::MAX as f64 {
        u64::MAX
    } else {
        (n as u64).max(1)
    }
}

/// The quantile function of the standard normal distribution: the `z` with
/// `P(Z ≤ z) = p`. Acklam's rational approximation, relative error below 1.2e-9.
///
/// ```
/// let z = isofix::stress::stats::normal_quantile(0.975);
/// assert!((z - 1.959964).abs() < 1e-6);
/// ```
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A rate as a percentage with two significant digits, as reports print it.
///
/// ```
/// use isofix::stress::stats::percent;
/// assert_eq!(percent(0.015), "1.5 %");
/// assert_eq!(percent(0.0015), "0.15 %");
/// assert_eq!(percent(0.25), "25 %");
/// assert_eq!(percent(0.0), "0 %");
/// ```
pub fn percent(rate: f64) -> String {
    let pct = rate * 100.0;
    if pct <= 0.0 || !pct.is_finite() {
        return format!("{pct} %");
    }
    let decimals = (1 - pct.log10().floor() as i32).clamp(0, 8) as usize;
    format!("{pct:.decimals$} %")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    // Reference values from Python's `statistics.NormalDist` and the closed forms.
    #[test]
    fn normal_quantiles_match_reference_values() {
        assert!(close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-8));
        assert!(close(normal_quantile(0.995), 2.575_829_303_548_9, 1e-8));
        assert!(close(normal_quantile(0.5), 0.0, 1e-12));
        assert!(close(normal_quantile(0.01), -2.326_347_874_040_841, 1e-8));
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn wilson_matches_reference_values() {
        let (low, high) = wilson_interval(0, 10, 0.95);
        assert_eq!(low, 0.0);
        assert!(close(high, 0.277_532_799_862_889, 1e-8));
        let (low, high) = wilson_interval(5, 100, 0.95);
        assert!(close(low, 0.021_543_679_154_368, 1e-8));
        assert!(close(high, 0.111_750_469_231_919, 1e-8));
        let (low, high) = wilson_interval(2, 1000, 0.95);
        assert!(close(low, 0.000_548_643_588_121, 1e-9));
        assert!(close(high, 0.007_262_807_863_492, 1e-9));
        let (low, high) = wilson_interval(10, 10, 0.95);
        assert!(close(low, 0.722_467_200_137_111, 1e-8));
        assert_eq!(high, 1.0);
        assert_eq!(wilson_interval(0, 0, 0.95), (0.0, 1.0));
    }

    #[test]
    fn clean_runs_rule_out_rates_by_the_exact_bound() {
        assert!(close(
            rate_ruled_out(2000, 0.95),
            0.001_496_744_895_188,
            1e-12
        ));
        assert!(close(
            rate_ruled_out(2000, 0.99),
            0.002_299_936_177_447,
            1e-12
        ));
        assert!(close(
            rate_ruled_out(1000, 0.95),
            0.002_991_249_545_095,
            1e-12
        ));
        // The rule of three is its approximation.
        assert!(close(rate_ruled_out(10_000, 0.95), 3.0 / 10_000.0, 1e-5));
        assert_eq!(rate_ruled_out(0, 0.95), 1.0);
    }

    #[test]
    fn runs_needed_matches_closed_form() {
        assert_eq!(runs_needed(0.02, 0.99), 228);
        assert_eq!(runs_needed(0.01, 0.99), 459);
        assert_eq!(runs_needed(0.001, 0.99), 4603);
        assert_eq!(runs_needed(0.5, 0.75), 2);
        assert_eq!(runs_needed(1.0, 0.99), 1);
        assert_eq!(runs_needed(0.0, 0.99), u64::MAX);
        assert_eq!(runs_needed(f64::NAN, 0.99), u64::MAX);
        // The number found is the smallest that reaches the confidence.
        for &rate in &[0.3, 0.05, 0.002] {
            let n = runs_needed(rate, 0.99);
            assert!(detection_probability(rate, n) >= 0.99);
            assert!(detection_probability(rate, n - 1) < 0.99);
        }
    }
}
