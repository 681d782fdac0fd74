//! Nesting within a thread, and several groups taken in one canonical order.

mod serial_support;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use isofix::SerialGuard;
use serial_support::{unique, SAFETY};

/// Whether another thread finds `group` held (its short attempt times out).
fn held_elsewhere(group: &str) -> bool {
    let g = group.to_owned();
    thread::spawn(move || {
        let r = SerialGuard::group(&g)
            .shared()
            .timeout(Duration::from_millis(50))
            .acquire();
        matches!(r, Err(e) if e.kind() == ErrorKind::TimedOut)
    })
    .join()
    .unwrap()
}

#[test]
fn nested_exclusive_is_counted_and_released_by_the_last_guard() {
    let group = unique("nested");
    let outer = SerialGuard::lock(&group).unwrap();
    let inner = SerialGuard::lock(&group).unwrap();
    drop(outer); // the inner guard still holds it
    assert!(held_elsewhere(&group));
    let innermost = SerialGuard::shared(&group).unwrap();
    drop(inner);
    assert!(held_elsewhere(&group));
    drop(innermost);
    assert!(!held_elsewhere(&group));
}

#[test]
fn shared_inside_shared_nests() {
    let group = unique("nested-shared");
    let outer = SerialGuard::shared(&group).unwrap();
    let inner = SerialGuard::group(&group).max_holders(3).acquire().unwrap();
    drop(outer);
    drop(inner);
    let _now_exclusive = SerialGuard::lock(&group).unwrap();
}

#[test]
fn upgrade_fails_at_once_with_a_clear_error() {
    let group = unique("upgrade");
    let _shared = SerialGuard::shared(&group).unwrap();
    let err = SerialGuard::lock(&group).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    let msg = err.to_string();
    assert!(msg.contains(&format!("{group:?}")), "{msg}");
    assert!(msg.contains("already holds it shared"), "{msg}");
    assert!(msg.contains("hint:"), "{msg}");
    // Within a multi-group request too, which then keeps none of its groups.
    let other = unique("other");
    let err = SerialGuard::lock_all([other.as_str(), &group]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(!held_elsewhere(&other));
}

#[test]
fn opposite_orders_never_deadlock() {
    let (a, b, c) = (unique("order-a"), unique("order-b"), unique("order-c"));
    let inside = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (a, b, c, inside) = (a.clone(), b.clone(), c.clone(), Arc::clone(&inside));
            thread::spawn(move || {
                for _ in 0..50 {
                    let guard = match i % 3 {
                        0 => SerialGuard::lock_all([&a, &b, &c]).unwrap(),
                        1 => SerialGuard::lock_all([&c, &b, &a, &b]).unwrap(),
                        _ => SerialGuard::group(&b)
                            .group(&c)
                            .group(&a)
                            .timeout(SAFETY)
                            .acquire()
                            .unwrap(),
                    };
                    assert_eq!(guard.groups().len(), 3);
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn guard_reports_its_groups() {
    let (a, b) = (unique("acc-a"), unique("acc-b"));
    let guard = SerialGuard::lock_all([&b, &a, &b]).unwrap();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(guard.groups(), expected);
    assert!(!guard.is_shared());
    let debug = format!("{guard:?}");
    assert!(
        debug.contains("SerialGuard") && debug.contains(&a),
        "{debug}"
    );
    fn assert_send<T: Send + 'static>(_: &T) {}
    assert_send(&guard);
    // The guard may move to, and be released on, another thread.
    thread::spawn(move || drop(guard)).join().unwrap();
    assert!(!held_elsewhere(&a));
}
