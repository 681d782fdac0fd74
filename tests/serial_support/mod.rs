//! Shared by the `serial_*` tests: unique names, marker-file checks of exclusion, and
//! child processes (this test binary re-run in a role, see `support/child.rs`).
#![allow(dead_code)]

#[path = "../support/child.rs"]
mod child;
#[cfg(unix)]
#[path = "../support/nobody.rs"]
pub mod nobody;

use std::fs;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use isofix::SerialGuard;

#[allow(unused_imports)] // Each test binary uses a different part.
pub use child::wrapped;
pub use child::Child;
#[cfg(unix)]
#[allow(unused_imports)]
pub use nobody::AS_NOBODY;

/// A generous bound for waits that must end, so that a bug fails instead of hanging.
pub const SAFETY: Duration = Duration::from_secs(60);

/// A group name no other test (or run) uses.
pub fn unique(tag: &str) -> String {
    format!("isofix-test {tag} {}", uuid::Uuid::new_v4())
}

/// How a worker takes the group.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Exclusive,
    Shared,
    Max(usize),
}

impl Mode {
    fn to_arg(self) -> String {
        match self {
            Mode::Exclusive => "ex".into(),
            Mode::Shared => "sh".into(),
            Mode::Max(n) => format!("max{n}"),
        }
    }

    fn from_arg(arg: &str) -> Self {
        match arg {
            "ex" => Mode::Exclusive,
            "sh" => Mode::Shared,
            other => Mode::Max(other.strip_prefix("max").unwrap().parse().unwrap()),
        }
    }

    pub fn acquire(self, group: &str) -> io::Result<SerialGuard> {
        let builder = SerialGuard::group(group).timeout(SAFETY);
        match self {
            Mode::Exclusive => builder.acquire(),
            Mode::Shared => builder.shared().acquire(),
            Mode::Max(n) => builder.max_holders(n).acquire(),
        }
    }
}

/// A marker proving who is inside a critical section; removed on drop, before the guard
/// is (declare it after the guard).
pub struct Marker(PathBuf);

impl Drop for Marker {
    fn drop(&mut self) {
        fs::remove_file(&self.0).unwrap();
    }
}

/// Enters the critical section of `mode` in `dir`, failing if the markers already there
/// show that someone is inside who should not be.
pub fn enter(dir: &Path, mode: Mode, who: &str) -> Result<Marker, String> {
    let create = |name: &str| {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .map(|_| Marker(dir.join(name)))
    };
    match mode {
        Mode::Exclusive => {
            let marker = create("exclusive")
                .map_err(|e| format!("{who}: another exclusive holder is inside: {e}"))?;
            let others: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n != "exclusive")
                .collect();
            if !others.is_empty() {
                return Err(format!("{who}: exclusive while others inside: {others:?}"));
            }
            Ok(marker)
        }
        Mode::Shared => {
            let marker = create(&format!("shared-{who}"))
                .map_err(|e| format!("{who}: duplicate shared marker: {e}"))?;
            if dir.join("exclusive").exists() {
                return Err(format!("{who}: shared while an exclusive holder is inside"));
            }
            Ok(marker)
        }
        Mode::Max(n) => {
            for i in 0..n {
                if let Ok(marker) = create(&format!("slot-{i}")) {
                    return Ok(marker);
                }
            }
            Err(format!("{who}: more than {n} holders inside"))
        }
    }
}

/// `rounds` times: take the group, enter, leave, release.
pub fn hammer(group: &str, dir: &Path, mode: Mode, who: &str, rounds: usize) -> Result<(), String> {
    for round in 0..rounds {
        let guard = mode.acquire(group).map_err(|e| e.to_string())?;
        let marker = enter(dir, mode, &format!("{who}-{round}"))?;
        std::thread::yield_now();
        drop(marker);
        drop(guard);
    }
    Ok(())
}

/// What a child playing `role` says first; the child must then end successfully.
pub fn said(test: &str, role: &[&str], envs: &[(&str, &str)]) -> String {
    let mut child = spawn(test, role, envs);
    let said = child.read_marked();
    child.finish().assert_success();
    said
}

/// Blocks until `child`, started with `ISOFIX_WAIT_WARN_SECS=0`, warns that it waits.
pub fn until_waiting(child: &mut Child) {
    let mut line = String::new();
    while !line.contains("has waited") {
        line.clear();
        if !child.read_stderr_line(&mut line) {
            panic!("the child ended without waiting");
        }
    }
}

/// Polls `future` once, without an executor (its waker does nothing).
pub fn poll_once<F: std::future::Future>(
    future: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
    future.poll(&mut std::task::Context::from_waker(&waker))
}

/// Starts this binary as a child running only `test`, playing `role` (see [`child_role`]).
pub fn spawn(test: &str, role: &[&str], envs: &[(&str, &str)]) -> Child {
    child::spawn(test, &role.join("\x1f"), envs)
}

/// The command [`spawn`] runs, to adjust before starting it by hand.
pub fn command(test: &str, role: &[&str]) -> std::process::Command {
    child::command(test, &role.join("\x1f"))
}

/// In a child, plays the role and exits; in the parent, returns at once. Every test that
/// spawns children calls it first.
///
/// Roles: `hold <group> <mode> [<marker dir>]` (hold until stdin closes),
/// `hammer <group> <mode> <marker dir> <rounds>`, `try <group>` (report the result),
/// `try-for <group> <millis | max>` (the same with a timeout, on a thread),
/// `try-as <group> <mode> <millis | max>` (the same in a mode), `stuck-stderr <group>`
/// (see [`stuck_stderr`]), `async-no-threads <group>` (see [`async_without_threads`]),
/// `relative-lock-dir <group> <dir>` (`.lock_dir("locks")`, then again from `<dir>`).
pub fn child_role() {
    let Some(role) = child::role() else {
        return;
    };
    let args: Vec<&str> = role.split('\x1f').collect();
    let code = match args.as_slice() {
        ["hold", group, mode, rest @ ..] => {
            let mode = Mode::from_arg(mode);
            let guard = mode.acquire(group).unwrap();
            let marker = rest.first().map(|dir| {
                enter(
                    Path::new(dir),
                    mode,
                    &format!("child-{}", std::process::id()),
                )
                .unwrap()
            });
            child::say(&format!("held {}", std::process::id()));
            child::wait_for_stdin_to_close();
            drop(marker);
            drop(guard);
            child::say("released");
            0
        }
        ["hammer", group, mode, dir, rounds] => {
            let who = format!("child-{}", std::process::id());
            match hammer(
                group,
                Path::new(dir),
                Mode::from_arg(mode),
                &who,
                rounds.parse().unwrap(),
            ) {
                Ok(()) => {
                    child::say("done");
                    0
                }
                Err(e) => {
                    child::say(&format!("violation {e}"));
                    1
                }
            }
        }
        ["try", group] => {
            match SerialGuard::lock(group) {
                Ok(_) => child::say("ok"),
                Err(e) => child::say(&format!("err {:?} {e}", e.kind())),
            }
            0
        }
        ["try-for", group, timeout] | ["try-as", group, _, timeout] => {
            // On a thread, so that a wait that never ends is reported instead of hanging.
            let timeout = match *timeout {
                "max" => Duration::MAX,
                ms => Duration::from_millis(ms.parse().unwrap()),
            };
            let group = group.to_string();
            let builder = SerialGuard::group(group).timeout(timeout);
            let builder = match args.as_slice() {
                [_, _, "sh", _] => builder.shared(),
                [_, _, mode, _] if mode.starts_with("max") => {
                    builder.max_holders(mode[3..].parse().unwrap())
                }
                _ => builder,
            };
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let result = builder.acquire();
                let _ = tx.send(result.map(drop));
            });
            match rx.recv_timeout(SAFETY) {
                Ok(Ok(())) => child::say("ok"),
                Ok(Err(e)) => child::say(&format!("err {:?} {e}", e.kind())),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => child::say("hung"),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => child::say("panicked"),
            }
            0
        }
        ["stuck-stderr", group] => {
            stuck_stderr(group);
            0
        }
        ["relative-lock-dir", group, elsewhere] => {
            // `locks` here, then `locks` in another working directory.
            let take = || SerialGuard::group(*group).lock_dir("locks").acquire();
            let here = take().unwrap();
            std::env::set_current_dir(elsewhere).unwrap();
            match take() {
                Ok(_) => child::say("ok"),
                Err(e) => child::say(&format!("err {:?} {e}", e.kind())),
            }
            drop(here);
            0
        }
        ["async-no-threads", group] => {
            async_without_threads(group);
            0
        }
        other => panic!("unknown role {other:?}"),
    };
    std::process::exit(code);
}

pub fn mode_arg(mode: Mode) -> String {
    mode.to_arg()
}

/// With stderr stuck (a thread holds it, blocked writing to a pipe the parent does not
/// read), while a request blocked in the kernel has a warning due: an async request with
/// a short timeout must still time out. Says `err TimedOut ...`, or `hung`.
fn stuck_stderr(group: &str) {
    use std::io::Write;
    let _held = SerialGuard::lock(group).unwrap();
    let (locked, stuck) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stderr = io::stderr().lock();
        locked.send(()).unwrap();
        let _ = stderr.write_all(&vec![b'x'; 1 << 20]);
    });
    stuck.recv().unwrap();
    let g = group.to_owned();
    std::thread::spawn(move || SerialGuard::lock(&g).map(drop));
    let request = SerialGuard::group(group)
        .timeout(Duration::from_millis(200))
        .acquire_async();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _ = tx.send(runtime.block_on(request).map(drop));
    });
    match rx.recv_timeout(SAFETY) {
        Ok(Ok(())) => child::say("ok"),
        Ok(Err(e)) => child::say(&format!("err {:?} {e}", e.kind())),
        Err(_) => child::say("hung"),
    }
}

/// In a process that cannot start a thread (the parent set `RLIMIT_NPROC`), an async
/// request with a short timeout for a group this thread holds must still time out. Says
/// `err TimedOut ...`, `hung`, or `threads` if threads can be started after all.
fn async_without_threads(group: &str) {
    let _held = SerialGuard::lock(group).unwrap();
    if std::thread::Builder::new().spawn(|| ()).is_ok() {
        return child::say("threads");
    }
    let request = SerialGuard::group(group)
        .timeout(Duration::from_millis(200))
        .acquire_async();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut request = Box::pin(request);
    let answer = runtime.block_on(async {
        let mut safety = Box::pin(tokio::time::sleep(SAFETY));
        // Not `tokio::time::timeout`, whose wake-up would poll the request once more.
        std::future::poll_fn(|cx| match safety.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(None),
            std::task::Poll::Pending => request.as_mut().poll(cx).map(Some),
        })
        .await
    });
    match answer {
        Some(Ok(_)) => child::say("ok"),
        Some(Err(e)) => child::say(&format!("err {:?} {e}", e.kind())),
        None => child::say("hung"),
    }
}
