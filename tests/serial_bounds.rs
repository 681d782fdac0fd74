//! Bounded resources: the descriptors and threads isofix keeps stay within its documented
//! constants whatever the number of groups, lock directories, timeouts and dropped
//! futures, counted in a child process of its own (where no other test runs) under
//! `ulimit -n 256`.

mod serial_support;

use std::io::ErrorKind;
use std::sync::mpsc;
use std::time::Duration;

use isofix::{IsolatedDir, SerialGuard};
use serial_support::{child_role, poll_once, unique};

/// Descriptors isofix may keep open: 4 lock directories, 6 each (docs/serial.md).
const KEPT_FDS: usize = 24;
/// Threads isofix may keep: the watchdog and the warner.
const KEPT_THREADS: usize = 2;
const ROLE: &str = "ISOFIX_BOUNDS_ROLE";

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// The child's work: everything that used to keep descriptors or threads.
fn heavy_user() {
    let scratch = IsolatedDir::new().unwrap();
    // IsolatedDir keeps its own files; counted from here on.
    let (fds, threads) = (count("/proc/self/fd"), count("/proc/self/task"));
    // In a scratch lock directory: 10,000 groups leave 20,000 small files behind.
    let many = scratch.path().join("many");
    for i in 0..10_000 {
        let builder = SerialGuard::group(format!("bounds {i}")).lock_dir(&many);
        let builder = match i % 3 {
            0 => builder,
            1 => builder.shared(),
            _ => builder.max_holders(3),
        };
        drop(
            builder
                .acquire()
                .unwrap_or_else(|e| panic!("group {i}: {e}")),
        );
    }
    for i in 0..500 {
        let dir = scratch.path().join(format!("dir-{i}"));
        drop(SerialGuard::group("x").lock_dir(&dir).acquire().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // Requests that time out, and futures dropped while they wait, for a held group.
    let busy = unique("bounds-busy");
    let held = SerialGuard::shared(&busy).unwrap();
    let (tx, rx) = mpsc::channel();
    let b = busy.clone();
    std::thread::spawn(move || {
        for _ in 0..500 {
            let err = SerialGuard::group(&b)
                .timeout(Duration::from_millis(1))
                .acquire()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        }
        for _ in 0..500 {
            let mut future = Box::pin(SerialGuard::lock_async(&b));
            for _ in 0..3 {
                assert!(poll_once(future.as_mut()).is_pending());
            }
        }
        tx.send(()).unwrap();
    })
    .join()
    .unwrap();
    rx.recv().unwrap();
    drop(held);
    let (fds_now, threads_now) = (count("/proc/self/fd"), count("/proc/self/task"));
    println!("fds {fds} -> {fds_now}, threads {threads} -> {threads_now}");
    assert!(fds_now <= fds + KEPT_FDS, "fds {fds} -> {fds_now}");
    assert!(
        threads_now <= threads + KEPT_THREADS,
        "threads {threads} -> {threads_now}"
    );
    // Out of descriptors anyway: the error says so and keeps the OS error.
    let mut hog = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hog.push(file);
    }
    let err = SerialGuard::lock(&unique("bounds-emfile")).unwrap_err();
    drop(hog);
    let msg = err.to_string();
    assert!(msg.contains("out of file descriptors"), "{msg}");
    let source = std::error::Error::source(&err).expect("the OS error as source");
    let os = source.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(os.raw_os_error(), Some(24), "{os}"); // EMFILE
    println!("ok");
}

#[cfg(target_os = "linux")]
#[test]
fn descriptors_and_threads_stay_bounded() {
    child_role();
    if std::env::var_os(ROLE).is_some() {
        heavy_user();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(exe)
        .args([
            "--exact",
            "descriptors_and_threads_stay_bounded",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("\nok\n"),
        "{stdout}\n{stderr}"
    );
    for line in stdout
        .lines()
        .filter_map(|l| l.find("fds ").map(|at| &l[at..]))
    {
        println!("child: {line}");
    }
}
