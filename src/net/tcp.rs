use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};

use super::addr::{connectable, url};
use super::EphemeralTcpBuilder;
use crate::common::error::Context;

/// A TCP listener on a port the kernel picked, kept open and listening for as long as the
/// test needs it — no pick-then-release race (see the [module docs](crate::net)).
///
/// It dereferences to [`std::net::TcpListener`], so `accept()`, `incoming()` and
/// `set_nonblocking()` are right there; [`into_listener`](Self::into_listener) hands the
/// listener to the code under test. Dropping it closes the socket and frees the port.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::net::TcpStream;
/// use isofix::EphemeralTcp;
///
/// # fn main() -> std::io::Result<()> {
/// let server = EphemeralTcp::bind()?;
/// let addr = server.addr();
/// // The server under test takes the live listener: nothing to race for.
/// let handle = std::thread::spawn(move || -> std::io::Result<String> {
///     let (conn, _) = server.accept()?;
///     let mut line = String::new();
///     BufReader::new(conn).read_line(&mut line)?;
///     Ok(line)
/// });
/// TcpStream::connect(addr)?.write_all(b"GET / HTTP/1.0\r\n")?;
/// assert_eq!(handle.join().unwrap()?, "GET / HTTP/1.0\r\n");
/// # Ok(())
/// # }
/// ```
pub struct EphemeralTcp {
    listener: TcpListener,
    addr: SocketAddr,
}

impl EphemeralTcp {
    /// Binds `127.0.0.1:0` and listens: the IPv4 loopback, on a port the kernel picks.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind()?;
    /// assert!(server.addr().ip().is_loopback());
    /// assert_ne!(server.port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind() -> io::Result<EphemeralTcp> {
        Self::bind_ip(Ipv4Addr::LOCALHOST)
    }

    /// Binds `[::1]:0` and listens: the IPv6 loopback. On a host without IPv6 this fails
    /// with an error whose hint says so (never a panic).
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// match EphemeralTcp::bind_v6() {
    ///     Ok(server) => assert!(server.url("http").starts_with("http://[::1]:")),
    ///     Err(e) => assert!(e.to_string().contains("hint"), "{e}"),
    /// }
    /// ```
    pub fn bind_v6() -> io::Result<EphemeralTcp> {
        Self::bind_ip(Ipv6Addr::LOCALHOST)
    }

    /// Binds `ip:0` and listens. The port is always 0, chosen by the kernel; `ip` must be an
    /// address of this host (or the unspecified address, to listen on every interface),
    /// otherwise the error names it, with kind
    /// [`AddrNotAvailable`](std::io::ErrorKind::AddrNotAvailable).
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind_ip([127, 0, 0, 1])?;
    /// assert_eq!(server.addr().ip().to_string(), "127.0.0.1");
    ///
    /// // 192.0.2.1 is reserved for documentation (TEST-NET-1): no host has it.
    /// let err = EphemeralTcp::bind_ip([192, 0, 2, 1]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::AddrNotAvailable);
    /// assert!(err.to_string().contains("192.0.2.1:0"), "{err}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind_ip(ip: impl Into<IpAddr>) -> io::Result<EphemeralTcp> {
        Self::builder().ip(ip).bind()
    }

    /// A builder for the rare options: IP, `listen(2)` backlog, nonblocking mode,
    /// `SO_REUSEADDR`.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::builder().backlog(8).nonblocking(true).bind()?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> EphemeralTcpBuilder {
        EphemeralTcpBuilder::new()
    }

    /// Wraps a listener just bound to `requested` (`ip:0`), reading back the port the kernel
    /// chose (`getsockname(2)`) once, so the accessors cannot fail.
    pub(crate) fn from_listener(
        listener: TcpListener,
        requested: SocketAddr,
    ) -> io::Result<EphemeralTcp> {
        let addr = listener.local_addr().context(
            || format!("read the port of the TCP listener bound to {requested}"),
            "",
        )?;
        Ok(EphemeralTcp { listener, addr })
    }

    /// The port the kernel chose.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind()?;
    /// assert_eq!(server.port(), server.local_addr()?.port());
    /// # Ok(())
    /// # }
    /// ```
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the listener is bound to, e.g. `127.0.0.1:41234`.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind()?;
    /// let client = std::net::TcpStream::connect(server.addr())?;
    /// assert_eq!(client.peer_addr()?, server.addr());
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `scheme://host:port` for this listener: `http://127.0.0.1:41234`, or with IPv6
    /// `http://[::1]:41234`. `scheme` is given without `://` (a trailing one is ignored).
    /// A listener on the unspecified address gets the loopback host of its family.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind()?;
    /// assert_eq!(server.url("ws"), format!("ws://127.0.0.1:{}", server.port()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self, scheme: &str) -> String {
        url(scheme, self.addr)
    }

    /// Borrows the listener (the same as dereferencing).
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind()?;
    /// fn serve_one(listener: &std::net::TcpListener) -> std::io::Result<()> {
    ///     listener.accept().map(drop)
    /// }
    /// let _client = server.connect()?;
    /// serve_one(server.listener())?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// Gives up the guard and returns the listener, still bound and listening, e.g. to move
    /// it into the server under test. The port stays taken until that listener is dropped.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind()?;
    /// let addr = server.addr();
    /// let listener: std::net::TcpListener = server.into_listener();
    /// assert_eq!(listener.local_addr()?, addr);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_listener(self) -> TcpListener {
        self.listener
    }

    /// Opens a client connection to this listener (`connect(2)`), blocking until the kernel
    /// has queued it; the listener's `accept` then returns the server side. The unspecified
    /// address is dialled as loopback.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind()?;
    /// let mut client = server.connect()?;
    /// let (mut conn, peer) = server.accept()?;
    /// assert_eq!(peer, client.local_addr()?);
    /// conn.write_all(b"hi")?;
    /// let mut buf = [0; 2];
    /// client.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"hi");
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(&self) -> io::Result<TcpStream> {
        let target = connectable(self.addr);
        TcpStream::connect(target).context(
            || format!("connect to TCP listener at {target}"),
            "the listener's backlog may be full; accept() pending connections first",
        )
    }
}

#[cfg(feature = "tokio")]
impl EphemeralTcp {
    /// Turns the listener into a [`tokio::net::TcpListener`] registered with the current
    /// runtime, after putting it in nonblocking mode as tokio requires. Read the address
    /// first ([`addr`](Self::addr), [`url`](Self::url)) if you need it, or ask the tokio
    /// listener's `local_addr()`.
    ///
    /// Fails with a clear error outside a tokio runtime. Inside a runtime built without
    /// `enable_io()`, tokio itself panics, as all its socket constructors do.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let server = EphemeralTcp::bind()?;
    ///     let addr = server.addr();
    ///     let listener = server.into_tokio()?;
    ///     let mut client = tokio::net::TcpStream::connect(addr).await?;
    ///     let (mut conn, _) = listener.accept().await?;
    ///     client.write_all(b"ping").await?;
    ///     let mut buf = [0; 4];
    ///     conn.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"ping");
    ///     Ok(())
    /// }
    /// ```
    pub fn into_tokio(self) -> io::Result<tokio::net::TcpListener> {
        super::tokio_runtime::hand_over(
            || format!("turn TCP listener on {} into a tokio listener", self.addr),
            || Ok(self.listener),
            |l| l.set_nonblocking(true),
            tokio::net::TcpListener::from_std,
        )
    }

    /// Binds `127.0.0.1:0` and returns the listener as a [`tokio::net::TcpListener`]: the
    /// async counterpart of [`bind`](Self::bind), reading like tokio's own
    /// `TcpListener::bind(..).await`. Binding to port 0 never waits, so this is
    /// `EphemeralTcp::bind()?.into_tokio()`; use that form (or the builder) for IPv6, other
    /// options, or to keep [`url`](Self::url) around.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let listener = EphemeralTcp::bind_tokio().await?;
    ///     let addr = listener.local_addr()?;
    ///     let client = tokio::net::TcpStream::connect(addr).await?;
    ///     let (_conn, peer) = listener.accept().await?;
    ///     assert_eq!(peer, client.local_addr()?);
    ///     Ok(())
    /// }
    /// ```
    pub async fn bind_tokio() -> io::Result<tokio::net::TcpListener> {
        Self::bind()?.into_tokio()
    }
}

wrap_std_socket! {
    /// The same as [`EphemeralTcp::into_listener`].
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let listener = std::net::TcpListener::from(EphemeralTcp::bind()?);
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    EphemeralTcp(listener: TcpListener)
}
