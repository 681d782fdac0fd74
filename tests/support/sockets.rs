//! Shared by the `net_*` tests: what they check alike of TCP and UDP sockets.

#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::HashSet;
use std::fmt::Debug;
use std::io::{self, ErrorKind};
use std::net::Ipv6Addr;
use std::sync::{Arc, Barrier};
use std::thread;

/// An address of no host: 192.0.2.0/24 (TEST-NET-1) is reserved for documentation.
pub const OTHER_HOST: [u8; 4] = [192, 0, 2, 1];

/// Whether this host can bind the IPv6 loopback, asked of std (`bind`, e.g.
/// `TcpListener::bind`) rather than of isofix.
pub fn ipv6_available<T>(bind: impl FnOnce((Ipv6Addr, u16)) -> io::Result<T>) -> bool {
    match bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping the IPv6 part: std cannot bind [::1]:0 here: {e}");
            false
        }
    }
}

/// Runs `work(i, all_bound)` on `threads` threads at once and returns every port they
/// report, asserting that none is 0 and none is reported twice. Each thread waits on
/// `all_bound` once its sockets are bound, so that all of them are live when compared.
pub fn distinct_ports<const N: usize>(
    threads: usize,
    work: fn(usize, &Barrier) -> io::Result<[u16; N]>,
) -> io::Result<HashSet<u16>> {
    let all_bound = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let all_bound = Arc::clone(&all_bound);
            thread::spawn(move || work(i, &all_bound))
        })
        .collect();
    let mut ports = HashSet::new();
    for worker in workers {
        for port in worker.join().expect("worker panicked")? {
            assert_ne!(port, 0);
            assert!(ports.insert(port), "port {port} was handed out twice");
        }
    }
    Ok(ports)
}

/// Checks the error of binding a `socket` (e.g. `"TCP listener"`) to [`OTHER_HOST`]:
/// its kind, and a message naming the operation, the address and a hint. Returns `false`,
/// saying so, if this host bound the address after all (some bind non-local addresses).
pub fn other_host_refused_clearly<T: Debug>(bound: io::Result<T>, socket: &str) -> bool {
    let err = match bound {
        Ok(socket) => {
            eprintln!("skipping: this host binds non-local addresses ({socket:?})");
            return false;
        }
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::AddrNotAvailable, "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("isofix: bind {socket} to 192.0.2.1:0: ")),
        "{msg}"
    );
    assert!(
        msg.contains("; hint: 192.0.2.1 is not an address of this host"),
        "{msg}"
    );
    true
}
