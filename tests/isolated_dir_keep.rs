//! Keeping isolated directories for inspection: `ISOFIX_KEEP` and `keep_if`, each checked
//! in a child process (the variable is process-wide, and the messages go to stderr).

mod isolated_dir_support;

use std::path::Path;

use isofix::IsolatedDir;
use isolated_dir_support::{role, run_role, spawn, Finished, Reported};

/// Runs a role when this binary is started as a child by one of the tests below; does
/// nothing in the test run itself.
#[test]
fn child_role() {
    if let Some(role) = role() {
        run_role(&role);
    }
}

/// Runs `role` with `ISOFIX_KEEP=keep` (unset if `None`) and a private `ISOFIX_TMPDIR`,
/// which `scratch` removes with whatever was kept in it.
fn run(role: &str, keep: Option<&str>, scratch: &IsolatedDir) -> Finished {
    let mut envs = vec![("ISOFIX_TMPDIR", scratch.path().as_os_str())];
    if let Some(keep) = keep {
        envs.push(("ISOFIX_KEEP", std::ffi::OsStr::new(keep)));
    }
    spawn(role, &envs).finish()
}

fn kept_line(path: &Path, reason: &str) -> String {
    format!("isofix: kept {} ({reason})", path.display())
}

#[test]
fn failed_keeps_the_directory_of_a_panicking_test_and_names_it() {
    let scratch = IsolatedDir::new().unwrap();
    let out = run("panic", Some("failed"), &scratch);
    assert!(!out.status.success(), "{out:?}");
    let path = out.path();
    assert!(path.is_dir(), "{out:?}");
    assert!(
        out.stderr.contains(&kept_line(&path, "ISOFIX_KEEP=failed")),
        "{out:?}"
    );
}

#[test]
fn failed_removes_the_directory_of_a_passing_test() {
    let scratch = IsolatedDir::new().unwrap();
    let out = run("create", Some("failed"), &scratch);
    out.assert_success();
    assert!(!out.path().exists(), "{out:?}");
    assert!(!out.stderr.contains("isofix: kept"), "{out:?}");
}

#[test]
fn always_keeps_the_directory_of_a_passing_test_and_names_it() {
    let scratch = IsolatedDir::new().unwrap();
    let out = run("create", Some("always"), &scratch);
    out.assert_success();
    let path = out.path();
    assert!(path.is_dir(), "{out:?}");
    assert!(
        out.stderr.contains(&kept_line(&path, "ISOFIX_KEEP=always")),
        "{out:?}"
    );
}

#[test]
fn by_default_even_a_panicking_tests_directory_is_removed() {
    let scratch = IsolatedDir::new().unwrap();
    let out = run("panic", None, &scratch);
    assert!(!out.status.success(), "{out:?}");
    assert!(!out.path().exists(), "{out:?}");
    assert!(!out.stderr.contains("isofix: kept"), "{out:?}");
}

#[test]
fn an_unknown_value_is_reported_once_and_treated_as_the_default() {
    let scratch = IsolatedDir::new().unwrap();
    let out = run("create-two", Some("sometimes"), &scratch);
    out.assert_success();
    let paths = out.paths();
    assert_eq!(paths.len(), 2, "{out:?}");
    assert!(paths.iter().all(|p| !p.exists()), "{out:?}");
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("ISOFIX_KEEP=sometimes"))
        .collect();
    assert_eq!(warnings.len(), 1, "{out:?}");
    for value in ["never", "failed", "always"] {
        assert!(warnings[0].contains(value), "{out:?}");
    }
}

#[test]
fn keep_if_keeps_the_directory_and_names_it() {
    let scratch = IsolatedDir::new().unwrap();
    let out = run("keep-if", None, &scratch);
    out.assert_success();
    let path = out.path();
    assert!(path.is_dir(), "{out:?}");
    assert!(out.stderr.contains(&kept_line(&path, "keep_if")), "{out:?}");
}
