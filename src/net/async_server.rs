use std::future::{poll_fn, Future};
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::addr::url;
use super::server_conns::{self, Connections};
use super::{EphemeralTcp, TestServerBuilder};

/// What an [`AsyncTestServer`] runs for each connection: the handler, called when its
/// task first runs, so that a panic while it makes its future is caught like any other.
pub(crate) type AsyncHandler =
    dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> + Send + Sync;

/// The tokio variant of [`TestServer`](super::TestServer) (feature `tokio`): a TCP server
/// for tests that runs each connection's handler as a task on the current runtime, tracks
/// every connection, and stops without leaking — [`shutdown`](Self::shutdown)`.await`
/// stops accepting, shuts down live connections so blocked reads return, waits for every
/// handler task up to a deadline, and reports what went wrong as an error.
///
/// Tasks are one per live connection plus one accepting task; the server starts no
/// thread. Stopping does not poll: the accepting task is cancelled.
///
/// What `shutdown().await` reports as an error, after everything is stopped — the same as
/// `TestServer::shutdown` does, in the same words:
/// - a handler that panicked, with its connection's peer address and the panic message;
/// - a handler that returned an error before the shutdown began, except for the peer
///   going away (`ConnectionReset`, `ConnectionAborted`, `BrokenPipe`, `UnexpectedEof`);
/// - a handler still running when the deadline (default 5 s,
///   [`TestServerBuilder::deadline`]) passed after its connection was shut down — awaiting
///   something that never completes, say. It is named by peer address and age, like Go's
///   `httptest.Server` does, and its task is cancelled (aborted): tokio drops it at its
///   next `.await`.
///
/// Dropping the server cannot wait: it cancels the accepting task, shuts every live
/// connection down and cancels its handler task, and writes the failures recorded so far
/// to stderr (drops never panic). What the cancelled handlers would still have reported
/// is lost, so await `shutdown()` to fail the test on them.
///
/// It needs a runtime with IO and time enabled (`#[tokio::test]` and `#[tokio::main]`
/// enable both) and works on the `current_thread` and `multi_thread` flavors alike. A
/// handler that blocks its thread in synchronous code (`std::thread::sleep`, a std
/// channel or lock) is named and cancelled like any stuck handler on `multi_thread`, but
/// it ends only when that code returns; on `current_thread` it blocks the only thread
/// there is, the test and its `shutdown()` included, so no library can stop it. Do
/// blocking work in `tokio::task::spawn_blocking`, or use the thread-based
/// [`TestServer`](super::TestServer).
///
/// ```
/// use isofix::AsyncTestServer;
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
/// use tokio::net::TcpStream;
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::io::Result<()> {
///     // An echo server.
///     let mut server = AsyncTestServer::start(|mut conn: TcpStream| async move {
///         let (mut reader, mut writer) = conn.split();
///         tokio::io::copy(&mut reader, &mut writer).await.map(drop)
///     })?;
///     let mut client = TcpStream::connect(server.addr()).await?;
///     client.write_all(b"hello\n").await?;
///     let mut line = String::new();
///     BufReader::new(&mut client).read_line(&mut line).await?;
///     assert_eq!(line, "hello\n");
///     server.shutdown().await // the echo blocked in read returns; its task has ended
/// }
/// ```
pub struct AsyncTestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// `None` once it has stopped.
    acceptor: Option<JoinHandle<()>>,
    /// Until a shutdown completes or the server is dropped.
    running: bool,
    deadline: Duration,
}

/// What the server's tasks share.
struct Shared {
    stopping: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conns: Connections<JoinHandle<()>>,
    /// The shutdown waiting for the handlers to end, woken whenever one does.
    waiter: Option<Waker>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AsyncTestServer {
    /// Starts a server on a fresh [`EphemeralTcp`] (`127.0.0.1`, port picked by the kernel)
    /// that runs `handler` as a task of the current runtime for each connection. Options
    /// (the listener, the deadline) are on [`TestServer::builder`](super::TestServer::builder),
    /// which ends with [`start_async`](TestServerBuilder::start_async).
    ///
    /// Fails with a clear error outside a tokio runtime.
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use tokio::net::TcpStream;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let server = isofix::AsyncTestServer::start(|mut conn: TcpStream| async move {
    ///         conn.write_all(b"hi").await
    ///     })?;
    ///     let mut reply = String::new();
    ///     TcpStream::connect(server.addr()).await?.read_to_string(&mut reply).await?;
    ///     assert_eq!(reply, "hi");
    ///     Ok(())
    /// }
    /// ```
    pub fn start<F, Fut>(handler: F) -> io::Result<AsyncTestServer>
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        TestServerBuilder::new().start_async(handler)
    }

    /// Boxes `handler`'s futures, and defers each call to the task that awaits it.
    pub(crate) fn boxed<F, Fut>(handler: F) -> Arc<AsyncHandler>
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Arc::new(move |stream| {
            let handler = Arc::clone(&handler);
            Box::pin(async move { handler(stream).await })
        })
    }

    pub(crate) fn serve(
        listener: EphemeralTcp,
        deadline: Duration,
        handler: Arc<AsyncHandler>,
    ) -> io::Result<AsyncTestServer> {
        let addr = listener.addr();
        let listener = listener.into_tokio()?;
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        let acceptor = tokio::spawn(accept_loop(listener, Arc::clone(&shared), handler));
        Ok(AsyncTestServer {
            addr,
            shared,
            acceptor: Some(acceptor),
            running: true,
            deadline,
        })
    }

    /// The address the server listens on, e.g. `127.0.0.1:41234`.
    ///
    /// ```
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let server = isofix::AsyncTestServer::start(|_conn| async { Ok(()) })?;
    ///     tokio::net::TcpStream::connect(server.addr()).await?;
    ///     Ok(())
    /// }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `scheme://host:port` for this server, e.g. `ws://127.0.0.1:41234`.
    ///
    /// ```
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let server = isofix::AsyncTestServer::start(|_conn| async { Ok(()) })?;
    ///     assert_eq!(server.url("ws"), format!("ws://{}", server.addr()));
    ///     Ok(())
    /// }
    /// ```
    pub fn url(&self, scheme: &str) -> String {
        url(scheme, self.addr)
    }

    /// How many connections are being handled right now (accepted, handler task not
    /// ended).
    ///
    /// ```
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let server = isofix::AsyncTestServer::start(|_conn| async { Ok(()) })?;
    ///     assert_eq!(server.connections(), 0);
    ///     Ok(())
    /// }
    /// ```
    pub fn connections(&self) -> usize {
        self.shared.state().conns.len()
    }

    /// Stops the server: cancels the accepting task (the port is free when this returns),
    /// shuts down every live connection (`shutdown(2)` both ways, so the handler's blocked
    /// reads return, and `SO_LINGER` 0, so the peer sees the end — as end of file or as a
    /// reset — even while it writes), and waits for every handler task, at most the
    /// deadline; those still running then are cancelled. Returns an error listing every
    /// handler that panicked, failed or was stuck (see the type's docs). A second call
    /// returns `Ok(())`. If this future is dropped before it completes, dropping the
    /// server finishes the job.
    ///
    /// ```
    /// use tokio::io::AsyncReadExt;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let mut server = isofix::AsyncTestServer::start(|_conn| async {
    ///         panic!("handler bug")
    ///     })?;
    ///     let mut client = tokio::net::TcpStream::connect(server.addr()).await?;
    ///     client.read_to_end(&mut Vec::new()).await?; // the handler dropped the connection
    ///     let err = server.shutdown().await.unwrap_err();
    ///     assert!(err.to_string().contains("handler bug"), "{err}");
    ///     Ok(())
    /// }
    /// ```
    pub async fn shutdown(&mut self) -> io::Result<()> {
        if !self.running {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.deadline;
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = &mut self.acceptor {
            acceptor.abort();
            // Once the cancelled task is dropped, so is the listener.
            match tokio::time::timeout_at(deadline, acceptor).await {
                Ok(_) => self.acceptor = None,
                Err(_) => self.shared.state().conns.failed(format!(
                    "the accepting task did not stop within {:?}: every thread of the \
                     runtime is busy (a handler blocking in synchronous code?)",
                    self.deadline
                )),
            }
        }

        self.shared.state().conns.shut_down_all();
        let all_ended = poll_fn(|cx| {
            let mut state = self.shared.state();
            if state.conns.is_empty() {
                Poll::Ready(())
            } else {
                state.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        let _ = tokio::time::timeout_at(deadline, all_ended).await;
        let mut state = self.shared.state();
        state.waiter = None;
        for task in state.conns.give_up(self.deadline, "its task is cancelled") {
            task.abort();
        }
        let report = state.conns.report(self.addr);
        drop(state);
        self.running = false;
        report
    }
}

/// Accepts until cancelled, starting a handler task per connection.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, handler: Arc<AsyncHandler>) {
    loop {
        let accepted = listener.accept().await;
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if shared.state().conns.accept_failed(&e) => continue,
            Err(_) => return,
        };
        // A second handle on the socket, to shut it down while the handler owns the stream.
        let second = match socket2::SockRef::from(&stream).try_clone() {
            Ok(second) => std::net::TcpStream::from(second),
            Err(e) => {
                shared.state().conns.failed(format!(
                    "connection from {peer} dropped: cannot track it: {e}"
                ));
                continue;
            }
        };
        let for_task = (Arc::clone(&shared), Arc::clone(&handler));
        // Held while the task starts, so that the task finds its entry when it ends.
        shared.state().conns.add(peer, second, move |id| {
            Ok(tokio::spawn(handle(
                id, peer, stream, for_task.0, for_task.1,
            )))
        });
    }
}

/// The task of one connection: runs the handler, then records how it ended.
async fn handle(
    id: u64,
    peer: SocketAddr,
    stream: TcpStream,
    shared: Arc<Shared>,
    handler: Arc<AsyncHandler>,
) {
    // Declared first, dropped last: also when the task is cancelled.
    let mut entry = Entry {
        id,
        shared,
        failure: None,
    };
    let mut running = handler(stream);
    let ended = poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| running.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(panic) => Poll::Ready(Err(panic)),
        },
    )
    .await;
    drop(running);
    let stopping = entry.shared.stopping.load(Ordering::SeqCst);
    entry.failure = server_conns::failure(peer, ended, stopping);
}

/// A connection's entry in the server's state, removed when its task ends — by returning
/// or by being cancelled.
struct Entry {
    id: u64,
    shared: Arc<Shared>,
    failure: Option<String>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        // Our own task's handle: dropping it detaches nothing that still runs.
        drop(state.conns.finished(self.id, self.failure.take()));
        let waiter = state.waiter.take();
        drop(state);
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl std::fmt::Debug for AsyncTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTestServer")
            .field("addr", &self.addr)
            .field("connections", &self.connections())
            .field("running", &self.running)
            .finish()
    }
}

impl Drop for AsyncTestServer {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = &self.acceptor {
            acceptor.abort();
        }
        let mut state = self.shared.state();
        state.conns.shut_down_all();
        for task in state.conns.runners() {
            task.abort();
        }
        let report = state.conns.report(self.addr);
        drop(state);
        if let Err(e) = report {
            let _ = writeln!(io::stderr(), "{e}");
        }
    }
}
