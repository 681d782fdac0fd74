//! `#[serial_group]` stacked with the usual test attributes, in both orders.
//!
//! Every guarded function below takes the same group and, inside it, creates a marker
//! file with `create_new`: two holders at once (threads under `cargo test`, processes
//! under `cargo nextest run`) make the second creation fail. The last test re-runs every
//! guarded test at once, each in a child process of this binary, and holds each child
//! inside the group until all the others are running, so that a lock that let two in
//! would be caught.

#[path = "support/child.rs"]
mod child;

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use isofix::serial_group;
use rstest::{fixture, rstest};
use test_case::test_case;

/// The role of the children that [`every_composition_excludes_the_others_across_processes`]
/// starts: they wait inside the group until the parent lets them go.
const HOLD: &str = "hold";
/// What a child says once inside the group.
const INSIDE: &str = "inside";

/// A marker file that exists only while someone is inside the group.
struct Marker(PathBuf);

impl Marker {
    fn path() -> PathBuf {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("serial_group_compose.inside")
    }

    fn create(holder: &str) -> Marker {
        let path = Self::path();
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    writeln!(file, "{} {holder}", std::process::id()).unwrap();
                    return Marker(path);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let other = std::fs::read_to_string(&path).unwrap_or_default();
                    if !left_by_dead_process(&other) {
                        panic!("{holder} entered the group while {other:?} was inside it");
                    }
                    // A run killed inside the group (a timeout, ^C) left it behind.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => panic!("create {}: {e}", path.display()),
            }
        }
        panic!("could not create {}", path.display());
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn left_by_dead_process(marker: &str) -> bool {
    let pid = marker.split_whitespace().next().unwrap_or("");
    cfg!(target_os = "linux")
        && !pid.is_empty()
        && pid != std::process::id().to_string()
        && !Path::new("/proc").join(pid).exists()
}

/// The body of every guarded function: be alone in the group for a while.
fn inside_the_group(holder: &str) {
    let _marker = Marker::create(holder);
    if child::role().as_deref() == Some(HOLD) {
        child::say(INSIDE);
        // Stay inside until the parent closes our stdin.
        child::wait_for_stdin_to_close();
    }
}

#[test]
#[serial_group("isofix-tests-compose")]
fn test_then_serial_group() {
    inside_the_group("test_then_serial_group");
}

#[serial_group("isofix-tests-compose")]
#[test]
fn serial_group_then_test() {
    inside_the_group("serial_group_then_test");
}

// Above `#[tokio::test]`, the attribute sees the `async fn` and moves beneath the runtime
// attribute, so it ends up as in the next test (`tests/serial_group_runtime.rs` checks that
// the groups outlive the runtime).
#[serial_group("isofix-tests-compose")]
#[tokio::test]
async fn serial_group_then_tokio_current_thread() {
    inside_the_group("serial_group_then_tokio_current_thread");
}

// Below it, the attribute sees the plain `fn` that `#[tokio::test]` generated, and takes
// the groups before the runtime starts.
#[tokio::test]
#[serial_group("isofix-tests-compose")]
async fn tokio_current_thread_then_serial_group() {
    inside_the_group("tokio_current_thread_then_serial_group");
}

#[serial_group("isofix-tests-compose")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_group_then_tokio_multi_thread() {
    let holder = "serial_group_then_tokio_multi_thread";
    // The guard must stay held across the body's awaits, on whichever worker resumes it.
    tokio::spawn(async {}).await.unwrap();
    inside_the_group(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial_group("isofix-tests-compose")]
async fn tokio_multi_thread_then_serial_group() {
    tokio::spawn(async {}).await.unwrap();
    inside_the_group("tokio_multi_thread_then_serial_group");
}

#[rstest]
#[case(1)]
#[case(2)]
#[serial_group("isofix-tests-compose")]
fn rstest_cases_then_serial_group(#[case] n: u32) {
    inside_the_group(&format!("rstest_cases_then_serial_group {n}"));
}

#[serial_group("isofix-tests-compose")]
#[rstest]
#[case(1)]
#[case(2)]
fn serial_group_then_rstest_cases(#[case] n: u32) {
    inside_the_group(&format!("serial_group_then_rstest_cases {n}"));
}

#[fixture]
fn answer() -> u32 {
    42
}

#[rstest]
#[serial_group("isofix-tests-compose")]
fn rstest_values_and_fixture(answer: u32, #[values(1, 2)] n: u32) {
    assert_eq!(answer, 42);
    inside_the_group(&format!("rstest_values_and_fixture {n}"));
}

#[serial_group("isofix-tests-compose")]
#[rstest]
fn serial_group_then_rstest_values_and_fixture(answer: u32, #[values(1, 2)] n: u32) {
    assert_eq!(answer, 42);
    inside_the_group(&format!("serial_group_then_rstest_values_and_fixture {n}"));
}

#[test_case(1 ; "one")]
#[test_case(2 ; "two")]
#[serial_group("isofix-tests-compose")]
fn test_case_then_serial_group(n: u32) {
    inside_the_group(&format!("test_case_then_serial_group {n}"));
}

#[serial_group("isofix-tests-compose")]
#[test_case(1 ; "one")]
#[test_case(2 ; "two")]
fn serial_group_then_test_case(n: u32) {
    inside_the_group(&format!("serial_group_then_test_case {n}"));
}

/// A helper that is not a test: callers hold the group only while it runs.
#[serial_group("isofix-tests-compose")]
fn guarded_helper(holder: &str) -> usize {
    inside_the_group(holder);
    holder.len()
}

#[test]
fn plain_helper() {
    assert_eq!(guarded_helper("plain_helper"), "plain_helper".len());
}

struct Fixture {
    name: &'static str,
}

impl Fixture {
    #[serial_group("isofix-tests-compose")]
    fn guarded_method(&self) -> &str {
        inside_the_group(self.name);
        self.name
    }

    #[serial_group("isofix-tests-compose")]
    async fn guarded_async_method(&mut self) -> &str {
        tokio::task::yield_now().await;
        inside_the_group(self.name);
        self.name
    }
}

#[test]
fn method() {
    let fixture = Fixture { name: "method" };
    assert_eq!(fixture.guarded_method(), "method");
}

#[tokio::test]
async fn async_method() {
    let mut fixture = Fixture {
        name: "async_method",
    };
    assert_eq!(fixture.guarded_async_method().await, "async_method");
}

/// Holds `"isofix-tests-compose-async"` until told to let go.
#[serial_group("isofix-tests-compose-async")]
fn hold_until(entered: mpsc::Sender<()>, release: mpsc::Receiver<()>) {
    entered.send(()).unwrap();
    release.recv().unwrap();
}

#[serial_group("isofix-tests-compose-async")]
async fn guarded_async() {}

// An `async fn` with no runtime attribute awaits its groups. On a current-thread runtime,
// a task waiting for a busy group must let the runtime's only thread run other tasks: here
// the task that frees the group. Were the wait blocking, this test would never end.
#[tokio::test(flavor = "current_thread")]
async fn waiting_in_async_fn_does_not_block_the_runtime() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let holder = std::thread::spawn(move || hold_until(entered_tx, release_rx));
    entered.recv().unwrap();
    let (waiting_tx, waiting) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        waiting_tx.send(()).unwrap();
        guarded_async().await;
    });
    // Runs once the waiter has started waiting and yielded the thread.
    waiting.await.unwrap();
    release.send(()).unwrap();
    waiter.await.unwrap();
    holder.join().unwrap();
}

/// Every test above that holds `"isofix-tests-compose"`, by its libtest name.
const GUARDED_TESTS: &[&str] = &[
    "test_then_serial_group",
    "serial_group_then_test",
    "serial_group_then_tokio_current_thread",
    "tokio_current_thread_then_serial_group",
    "serial_group_then_tokio_multi_thread",
    "tokio_multi_thread_then_serial_group",
    "rstest_cases_then_serial_group::case_1",
    "rstest_cases_then_serial_group::case_2",
    "serial_group_then_rstest_cases::case_1",
    "serial_group_then_rstest_cases::case_2",
    "rstest_values_and_fixture::n_1_1",
    "rstest_values_and_fixture::n_2_2",
    "serial_group_then_rstest_values_and_fixture::n_1_1",
    "serial_group_then_rstest_values_and_fixture::n_2_2",
    "test_case_then_serial_group::test_case_1_one",
    "test_case_then_serial_group::test_case_2_two",
    "serial_group_then_test_case::test_case_1_one",
    "serial_group_then_test_case::test_case_2_two",
    "plain_helper",
    "method",
    "async_method",
];

enum Event {
    /// libtest announced the test: the child is about to take the group.
    Started(usize),
    Inside(usize),
    Exited(usize, child::Finished),
}

#[test]
fn every_composition_excludes_the_others_across_processes() {
    if child::role().is_some() {
        return;
    }
    let (events_tx, events) = mpsc::channel();
    let mut stdins = Vec::new();
    for (i, &test) in GUARDED_TESTS.iter().enumerate() {
        let mut child = child::Child::spawn(&mut child::command(test, HOLD));
        stdins.push(child.take_stdin());
        let events = events_tx.clone();
        std::thread::spawn(move || {
            // libtest ends its `test <name> ... ` line only when the test ends.
            if child.wait_for_text(&format!("test {test} ... ")) {
                events.send(Event::Started(i)).unwrap();
                if child.try_read_marked().as_deref() == Some(INSIDE) {
                    events.send(Event::Inside(i)).unwrap();
                }
            }
            events.send(Event::Exited(i, child.finish())).unwrap();
        });
    }
    drop(events_tx);

    let n = GUARDED_TESTS.len();
    let (mut started, mut entered) = (vec![false; n], vec![false; n]);
    let mut exited: Vec<Option<child::Finished>> = (0..n).map(|_| None).collect();
    // The child inside the group that has not been let go yet.
    let mut inside = None;
    for event in events {
        match event {
            Event::Started(i) => started[i] = true,
            Event::Inside(i) => {
                if let Some(other) = inside {
                    panic!(
                        "{} entered while {} was inside",
                        GUARDED_TESTS[i], GUARDED_TESTS[other]
                    );
                }
                inside = Some(i);
                entered[i] = true;
            }
            Event::Exited(i, finished) => exited[i] = Some(finished),
        }
        // Let the holder go once every other child is running (or done): a child that
        // was not kept out by the group would then be inside at the same time.
        if let Some(holder) = inside {
            if (0..n).all(|j| j == holder || started[j] || exited[j].is_some()) {
                stdins[holder] = None;
                inside = None;
            }
        }
    }
    for (i, finished) in exited.into_iter().enumerate() {
        let finished = finished.unwrap();
        assert!(
            finished.status.success(),
            "{} failed: {finished:?}",
            GUARDED_TESTS[i]
        );
        assert!(
            entered[i],
            "{} never entered the group (is its name right?)",
            GUARDED_TESTS[i]
        );
    }
}
