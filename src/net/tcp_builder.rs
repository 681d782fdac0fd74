use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpListener};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::addr::{any_port, bind_hint};
use super::EphemeralTcp;
use crate::common::error::{wrap, Context};

/// The rare options of an [`EphemeralTcp`]: which IP, the `listen(2)` backlog, nonblocking
/// mode and `SO_REUSEADDR`. Made by [`EphemeralTcp::builder`]; the port is always 0, so the
/// kernel picks a free one while binding.
///
/// ```
/// use isofix::EphemeralTcp;
///
/// # fn main() -> std::io::Result<()> {
/// let server = EphemeralTcp::builder()
///     .ip([127, 0, 0, 1])
///     .backlog(8)
///     .nonblocking(true)
///     .reuse_address(true)
///     .bind()?;
/// assert_ne!(server.port(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct EphemeralTcpBuilder {
    ip: IpAddr,
    backlog: u32,
    nonblocking: bool,
    reuse_address: Option<bool>,
}

impl EphemeralTcpBuilder {
    pub(crate) fn new() -> Self {
        EphemeralTcpBuilder {
            ip: Ipv4Addr::LOCALHOST.into(),
            backlog: 128,
            nonblocking: false,
            reuse_address: None,
        }
    }

    /// The IP to bind (default `127.0.0.1`): the address given to `bind(2)`, with port 0.
    /// It must be an address of this host, or the unspecified address (`0.0.0.0`, `::`) to
    /// listen on every interface.
    ///
    /// [`url`](EphemeralTcp::url) and [`connect`](EphemeralTcp::connect) dial the loopback
    /// address of the same family when the listener is on the unspecified address.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::builder().ip(Ipv4Addr::LOCALHOST).bind()?;
    /// assert_eq!(server.addr().ip(), Ipv4Addr::LOCALHOST);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ip(mut self, ip: impl Into<IpAddr>) -> Self {
        self.ip = ip.into();
        self
    }

    /// The `backlog` argument of `listen(2)` (default 128): how many connections the kernel
    /// queues before [`accept`](std::net::TcpListener::accept) takes them. The kernel caps
    /// it (`net.core.somaxconn` on Linux); values above `i32::MAX` are passed as `i32::MAX`.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::builder().backlog(1).bind()?;
    /// let _client = server.connect()?; // queued by the kernel, not yet accepted
    /// server.accept()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Puts the listener in nonblocking mode (default off): `fcntl(F_SETFL, O_NONBLOCK)` on
    /// Unix, `ioctlsocket(FIONBIO)` on Windows. `accept` then fails with
    /// [`WouldBlock`](std::io::ErrorKind::WouldBlock) instead of waiting.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::builder().nonblocking(true).bind()?;
    /// assert_eq!(server.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok(())
    /// # }
    /// ```
    pub fn nonblocking(mut self, nonblocking: bool) -> Self {
        self.nonblocking = nonblocking;
        self
    }

    /// Sets `SO_REUSEADDR` (`setsockopt(SOL_SOCKET, SO_REUSEADDR)`) before `bind(2)`. Left at
    /// the OS default (off) unless called: a port-0 listener never rebinds a port that is
    /// still in `TIME_WAIT`, which is what the option is for. (std's `TcpListener::bind`
    /// turns it on for Unix.) On Windows the option lets *another* socket steal the port;
    /// don't set it there.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::builder().reuse_address(true).bind()?;
    /// assert!(socket2::SockRef::from(&*server).reuse_address()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reuse_address(mut self, reuse: bool) -> Self {
        self.reuse_address = Some(reuse);
        self
    }

    /// Creates the socket (`socket(2)`, close-on-exec), applies the options, binds it to
    /// `ip:0` (`bind(2)`) and starts listening (`listen(2)`). The builder can bind again.
    ///
    /// ```
    /// use isofix::EphemeralTcp;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let builder = EphemeralTcp::builder().backlog(4);
    /// let (a, b) = (builder.bind()?, builder.bind()?);
    /// assert_ne!(a.port(), b.port());
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind(&self) -> io::Result<EphemeralTcp> {
        let addr = any_port(self.ip);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| {
                let hint = bind_hint(self.ip, &e);
                wrap(e, format_args!("create TCP socket for {addr}"), hint)
            })?;
        if let Some(reuse) = self.reuse_address {
            socket.set_reuse_address(reuse).context(
                || format!("set SO_REUSEADDR={reuse} on TCP socket for {addr}"),
                "leave reuse_address() unset to keep the OS default",
            )?;
        }
        socket.bind(&SockAddr::from(addr)).map_err(|e| {
            let hint = bind_hint(self.ip, &e);
            wrap(e, format_args!("bind TCP listener to {addr}"), hint)
        })?;
        let backlog = i32::try_from(self.backlog).unwrap_or(i32::MAX);
        socket.listen(backlog).context(
            || format!("listen on TCP socket bound to {addr} (backlog {backlog})"),
            "try the default backlog",
        )?;
        if self.nonblocking {
            socket.set_nonblocking(true).context(
                || format!("make TCP listener on {addr} nonblocking"),
                "leave nonblocking() unset and call set_nonblocking on the listener",
            )?;
        }
        EphemeralTcp::from_listener(TcpListener::from(socket), addr)
    }
}
