//! Two copies of isofix in one dependency graph (here: this crate and a copy of its
//! library under another name, linked into one binary) share no memory, only the lock
//! directory's layout: they must exclude each other through it.

use std::io::ErrorKind;
use std::time::Duration;

use isofix::IsolatedDir;

fn unique(tag: &str) -> String {
    format!("isofix-test {tag} {}", uuid::Uuid::new_v4())
}

#[test]
fn two_copies_of_the_crate_exclude_each_other() {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path();
    let short = Duration::from_millis(20);
    let group = unique("two-copies");
    let ours = isofix::SerialGuard::group(&group)
        .lock_dir(dir)
        .acquire()
        .unwrap();
    let err = isofix_copy::SerialGuard::group(&group)
        .lock_dir(dir)
        .shared()
        .timeout(short)
        .acquire()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    drop(ours);
    let theirs = isofix_copy::SerialGuard::group(&group)
        .lock_dir(dir)
        .max_holders(1)
        .acquire()
        .unwrap();
    for attempt in [
        isofix::SerialGuard::group(&group)
            .lock_dir(dir)
            .timeout(short),
        isofix::SerialGuard::group(&group)
            .lock_dir(dir)
            .max_holders(1)
            .timeout(short),
    ] {
        let err = attempt.acquire().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    }
    // Readers of both copies share.
    drop(theirs);
    let a = isofix::SerialGuard::group(&group)
        .lock_dir(dir)
        .shared()
        .acquire()
        .unwrap();
    let b = isofix_copy::SerialGuard::group(&group)
        .lock_dir(dir)
        .shared()
        .timeout(short)
        .acquire()
        .unwrap();
    drop((a, b));
}
