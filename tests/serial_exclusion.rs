//! Exclusive, shared and at-most-N holders, across threads and processes, checked with
//! marker files created `create_new` inside the critical sections.

mod serial_support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use isofix::{IsolatedDir, SerialGuard};
use serial_support::{child_role, enter, hammer, mode_arg, spawn, unique, Mode, SAFETY};

const ROUNDS: usize = 150;

/// Runs workers in child processes and threads at once; any overlap fails a marker.
fn mixed_workers(test: &str, group: &str, procs: &[Mode], threads: &[Mode]) {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().to_str().unwrap().to_owned();
    let rounds = ROUNDS.to_string();
    let children: Vec<_> = procs
        .iter()
        .map(|m| spawn(test, &["hammer", group, &mode_arg(*m), &dir, &rounds], &[]))
        .collect();
    let workers: Vec<_> = threads
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (group, dir, m) = (group.to_owned(), scratch.path().to_owned(), *m);
            thread::spawn(move || hammer(&group, &dir, m, &format!("thread{i}"), ROUNDS))
        })
        .collect();
    for worker in workers {
        worker.join().unwrap().unwrap();
    }
    for mut child in children {
        assert_eq!(child.read_marked(), "done");
        child.finish().assert_success();
    }
}

#[test]
fn exclusive_excludes_threads_and_processes() {
    child_role();
    let group = unique("exclusive");
    mixed_workers(
        "exclusive_excludes_threads_and_processes",
        &group,
        &[Mode::Exclusive, Mode::Exclusive],
        &[Mode::Exclusive, Mode::Exclusive, Mode::Exclusive],
    );
}

#[test]
fn readers_and_writers_exclude_each_other() {
    child_role();
    let group = unique("rw");
    mixed_workers(
        "readers_and_writers_exclude_each_other",
        &group,
        &[Mode::Shared, Mode::Exclusive],
        &[Mode::Shared, Mode::Shared, Mode::Exclusive],
    );
}

#[test]
fn at_most_n_holders() {
    child_role();
    let group = unique("max");
    mixed_workers(
        "at_most_n_holders",
        &group,
        &[Mode::Max(2), Mode::Max(2)],
        &[Mode::Max(2), Mode::Max(2), Mode::Max(2)],
    );
}

#[test]
fn shared_holders_hold_at_once_across_processes() {
    child_role();
    let group = unique("shared-overlap");
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().to_str().unwrap();
    let mut child = spawn(
        "shared_holders_hold_at_once_across_processes",
        &["hold", &group, "sh", dir],
        &[],
    );
    assert!(child.read_marked().starts_with("held"));
    // While the child holds it shared, so can this process (and a thread of it): a shared
    // lock that excluded would time out here.
    let mine = Mode::Shared.acquire(&group).unwrap();
    let marker = enter(scratch.path(), Mode::Shared, "parent").unwrap();
    let (group2, path) = (group.clone(), scratch.path().to_owned());
    thread::spawn(move || {
        let _g = Mode::Shared.acquire(&group2).unwrap();
        drop(enter(&path, Mode::Shared, "thread").unwrap());
    })
    .join()
    .unwrap();
    // An exclusive request meanwhile must wait for all of them.
    let (group3, path) = (group.clone(), scratch.path().to_owned());
    let writer = thread::spawn(move || {
        let _g = Mode::Exclusive.acquire(&group3).unwrap();
        drop(enter(&path, Mode::Exclusive, "writer").unwrap());
    });
    drop(marker);
    drop(mine);
    child.finish().assert_success();
    writer.join().unwrap();
}

#[test]
fn n_holders_hold_at_once() {
    let group = unique("max-overlap");
    let first = SerialGuard::group(&group).max_holders(2).acquire().unwrap();
    let (tx, rx) = mpsc::channel();
    let g = group.clone();
    let second = thread::spawn(move || {
        let guard = SerialGuard::group(&g)
            .max_holders(2)
            .timeout(SAFETY)
            .acquire()
            .unwrap();
        tx.send(()).unwrap();
        guard
    });
    rx.recv().unwrap();
    // Both slots are busy: a third holder must wait for one.
    let g = group.clone();
    let third = thread::spawn(move || {
        SerialGuard::group(&g)
            .max_holders(2)
            .timeout(Duration::from_millis(100))
            .acquire()
            .map(drop)
    });
    assert_eq!(
        third.join().unwrap().unwrap_err().kind(),
        std::io::ErrorKind::TimedOut
    );
    drop(first);
    let _third = SerialGuard::group(&group)
        .max_holders(2)
        .timeout(SAFETY)
        .acquire()
        .unwrap();
    drop(second.join().unwrap());
}

#[test]
fn waiting_writer_is_not_starved_by_new_readers() {
    child_role();
    let group = unique("starve");
    // Held shared by another process: this one holds nothing, so its readers queue.
    let mut reader = spawn(
        "waiting_writer_is_not_starved_by_new_readers",
        &["hold", &group, "sh"],
        &[],
    );
    reader.read_marked();
    let g = group.clone();
    let writer = thread::spawn(move || SerialGuard::group(&g).timeout(SAFETY).acquire().map(drop));
    // New readers get in until the writer queues; from then on they must wait behind it,
    // although the lock is only held shared.
    let mut blocked = false;
    for _ in 0..2000 {
        match SerialGuard::group(&group)
            .shared()
            .timeout(Duration::from_millis(20))
            .acquire()
        {
            Ok(_) => thread::yield_now(),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                blocked = true;
                break;
            }
        }
    }
    assert!(
        blocked,
        "new shared holders kept getting past a waiting exclusive request"
    );
    reader.finish().assert_success();
    writer.join().unwrap().unwrap();
}
