//! The gate queue: a request that gives up leaves it, a process never queues behind a
//! writer that waits for the process itself, and messages name who blocks a waiter.

mod serial_support;

use std::io::ErrorKind;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use isofix::SerialGuard;
use serial_support::{child_role, poll_once, said, spawn, unique, Child, SAFETY};

/// A child holding `group` shared until it is finished.
fn shared_holder(test: &str, group: &str) -> Child {
    let mut child = spawn(test, &["hold", group, "sh"], &[]);
    assert!(child.read_marked().starts_with("held"));
    child
}

/// What a new process gets when it asks for `group` in `mode` with `millis` to wait.
fn other_process_tries(test: &str, group: &str, mode: &str, millis: &str) -> String {
    said(test, &["try-as", group, mode, millis], &[])
}

#[test]
fn a_timed_out_writer_leaves_the_queue() {
    child_role();
    let test = "a_timed_out_writer_leaves_the_queue";
    let group = unique("timed-out-writer");
    let holder = shared_holder(test, &group);
    let err = SerialGuard::group(&group)
        .timeout(Duration::from_millis(20))
        .acquire()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    // Only a reader holds the group: a new reader gets in while it still holds it. Before,
    // the writer's helper thread kept its place on the gate until the holder let go.
    assert_eq!(other_process_tries(test, &group, "sh", "60000"), "ok");
    holder.finish().assert_success();
}

#[test]
fn a_dropped_async_writer_leaves_the_queue() {
    child_role();
    let test = "a_dropped_async_writer_leaves_the_queue";
    let group = unique("dropped-writer");
    let holder = shared_holder(test, &group);
    let mut future = Box::pin(SerialGuard::lock_async(&group));
    // The first poll tries, the next ones queue on the gate.
    for _ in 0..3 {
        assert!(poll_once(future.as_mut()).is_pending());
    }
    // Queued: another process's reader waits behind it.
    let said = other_process_tries(test, &group, "sh", "0");
    assert!(said.starts_with("err TimedOut"), "{said}");
    drop(future);
    assert_eq!(other_process_tries(test, &group, "sh", "60000"), "ok");
    holder.finish().assert_success();
}

/// T1 holds the group shared and waits for T2, which asks for it shared, while another
/// process queues for it exclusively: before, all three waited forever.
#[test]
fn a_process_holding_shared_never_queues_behind_a_writer() {
    child_role();
    let test = "a_process_holding_shared_never_queues_behind_a_writer";
    let group = unique("self-deadlock");
    let t1 = SerialGuard::shared(&group).unwrap();
    let mut writer = spawn(test, &["try-for", &group, "max"], &[]);
    // Wait until the writer holds its place on the gate: a new process's reader, which
    // holds nothing, then times out at once. Its message names the holder and the writer.
    let message = loop {
        let said = other_process_tries(test, &group, "sh", "0");
        if said.starts_with("err TimedOut") {
            break said;
        }
        assert_eq!(said, "ok");
    };
    println!("{message}");
    let me = format!("pid {} (test", std::process::id());
    assert!(message.contains(&format!("held by {me}")), "{message}");
    assert!(message.contains("shared"), "{message}");
    assert!(message.contains("also waiting"), "{message}");
    assert!(message.contains("exclusive, waiting for"), "{message}");
    assert!(message.contains(test), "{message}");
    let (tx, rx) = mpsc::channel();
    let g = group.clone();
    let t2 = thread::spawn(move || {
        let got = SerialGuard::group(&g).shared().timeout(SAFETY).acquire();
        tx.send(got.map(drop)).unwrap();
    });
    let got = rx.recv().unwrap();
    t2.join().unwrap();
    got.unwrap();
    drop(t1);
    assert_eq!(writer.read_marked(), "ok");
    writer.finish().assert_success();
}

#[test]
fn a_polled_waiter_is_not_starved_by_a_tight_relock_loop() {
    let group = unique("relock-loop");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g, s) = (group.clone(), std::sync::Arc::clone(&stop));
    let first = SerialGuard::lock(&group).unwrap();
    let (started, looping) = std::sync::mpsc::channel();
    let looper = std::thread::spawn(move || {
        drop(first);
        started.send(()).unwrap();
        // Takes the group again the moment it lets go.
        while !s.load(std::sync::atomic::Ordering::SeqCst) {
            drop(SerialGuard::lock(&g).unwrap());
        }
    });
    looping.recv().unwrap();
    // Polls (it has a timeout): before, it only got in if one of its tries fell into the
    // instant between a release and the next lock.
    let got = SerialGuard::group(&group).timeout(SAFETY).acquire();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(got.is_ok(), "{got:?}");
    drop(got);
    looper.join().unwrap();
}
