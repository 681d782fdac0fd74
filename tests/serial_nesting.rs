//! Nesting (only on the hold of a `#[serial_group]` function), guards that move between
//! threads and tasks, and several groups taken in one canonical order.

mod serial_support;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use isofix::{serial_group, SerialGuard};
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

// Nesting happens only on the hold of a `#[serial_group]` function, which cannot move.

const COUNTED: &str = "isofix-tests-nesting-counted";

#[serial_group("isofix-tests-nesting-counted")]
fn nested_in_a_frame() -> (SerialGuard, SerialGuard) {
    let inner = SerialGuard::lock(COUNTED).unwrap();
    let innermost = SerialGuard::shared(COUNTED).unwrap();
    assert!(held_elsewhere(COUNTED));
    (inner, innermost)
}

#[test]
fn requests_in_a_guarded_fn_nest_and_the_last_guard_releases() {
    let (inner, innermost) = nested_in_a_frame();
    // The frame's guard is gone; the guards that nested on it still hold the group.
    assert!(held_elsewhere(COUNTED));
    drop(inner);
    assert!(held_elsewhere(COUNTED));
    // Once the frame has returned, its thread no longer nests: a new request waits for
    // the guard it gave out.
    assert!(times_out(COUNTED));
    // Wherever that guard went.
    thread::spawn(move || drop(innermost)).join().unwrap();
    assert!(!held_elsewhere(COUNTED));
}

const UPGRADE: &str = "isofix-tests-nesting-upgrade";

#[serial_group("isofix-tests-nesting-upgrade", shared)]
fn upgrade_in_a_shared_frame(other: &str) -> (std::io::Error, std::io::Error) {
    let alone = SerialGuard::lock(UPGRADE).unwrap_err();
    // Within a multi-group request too, which then keeps none of its groups.
    let several = SerialGuard::lock_all([other, UPGRADE]).unwrap_err();
    (alone, several)
}

#[test]
fn upgrade_in_a_guarded_fn_fails_at_once_with_a_clear_error() {
    let other = unique("other");
    let (err, several) = upgrade_in_a_shared_frame(&other);
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    let msg = err.to_string();
    assert!(msg.contains(&format!("{UPGRADE:?}")), "{msg}");
    assert!(msg.contains("already holds it shared"), "{msg}");
    assert!(msg.contains("hint:"), "{msg}");
    assert_eq!(several.kind(), ErrorKind::WouldBlock);
    assert!(!held_elsewhere(&other));
}

#[test]
fn shared_inside_shared_never_waits() {
    // Per process, not per thread: shared requests skip the queue of a group their
    // process holds shared.
    let group = unique("nested-shared");
    let outer = SerialGuard::shared(&group).unwrap();
    let inner = SerialGuard::group(&group).max_holders(3).acquire().unwrap();
    drop(outer);
    drop(inner);
    let _now_exclusive = SerialGuard::lock(&group).unwrap();
}

/// Whether a request of this thread for `group` waits (its short timeout passes).
fn times_out(group: &str) -> bool {
    let r = SerialGuard::group(group)
        .timeout(Duration::from_millis(50))
        .acquire();
    matches!(r, Err(e) if e.kind() == ErrorKind::TimedOut)
}

#[test]
fn a_plain_guard_is_not_reentrant() {
    // Like a Mutex: a second request on the thread waits for the guard it holds.
    let group = unique("plain");
    let _shared = SerialGuard::shared(&group).unwrap();
    assert!(times_out(&group));
    let _alone = {
        drop(_shared);
        SerialGuard::lock(&group).unwrap()
    };
    assert!(times_out(&group));
}

#[test]
fn a_guard_moved_away_still_excludes_its_old_thread() {
    let group = unique("moved-away");
    let guard = SerialGuard::lock(&group).unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let keeper = thread::spawn(move || {
        let _guard = guard;
        rx.recv().unwrap();
    });
    // Before, this thread's old hold let it in while the other thread held the group.
    assert!(times_out(&group));
    tx.send(()).unwrap();
    keeper.join().unwrap();
    let _now = SerialGuard::lock(&group).unwrap();
}

#[test]
fn a_guard_moved_in_does_not_nest_on_its_new_thread() {
    let group = unique("moved-in");
    let guard = SerialGuard::lock(&group).unwrap();
    let g = group.clone();
    let waited = thread::spawn(move || {
        let _guard = guard;
        times_out(&g)
    })
    .join()
    .unwrap();
    assert!(waited);
    let _now = SerialGuard::lock(&group).unwrap();
}

#[test]
fn guards_moved_between_threads_exclude() {
    let group = unique("moving");
    let inside = Arc::new(AtomicUsize::new(0));
    // Each taker hands every guard it takes to a new thread and asks again at once.
    let takers: Vec<_> = (0..4)
        .map(|_| {
            let (group, inside) = (group.clone(), Arc::clone(&inside));
            thread::spawn(move || {
                let keepers: Vec<_> = (0..50)
                    .map(|_| {
                        let guard = SerialGuard::group(&group).timeout(SAFETY).acquire();
                        let (guard, inside) = (guard.unwrap(), Arc::clone(&inside));
                        thread::spawn(move || {
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two inside");
                            thread::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                            drop(guard);
                        })
                    })
                    .collect();
                for keeper in keepers {
                    keeper.join().unwrap();
                }
            })
        })
        .collect();
    for t in takers {
        t.join().unwrap();
    }
}

#[test]
fn async_tasks_exclude_on_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let group = unique("tasks");
    let inside = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (group, inside) = (group.clone(), Arc::clone(&inside));
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let guard = SerialGuard::group(&group).timeout(SAFETY).acquire_async();
                        let guard = guard.await.unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two inside");
                        // The task may resume on the other worker, holding the guard.
                        tokio::task::yield_now().await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(guard);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
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
