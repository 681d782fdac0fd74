//! A lock directory removed or replaced while the process runs: the process notices, and
//! fails its next request there instead of starting a second lock space beside the locks
//! still held in the removed one.

mod serial_support;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use isofix::{IsolatedDir, SerialGuard};
use serial_support::{child_role, spawn, unique, SAFETY};

fn take(group: &str, dir: &Path) -> std::io::Result<SerialGuard> {
    SerialGuard::group(group)
        .lock_dir(dir)
        .timeout(SAFETY)
        .acquire()
}

fn assert_refused(err: std::io::Error, dir: &Path, how: &str) {
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(how), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("cargo clean"), "{msg}");
}

#[test]
fn a_removed_lock_dir_fails_later_requests() {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("removed-dir");
    let held = take(&group, &dir).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    // Another group, and the held one from another thread: both would have started a new
    // lock space; the held group would then have had two holders.
    assert_refused(take(&unique("other"), &dir).unwrap_err(), &dir, "removed");
    let (g, d) = (group.clone(), dir.clone());
    let err = std::thread::spawn(move || take(&g, &d).map(drop))
        .join()
        .unwrap()
        .unwrap_err();
    assert_refused(err, &dir, "removed");
    assert!(!dir.exists(), "the lock directory was made again");
    drop(held);
}

#[test]
fn a_replaced_lock_dir_fails_later_requests() {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("replaced-dir");
    drop(take(&group, &dir).unwrap());
    fs::rename(&dir, scratch.path().join("old")).unwrap();
    // A fresh, private directory with the same layout at the same path.
    drop(take(&group, &scratch.path().join("fresh")).unwrap());
    fs::rename(scratch.path().join("fresh"), &dir).unwrap();
    assert_refused(take(&group, &dir).unwrap_err(), &dir, "replaced");
}

#[test]
fn removal_between_two_processes_is_refused() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("removed-procs");
    // This process uses the directory, then another holds the group in it.
    drop(take(&group, &dir).unwrap());
    let mut holder = spawn(
        "removal_between_two_processes_is_refused",
        &["hold", &group, "ex"],
        &[("ISOFIX_LOCK_DIR", dir.to_str().unwrap())],
    );
    assert!(holder.read_marked().starts_with("held"));
    let removed = std::process::Command::new("rm")
        .arg("-rf")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(removed.success());
    // Before, this process made the directory again and got the group at once, while
    // the child still held it.
    assert_refused(take(&group, &dir).unwrap_err(), &dir, "removed");
    holder.finish().assert_success();
}
