//! `cargo bench --bench fixtures`: what a port or a directory from isofix costs next to
//! raw std and the crates tests use instead (`portpicker`, `tempfile`), in one run.
//!
//! Each row is one set-up and tear-down, the way a test uses it; each figure is the median
//! of interleaved rounds, printed with its ratio to the raw-std anchor of its table. The
//! directory tables also print the median of each round's isofix-to-tempfile ratio, the
//! figure that best survives a loaded machine.

mod support;

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;

use isofix::{EphemeralTcp, EphemeralUdp, IsolatedDir};
use support::{median, row, time};

const ROUNDS: usize = 5;
const SOCKETS: u32 = 5_000;
/// Directory rounds are many and short, with the order of the contenders alternating, so
/// that a burst of load on a shared machine hits every contender alike.
const DIR_ROUNDS: usize = 21;
const DIRS: u32 = 400;

fn main() {
    let mut m: [Vec<f64>; 5] = Default::default();
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
    }
    let [tcp_raw, tcp_iso, tcp_picker, udp_raw, udp_iso] = m.map(median);
    println!("TCP listener on a free port, bind + close (median of {ROUNDS} rounds):");
    row("std TcpListener::bind(127.0.0.1:0)", tcp_raw, tcp_raw);
    row("isofix EphemeralTcp::bind()", tcp_iso, tcp_raw);
    row("portpicker pick + std bind (racy)", tcp_picker, tcp_raw);
    println!("UDP socket on a free port, bind + close:");
    row("std UdpSocket::bind(127.0.0.1:0)", udp_raw, udp_raw);
    row("isofix EphemeralUdp::bind()", udp_iso, udp_raw);
    for files in [0, 1, 3] {
        dirs(files);
    }
}

/// Writes `files` small files into `dir`, as a test would.
fn fill(dir: &Path, files: usize) {
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i}")), b"some test data").unwrap();
    }
}

/// One table: a temp dir holding `files` small files, created, filled and removed.
fn dirs(files: usize) {
    let base = std::env::temp_dir().join(format!("isofix-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    let mut n = 0u64;
    let mut std_create = || {
        n += 1;
        let dir = base.join(n.to_string());
        std::fs::create_dir(&dir).unwrap();
        fill(&dir, files);
        std::fs::remove_dir_all(&dir).unwrap();
    };
    let tempfile = || {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), files);
    };
    let isofix = || {
        let dir = IsolatedDir::new().unwrap();
        fill(dir.path(), files);
    };
    let (mut raw, mut temp, mut iso, mut ratios) = (vec![], vec![], vec![], vec![]);
    for round in 0..DIR_ROUNDS {
        raw.push(time(DIRS, &mut std_create));
        let (t, i) = if round % 2 == 0 {
            let t = time(DIRS, tempfile);
            (t, time(DIRS, isofix))
        } else {
            let i = time(DIRS, isofix);
            (time(DIRS, tempfile), i)
        };
        temp.push(t);
        iso.push(i);
        ratios.push(i / t);
    }
    let _ = std::fs::remove_dir_all(&base);
    let (raw, temp, iso) = (median(raw), median(temp), median(iso));
    println!(
        "temp dir with {files} small file(s), create + drop \
         (median of {DIR_ROUNDS} interleaved rounds):"
    );
    row("std create_dir + remove_dir_all", raw, raw);
    row("tempfile::tempdir()", temp, raw);
    row("isofix IsolatedDir::new()", iso, raw);
    println!(
        "  isofix / tempfile, median of the rounds' ratios: {:.2}x",
        median(ratios)
    );
}
