use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::addr::{connectable, url};
use super::server_conns::{self, Connections};
use super::{EphemeralTcp, TestServerBuilder};
use crate::common::error::Context;

/// What a [`TestServer`] runs for each connection, on a thread of its own.
pub(crate) type Handler = dyn Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static;

/// A TCP server for tests that never leaks: every connection is tracked, and
/// [`shutdown`](Self::shutdown) — or dropping it — stops accepting, shuts down live
/// connections so blocked reads return, and joins every thread it started.
///
/// Each connection runs `handler(stream)` on its own thread: threads are one per live
/// connection plus one accepting thread, and a finished handler's thread is joined by the
/// next one to finish (at most one waits to be joined). Stopping does not poll: the
/// accepting thread is woken by a connection of the server's own.
///
/// What [`shutdown`](Self::shutdown) reports as an error, after everything is stopped:
/// - a handler that panicked, with its connection's peer address and the panic message;
/// - a handler that returned an error before the shutdown began, except for the peer
///   going away (`ConnectionReset`, `ConnectionAborted`, `BrokenPipe`, `UnexpectedEof`);
/// - a handler still running when the deadline (default 5 s,
///   [`TestServerBuilder::deadline`]) passed after its connection was shut down — stuck in
///   the test's own code, say. Like Go's `httptest.Server`, it is named by peer address and
///   age; its thread is left to finish on its own, never waited on forever.
///
/// Dropping the server does the same and writes these errors to stderr (drops never
/// panic); call `shutdown()` to fail the test on them.
///
/// With the `tokio` feature, `AsyncTestServer` is the same server for async handlers,
/// running them as tasks.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::net::TcpStream;
/// use isofix::TestServer;
///
/// # fn main() -> std::io::Result<()> {
/// // An echo server.
/// let mut server = TestServer::start(|mut conn: TcpStream| {
///     std::io::copy(&mut conn.try_clone()?, &mut conn).map(drop)
/// })?;
/// let mut client = TcpStream::connect(server.addr())?;
/// client.write_all(b"hello\n")?;
/// let mut line = String::new();
/// BufReader::new(&client).read_line(&mut line)?;
/// assert_eq!(line, "hello\n");
/// server.shutdown()?; // the echo blocked in read() returns; its thread is joined
/// # Ok(())
/// # }
/// ```
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    deadline: Duration,
}

/// What the server's threads share.
struct Shared {
    stopping: AtomicBool,
    state: Mutex<State>,
    /// Signalled whenever a handler finishes.
    finished: Condvar,
}

#[derive(Default)]
struct State {
    conns: Connections<JoinHandle<()>>,
    /// The thread of the handler that finished last, joined by the next one to finish.
    unjoined: Option<JoinHandle<()>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TestServer {
    /// Starts a server on a fresh [`EphemeralTcp`] (`127.0.0.1`, port picked by the kernel)
    /// that runs `handler` for each connection.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::TcpStream;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::TestServer::start(|mut conn: TcpStream| conn.write_all(b"hi"))?;
    /// let mut reply = String::new();
    /// TcpStream::connect(server.addr())?.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "hi");
    /// # Ok(())
    /// # }
    /// # use std::io::Write;
    /// ```
    pub fn start<F>(handler: F) -> io::Result<TestServer>
    where
        F: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
    {
        Self::builder().start(handler)
    }

    /// Options: the listener to serve on, the shutdown deadline.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::TestServer::builder()
    ///     .deadline(Duration::from_secs(1))
    ///     .start(|_conn| Ok(()))?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::new()
    }

    pub(crate) fn serve(
        listener: EphemeralTcp,
        deadline: Duration,
        handler: Arc<Handler>,
    ) -> io::Result<TestServer> {
        let addr = listener.addr();
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            finished: Condvar::new(),
        });
        let listener = listener.into_listener();
        listener.set_nonblocking(false).context(
            || format!("make test server listener on {addr} blocking"),
            "",
        )?;
        let for_acceptor = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("isofix-server-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &for_acceptor, &handler))
            .context(
                || format!("start the accepting thread of the test server on {addr}"),
                "the process may be out of threads or memory",
            )?;
        Ok(TestServer {
            addr,
            shared,
            acceptor: Some(acceptor),
            deadline,
        })
    }

    /// The address the server listens on, e.g. `127.0.0.1:41234`.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::TestServer::start(|_conn| Ok(()))?;
    /// std::net::TcpStream::connect(server.addr())?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `scheme://host:port` for this server, e.g. `http://127.0.0.1:41234`.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::TestServer::start(|_conn| Ok(()))?;
    /// assert_eq!(server.url("http"), format!("http://{}", server.addr()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self, scheme: &str) -> String {
        url(scheme, self.addr)
    }

    /// How many connections are being handled right now (accepted, handler not finished).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::TestServer::start(|_conn| Ok(()))?;
    /// assert_eq!(server.connections(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connections(&self) -> usize {
        self.shared.state().conns.len()
    }

    /// Stops the server: stops accepting (the port is free when this returns), shuts down
    /// every live connection (`shutdown(2)` both ways, so the handler's blocked reads
    /// return, and `SO_LINGER` 0, so the peer sees the end — as end of file or as a reset —
    /// even while it writes), and joins every thread, waiting at most the
    /// deadline for handlers. Returns an error listing every handler that panicked, failed
    /// or is stuck (see the type's docs). A second call returns `Ok(())`.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::TcpStream;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut server = isofix::TestServer::start(|_conn| panic!("handler bug"))?;
    /// let mut client = TcpStream::connect(server.addr())?;
    /// client.read_to_end(&mut Vec::new())?; // the handler has dropped the connection
    /// let err = server.shutdown().unwrap_err();
    /// assert!(err.to_string().contains("handler bug"), "{err}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(&mut self) -> io::Result<()> {
        let Some(acceptor) = self.acceptor.take() else {
            return Ok(());
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which sees `stopping` and returns.
        let woken = TcpStream::connect(connectable(self.addr));
        let _ = acceptor.join();
        drop(woken);

        let deadline = Instant::now() + self.deadline;
        let mut state = self.shared.state();
        state.conns.shut_down_all();
        while !state.conns.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .shared
                .finished
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // Detached: each finishes on its own, and removes itself then.
        drop(
            state
                .conns
                .give_up(self.deadline, "left to finish on its own"),
        );
        let unjoined = state.unjoined.take();
        let report = state.conns.report(self.addr);
        drop(state);
        if let Some(thread) = unjoined {
            let _ = thread.join();
        }
        report
    }
}

/// Accepts until the server stops, starting a handler thread per connection.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, handler: &Arc<Handler>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            // Most likely the wake-up connection: reset it (`SO_LINGER` 0) rather than close
            // it, so no `TIME_WAIT` entry is left behind for each server stopped.
            if let Ok((stream, _)) = accepted {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            }
            return;
        }
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if shared.state().conns.accept_failed(&e) => continue,
            Err(_) => return,
        };
        let second = match stream.try_clone() {
            Ok(second) => second,
            Err(e) => {
                shared.state().conns.failed(format!(
                    "connection from {peer} dropped: cannot track it: {e}"
                ));
                continue;
            }
        };
        let handler = Arc::clone(handler);
        // Held while the thread starts, so that the thread finds its entry when it ends.
        shared.state().conns.add(peer, second, |id| {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("isofix-conn-{}", peer.port()))
                .spawn(move || handle(id, peer, stream, &shared, &*handler))
        });
    }
}

/// Runs the handler for one connection, then records how it ended.
fn handle(id: u64, peer: SocketAddr, stream: TcpStream, shared: &Shared, handler: &Handler) {
    let ended = catch_unwind(AssertUnwindSafe(|| handler(stream)));
    let failure = server_conns::failure(peer, ended, shared.stopping.load(Ordering::SeqCst));
    let mut state = shared.state();
    let previous = match state.conns.finished(id, failure) {
        Some(me) => state.unjoined.replace(me),
        None => None, // detached by a shutdown that gave up on it
    };
    drop(state);
    shared.finished.notify_all();
    if let Some(previous) = previous {
        let _ = previous.join();
    }
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("connections", &self.connections())
            .field("running", &self.acceptor.is_some())
            .finish()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            let _ = writeln!(io::stderr(), "{e}");
        }
    }
}
