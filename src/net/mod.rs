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

/// Implements, for an ephemeral socket type `$wrapper` that owns the std socket `$std` in
/// its field `$field`, what it shares with that socket: `Deref` to it, `From` (documented
/// by the doc comment given, whose example runs as a doc test), `Debug` showing it, and
/// the platform's handle traits (`AsFd`/`AsRawFd` on Unix, `AsSocket`/`AsRawSocket` on
/// Windows). Each is a plain forward to the std socket.
macro_rules! wrap_std_socket {
    ($(#[$from_doc:meta])* $wrapper:ident($field:ident: $std:ty)) => {
        impl ::std::ops::Deref for $wrapper {
            type Target = $std;

            fn deref(&self) -> &$std {
                &self.$field
            }
        }

        impl From<$wrapper> for $std {
            $(#[$from_doc])*
            fn from(wrapper: $wrapper) -> $std {
                wrapper.$field
            }
        }

        impl ::std::fmt::Debug for $wrapper {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                // The std socket's Debug already shows the address and the descriptor.
                f.debug_tuple(stringify!($wrapper)).field(&self.$field).finish()
            }
        }

        #[cfg(unix)]
        impl ::std::os::fd::AsFd for $wrapper {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(&self.$field)
            }
        }

        #[cfg(unix)]
        impl ::std::os::fd::AsRawFd for $wrapper {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(&self.$field)
            }
        }

        #[cfg(windows)]
        impl ::std::os::windows::io::AsSocket for $wrapper {
            fn as_socket(&self) -> ::std::os::windows::io::BorrowedSocket<'_> {
                ::std::os::windows::io::AsSocket::as_socket(&self.$field)
            }
        }

        #[cfg(windows)]
        impl ::std::os::windows::io::AsRawSocket for $wrapper {
            fn as_raw_socket(&self) -> ::std::os::windows::io::RawSocket {
                ::std::os::windows::io::AsRawSocket::as_raw_socket(&self.$field)
            }
        }
    };
}

mod addr;
#[cfg(feature = "tokio")]
mod async_server;
#[cfg(target_os = "linux")]
pub(crate) mod holders;
pub(crate) mod listening;
#[cfg(unix)]
mod reserved;
mod server;
mod server_builder;
mod server_conns;
mod tcp;
mod tcp_builder;
#[cfg(feature = "tokio")]
mod tokio_runtime;
mod udp;
#[cfg(unix)]
mod unix;

#[cfg(feature = "tokio")]
pub use async_server::AsyncTestServer;
#[cfg(feature = "tokio")]
pub use listening::wait_listening_async;
pub use listening::{read_port_file, wait_listening};
#[cfg(unix)]
pub use reserved::ReservedPort;
pub use server::TestServer;
pub use server_builder::TestServerBuilder;
pub use tcp::EphemeralTcp;
pub use tcp_builder::EphemeralTcpBuilder;
pub use udp::EphemeralUdp;
#[cfg(unix)]
pub use unix::{EphemeralUnix, EphemeralUnixDatagram};
