//! The name of the test that is running, found at run time.
//!
//! libtest names each test's thread after the test's path (`module::test_name`), under
//! `cargo test` with any `--test-threads`, and under `cargo nextest run`. Nextest also
//! exports `NEXTEST_TEST_NAME` in its process-per-test mode, which stays right on threads
//! the test spawns itself (async runtimes, worker pools), so it is asked first.

/// The current test's full name, or `None` outside a test (the `main` thread, or a thread
/// a test spawned without naming it, under `cargo test`).
///
/// Found once per thread: a thread's name never changes, nor does nextest's variable, and
/// asking the environment takes a process-wide lock that lock acquisitions should not pay.
pub(crate) fn current() -> Option<String> {
    thread_local! {
        static CURRENT: Option<String> = find();
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
    match thread.name() {
        Some(name) if name != "main" && !name.is_empty() => Some(name.to_owned()),
        _ => None,
    }
}

/// Turns any text into a short, safe path component: ASCII letters, digits, `-` and `_`
/// only, `::` and other runs of separators folded into one `_`, cut to `max` bytes.
/// Returns an empty string when nothing usable is left.
pub(crate) fn slug(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(max.min(text.len()));
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
    out.trim_end_matches(['_', '-']).to_owned()
}

/// The current test's name as a path component of at most `max` bytes, or `None` outside
/// a test. Leading module segments are dropped first, since the last ones tell most:
/// `tests::net::it_echoes` becomes `net_it_echoes` rather than `tests_net_it`.
pub(crate) fn current_slug(max: usize) -> Option<String> {
    let name = current()?;
    let mut kept = String::new();
    for segment in name.rsplit("::") {
        let segment = slug(segment, max);
        if segment.is_empty() {
            continue;
        }
        if kept.is_empty() {
            kept = segment;
        } else if segment.len() + 1 + kept.len() <= max {
            kept = format!("{segment}_{kept}");
        } else {
            break;
        }
    }
    (!kept.is_empty()).then_some(kept)
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
        let inner = std::thread::spawn(current).join().unwrap();
        if std::env::var_os("NEXTEST_TEST_NAME").is_none() {
            assert_eq!(inner, None);
        } else {
            assert!(inner
                .unwrap()
                .ends_with("unnamed_thread_has_no_name_outside_nextest"));
        }
    }
}
