//! The rstest fixtures: each case of a parameterized test gets its own live port and its
//! own directory, even when the cases run at the same time.
#![cfg(feature = "rstest")]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use isofix::fixtures::*;
use isofix::{EphemeralTcp, EphemeralUdp, IsolatedDir};
use rstest::rstest;

/// Directories handed to the cases of `cases_get_their_own_dir`, across cases.
static SEEN: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

#[rstest]
#[case(1)]
#[case(2)]
#[case(3)]
#[case(4)]
fn cases_get_their_own_dir_and_port(#[case] case: u32, tcp: EphemeralTcp, dir: IsolatedDir) {
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "case {case} got a directory another case used"
    );
    std::fs::write(dir.join("case"), case.to_string()).unwrap();
    let fresh = SEEN
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert(dir.path().to_owned());
    assert!(
        fresh,
        "case {case} got a directory twice: {}",
        dir.path().display()
    );
    // The listener is live: a client's connection waits in its backlog.
    let _client = tcp.connect().unwrap();
    tcp.accept().unwrap();
}

#[rstest]
fn fixtures_are_live(tcp: EphemeralTcp, udp: EphemeralUdp, dir: IsolatedDir) {
    let _client = tcp.connect().unwrap();
    tcp.accept().unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"hi", udp.addr()).unwrap();
    let mut buf = [0; 2];
    assert_eq!(udp.recv(&mut buf).unwrap(), 2);
    assert!(dir.path().is_dir());
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.contains("fixtures_are_live"), "{name}");
}

#[rstest]
fn renamed_fixtures_are_distinct(
    #[from(tcp)] server: EphemeralTcp,
    #[from(tcp)] other: EphemeralTcp,
) {
    assert_ne!(server.port(), other.port());
}

#[rstest]
fn values_cases_each_get_a_dir(#[values("x", "y", "z")] file: &str, dir: IsolatedDir) {
    let path = dir.join(file);
    assert!(!path.exists(), "a fresh directory per case");
    std::fs::write(&path, file).unwrap();
}
