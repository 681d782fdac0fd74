//! The name of the test that is running, found at run time.
//!
//! libtest names each test's thread after the test's path (`module::test_name`), under
//! `cargo test` with any `--test-threads`, and under `cargo nextest run`. Nextest (0.9.x,
//! in its process-per-test mode) also exports `NEXTEST_TEST_NAME`, which stays right on
//! threads the test spawns itself (async runtimes, worker pools), so it is asked first.
//! Under `cargo test`, a thread the test spawned knows nothing of its test: its name
//! (`tokio-runtime-worker`, say) is not taken for one, since a test's name is a Rust path
//! and those names are not.

use std::sync::Arc;

/// The current test's full name, or `None` outside a test (the `main` thread, or a thread
/// a test spawned, under `cargo test`).
///
/// Found once per thread: a thread's name never changes, nor does nextest's variable, and
/// asking the environment takes a process-wide lock that lock acquisitions should not pay.
pub(crate) fn current() -> Option<Arc<str>> {
    thread_local! {
        static CURRENT: Option<Arc<str>> = find().map(Arc::from);
    }
    CURRENT.with(Clone::clone)
}

fn find() -> Option<String> {
    if std::env::var_os("NEXTEST_EXECUTION_MODE").is_some_and(|m| m == "process-per-test") {
        if let Some(name) = std::env::var("NEXTEST_TEST_NAME")
            .ok()
            .filter(|n| !n.is_empty())
        {
            return Some(name);
        }
    }
    let thread = std::thread::current();
    thread
        .name()
        .filter(|name| *name != "main" && is_rust_path(name))
        .map(str::to_owned)
}

/// Whether `name` reads as a path of Rust identifiers (`a::b_1::c`), as libtest's test
/// names do and the names runtimes give their worker threads (`tokio-runtime-worker`,
/// `rayon worker 3`) do not.
fn is_rust_path(name: &str) -> bool {
    name.split("::").all(|segment| {
        let mut chars = segment.chars();
        chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
            && chars.all(|c| c == '_' || c.is_alphanumeric())
    })
}

/// Turns any text into a short, safe path component: ASCII letters, digits, `-` and `_`
/// only, `::` and other runs of separators folded into one `_`, cut to `max` bytes.
/// Returns an empty string when nothing usable is left.
pub(crate) fn slug(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(max.min(text.len()));
    slug_into(text, max, &mut out);
    out
}

/// [`slug`], written into an empty `out` (so that a caller can reserve room for more).
pub(crate) fn slug_into(text: &str, max: usize, out: &mut String) {
    let mut pending_sep = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(c);
        } else {
            pending_sep = true;
        }
        if out.len() >= max {
            break;
        }
    }
    out.truncate(max);
    let kept = out.trim_end_matches(['_', '-']).len();
    out.truncate(kept);
}

/// The current test's name as a path component of at most `max` bytes, or `None` outside
/// a test. See [`short`].
pub(crate) fn current_slug(max: usize) -> Option<String> {
    let name = current()?;
    let short = short(&name, max);
    (!short.is_empty()).then_some(short)
}

/// The part of a test's path a human recognises, as a path component of at most `max`
/// bytes: its last segments joined by `_`, the outer ones dropped first. A segment that
/// does not fit whole is cut at its end rather than dropped, as long as 8 bytes of it fit:
/// rstest's `a_long_test_function_name::case_1` keeps the function's name
/// (`a_long_test_fun_case_1` at 22 bytes), which `case_1` alone would not tell.
pub(crate) fn short(name: &str, max: usize) -> String {
    /// The shortest cut of an outer segment worth keeping.
    const MIN_CUT: usize = 8;
    let mut kept = String::new();
    for segment in name.rsplit("::") {
        if kept.is_empty() {
            kept = slug(segment, max);
            continue;
        }
        let whole = slug(segment, usize::MAX);
        if whole.is_empty() {
            continue;
        }
        let room = max.saturating_sub(kept.len() + 1);
        if whole.len() <= room {
            kept = format!("{whole}_{kept}");
        } else {
            if room >= MIN_CUT {
                kept = format!("{}_{kept}", slug(segment, room));
            }
            break;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_is_safe_and_short() {
        assert_eq!(slug("tests::net::it_echoes", 64), "tests_net_it_echoes");
        assert_eq!(slug("../../etc/passwd", 64), "etc_passwd");
        assert_eq!(slug("héllo wörld", 64), "h_llo_w_rld");
        assert_eq!(slug("///", 64), "");
        assert_eq!(slug(&"a".repeat(100), 30).len(), 30);
        assert_eq!(slug("case_1::value", 7), "case_1");
    }

    #[test]
    fn short_keeps_the_function_name_of_generated_cases() {
        let rstest = "tests::a_long_test_function_name::case_1";
        assert_eq!(short(rstest, 22), "a_long_test_fun_case_1");
        assert_eq!(short(rstest, 35), "a_long_test_function_name_case_1");
        assert_eq!(short("it_echoes::case_2_empty_input", 13), "case_2_empty");
        assert_eq!(short("tests::net::it_echoes", 13), "net_it_echoes");
        assert_eq!(short("tests::net::it_echoes", 30), "tests_net_it_echoes");
        assert_eq!(short("a_very_long_name_indeed", 10), "a_very_lon");
        assert_eq!(short("", 10), "");
    }

    #[test]
    fn only_rust_paths_are_test_names() {
        assert!(is_rust_path("named_after_its_test"));
        assert!(is_rust_path("tests::net::case_1"));
        assert!(!is_rust_path("tokio-runtime-worker"));
        assert!(!is_rust_path("rayon worker 3"));
        assert!(!is_rust_path("a::"));
        assert!(!is_rust_path("1abc"));
    }

    /// The name `current` finds on a thread spawned with `thread`: none, but under
    /// nextest, which knows the test on every thread.
    fn assert_spawned_thread_is_not_a_test(thread: std::thread::Builder, test: &str) {
        let inner = thread.spawn(current).unwrap().join().unwrap();
        if std::env::var_os("NEXTEST_TEST_NAME").is_none() {
            assert_eq!(inner, None);
        } else {
            assert!(inner.unwrap().ends_with(test));
        }
    }

    #[test]
    fn a_runtime_worker_thread_is_not_a_test() {
        assert_spawned_thread_is_not_a_test(
            std::thread::Builder::new().name("tokio-runtime-worker".to_owned()),
            "a_runtime_worker_thread_is_not_a_test",
        );
    }

    #[test]
    fn current_is_this_test() {
        let name = current().expect("libtest names test threads");
        assert!(name.ends_with("current_is_this_test"), "{name}");
        assert_eq!(
            current_slug(30).as_deref(),
            Some("tests_current_is_this_test")
        );
        assert_eq!(current_slug(10).as_deref(), Some("current_is"));
    }

    #[test]
    fn unnamed_thread_has_no_name_outside_nextest() {
        assert_spawned_thread_is_not_a_test(
            std::thread::Builder::new(),
            "unnamed_thread_has_no_name_outside_nextest",
        );
    }
}
