//! `cargo bench --bench fixtures`: what a port or a directory from isofix costs next to
//! raw std and the crates tests use instead (`portpicker`, `tempfile`), in one run.
//!
//! Each row is one set-up and tear-down, the way a test uses it; each figure is the median
//! of interleaved rounds, printed with its ratio to the raw-std anchor of its table.

mod support;

use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use isofix::{EphemeralTcp, EphemeralUdp, IsolatedDir};
use support::{median, row, time};

const ROUNDS: usize = 5;
const SOCKETS: u32 = 5_000;
const DIRS: u32 = 2_000;

fn main() {
    let base = std::env::temp_dir().join(format!("isofix-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    let mut n = 0u64;
    let mut m: [Vec<f64>; 8] = Default::default();
    for _ in 0..ROUNDS {
        m[0].push(time(SOCKETS, || {
            drop(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        }));
        m[1].push(time(SOCKETS, || drop(EphemeralTcp::bind().unwrap())));
        // portpicker hands out a number; the test then binds it (and may lose the race).
        m[2].push(time(SOCKETS, || {
            let port = portpicker::pick_unused_port().unwrap();
            drop(TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
        }));
        m[3].push(time(SOCKETS, || {
            drop(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        }));
        m[4].push(time(SOCKETS, || drop(EphemeralUdp::bind().unwrap())));
        m[5].push(time(DIRS, || {
            n += 1;
            let dir = base.join(n.to_string());
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("f"), b"x").unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        }));
        m[6].push(time(DIRS, || {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("f"), b"x").unwrap();
        }));
        m[7].push(time(DIRS, || {
            let dir = IsolatedDir::new().unwrap();
            std::fs::write(dir.join("f"), b"x").unwrap();
        }));
    }
    let [tcp_raw, tcp_iso, tcp_picker, udp_raw, udp_iso, dir_raw, dir_tempfile, dir_iso] =
        m.map(median);
    println!("TCP listener on a free port, bind + close (median of {ROUNDS} rounds):");
    row("std TcpListener::bind(127.0.0.1:0)", tcp_raw, tcp_raw);
    row("isofix EphemeralTcp::bind()", tcp_iso, tcp_raw);
    row("portpicker pick + std bind (racy)", tcp_picker, tcp_raw);
    println!("UDP socket on a free port, bind + close:");
    row("std UdpSocket::bind(127.0.0.1:0)", udp_raw, udp_raw);
    row("isofix EphemeralUdp::bind()", udp_iso, udp_raw);
    println!("temp dir with one file, create + remove:");
    row("std create_dir + remove_dir_all", dir_raw, dir_raw);
    row("tempfile::tempdir()", dir_tempfile, dir_raw);
    row("isofix IsolatedDir::new()", dir_iso, dir_raw);
    let _ = std::fs::remove_dir_all(&base);
}
