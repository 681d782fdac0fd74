use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use super::addr::{any_port, bind_hint, connectable};
use crate::common::error::{wrap, Context};

/// A UDP socket on a port the kernel picked, kept open for as long as the test needs it —
/// no pick-then-release race (see the [module docs](crate::net)).
///
/// It dereferences to [`std::net::UdpSocket`], so `send_to`, `recv_from`, `connect` and
/// the timeouts are right there; [`into_socket`](Self::into_socket) hands the socket to the
/// code under test. Dropping it closes the socket and frees the port.
///
/// ```
/// use isofix::EphemeralUdp;
///
/// # fn main() -> std::io::Result<()> {
/// let server = EphemeralUdp::bind()?;
/// let client = EphemeralUdp::bind()?;
/// client.send_to(b"ping", server.addr())?;
/// let mut buf = [0; 16];
/// let (n, from) = server.recv_from(&mut buf)?;
/// assert_eq!((&buf[..n], from), (&b"ping"[..], client.addr()));
/// # Ok(())
/// # }
/// ```
pub struct EphemeralUdp {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl EphemeralUdp {
    /// Binds `127.0.0.1:0`: the IPv4 loopback, on a port the kernel picks.
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let socket = EphemeralUdp::bind()?;
    /// assert!(socket.addr().ip().is_loopback());
    /// assert_ne!(socket.port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind() -> io::Result<EphemeralUdp> {
        Self::bind_ip(Ipv4Addr::LOCALHOST)
    }

    /// Binds `[::1]:0`: the IPv6 loopback. On a host without IPv6 this fails with an error
    /// whose hint says so (never a panic).
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// match EphemeralUdp::bind_v6() {
    ///     Ok(socket) => assert_eq!(socket.addr().ip().to_string(), "::1"),
    ///     Err(e) => assert!(e.to_string().contains("hint"), "{e}"),
    /// }
    /// ```
    pub fn bind_v6() -> io::Result<EphemeralUdp> {
        Self::bind_ip(Ipv6Addr::LOCALHOST)
    }

    /// Binds `ip:0` (`socket(2)` close-on-exec, then `bind(2)`). The port is always 0,
    /// chosen by the kernel; `ip` must be an address of this host (or the unspecified
    /// address), otherwise the error names it, with kind
    /// [`AddrNotAvailable`](std::io::ErrorKind::AddrNotAvailable).
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use isofix::EphemeralUdp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let socket = EphemeralUdp::bind_ip([127, 0, 0, 1])?;
    /// assert_eq!(socket.addr().ip().to_string(), "127.0.0.1");
    ///
    /// // 192.0.2.1 is reserved for documentation (TEST-NET-1): no host has it.
    /// let err = EphemeralUdp::bind_ip([192, 0, 2, 1]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::AddrNotAvailable);
    /// assert!(err.to_string().contains("192.0.2.1:0"), "{err}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind_ip(ip: impl Into<IpAddr>) -> io::Result<EphemeralUdp> {
        let ip = ip.into();
        let requested = any_port(ip);
        let socket = UdpSocket::bind(requested).map_err(|e| {
            let hint = bind_hint(ip, &e);
            wrap(e, format_args!("bind UDP socket to {requested}"), hint)
        })?;
        let addr = socket.local_addr().context(
            || format!("read the port of the UDP socket bound to {requested}"),
            "",
        )?;
        Ok(EphemeralUdp { socket, addr })
    }

    /// Two sockets on `127.0.0.1`, each connected (`connect(2)`) to the other: `send` on one
    /// arrives at `recv` on the other, and datagrams from any third socket are dropped by
    /// the kernel. The usual client/server pair for a test.
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (client, server) = EphemeralUdp::pair()?;
    /// client.send(b"ping")?;
    /// let mut buf = [0; 16];
    /// let n = server.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"ping");
    /// assert_eq!(server.peer_addr()?, client.addr());
    /// # Ok(())
    /// # }
    /// ```
    pub fn pair() -> io::Result<(EphemeralUdp, EphemeralUdp)> {
        let a = Self::bind()?;
        let b = Self::bind()?;
        a.connect_to(&b)?;
        b.connect_to(&a)?;
        Ok((a, b))
    }

    fn connect_to(&self, other: &EphemeralUdp) -> io::Result<()> {
        let target = connectable(other.addr);
        self.socket.connect(target).context(
            || format!("connect UDP socket {} to {target}", self.addr),
            "",
        )
    }

    /// The port the kernel chose.
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let socket = EphemeralUdp::bind()?;
    /// assert_eq!(socket.port(), socket.local_addr()?.port());
    /// # Ok(())
    /// # }
    /// ```
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the socket is bound to, e.g. `127.0.0.1:41234`.
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let socket = EphemeralUdp::bind()?;
    /// assert_eq!(socket.addr().to_string(), format!("127.0.0.1:{}", socket.port()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Borrows the socket (the same as dereferencing).
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let socket = EphemeralUdp::bind()?;
    /// fn echo_to_self(socket: &std::net::UdpSocket) -> std::io::Result<usize> {
    ///     socket.send_to(b"me", socket.local_addr()?)
    /// }
    /// assert_eq!(echo_to_self(socket.socket())?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Gives up the guard and returns the socket, still bound, e.g. to move it into the
    /// server under test. The port stays taken until that socket is dropped.
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let guard = EphemeralUdp::bind()?;
    /// let addr = guard.addr();
    /// let socket: std::net::UdpSocket = guard.into_socket();
    /// assert_eq!(socket.local_addr()?, addr);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_socket(self) -> UdpSocket {
        self.socket
    }
}

#[cfg(feature = "tokio")]
impl EphemeralUdp {
    /// Turns the socket into a [`tokio::net::UdpSocket`] registered with the current
    /// runtime, after putting it in nonblocking mode as tokio requires. A connected socket
    /// (from [`pair`](Self::pair)) stays connected.
    ///
    /// Fails with a clear error outside a tokio runtime. Inside a runtime built without
    /// `enable_io()`, tokio itself panics, as all its socket constructors do.
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let (client, server) = EphemeralUdp::pair()?;
    ///     let (client, server) = (client.into_tokio()?, server.into_tokio()?);
    ///     client.send(b"ping").await?;
    ///     let mut buf = [0; 16];
    ///     let n = server.recv(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"ping");
    ///     Ok(())
    /// }
    /// ```
    pub fn into_tokio(self) -> io::Result<tokio::net::UdpSocket> {
        super::tokio_runtime::hand_over(
            || format!("turn UDP socket on {} into a tokio socket", self.addr),
            || Ok(self.socket),
            |s| s.set_nonblocking(true),
            tokio::net::UdpSocket::from_std,
        )
    }

    /// Binds `127.0.0.1:0` and returns a [`tokio::net::UdpSocket`]: the async counterpart
    /// of [`bind`](Self::bind), reading like tokio's own `UdpSocket::bind(..).await`.
    /// Binding to port 0 never waits, so this is `EphemeralUdp::bind()?.into_tokio()`; use
    /// that form for IPv6 or a connected [`pair`](Self::pair).
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let socket = EphemeralUdp::bind_tokio().await?;
    ///     let me = socket.local_addr()?;
    ///     socket.send_to(b"hello", me).await?;
    ///     let mut buf = [0; 16];
    ///     let (n, from) = socket.recv_from(&mut buf).await?;
    ///     assert_eq!((&buf[..n], from), (&b"hello"[..], me));
    ///     Ok(())
    /// }
    /// ```
    pub async fn bind_tokio() -> io::Result<tokio::net::UdpSocket> {
        Self::bind()?.into_tokio()
    }
}

wrap_std_socket! {
    /// The same as [`EphemeralUdp::into_socket`].
    ///
    /// ```
    /// use isofix::EphemeralUdp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let socket = std::net::UdpSocket::from(EphemeralUdp::bind()?);
    /// assert_ne!(socket.local_addr()?.port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    EphemeralUdp(socket: UdpSocket)
}
