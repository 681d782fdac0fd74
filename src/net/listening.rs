//! Waiting until a server — usually another process — accepts connections on an address,
//! or writes its address to a file.
//!
//! Another process starting to listen, or writing a file, cannot be waited on portably, so
//! these waits make an attempt, then pause, backing off from 1 ms to 50 ms.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::error::error;

const FIRST_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(50);
/// The longest single connect attempt.
const MAX_ATTEMPT: Duration = Duration::from_secs(1);

/// The pauses between attempts of a wait: 1 ms, doubling up to 50 ms.
pub(crate) struct Pauses(Duration);

impl Pauses {
    pub(crate) fn new() -> Self {
        Pauses(FIRST_PAUSE)
    }

    /// The next pause.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (pause * 2).min(MAX_PAUSE);
        pause
    }
}

/// Makes `attempt(time left)` until it succeeds or `timeout` passes, calling `check`
/// before each attempt (an error from it, such as a child that died, ends the wait at
/// once). `attempt` returns `Err(why)` to be retried, `Ok(result)` when done either way;
/// `gave_up` turns the last `why` into the error of the whole wait.
pub(crate) fn poll<T>(
    timeout: Duration,
    mut check: impl FnMut() -> io::Result<()>,
    mut attempt: impl FnMut(Duration) -> Result<io::Result<T>, io::Error>,
    gave_up: impl FnOnce(io::Error) -> io::Error,
) -> io::Result<T> {
    let start = Instant::now();
    let mut pauses = Pauses::new();
    loop {
        check()?;
        let last = match attempt(timeout.saturating_sub(start.elapsed())) {
            Ok(done) => return done,
            Err(why) => why,
        };
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(gave_up(last));
        }
        std::thread::sleep(pauses.next_pause().min(left));
    }
}

/// Connects once to `addr`, waiting at most `limit`. A connection from a socket to itself
/// (TCP's simultaneous open, which happens when the kernel picks the destination port as
/// the client's own port while nothing listens) is no server: it is closed and reported
/// as not listening, so a wait can never end on its own client socket.
pub(crate) fn probe(addr: SocketAddr, limit: Duration) -> io::Result<()> {
    let limit = limit.clamp(Duration::from_millis(1), MAX_ATTEMPT);
    let stream = TcpStream::connect_timeout(&addr, limit)?;
    match stream.local_addr() {
        Ok(local) if local == addr => Err(io::Error::new(
            ErrorKind::ConnectionRefused,
            "connected to itself (nothing listens yet)",
        )),
        _ => Ok(()),
    }
}

/// Blocks until a server accepts TCP connections on `addr`, or `timeout` passes. Each
/// attempt is a plain `connect(2)`, closed at once; between attempts the wait backs off
/// from 1 ms to 50 ms. A connection that turns out to be the client's own socket
/// (TCP simultaneous open on a port nobody listens on) does not count.
///
/// For a server started as a child process, prefer
/// [`ChildGuard::wait_listening`](crate::ChildGuard::wait_listening), which also fails at
/// once when the child dies.
///
/// Fails with [`ErrorKind::TimedOut`], naming the address and the last connect error.
///
/// ```
/// use std::time::Duration;
/// use isofix::{net::wait_listening, EphemeralTcp};
///
/// # fn main() -> std::io::Result<()> {
/// let server = EphemeralTcp::bind()?;
/// wait_listening(server.addr(), Duration::from_secs(10))?;
/// # Ok(())
/// # }
/// ```
pub fn wait_listening(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    poll(
        timeout,
        || Ok(()),
        |left| probe(addr, left).map(Ok),
        |last| timed_out(addr, timeout, &last),
    )
}

/// The error of a wait for `addr` that gave up after `timeout`.
pub(crate) fn timed_out(addr: SocketAddr, timeout: Duration, last: &io::Error) -> io::Error {
    error(
        ErrorKind::TimedOut,
        format_args!(
            "wait for a server listening on {addr}: nothing accepted a connection within \
             {timeout:?} (last attempt: {last})"
        ),
        "check that the server was given this address (and the same IP family: \
         `localhost` may resolve to ::1) and runs in the foreground",
    )
}

/// The async form of [`wait_listening`] (feature `tokio`): the same attempts, made with
/// tokio's sockets and timers, so no runtime thread is blocked.
///
/// ```
/// use std::time::Duration;
/// use isofix::{net::wait_listening_async, EphemeralTcp};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::io::Result<()> {
///     let server = EphemeralTcp::bind()?;
///     wait_listening_async(server.addr(), Duration::from_secs(10)).await
/// }
/// ```
#[cfg(feature = "tokio")]
pub async fn wait_listening_async(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    wait_listening_async_while(addr, timeout, || Ok(())).await
}

/// [`wait_listening_async`] with a `check` before each attempt, as in [`poll`].
#[cfg(feature = "tokio")]
pub(crate) async fn wait_listening_async_while(
    addr: SocketAddr,
    timeout: Duration,
    mut check: impl FnMut() -> io::Result<()>,
) -> io::Result<()> {
    let start = Instant::now();
    let mut pauses = Pauses::new();
    loop {
        check()?;
        let limit = timeout
            .saturating_sub(start.elapsed())
            .clamp(Duration::from_millis(1), MAX_ATTEMPT);
        let last = match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => match stream.local_addr() {
                Ok(local) if local == addr => {
                    io::Error::new(ErrorKind::ConnectionRefused, "connected to itself")
                }
                _ => return Ok(()),
            },
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(ErrorKind::TimedOut, "connect timed out"),
        };
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(timed_out(addr, timeout, &last));
        }
        tokio::time::sleep(pauses.next_pause().min(left)).await;
    }
}

/// Reads `path` once: the address in it if it holds one whole line that parses as a
/// socket address (`127.0.0.1:41234`, `[::1]:41234`); an error saying why not otherwise.
pub(crate) fn parse_port_file(path: &Path) -> io::Result<SocketAddr> {
    let text = std::fs::read_to_string(path)?;
    // A writer that has not finished its line yet is not done.
    let Some(line) = text
        .split_inclusive('\n')
        .next()
        .filter(|l| l.ends_with('\n'))
    else {
        return Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            "no complete line yet",
        ));
    };
    let line = line.trim();
    line.parse().map_err(|_| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!("its first line {line:?} is not an address like 127.0.0.1:41234"),
        )
    })
}

/// Waits until a server writes its address to `path`, and returns it: for servers that
/// bind port 0 themselves and report where (a `--port-file`, `--addr-file` option, or a
/// line the test's own binary writes). The file's first line, once it ends with a newline,
/// must be a socket address such as `127.0.0.1:41234` or `[::1]:41234`. Write the file
/// whole (write a temporary file and rename it) or at least end the line last.
///
/// Fails with [`ErrorKind::TimedOut`] after `timeout`, naming the path and what it held;
/// a first line that is not an address fails at once with [`ErrorKind::InvalidData`].
/// [`ChildGuard::wait_port_file`](crate::ChildGuard::wait_port_file) also fails at once when
/// the child dies.
///
/// ```
/// use std::time::Duration;
/// use isofix::IsolatedDir;
///
/// # fn main() -> std::io::Result<()> {
/// let dir = IsolatedDir::new()?;
/// std::fs::write(dir.join("port"), "127.0.0.1:41234\n")?;
/// let addr = isofix::net::read_port_file(dir.join("port"), Duration::from_secs(10))?;
/// assert_eq!(addr.port(), 41234);
/// # Ok(())
/// # }
/// ```
pub fn read_port_file(path: impl AsRef<Path>, timeout: Duration) -> io::Result<SocketAddr> {
    read_port_file_while(path.as_ref(), timeout, || Ok(()))
}

/// [`read_port_file`] with a `check` before each attempt, as in [`poll`].
pub(crate) fn read_port_file_while(
    path: &Path,
    timeout: Duration,
    check: impl FnMut() -> io::Result<()>,
) -> io::Result<SocketAddr> {
    poll(
        timeout,
        check,
        |_| match parse_port_file(path) {
            Ok(addr) => Ok(Ok(addr)),
            Err(e) if e.kind() == ErrorKind::InvalidData => Ok(Err(error(
                ErrorKind::InvalidData,
                format_args!("read port file {}: {e}", path.display()),
                "the first line must be a socket address such as 127.0.0.1:41234",
            ))),
            Err(e) => Err(e),
        },
        |last| {
            error(
                ErrorKind::TimedOut,
                format_args!(
                    "wait for an address in port file {}: none within {timeout:?} ({last})",
                    path.display()
                ),
                "check that the server was told this path and writes `ip:port` and a newline",
            )
        },
    )
}
