//! The kernel, not bookkeeping, releases a group: a killed holder and a panicking one.

mod serial_support;

use std::fs;
use std::io::ErrorKind;
use std::thread;
use std::time::Duration;

use isofix::{IsolatedDir, SerialGuard};
use serial_support::{child_role, spawn, unique, SAFETY};

fn held_elsewhere(group: &str, shared: bool) -> bool {
    let g = group.to_owned();
    thread::spawn(move || {
        let mut b = SerialGuard::group(&g).timeout(Duration::from_millis(50));
        if shared {
            b = b.shared();
        }
        matches!(b.acquire(), Err(e) if e.kind() == ErrorKind::TimedOut)
    })
    .join()
    .unwrap()
}

fn killed_holder_releases(test: &str, mode: &str) {
    let group = unique("sigkill");
    let mut child = spawn(test, &["hold", &group, mode], &[]);
    assert!(child.read_marked().starts_with("held"));
    assert!(
        held_elsewhere(&group, false),
        "the child should hold the group"
    );
    child.kill(); // SIGKILL: no destructor runs
    let guard = SerialGuard::group(&group).timeout(SAFETY).acquire();
    assert!(guard.is_ok(), "{guard:?}");
}

#[test]
fn sigkill_of_an_exclusive_holder_releases() {
    child_role();
    killed_holder_releases("sigkill_of_an_exclusive_holder_releases", "ex");
}

#[test]
fn sigkill_of_a_shared_holder_releases() {
    child_role();
    killed_holder_releases("sigkill_of_a_shared_holder_releases", "sh");
}

#[test]
fn sigkill_of_a_limited_holder_releases() {
    child_role();
    let group = unique("sigkill-max");
    let mut child = spawn(
        "sigkill_of_a_limited_holder_releases",
        &["hold", &group, "max1"],
        &[],
    );
    assert!(child.read_marked().starts_with("held"));
    child.kill();
    let guard = SerialGuard::group(&group)
        .max_holders(1)
        .timeout(SAFETY)
        .acquire();
    assert!(guard.is_ok(), "{guard:?}");
}

const PANICKING: &str = "isofix-tests-crash-panicking";

#[isofix::serial_group("isofix-tests-crash-panicking")]
fn panics_nested() {
    let _nested = SerialGuard::shared(PANICKING).unwrap();
    panic!("test failure inside the section");
}

#[test]
fn panic_inside_the_section_releases() {
    // Nested inside a guarded function, the one place where requests nest.
    let result = thread::spawn(panics_nested).join();
    assert!(result.is_err());
    let guard = SerialGuard::group(PANICKING).timeout(SAFETY).acquire();
    assert!(guard.is_ok(), "{guard:?}");
    drop(guard);
    let group = unique("panic");
    // And in the same thread, caught: nothing is poisoned.
    let caught = std::panic::catch_unwind(|| {
        let _guard = SerialGuard::lock(&group).unwrap();
        panic!("again");
    });
    assert!(caught.is_err());
    assert!(!held_elsewhere(&group, true));
    let _again = SerialGuard::lock(&group).unwrap();
}

#[test]
fn records_of_killed_holders_are_removed() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().to_str().unwrap();
    let group = unique("records");
    let mut child = spawn(
        "records_of_killed_holders_are_removed",
        &["hold", &group, "sh"],
        &[("ISOFIX_LOCK_DIR", dir)],
    );
    let pid = child
        .read_marked()
        .strip_prefix("held ")
        .unwrap()
        .to_owned();
    child.kill();
    let records = scratch.path().join("v1").join("holders");
    let of_child = || {
        fs::read_dir(&records)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(&format!("{pid}-"))
            })
            .count()
    };
    assert_eq!(of_child(), 1, "the child left no record file");
    // This process's first record in the directory sweeps the dead one's away.
    let _guard = SerialGuard::group(&group)
        .lock_dir(scratch.path())
        .timeout(SAFETY)
        .acquire()
        .unwrap();
    assert_eq!(
        of_child(),
        0,
        "the killed holder's record file is still there"
    );
}
