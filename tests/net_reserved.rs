//! `ReservedPort`: a port held for a server another process binds.

#![cfg(unix)]

#[path = "support/child.rs"]
mod child;

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use isofix::{EphemeralTcp, ReservedPort};
use socket2::{Domain, SockAddr, Socket, Type};

/// A socket bound to `addr`, with or without `SO_REUSEADDR`, listening.
fn listen_on(addr: SocketAddr, reuse: bool) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(reuse)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(16)?;
    Ok(socket)
}

#[test]
fn a_server_that_sets_reuseaddr_binds_the_reserved_port() {
    let port = ReservedPort::tcp().unwrap();
    // std sets SO_REUSEADDR on Unix, as tokio, Go, redis and postgres do.
    let server = TcpListener::bind(port.addr()).unwrap();
    port.wait_listening(Duration::from_secs(60)).unwrap();
    let client = TcpStream::connect(port.addr()).unwrap();
    // The wait's own probe connection is queued first.
    let me = client.local_addr().unwrap();
    while server.accept().unwrap().1 != me {}
}

#[test]
fn the_wildcard_address_binds_too_and_no_reuseaddr_does_not() {
    let port = ReservedPort::tcp().unwrap();
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port.port()));
    let err = listen_on(port.addr(), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    drop(listen_on(any, true).unwrap());
    drop(listen_on(port.addr(), true).unwrap());
}

#[test]
fn ports_are_distinct_and_urls_are_explicit() {
    let ports: Vec<ReservedPort> = (0..64).map(|_| ReservedPort::tcp().unwrap()).collect();
    let distinct: HashSet<u16> = ports.iter().map(ReservedPort::port).collect();
    assert_eq!(distinct.len(), ports.len());
    let port = &ports[0];
    assert_eq!(
        port.url("redis"),
        format!("redis://127.0.0.1:{}", port.port())
    );
    assert_eq!(port.ip(), Ipv4Addr::LOCALHOST);
}

/// Many reserved ports at once, so that a kernel that handed them out would be caught:
/// 5,120 binds over a range of ~28,000 ports would hit 128 reserved ones about 23 times.
const RESERVED: usize = 128;

#[test]
fn the_kernel_never_binds_port_0_to_a_reserved_port() {
    let reserved: Vec<ReservedPort> = (0..RESERVED)
        .map(|_| ReservedPort::tcp().unwrap())
        .collect();
    let ports: HashSet<u16> = reserved.iter().map(ReservedPort::port).collect();
    for round in 0..20 {
        // Held together, so the kernel must find 256 different ports each round.
        let mut held = Vec::new();
        for i in 0..256 {
            let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let socket = if i % 2 == 0 {
                listen_on(any, true).unwrap() // what std's TcpListener::bind does
            } else {
                listen_on(any, false).unwrap()
            };
            let port = socket.local_addr().unwrap().as_socket().unwrap().port();
            assert!(
                !ports.contains(&port),
                "round {round}: bind(0) got reserved {port}"
            );
            held.push(socket);
        }
    }
}

/// Narrows the source ports `connect` may pick for `socket` to `lo..=hi`
/// (`IP_LOCAL_PORT_RANGE`, Linux 6.3+); `false` where the kernel lacks the option.
#[cfg(target_os = "linux")]
fn narrow_source_ports(socket: &Socket, lo: u16, hi: u16) -> bool {
    use std::os::fd::AsRawFd;
    const IP_LOCAL_PORT_RANGE: libc::c_int = 51;
    let range: u32 = u32::from(lo) | (u32::from(hi) << 16);
    // SAFETY: setsockopt reads `size_of::<u32>()` bytes from a live u32 on a socket this
    // function borrows.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            IP_LOCAL_PORT_RANGE,
            std::ptr::addr_of!(range).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// Outgoing connections never take a reserved port as their source port. Left alone, the
/// kernel would rarely try it anyway (Linux gives `bind(0)` odd ports and `connect` even
/// ones), so each client is narrowed to the 17 ports around the reserved one, and clients
/// connect until that window is used up: without the reservation, one of them would get it.
#[cfg(target_os = "linux")]
#[test]
fn the_kernel_never_picks_a_reserved_port_for_connect() {
    let server = EphemeralTcp::builder()
        .backlog(256)
        .nonblocking(true)
        .bind()
        .unwrap();
    let mut rounds = 0;
    for _ in 0..50 {
        let reserved = ReservedPort::tcp().unwrap();
        let port = reserved.port();
        let (lo, hi) = (port.saturating_sub(8), port.saturating_add(8));
        let mut held = Vec::new();
        loop {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            if !narrow_source_ports(&socket, lo, hi) {
                return eprintln!("skipped: this kernel has no IP_LOCAL_PORT_RANGE (Linux 6.3+)");
            }
            match socket.connect(&SockAddr::from(server.addr())) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AddrNotAvailable => break,
                Err(e) => panic!("connect: {e}"),
            }
            let port = socket.local_addr().unwrap().as_socket().unwrap().port();
            assert!(
                (lo..=hi).contains(&port),
                "the window was not applied: {port}"
            );
            assert_ne!(port, reserved.port(), "connect took the reserved port");
            held.push(socket);
            assert!(
                held.len() <= 17,
                "more connections than ports in the window"
            );
        }
        for socket in held {
            socket.set_linger(Some(Duration::ZERO)).unwrap(); // no TIME_WAIT left behind
            drop(socket);
        }
        // Empties the backlog for the next round.
        while server.accept().is_ok() {}
        rounds += 1;
    }
    assert_eq!(rounds, 50);
}

#[test]
fn a_wait_for_nobody_times_out_naming_the_address() {
    let port = ReservedPort::tcp().unwrap();
    let err = port.wait_listening(Duration::from_millis(50)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains(&port.addr().to_string()), "{err}");
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_wait_sees_a_tokio_server() {
    let port = ReservedPort::tcp().unwrap();
    let _server = tokio::net::TcpListener::bind(port.addr()).await.unwrap();
    port.wait_listening_async(Duration::from_secs(60))
        .await
        .unwrap();
    drop(_server);
    let err = isofix::net::wait_listening_async(port.addr(), Duration::from_millis(20)).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::TimedOut);
}

/// The ephemeral range of the network namespace of the cross-process test: 32 ports, so
/// a port let go for a moment is soon taken by someone else.
const RANGE: (u16, u16) = (40000, 40031);
/// Processes reserving ports at once in that namespace.
const WORKERS: usize = 4;
/// Reservations made by each of them.
const PER_WORKER: usize = 2000;
/// Reservations each worker holds at once, each with its server bound.
const HELD: usize = 3;
/// Threads of each worker doing plain `bind(0)` + `listen`, as any other test would.
const RACERS: usize = 1;
const NAMESPACE: &str = "namespace";
const WORKER: &str = "worker";
const REQUIRE_NETNS: &str = "ISOFIX_REQUIRE_NETNS";

/// Whether this process may make network namespaces; prints why not, or panics if
/// `ISOFIX_REQUIRE_NETNS` is set (as CI sets it).
fn netns_available() -> bool {
    let why = match std::process::Command::new("unshare")
        .args(["--net", "true"])
        .output()
    {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "unshare --net failed ({}: {})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("unshare cannot be run ({e})"),
    };
    let why = format!(
        "skipped: {why}; a network namespace of its own needs root (or CAP_SYS_ADMIN) and \
         util-linux's unshare"
    );
    assert!(std::env::var_os(REQUIRE_NETNS).is_none(), "{why}");
    eprintln!("{why}");
    false
}

/// The regression test of the reservation itself. In a network namespace of their own,
/// whose ephemeral range is only 32 ports, several processes reserve ports thousands of
/// times and bind each one at once as a child server would (std's bind, `SO_REUSEADDR`),
/// holding a few at a time, while threads beside them take ports with plain `bind(0)` +
/// `listen`. A reservation that let go of its port for a moment (pick-then-release), or
/// that two processes shared, loses it to a racer or to the other process, and the
/// server's bind fails: a collision. Every reservation must end in a bind that works.
#[test]
fn processes_reserving_under_fire_never_collide() {
    namespace_test(
        "processes_reserving_under_fire_never_collide",
        RANGE,
        false,
        reserve_under_fire,
    );
}

/// The ephemeral range of the namespace of the shared-port test: fewer ports than the
/// workers reserve at once.
const SMALL_RANGE: (u16, u16) = (40000, 40007);
/// Reservations each worker of the shared-port test holds before it binds their servers.
const BATCH: usize = 3;

/// Where the kernel would let two reservations share a port, the per-port lock does not.
/// With `net.ipv4.ip_autobind_reuse=1` (not the default), `bind(0)` of a `SO_REUSEADDR`
/// socket shares a port with other `SO_REUSEADDR` sockets that do not listen once every
/// port is taken. Here the namespace has 8 ports, and 4 processes each reserve 3 at once,
/// while their previous 3 servers run, before binding their servers: the kernel hands the
/// same port to two of them, and only the lock keeps the second reservation off it.
/// Without the lock, one of two servers fails to bind.
#[test]
fn processes_never_share_a_port_even_where_the_kernel_would() {
    namespace_test(
        "processes_never_share_a_port_even_where_the_kernel_would",
        SMALL_RANGE,
        true,
        reserve_in_batches,
    );
}

/// The body of a test of `WORKERS` processes running `worker` in a network namespace of
/// their own with the ephemeral range `range` (and `ip_autobind_reuse` if asked), each
/// of which must report no collision.
fn namespace_test(test: &str, range: (u16, u16), autobind_reuse: bool, worker: fn()) {
    match child::role().as_deref() {
        Some(NAMESPACE) => return in_namespace(test, range, autobind_reuse),
        Some(WORKER) => return worker(),
        _ => {}
    }
    if let Some(said) = in_new_namespace(test) {
        for line in said {
            assert!(line.starts_with("collisions 0 "), "{line}");
        }
    }
}

/// Runs `test` in a new network namespace (as root) with locks of its own, and returns
/// what its workers said; `None`, after saying why, if no namespace can be made.
fn in_new_namespace(test: &str) -> Option<Vec<String>> {
    if !netns_available() {
        return None;
    }
    // One namespace test at a time: each keeps both cores busy for a few seconds, and
    // beside each other they take many times longer.
    let _turn = isofix::SerialGuard::lock("isofix-tests-netns").unwrap();
    // Locks of their own, so that reservations of the host's port numbers by tests beside
    // this one do not count here.
    let locks = isofix::IsolatedDir::new().unwrap();
    let inner = child::command(test, NAMESPACE);
    let mut command = std::process::Command::new("unshare");
    command
        .args(["--net", "--"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .env(child::ROLE_VAR, NAMESPACE)
        .env("ISOFIX_LOCK_DIR", locks.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let finished = child::Child::spawn(&mut command).finish();
    finished.assert_success();
    let said: Vec<String> = finished.said().map(str::to_owned).collect();
    assert_eq!(said.len(), WORKERS, "{finished:?}");
    for line in &said {
        eprintln!("worker: {line}");
    }
    Some(said)
}

/// Writes `value` to the sysctl file `name` of this namespace and checks it took.
fn sysctl(name: &str, value: &str) {
    let path = format!("/proc/sys/net/ipv4/{name}");
    std::fs::write(&path, value).unwrap();
    let set = std::fs::read_to_string(&path).unwrap();
    let set: Vec<&str> = set.split_whitespace().collect();
    assert_eq!(set, value.split_whitespace().collect::<Vec<_>>(), "{path}");
}

/// In the new namespace: narrows its ephemeral range to `range` (and lets `bind(0)` share
/// ports if `autobind_reuse`), then runs the workers in it, all starting together, and
/// passes on what they say.
fn in_namespace(test: &str, range: (u16, u16), autobind_reuse: bool) {
    sysctl("ip_local_port_range", &format!("{} {}", range.0, range.1));
    if autobind_reuse {
        sysctl("ip_autobind_reuse", "1");
    }
    let mut workers: Vec<child::Child> = (0..WORKERS)
        .map(|_| child::spawn(test, WORKER, &[("", "")][..0]))
        .collect();
    for w in &mut workers {
        assert_eq!(w.read_marked(), "ready");
    }
    let stdins: Vec<_> = workers.iter_mut().map(|w| w.take_stdin()).collect();
    drop(stdins);
    for w in workers {
        let finished = w.finish();
        finished.assert_success();
        for line in finished.said() {
            child::say(line);
        }
    }
}

/// One worker: `PER_WORKER` reservations, each bound at once, racers beside them.
fn reserve_under_fire() {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};

    child::say("ready");
    child::wait_for_stdin_to_close();
    let stop = AtomicBool::new(false);
    let (collisions, full, raced) = std::thread::scope(|s| {
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                s.spawn(|| {
                    let mut binds = 0_u64;
                    let mut _held = None;
                    while !stop.load(Ordering::Relaxed) {
                        // Holds the newest listener, so ports keep changing hands.
                        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) {
                            _held = Some(listener);
                            binds += 1;
                        }
                    }
                    binds
                })
            })
            .collect();
        let mut held = VecDeque::new();
        let (mut collisions, mut full) = (0, 0_u64);
        for _ in 0..PER_WORKER {
            let port = loop {
                match ReservedPort::tcp() {
                    Ok(port) => break port,
                    // The 32 ports are all taken: give one back and try again.
                    Err(e) if e.kind() == ErrorKind::AddrInUse => {
                        full += 1;
                        assert!(full < 100_000, "no port came free: {e}");
                        if held.pop_front().is_none() {
                            std::thread::yield_now();
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            assert!(
                (RANGE.0..=RANGE.1).contains(&port.port()),
                "the namespace's range was not applied: {}",
                port.addr()
            );
            match TcpListener::bind(port.addr()) {
                Ok(server) => held.push_back((server, port)),
                Err(e) => {
                    eprintln!("collision on {}: {e}", port.addr());
                    collisions += 1;
                }
            }
            if held.len() > HELD {
                held.pop_front();
            }
        }
        stop.store(true, Ordering::Relaxed);
        let raced: u64 = racers.into_iter().map(|r| r.join().unwrap()).sum();
        (collisions, full, raced)
    });
    // The racers must have raced, or the test proves nothing.
    assert!(raced > 0, "no racer ever got a port");
    child::say(&format!(
        "collisions {collisions} of {PER_WORKER}, range full {full} times, {raced} racer binds"
    ));
}

/// Reservations each worker of the shared-port test makes.
const PER_BATCH_WORKER: usize = 100;

/// One worker of the shared-port test: reserves `BATCH` ports at once while the servers
/// of its previous batch still run, then binds a server on each, `PER_BATCH_WORKER`
/// reservations in all.
fn reserve_in_batches() {
    child::say("ready");
    child::wait_for_stdin_to_close();
    let (mut reserved, mut collisions, mut full) = (0, 0, 0_u64);
    let mut running: Vec<(TcpListener, ReservedPort)> = Vec::new();
    while reserved < PER_BATCH_WORKER {
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            match ReservedPort::tcp() {
                Ok(port) => batch.push(port),
                // Every port is taken or locked: go on with what this batch has, or stop
                // the previous servers so that others can move on.
                Err(e) if e.kind() == ErrorKind::AddrInUse => {
                    full += 1;
                    assert!(full < 100_000, "no port came free: {e}");
                    if !batch.is_empty() {
                        break;
                    }
                    if running.is_empty() {
                        std::thread::yield_now();
                    }
                    running.clear();
                }
                Err(e) => panic!("{e}"),
            }
        }
        reserved += batch.len();
        running.clear();
        for port in batch {
            match TcpListener::bind(port.addr()) {
                Ok(server) => running.push((server, port)),
                Err(e) => {
                    eprintln!("collision on {}: {e}", port.addr());
                    collisions += 1;
                }
            }
        }
    }
    child::say(&format!(
        "collisions {collisions} of {reserved}, every port taken {full} times"
    ));
}

/// What the per-port lock relies on: a group another thread (or process) holds is refused
/// at once with `TimedOut`, so the reservation moves on to the next port.
#[test]
fn a_port_lock_held_elsewhere_is_refused_at_once() {
    let group = format!("isofix-port-tcp-test-{}", std::process::id());
    let held = isofix::SerialGuard::lock(&group).unwrap();
    let tried = std::thread::spawn(move || {
        isofix::SerialGuard::group(group)
            .timeout(Duration::ZERO)
            .acquire()
            .map(drop)
    })
    .join()
    .unwrap();
    assert_eq!(tried.unwrap_err().kind(), ErrorKind::TimedOut);
    drop(held);
}
