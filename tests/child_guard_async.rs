//! `ChildGuard` under tokio: `wait_async` and `stop_async` never block a runtime thread,
//! and a dropped future leaves neither a process nor a thread behind.

#![cfg(all(target_os = "linux", feature = "tokio"))]

#[path = "support/child.rs"]
mod child;
#[path = "proc_support/mod.rs"]
mod procs;

use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use isofix::{ChildGuard, IsolatedDir};
use tokio::runtime::{Builder, Runtime};

/// A shell line whose group is three processes that ignore SIGTERM (ignored signals stay
/// ignored across exec): only SIGKILL of the whole group ends it. It writes the address
/// line that tells the test it is ready to the file `$0`.
const DEAF_FAMILY: &str = "trap '' TERM; sleep 600 & sleep 600 & echo 127.0.0.1:1 > \"$0\"; wait";

/// Starts [`DEAF_FAMILY`] and waits until it ignores SIGTERM.
fn deaf_family(grace: Duration) -> ChildGuard {
    let dir = IsolatedDir::new().unwrap();
    let ready = dir.join("ready");
    let mut guard = ChildGuard::builder()
        .grace(grace)
        .spawn(Command::new("sh").args(["-c", DEAF_FAMILY]).arg(&ready))
        .unwrap();
    guard
        .wait_port_file(&ready, Duration::from_secs(3600))
        .unwrap();
    guard
}

/// A guard started from a `tokio::process::Command`, waited for asynchronously.
async fn waits_for_a_tokio_command() {
    let mut command = tokio::process::Command::new("sh");
    command.args(["-c", "exit 4"]);
    let mut guard = ChildGuard::spawn(command.as_std_mut()).unwrap();
    let pgid = guard.id();
    assert_eq!(guard.wait_async().await.unwrap().code(), Some(4));
    // Waited for once, the status is kept.
    assert_eq!(guard.wait_async().await.unwrap().code(), Some(4));
    assert_eq!(procs::group_members(pgid), Vec::<u32>::new());
    assert!(procs::is_zombie(pgid), "the child is reaped");
}

#[tokio::test(flavor = "current_thread")]
async fn wait_async_on_a_tokio_command_current_thread() {
    waits_for_a_tokio_command().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_async_on_a_tokio_command_multi_thread() {
    waits_for_a_tokio_command().await;
}

/// `stop_async` on a group that ignores SIGTERM: SIGKILL after the grace, nothing left.
async fn stops_a_deaf_family() {
    let guard = deaf_family(Duration::from_millis(50));
    let pgid = guard.id();
    let status = guard.stop_async().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert_eq!(procs::group_members(pgid), Vec::<u32>::new());
    assert!(procs::is_zombie(pgid), "the child is reaped");
}

#[tokio::test(flavor = "current_thread")]
async fn stop_async_kills_the_group_current_thread() {
    stops_a_deaf_family().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_async_kills_the_group_multi_thread() {
    stops_a_deaf_family().await;
}

/// A runtime with one thread that runs tasks: the current thread, or one worker.
fn one_thread_runtime(multi_thread: bool) -> Runtime {
    let mut builder = if multi_thread {
        let mut builder = Builder::new_multi_thread();
        builder.worker_threads(1);
        builder
    } else {
        Builder::new_current_thread()
    };
    builder.enable_all().build().unwrap()
}

/// Runs `waiting` (given a sender to call once it is about to wait) and then `ending`
/// as two tasks on a runtime with one thread for tasks: `ending` can only run if
/// `waiting` lets that thread go while it waits. A wait that blocks the thread hangs, so
/// the runtime runs on a thread of its own and the test fails after a generous deadline,
/// killing the group `pgid` it leaves.
fn on_one_thread<W, E>(
    multi_thread: bool,
    pgid: u32,
    waiting: impl FnOnce(tokio::sync::oneshot::Sender<()>) -> W + Send + 'static,
    ending: E,
) -> ExitStatus
where
    W: Future<Output = ExitStatus> + Send + 'static,
    E: Future<Output = ()> + Send + 'static,
{
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = one_thread_runtime(multi_thread);
        let status = runtime.block_on(async move {
            let (started, waits) = tokio::sync::oneshot::channel();
            let waiting = tokio::spawn(waiting(started));
            let ending = tokio::spawn(async move {
                waits.await.unwrap();
                ending.await;
            });
            ending.await.unwrap();
            waiting.await.unwrap()
        });
        let _ = done.send(status);
    });
    // Not a timing assertion: only a wait that blocks its thread takes this long.
    let deadline = Duration::from_secs(120);
    result.recv_timeout(deadline).unwrap_or_else(|_| {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        panic!("the wait blocked the runtime's only task thread: still stuck after {deadline:?}")
    })
}

/// `kill -<signal> -- -<pgid>`: a signal to a whole group, from outside.
async fn signal_group(signal: &str, pgid: u32) {
    let status = tokio::process::Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

/// `wait_async`, or `stop_async` with a grace period longer than any test, on a group
/// that ignores SIGTERM: either ends only because the other task kills the group
/// meanwhile.
fn lets_other_tasks_run(multi_thread: bool, stop: bool) {
    let guard = deaf_family(Duration::from_secs(3600));
    let pgid = guard.id();
    let status = on_one_thread(
        multi_thread,
        pgid,
        move |started| async move {
            let mut guard = guard;
            started.send(()).unwrap();
            if stop {
                guard.stop_async().await.unwrap()
            } else {
                guard.wait_async().await.unwrap()
            }
        },
        signal_group("-KILL", pgid),
    );
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert_eq!(procs::group_members(pgid), Vec::<u32>::new());
}

#[test]
fn wait_async_lets_other_tasks_run_current_thread() {
    lets_other_tasks_run(false, false);
}

#[test]
fn wait_async_lets_other_tasks_run_multi_thread() {
    lets_other_tasks_run(true, false);
}

#[test]
fn stop_async_lets_other_tasks_run_current_thread() {
    lets_other_tasks_run(false, true);
}

#[test]
fn stop_async_lets_other_tasks_run_multi_thread() {
    lets_other_tasks_run(true, true);
}

const DROPPED: &str = "dropped";

/// In a process of its own, on both runtime flavours: `wait_async` futures dropped while
/// they wait (100 times), then their guards dropped, leave the thread and descriptor
/// counts where they were, no child, and no process of any group.
#[test]
fn dropped_wait_async_futures_leave_nothing() {
    if child::role().as_deref() == Some(DROPPED) {
        // The first child starts isofix's spawner thread, its one thread per process.
        drop(ChildGuard::spawn(&mut Command::new("true")).unwrap());
        for multi_thread in [false, true] {
            let runtime = one_thread_runtime(multi_thread);
            let (fds, threads) = (procs::fds(), procs::threads());
            let mut groups = Vec::new();
            runtime.block_on(async {
                for i in 0..100 {
                    let mut guard = deaf_family(Duration::ZERO);
                    groups.push(guard.id());
                    // The family never ends by itself: the wait is always cut short.
                    let cut =
                        tokio::time::timeout(Duration::from_millis(i % 3), guard.wait_async());
                    assert!(cut.await.is_err());
                    drop(guard);
                }
            });
            assert_eq!(procs::threads(), threads, "multi_thread: {multi_thread}");
            assert_eq!(procs::fds(), fds, "multi_thread: {multi_thread}");
            drop(runtime);
            assert_eq!(procs::children(), Vec::<u32>::new());
            assert_eq!(procs::alive_in_groups(&groups), []);
        }
        child::say("clean");
        return;
    }
    let finished = child::spawn(
        "dropped_wait_async_futures_leave_nothing",
        DROPPED,
        &[("", "")][..0],
    )
    .finish();
    finished.assert_success();
    assert_eq!(finished.said().collect::<Vec<_>>(), ["clean"]);
}
