//! Async acquisition: exclusion between tasks, no blocked runtime, cancellation safety.

mod serial_support;

use std::fs;
use std::io::ErrorKind;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use isofix::__private::{enter, enter_async, serial_builder};
use isofix::serial::SerialBuilder;
use isofix::{IsolatedDir, SerialGuard};
use serial_support::{enter as enter_section, unique, Mode, SAFETY};

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<SerialGuard>();
    assert_send::<SerialBuilder>();
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_exclude_each_other_and_hold_across_awaits() {
    let group = unique("async-tasks");
    let scratch = IsolatedDir::new().unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (group, dir) = (group.clone(), scratch.path().to_owned());
            tokio::spawn(async move {
                for round in 0..20 {
                    let guard = SerialGuard::lock_async(&group).await.unwrap();
                    let marker =
                        enter_section(&dir, Mode::Exclusive, &format!("t{i}-{round}")).unwrap();
                    tokio::task::yield_now().await;
                    drop(marker);
                    drop(guard);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[test]
fn waiting_does_not_block_the_runtime() {
    let group = unique("async-nonblocking");
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel();
    let g = group.clone();
    let holder = thread::spawn(move || {
        let guard = SerialGuard::lock(&g).unwrap();
        held_tx.send(()).unwrap();
        // Asked to let go by the runtime's own thread: only possible if it still runs.
        let asked = release_rx.recv_timeout(SAFETY).is_ok();
        drop(guard);
        asked
    });
    held_rx.recv().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let waiter = tokio::spawn(SerialGuard::shared_async(&group));
        tokio::task::yield_now().await; // the waiter starts waiting
        tokio::task::yield_now().await;
        release_tx.send(()).unwrap();
        drop(waiter.await.unwrap().unwrap());
    });
    assert!(holder.join().unwrap(), "the runtime thread was blocked");
}

#[tokio::test]
async fn dropping_the_future_leaves_nothing_held() {
    let group = unique("async-cancel");
    let held = SerialGuard::lock(&group).unwrap();
    // Polled (and waiting) when dropped by the timeout.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(20), SerialGuard::lock_async(&group)).await;
    assert!(gave_up.is_err());
    // Never polled at all.
    drop(SerialGuard::lock_async(&group));
    drop(held);
    // The abandoned waiter released what it got; another thread can take it.
    let g = group.clone();
    let again = thread::spawn(move || SerialGuard::group(&g).timeout(SAFETY).acquire().map(drop));
    again.join().unwrap().unwrap();
    let _ = SerialGuard::group(&group)
        .timeout(SAFETY)
        .acquire_async()
        .await
        .unwrap();
}

#[tokio::test]
async fn async_timeout_names_the_holder() {
    let group = unique("async-timeout");
    let _held = SerialGuard::lock(&group).unwrap();
    let err = SerialGuard::group(&group)
        .shared()
        .timeout(Duration::from_millis(50))
        .acquire_async()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
}

#[tokio::test]
async fn macro_entry_points_acquire_and_panic_with_the_error() {
    let (a, b) = (unique("macro-a"), unique("macro-b"));
    let guard = enter_async(serial_builder(&[&b, &a]).shared()).await;
    assert_eq!(guard.groups().len(), 2);
    assert!(guard.is_shared());
    drop(guard);
    let guard = enter(serial_builder(&[&a]).max_holders(2).timeout(SAFETY));
    drop(guard);
    let panic = thread::spawn(|| enter(serial_builder(&[])))
        .join()
        .unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.starts_with("isofix: "), "{msg}");
}

#[cfg(unix)]
#[test]
fn async_waits_time_out_in_a_process_that_cannot_start_threads() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    serial_support::child_role();
    let test = "async_waits_time_out_in_a_process_that_cannot_start_threads";
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    // RLIMIT_NPROC does not bind root: play uid 65534 then, in a directory of its own.
    let scratch = std::env::temp_dir().join(format!("isofix-nproc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&scratch).unwrap();
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut wrapper = match root {
        true => {
            if std::process::Command::new("setpriv")
                .arg("--version")
                .output()
                .is_err()
            {
                std::fs::remove_dir(&scratch).unwrap();
                return println!("skipped: as root, this needs setpriv to play uid 65534");
            }
            std::os::unix::fs::chown(&scratch, Some(65534), Some(65534)).unwrap();
            let mut c = std::process::Command::new("setpriv");
            c.args(serial_support::AS_NOBODY).arg("prlimit");
            c
        }
        false => std::process::Command::new("prlimit"),
    };
    // The user's processes already reach a limit of 1: no new thread can start.
    wrapper.args(["--nproc=1", "--"]);
    let mut child = serial_support::command(test, &["async-no-threads", &unique("no-threads")]);
    child.env("ISOFIX_LOCK_DIR", scratch.join("locks"));
    let mut child = serial_support::wrapped(wrapper, &child);
    let said = child.read_marked();
    let finished = child.finish();
    std::fs::remove_dir_all(&scratch).unwrap();
    assert!(said.starts_with("err TimedOut"), "{said} {finished:?}");
    finished.assert_success();
}
