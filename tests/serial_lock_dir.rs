//! A lock directory removed while the process runs: the next acquisition makes it again,
//! private, and still excludes every other holder.

mod serial_support;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use isofix::{IsolatedDir, SerialGuard};
use serial_support::{child_role, spawn, unique, SAFETY};

/// Whether another thread finds `group` in `dir` held (its short attempt times out).
fn held_elsewhere(group: &str, dir: &Path) -> bool {
    let (g, d) = (group.to_owned(), dir.to_owned());
    thread::spawn(move || {
        let r = SerialGuard::group(&g)
            .lock_dir(d)
            .timeout(Duration::from_millis(50))
            .acquire();
        matches!(r, Err(e) if e.kind() == ErrorKind::TimedOut)
    })
    .join()
    .unwrap()
}

fn deleted_and_taken_again(shared_first: bool) {
    let scratch = IsolatedDir::new().unwrap();
    let dir: PathBuf = scratch.path().join("locks");
    let group = unique("deleted-dir");
    let take = |shared: bool| {
        let b = SerialGuard::group(&group).lock_dir(&dir).timeout(SAFETY);
        if shared { b.shared() } else { b }.acquire()
    };
    // Taken and released: this process keeps the lock files open for next time.
    drop(take(shared_first).unwrap());
    fs::remove_dir_all(&dir).unwrap();
    let held = take(false).unwrap();
    assert!(dir.is_dir(), "the lock directory was not made again");
    assert!(
        held_elsewhere(&group, &dir),
        "another thread got the group while this one holds it"
    );
    drop(held);
    assert!(!held_elsewhere(&group, &dir));
}

#[test]
fn a_deleted_lock_dir_still_excludes_threads() {
    deleted_and_taken_again(false);
    deleted_and_taken_again(true);
}

#[test]
fn a_deleted_lock_dir_still_excludes_processes() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("deleted-dir-procs");
    drop(SerialGuard::group(&group).lock_dir(&dir).acquire().unwrap());
    fs::remove_dir_all(&dir).unwrap();
    let held = SerialGuard::group(&group).lock_dir(&dir).acquire().unwrap();
    let mut child = spawn(
        "a_deleted_lock_dir_still_excludes_processes",
        &["try-for", &group, "50"],
        &[("ISOFIX_LOCK_DIR", dir.to_str().unwrap())],
    );
    let said = child.read_marked();
    assert!(said.starts_with("err TimedOut"), "{said}");
    child.finish().assert_success();
    drop(held);
}
