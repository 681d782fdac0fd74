//! `ChildGuard`: children stopped with their whole process group, output kept for failures.

#![cfg(target_os = "linux")]

#[path = "support/child.rs"]
mod child;
#[path = "proc_support/mod.rs"]
mod procs;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

use isofix::{ChildGuard, EphemeralTcp, IsolatedDir, ReservedPort};

/// Long enough that a test only ends in time if the wait ends early for the right reason.
const FOREVER: Duration = Duration::from_secs(3600);

/// A shell line that starts two background sleeps that ignore SIGTERM (ignored signals
/// stay ignored across exec), writes the address line that tells the test it is ready to
/// the file `$0`, and waits.
const FAMILY: &str = "trap '' TERM; sleep 600 & sleep 600 & echo 127.0.0.1:1 > \"$0\"; wait";

/// Starts [`FAMILY`] and waits until all three processes run.
fn family(dir: &IsolatedDir, grace: Duration) -> ChildGuard {
    let ready = dir.join("ready");
    let mut guard = ChildGuard::builder()
        .grace(grace)
        .spawn(Command::new("sh").args(["-c", FAMILY]).arg(&ready))
        .unwrap();
    guard.wait_port_file(&ready, FOREVER).unwrap();
    guard
}

#[test]
fn drop_stops_the_whole_group_even_if_it_ignores_sigterm() {
    let dir = IsolatedDir::new().unwrap();
    let guard = family(&dir, Duration::from_millis(50));
    let pgid = guard.id();
    assert_eq!(procs::group_members(pgid).len(), 3);
    drop(guard);
    assert_eq!(procs::group_members(pgid), Vec::<u32>::new());
}

#[test]
fn stop_reports_the_signal_and_leaves_no_zombie() {
    let guard = ChildGuard::spawn(Command::new("sleep").arg("600")).unwrap();
    let pid = guard.id();
    let status = guard.stop().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(!procs::processes().iter().any(|&(p, _, _)| p == pid));
}

#[test]
fn a_panicking_test_stops_its_children() {
    let dir = IsolatedDir::new().unwrap();
    let mut pgid = 0;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let guard = family(&dir, Duration::ZERO);
        pgid = guard.id();
        panic!("the test fails while its child runs");
    }));
    assert!(unwound.is_err());
    assert_ne!(pgid, 0);
    assert_eq!(procs::group_members(pgid), Vec::<u32>::new());
}

const PANICS: &str = "panics";

/// The output of a child is printed when the test fails (here, in a child process of this
/// binary whose stderr the test reads).
#[test]
fn a_failing_test_prints_the_childs_output() {
    if child::role().as_deref() == Some(PANICS) {
        let dir = IsolatedDir::new().unwrap();
        let ready = dir.join("ready");
        let mut guard = ChildGuard::spawn(
            Command::new("sh")
                .arg("-c")
                .arg("echo the-child-said-this; echo 127.0.0.1:1 > \"$0\"; exec sleep 600")
                .arg(&ready),
        )
        .unwrap();
        guard.wait_port_file(&ready, FOREVER).unwrap();
        panic!("failing on purpose");
    }
    let finished = child::spawn(
        "a_failing_test_prints_the_childs_output",
        PANICS,
        &[("ISOFIX_KEEP", "never")],
    )
    .finish();
    assert!(!finished.status.success());
    assert!(
        finished.stderr.contains("stopped while the test failed")
            && finished.stderr.contains("the-child-said-this"),
        "{}",
        finished.stderr
    );
}

#[test]
fn a_child_that_dies_early_fails_the_wait_at_once() {
    let port = ReservedPort::tcp().unwrap();
    let mut guard =
        ChildGuard::spawn(Command::new("sh").args(["-c", "echo 'bad option --prot' >&2; exit 2"]))
            .unwrap();
    let err = guard.wait_listening(port.addr(), FOREVER).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("exit status: 2"), "{msg}");
    assert!(msg.contains("bad option --prot"), "{msg}");
    assert!(msg.contains(&port.addr().to_string()), "{msg}");
    assert!(guard.stop().unwrap().code() == Some(2));
}

#[test]
fn a_child_killed_by_a_signal_says_so() {
    let port = ReservedPort::tcp().unwrap();
    let mut guard = ChildGuard::spawn(Command::new("sh").args(["-c", "kill -9 $$"])).unwrap();
    let err = guard.wait_listening(port.addr(), FOREVER).unwrap_err();
    assert!(err.to_string().contains("signal: 9"), "{err}");
}

#[test]
fn a_wait_that_times_out_shows_the_output_so_far() {
    let port = ReservedPort::tcp().unwrap();
    let dir = IsolatedDir::new().unwrap();
    let ready = dir.join("ready");
    let mut guard = ChildGuard::spawn(
        Command::new("sh")
            .arg("-c")
            .arg("echo still-loading; echo 127.0.0.1:1 > \"$0\"; exec sleep 600")
            .arg(&ready),
    )
    .unwrap();
    guard.wait_port_file(&ready, FOREVER).unwrap();
    let err = guard
        .wait_listening(port.addr(), Duration::from_millis(20))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains("still-loading"), "{err}");
}

#[test]
fn a_missing_program_is_named() {
    let err = ChildGuard::spawn(&mut Command::new("isofix-test-no-such-program")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains("isofix-test-no-such-program"),
        "{err}"
    );
}

#[test]
fn a_bad_port_file_is_an_error_at_once() {
    let dir = IsolatedDir::new().unwrap();
    std::fs::write(dir.join("port"), "listening on 41234\n").unwrap();
    let err = isofix::net::read_port_file(dir.join("port"), FOREVER).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("listening on 41234"), "{err}");
}

const INHERITS: &str = "inherits";

/// The child (this binary again) takes the listener at fd 3 the way `sd_listen_fds` does:
/// only if `LISTEN_PID` is its own pid and `LISTEN_FDS` is 1.
#[test]
fn a_child_inherits_the_live_listener_as_listen_fds() {
    if child::role().as_deref() == Some(INHERITS) {
        let pid: u32 = std::env::var("LISTEN_PID").unwrap().parse().unwrap();
        assert_eq!(pid, std::process::id());
        assert_eq!(std::env::var("LISTEN_FDS").unwrap(), "1");
        // SAFETY: fd 3 is the listener handed over by the parent, owned by nobody else here.
        let listener = unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(3) };
        let (mut conn, _) = listener.accept().unwrap();
        write!(conn, "served by {pid}").unwrap();
        return;
    }
    let server = EphemeralTcp::bind().unwrap();
    let addr = server.addr();
    let mut command = child::command("a_child_inherits_the_live_listener_as_listen_fds", INHERITS);
    let guard = ChildGuard::builder()
        .listener(server.into_listener())
        .spawn(&mut command)
        .unwrap();
    // No wait needed: the socket listens already.
    let mut reply = String::new();
    std::net::TcpStream::connect(addr)
        .unwrap()
        .read_to_string(&mut reply)
        .unwrap();
    assert_eq!(reply, format!("served by {}", guard.id()));
}

const CYCLES: &str = "cycles";

/// 1,000 spawn/drop cycles, counted in a process of their own: descriptors, threads and
/// child processes end where they started, and no process of any group survives.
#[test]
fn a_thousand_cycles_leak_nothing() {
    if child::role().as_deref() == Some(CYCLES) {
        let dir = IsolatedDir::new().unwrap();
        // The first child starts isofix's spawner thread, its one thread per process.
        drop(ChildGuard::spawn(&mut Command::new("true")).unwrap());
        let (fds, threads) = (procs::fds(), procs::threads());
        let mut groups = Vec::new();
        for i in 0..1000 {
            let guard = if i % 10 == 0 {
                family(&dir, Duration::ZERO)
            } else {
                ChildGuard::spawn(Command::new("sleep").arg("600")).unwrap()
            };
            groups.push(guard.id());
        }
        assert_eq!(procs::fds(), fds);
        assert_eq!(procs::threads(), threads);
        assert_eq!(procs::children(), Vec::<u32>::new());
        assert_eq!(procs::alive_in_groups(&groups), []);
        child::say("clean");
        return;
    }
    let finished =
        child::spawn("a_thousand_cycles_leak_nothing", CYCLES, &[("", "")][..0]).finish();
    finished.assert_success();
    assert_eq!(finished.said().collect::<Vec<_>>(), ["clean"]);
}

/// A server that dies because its port is taken: the error names the port and the
/// process that holds it (from `/proc`), the answer to "Address already in use". The
/// holder listens on `[::1]` — `localhost` resolving to IPv6 is a classic — so the wait on
/// `127.0.0.1` finds nobody and must end on the child's death.
#[test]
fn a_port_in_use_names_its_holder() {
    let port = ReservedPort::tcp().unwrap();
    let holder = match std::net::TcpListener::bind(("::1", port.port())) {
        Ok(holder) => holder,
        Err(e) => return eprintln!("skipped: cannot listen on [::1] here: {e}"),
    };
    let mut guard = ChildGuard::spawn(
        Command::new("sh").args(["-c", "echo 'bind: Address already in use' >&2; exit 1"]),
    )
    .unwrap();
    let err = guard.wait_listening(port.addr(), FOREVER).unwrap_err();
    let msg = err.to_string();
    let expected = format!(
        "port {} is held by pid {} (",
        port.port(),
        std::process::id()
    );
    assert!(
        msg.contains(&expected) && msg.contains("listening"),
        "{msg}"
    );
    drop(holder);
}

const ORPHANS: &str = "orphans";

/// A shell line for a child of the helper process below: it opens the helper's stdout
/// (`/proc/$PPID/fd/1`, a pipe to the test) as fd 4, says it is ready there with its pid,
/// and becomes a `sleep` that keeps fd 4 open.
const HOLDS_PARENTS_STDOUT: &str =
    "exec 4>/proc/$PPID/fd/1; printf '\\nISOFIX-CHILD: ready %s\\n' $$ >&4; exec sleep 600";

/// A test process killed with `SIGKILL` runs no destructor, yet its children die with it
/// (Linux): a helper process (this binary) starts two children under guards, one plain and
/// one with an inherited listener (the `/bin/sh` wrapper), each holding the helper's stdout
/// open. The test kills the helper with `SIGKILL` and reads that pipe to its end: the end
/// comes only when no process holds it any more, which proves both children died.
#[test]
fn children_die_with_a_sigkilled_test_process() {
    if child::role().as_deref() == Some(ORPHANS) {
        let plain = ChildGuard::spawn(Command::new("sh").args(["-c", HOLDS_PARENTS_STDOUT]));
        let listener = EphemeralTcp::bind().unwrap().into_listener();
        let wrapped = ChildGuard::builder()
            .listener(listener)
            .spawn(Command::new("sh").args(["-c", HOLDS_PARENTS_STDOUT]));
        let guards = (plain.unwrap(), wrapped.unwrap());
        child::wait_for_stdin_to_close();
        drop(guards);
        return;
    }
    let mut helper = child::spawn(
        "children_die_with_a_sigkilled_test_process",
        ORPHANS,
        &[("", "")][..0],
    );
    let pids: Vec<u32> = (0..2)
        .map(|_| {
            let said = helper.read_marked();
            said.strip_prefix("ready ").unwrap().parse().unwrap()
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(helper.kill_and_finish()));
    // Not a timing assertion: only a child that survives keeps the pipe open this long.
    let deadline = Duration::from_secs(120);
    let Ok(finished) = rx.recv_timeout(deadline) else {
        for pid in &pids {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        panic!("children {pids:?} of a SIGKILLed test process outlived it ({deadline:?} later, they still held its stdout)");
    };
    assert_eq!(
        finished.status.signal(),
        Some(libc::SIGKILL),
        "{finished:?}"
    );
}

/// `PR_SET_PDEATHSIG` fires when the *thread* that started a child exits: a guard made on a
/// thread that ends (as each libtest test does) must keep its child running.
#[test]
fn a_child_outlives_the_thread_that_started_it() {
    let (tid, guard) = std::thread::spawn(|| {
        let tid = std::fs::read_link("/proc/thread-self").unwrap();
        let guard = ChildGuard::spawn(Command::new("sleep").arg("600")).unwrap();
        (tid, guard)
    })
    .join()
    .unwrap();
    // `join` returns before the kernel is done with the thread; its /proc entry goes after
    // the parent-death signals are sent. Polled: nothing else tells when.
    let task = std::path::Path::new("/proc").join(tid);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while task.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "thread {task:?} never ended"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = guard.stop().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

const FOREIGN: &str = "foreign";

/// A port answered by a process outside the child's group (here a helper process, this
/// binary) does not count as the child listening: the wait fails at once, naming it.
#[test]
fn a_port_answered_by_someone_else_fails_the_wait_naming_them() {
    if child::role().as_deref() == Some(FOREIGN) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        child::say(&format!("{} {addr}", std::process::id()));
        child::wait_for_stdin_to_close();
        return;
    }
    let test = "a_port_answered_by_someone_else_fails_the_wait_naming_them";
    let mut foreign = child::spawn(test, FOREIGN, &[("", "")][..0]);
    let said = foreign.read_marked();
    let (pid, addr) = said.split_once(' ').unwrap();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let mut guard = ChildGuard::spawn(Command::new("sleep").arg("600")).unwrap();
    let err = guard.wait_listening(addr, FOREVER).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {pid} (")), "{msg}");
    assert!(msg.contains(&format!("port {}", addr.port())), "{msg}");
    assert!(msg.contains("ReservedPort"), "{msg}");
    drop(guard);
    foreign.finish().assert_success();
}

const SERVES: &str = "serves";

/// The child's own listener counts, also when the test process holds a socket on the
/// same port (the `ReservedPort`'s).
#[test]
fn a_child_listening_itself_ends_the_wait() {
    if child::role().as_deref() == Some(SERVES) {
        let addr = std::env::var("ISOFIX_TEST_ADDR").unwrap();
        let listener = std::net::TcpListener::bind(addr).unwrap();
        for conn in listener.incoming() {
            drop(conn);
        }
        return;
    }
    let port = ReservedPort::tcp().unwrap();
    let mut command = child::command("a_child_listening_itself_ends_the_wait", SERVES);
    command.env("ISOFIX_TEST_ADDR", port.addr().to_string());
    let mut guard = ChildGuard::spawn(&mut command).unwrap();
    guard.wait_listening(port.addr(), FOREVER).unwrap();
}
