//! Live ephemeral sockets: bound to port 0 and handed back still open, so no other test
//! can take the port between "pick" and "bind".
//!
//! # The race this avoids
//!
//! The usual way to give a test server a free port is *pick-then-release*: bind port 0,
//! read the port the kernel chose, close the socket, and hand the number to the server,
//! which binds it again a moment later. Between the close and the second bind the port is
//! free for anyone: another test in the same process (`cargo test` runs tests on threads),
//! another test process (`cargo nextest run` runs one per test), or any client socket whose
//! ephemeral source port the kernel happens to draw from the same range. When that happens
//! the server fails with `AddrInUse`, or worse, the test talks to somebody else's server.
//! The failure is rare, depends on load, and never reproduces on demand.
//!
//! [`EphemeralTcp`] and [`EphemeralUdp`] never release the port: they bind port 0 and keep
//! that very socket — the TCP one already listening — and give it to the code under test
//! (borrowed, or moved out with `into_listener()` / `into_socket()`, or converted into a
//! tokio socket with the `tokio` feature). The kernel guarantees that no other socket holds
//! the same address while this one is open, so the port is the test's own for as long as it
//! needs it, and goes back to the kernel when the socket is dropped.
//!
//! ```
//! use std::io::{Read, Write};
//! use isofix::EphemeralTcp;
//!
//! # fn main() -> std::io::Result<()> {
//! let server = EphemeralTcp::bind()?; // listening already, on 127.0.0.1:<free port>
//! let mut client = server.connect()?;
//! let (mut conn, _) = server.accept()?;
//! client.write_all(b"ping")?;
//! let mut buf = [0; 4];
//! conn.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"ping");
//! # Ok(())
//! # }
//! ```
//!
//! Every error is an [`std::io::Error`] (so `?` works in any test) whose message names the
//! operation, the address and a hint, e.g.
//! `isofix: bind TCP listener to [::1]:0: Cannot assign requested address (os error 99);
//! hint: IPv6 loopback ::1 is not available here; use bind() for IPv4 127.0.0.1`.

mod addr;
mod tcp;
mod tcp_builder;
#[cfg(feature = "tokio")]
mod tokio_runtime;
mod udp;

pub use tcp::EphemeralTcp;
pub use tcp_builder::EphemeralTcpBuilder;
pub use udp::EphemeralUdp;
