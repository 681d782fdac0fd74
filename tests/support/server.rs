//! Shared by the `server_*` tests: what they check alike of `TestServer` and
//! `AsyncTestServer`.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;

/// Asserts that `err`, from a shutdown, reports the handler of the connection from `peer`
/// as stuck: `TimedOut`, naming the peer and the connection's age.
pub fn assert_names_stuck(err: &io::Error, peer: SocketAddr) {
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("connection from {peer} still running")),
        "{msg}"
    );
    assert!(msg.contains("open for"), "{msg}");
}
