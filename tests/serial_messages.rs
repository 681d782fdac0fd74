//! Messages: settings checked on the first acquisition, errors that keep the OS error,
//! hints that fit the request, and the project scope of group names.

mod serial_support;

use std::io::ErrorKind;

use isofix::SerialGuard;
use serial_support::{child_role, said, spawn, unique, SAFETY};

/// What a child with `envs` says when it takes a fresh group nobody holds.
fn first_acquisition(test: &str, envs: &[(&str, &str)]) -> String {
    said(test, &["try", &unique("first")], envs)
}

#[test]
fn bad_settings_fail_the_first_acquisition() {
    child_role();
    let test = "bad_settings_fail_the_first_acquisition";
    for (var, value) in [
        ("ISOFIX_LOCK_TIMEOUT_SECS", "abc"),
        ("ISOFIX_WAIT_WARN_SECS", "-1"),
        ("ISOFIX_LOCK_SCOPE", "a\u{1}b"),
    ] {
        let said = first_acquisition(test, &[(var, value)]);
        assert!(said.starts_with("err InvalidInput"), "{var}: {said}");
        assert!(said.contains(var), "{said}");
    }
}

#[test]
fn a_missing_parent_is_not_created_and_the_os_error_is_kept() {
    let top = std::env::temp_dir().join(format!("isofix-missing-{}", uuid::Uuid::new_v4()));
    let err = SerialGuard::group(unique("missing"))
        .lock_dir(top.join("x").join("y"))
        .acquire()
        .unwrap_err();
    assert!(!top.exists(), "created {}", top.display());
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("create its parent"), "{err}");
    let source = std::error::Error::source(&err).expect("the OS error as source");
    let os = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error");
    assert_eq!(os.kind(), ErrorKind::NotFound);
    assert!(os.raw_os_error().is_some(), "{os:?}");
}

#[cfg(feature = "macros")]
#[isofix::serial_group("isofix-test messages attribute-timeout", timeout = 1)]
fn under_the_attribute() {}

#[cfg(feature = "macros")]
#[test]
fn an_attribute_timeout_points_at_the_test_and_names_its_option() {
    let held = SerialGuard::group("isofix-test messages attribute-timeout")
        .timeout(SAFETY)
        .acquire()
        .unwrap();
    let panic = std::thread::spawn(under_the_attribute).join().unwrap_err();
    drop(held);
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("timed out"), "{msg}");
    assert!(msg.contains("timeout = N"), "{msg}");
    assert!(!msg.contains("SerialBuilder::timeout"), "{msg}");
    assert!(msg.contains("tests/serial_messages.rs"), "{msg}");
}

#[test]
fn the_wait_warning_fits_a_request_with_a_timeout() {
    child_role();
    let group = unique("warn-with-timeout");
    let held = SerialGuard::lock(&group).unwrap();
    let mut child = spawn(
        "the_wait_warning_fits_a_request_with_a_timeout",
        &["try-for", &group, "60000"],
        &[("ISOFIX_WAIT_WARN_SECS", "0")],
    );
    let mut line = String::new();
    while !line.contains("has waited") {
        line.clear();
        assert!(child.read_stderr_line(&mut line), "no warning");
    }
    drop(held);
    assert_eq!(child.read_marked(), "ok");
    child.finish().assert_success();
    assert!(line.contains("gives up after 60.0 s"), "{line}");
    assert!(!line.contains("ISOFIX_LOCK_TIMEOUT_SECS"), "{line}");
    assert!(
        line.contains(&format!("held by pid {}", std::process::id())),
        "{line}"
    );
}

#[test]
fn a_scope_separates_projects() {
    child_role();
    let test = "a_scope_separates_projects";
    let group = unique("scoped");
    let mut holder = spawn(
        test,
        &["hold", &group, "ex"],
        &[("ISOFIX_LOCK_SCOPE", "project-a")],
    );
    assert!(holder.read_marked().starts_with("held"));
    let tries = |scope: Option<&str>| {
        let envs: Vec<(&str, &str)> = scope
            .map(|s| ("ISOFIX_LOCK_SCOPE", s))
            .into_iter()
            .collect();
        said(test, &["try-for", &group, "0"], &envs)
    };
    assert_eq!(tries(Some("project-b")), "ok");
    assert_eq!(tries(None), "ok");
    assert!(tries(Some("project-a")).starts_with("err TimedOut"));
    holder.finish().assert_success();
}
