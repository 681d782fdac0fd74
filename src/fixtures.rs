//! [rstest] fixtures, named for how tests read (feature `rstest`).
//!
//! After `use isofix::fixtures::*;`, a test asks for a guard by naming an argument after
//! its fixture, and every case of a parameterized test gets its own fresh port and
//! directory:
//!
//! ```
//! use isofix::fixtures::*;
//! use isofix::{EphemeralTcp, IsolatedDir};
//! use rstest::rstest;
//!
//! #[rstest]
//! #[case("a")]
//! #[case("b")]
//! fn writes_and_serves(#[case] name: &str, tcp: EphemeralTcp, dir: IsolatedDir) {
//!     std::fs::write(dir.join(name), "x").unwrap();
//!     assert_ne!(tcp.port(), 0);
//! }
//! # fn main() {}
//! ```
//!
//! Rename a fixture with rstest's `#[from]` when the argument should say what it is for:
//!
//! ```
//! use isofix::fixtures::*;
//! use isofix::EphemeralTcp;
//! use rstest::rstest;
//!
//! #[rstest]
//! fn client_reaches_server(#[from(tcp)] server: EphemeralTcp, #[from(tcp)] other: EphemeralTcp) {
//!     assert_ne!(server.port(), other.port());
//!     server.connect().unwrap();
//! }
//! # fn main() {}
//! ```
//!
//! And combine them with [`#[serial_group]`](crate::serial_group) for the few tests that
//! share a service; the attribute goes below `#[rstest]`, so that it wraps each case:
//!
//! ```
//! # #[cfg(feature = "macros")]
//! # mod example {
//! use isofix::fixtures::*;
//! use isofix::{serial_group, IsolatedDir};
//! use rstest::rstest;
//!
//! #[rstest]
//! #[serial_group("shared-db")]
//! fn migrates(dir: IsolatedDir) {
//!     assert!(dir.path().is_dir());
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! A fixture cannot return an error to the test, so one that fails to set up panics with
//! the guard's own message, which names the operation, the address or path, and a hint.
//!
//! [rstest]: https://docs.rs/rstest

use rstest::fixture;

use crate::{EphemeralTcp, EphemeralUdp, IsolatedDir};

/// Panics with the message of a guard that could not be set up.
fn set_up<T>(fixture: &str, result: std::io::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("isofix fixture `{fixture}` could not be set up: {e}"))
}

/// A live TCP listener on `127.0.0.1` and a free port: [`EphemeralTcp::bind`].
///
/// ```
/// use isofix::fixtures::*;
/// use isofix::EphemeralTcp;
/// use rstest::rstest;
///
/// #[rstest]
/// fn accepts(tcp: EphemeralTcp) {
///     let _client = tcp.connect().unwrap();
///     tcp.accept().unwrap();
/// }
/// # fn main() {}
/// ```
#[fixture]
pub fn tcp() -> EphemeralTcp {
    set_up("tcp", EphemeralTcp::bind())
}

/// A live UDP socket on `127.0.0.1` and a free port: [`EphemeralUdp::bind`].
///
/// ```
/// use isofix::fixtures::*;
/// use isofix::EphemeralUdp;
/// use rstest::rstest;
///
/// #[rstest]
/// fn receives(udp: EphemeralUdp) {
///     let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
///     sender.send_to(b"hi", udp.addr()).unwrap();
///     let mut buf = [0; 2];
///     udp.recv(&mut buf).unwrap();
/// }
/// # fn main() {}
/// ```
#[fixture]
pub fn udp() -> EphemeralUdp {
    set_up("udp", EphemeralUdp::bind())
}

/// A private temporary directory for the test, removed when it ends: [`IsolatedDir::new`].
///
/// ```
/// use isofix::fixtures::*;
/// use isofix::IsolatedDir;
/// use rstest::rstest;
///
/// #[rstest]
/// fn writes(dir: IsolatedDir) {
///     std::fs::write(dir.join("out.txt"), "done").unwrap();
/// }
/// # fn main() {}
/// ```
#[fixture]
pub fn dir() -> IsolatedDir {
    set_up("dir", IsolatedDir::new())
}
