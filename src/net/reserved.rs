use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::addr::{any_port, bind_hint};
use crate::common::error::{error, wrap, Context};
use crate::SerialGuard;

/// How many ports a reservation skips, at most, because another isofix user holds their
/// lock, before it gives up.
const MAX_SKIPPED: usize = 64;

/// A TCP port number reserved for a server that another process will bind — a
/// `redis-server --port N`, a `postgres -p N`, the project's own binary — held for as long
/// as this value lives, so for the child's whole life, not only until it starts.
///
/// # How the port is held
///
/// `ReservedPort::tcp()` binds a socket to `127.0.0.1:0` with `SO_REUSEADDR` and keeps it
/// bound but *not listening*. While it is open, on Linux:
///
/// - ordinary `bind(2)` to port 0 never gets the port (the kernel only hands out ports no
///   socket is bound to), with or without `SO_REUSEADDR` — unless the machine sets
///   `net.ipv4.ip_autobind_reuse=1` (not the default) and every other port is taken;
/// - outgoing `connect(2)` never takes it as a source port (the kernel skips ports that a
///   `bind(2)` holds);
/// - a server that binds `127.0.0.1:N` the usual way — with `SO_REUSEADDR`, as std, tokio,
///   Go, redis and postgres do on Unix — succeeds, because two `SO_REUSEADDR` sockets may
///   share a port as long as at most one of them listens. The same holds for a server on
///   `0.0.0.0:N` or `[::]:N`.
/// - a server that does *not* set `SO_REUSEADDR` fails with `EADDRINUSE`. For such a server
///   hand over the live listener instead (see
///   [`ChildGuard::builder`](crate::ChildGuard::builder) and `LISTEN_FDS`), or let it bind
///   port 0 and write its address to a file ([`read_port_file`](crate::net::read_port_file)).
///
/// On top of that, each reservation holds a cross-process lock named for the port
/// ([`SerialGuard`] group `isofix-port-tcp-<N>`, taken without waiting), so no other isofix
/// user in any process of this user gets the same number even through a path the kernel
/// rule above does not cover.
///
/// Give the child the address from [`addr`](Self::addr) (`127.0.0.1:N`), not `localhost`:
/// `localhost` may resolve to `::1`, where nothing is reserved and nothing listens.
///
/// UDP is not offered: a `SO_REUSEADDR` UDP reservation would share the child's datagrams
/// and let other `SO_REUSEADDR` sockets share the port, so it cannot be made sound.
///
/// Unix only (on Windows, `SO_REUSEADDR` lets any socket steal a port).
///
/// ```
/// use std::net::TcpListener;
/// use isofix::ReservedPort;
///
/// # fn main() -> std::io::Result<()> {
/// let port = ReservedPort::tcp()?;
/// // What the child does with `--port N`: a plain bind, SO_REUSEADDR set by std.
/// let server = TcpListener::bind(port.addr())?;
/// assert_eq!(server.local_addr()?.port(), port.port());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ReservedPort {
    _socket: Socket,
    addr: SocketAddr,
    _lock: SerialGuard,
}

impl ReservedPort {
    /// Reserves a TCP port on `127.0.0.1`. Fails with a clear error if no port is free or
    /// the lock directory cannot be used.
    ///
    /// ```
    /// use isofix::ReservedPort;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let port = ReservedPort::tcp()?;
    /// assert_ne!(port.port(), 0);
    /// assert_eq!(port.addr().to_string(), format!("127.0.0.1:{}", port.port()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn tcp() -> io::Result<ReservedPort> {
        Self::tcp_on(Ipv4Addr::LOCALHOST)
    }

    /// Reserves a TCP port on `ip`, e.g. `::1` for a server that listens on the IPv6
    /// loopback. `ip` must be an address of this host.
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// use isofix::ReservedPort;
    ///
    /// match ReservedPort::tcp_on(Ipv6Addr::LOCALHOST) {
    ///     Ok(port) => assert_eq!(port.addr().to_string(), format!("[::1]:{}", port.port())),
    ///     Err(e) => assert!(e.to_string().contains("hint"), "{e}"), // no IPv6 here
    /// }
    /// ```
    pub fn tcp_on(ip: impl Into<IpAddr>) -> io::Result<ReservedPort> {
        let ip = ip.into();
        // Ports whose lock another isofix user holds stay bound here until a free one is
        // found, so the kernel does not offer them again.
        let mut skipped = Vec::new();
        while skipped.len() < MAX_SKIPPED {
            let (socket, addr) = bind_reservation(ip)?;
            let group = lock_name(addr.port());
            match SerialGuard::group(group.as_str())
                .timeout(Duration::ZERO)
                .acquire()
            {
                Ok(lock) => {
                    return Ok(ReservedPort {
                        _socket: socket,
                        addr,
                        _lock: lock,
                    })
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => skipped.push(socket),
                Err(e) => {
                    return Err(wrap(
                        e,
                        format_args!("lock reserved port {addr}"),
                        "set ISOFIX_LOCK_DIR to a writable directory of your own",
                    ))
                }
            }
        }
        Err(error(
            ErrorKind::AddrInUse,
            format_args!("reserve a TCP port on {ip}"),
            format_args!(
                "the kernel offered {MAX_SKIPPED} ports that other isofix users hold; drop \
                 reservations you no longer need"
            ),
        ))
    }

    /// The reserved port number.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let port = isofix::ReservedPort::tcp()?;
    /// let arg = format!("--port={}", port.port());
    /// # assert!(arg.len() > 7);
    /// # Ok(())
    /// # }
    /// ```
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address to give the server: `127.0.0.1:N` (or the IP given to
    /// [`tcp_on`](Self::tcp_on)).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let port = isofix::ReservedPort::tcp()?;
    /// assert!(port.addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The IP of [`addr`](Self::addr), for servers that take host and port apart
    /// (`--bind 127.0.0.1 --port N`).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let port = isofix::ReservedPort::tcp()?;
    /// assert_eq!(port.ip().to_string(), "127.0.0.1");
    /// # Ok(())
    /// # }
    /// ```
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// `scheme://ip:N`, e.g. `redis://127.0.0.1:41234`; IPv6 hosts in brackets.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let port = isofix::ReservedPort::tcp()?;
    /// assert_eq!(port.url("redis"), format!("redis://127.0.0.1:{}", port.port()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self, scheme: &str) -> String {
        super::addr::url(scheme, self.addr)
    }

    /// Blocks until something accepts connections on the reserved address, or `timeout`
    /// passes ([`ErrorKind::TimedOut`]). The polling client can never take the port
    /// itself: the reservation keeps it out of the kernel's choice of source ports.
    ///
    /// For a server run by a [`ChildGuard`](crate::ChildGuard), use
    /// [`ChildGuard::wait_listening`](crate::ChildGuard::wait_listening), which also fails
    /// at once if the child dies.
    ///
    /// ```
    /// use std::net::TcpListener;
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let port = isofix::ReservedPort::tcp()?;
    /// let _server = TcpListener::bind(port.addr())?;
    /// port.wait_listening(Duration::from_secs(10))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_listening(&self, timeout: Duration) -> io::Result<()> {
        super::wait_listening(self.addr, timeout)
    }

    /// The async form of [`wait_listening`](Self::wait_listening) (feature `tokio`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let port = isofix::ReservedPort::tcp()?;
    ///     let _server = tokio::net::TcpListener::bind(port.addr()).await?;
    ///     port.wait_listening_async(Duration::from_secs(10)).await
    /// }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn wait_listening_async(&self, timeout: Duration) -> io::Result<()> {
        super::wait_listening_async(self.addr, timeout).await
    }
}

/// The cross-process lock group of TCP port `port`.
fn lock_name(port: u16) -> String {
    format!("isofix-port-tcp-{port}")
}

/// Binds a `SO_REUSEADDR` TCP socket to `ip:0` without listening, the reservation itself.
fn bind_reservation(ip: IpAddr) -> io::Result<(Socket, SocketAddr)> {
    let addr = any_port(ip);
    let failed = |e: io::Error, what: &str| {
        let hint = bind_hint(ip, &e);
        wrap(e, format_args!("{what} for a reserved port on {ip}"), hint)
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| failed(e, "create TCP socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| failed(e, "set SO_REUSEADDR"))?;
    socket
        .bind(&SockAddr::from(addr))
        .map_err(|e| failed(e, "bind TCP socket"))?;
    let bound = socket
        .local_addr()
        .context(|| format!("read the port reserved on {ip}"), "")?
        .as_socket()
        .ok_or_else(|| {
            error(
                ErrorKind::Other,
                "read the reserved port",
                "not an IP socket",
            )
        })?;
    Ok((socket, bound))
}
