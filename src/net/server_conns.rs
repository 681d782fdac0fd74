//! The connections of a test server, tracked the same way whether their handlers run on
//! threads ([`TestServer`](super::TestServer)) or on tokio tasks (`AsyncTestServer`): what
//! is live, how each one ended, how a shutdown reaches them, and the error that reports
//! the handlers that panicked, failed or are stuck.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::error::error;

/// The live connections of one server and the failures seen so far. `H` is what runs a
/// handler: a thread's or a task's handle.
pub(crate) struct Connections<H> {
    next_id: u64,
    live: HashMap<u64, Conn<H>>,
    failures: Vec<String>,
    /// Whether a shutdown gave up on a handler.
    stuck: bool,
}

/// A live connection.
struct Conn<H> {
    peer: SocketAddr,
    since: Instant,
    /// A second handle on the handler's socket, to shut it down.
    stream: TcpStream,
    /// `None` once a shutdown gave up on the handler.
    runner: Option<H>,
}

impl<H> Default for Connections<H> {
    fn default() -> Self {
        Connections {
            next_id: 0,
            live: HashMap::new(),
            failures: Vec::new(),
            stuck: false,
        }
    }
}

impl<H> Connections<H> {
    /// Tracks the connection from `peer` (`stream` being a second handle on its socket)
    /// and starts its handler with `start(id)`; the handler reports its end with
    /// [`finished`](Self::finished)`(id, ..)`. Hold the lock on `self` while calling this,
    /// so that a handler that ends at once still finds its entry.
    pub(crate) fn add(
        &mut self,
        peer: SocketAddr,
        stream: TcpStream,
        start: impl FnOnce(u64) -> io::Result<H>,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        match start(id) {
            Ok(runner) => {
                self.live.insert(
                    id,
                    Conn {
                        peer,
                        since: Instant::now(),
                        stream,
                        runner: Some(runner),
                    },
                );
            }
            Err(e) => self.failures.push(format!(
                "connection from {peer} dropped: its handler could not start: {e}"
            )),
        }
    }

    /// Records that the handler of connection `id` ended, with `failure` if it failed, and
    /// hands back its runner (`None` if a shutdown gave up on it).
    pub(crate) fn finished(&mut self, id: u64, failure: Option<String>) -> Option<H> {
        if let Some(failure) = failure {
            self.failures.push(failure);
        }
        self.live.remove(&id).and_then(|conn| conn.runner)
    }

    /// Records that accepting failed with `e`; `true` if the server should accept on
    /// (a connection that went away before it was accepted, or a signal).
    pub(crate) fn accept_failed(&mut self, e: &io::Error) -> bool {
        if matches!(
            e.kind(),
            ErrorKind::ConnectionAborted | ErrorKind::Interrupted
        ) {
            return true;
        }
        self.failures
            .push(format!("accept failed, stopped accepting: {e}"));
        false
    }

    /// Records a failure of the server's own, e.g. a connection it could not track.
    pub(crate) fn failed(&mut self, failure: String) {
        self.failures.push(failure);
    }

    /// How many handlers are running.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The runners of the live handlers.
    #[cfg(feature = "tokio")]
    pub(crate) fn runners(&self) -> impl Iterator<Item = &H> {
        self.live.values().filter_map(|conn| conn.runner.as_ref())
    }

    /// Shuts every live connection down (`shutdown(2)` both ways), so that the handlers'
    /// blocked reads return, and sets `SO_LINGER` 0 on it.
    pub(crate) fn shut_down_all(&self) {
        for conn in self.live.values() {
            shut_down(&conn.stream);
        }
    }

    /// Gives up on every handler still running `waited` after its connection was shut
    /// down: names each one (peer and age) in the report, saying what becomes of it
    /// (`fate`), and hands back its runner, to be detached or cancelled. The entries stay
    /// until the handlers end.
    pub(crate) fn give_up(&mut self, waited: Duration, fate: &str) -> Vec<H> {
        let mut runners = Vec::new();
        for conn in self.live.values_mut() {
            let Some(runner) = conn.runner.take() else {
                continue;
            };
            runners.push(runner);
            self.stuck = true;
            self.failures.push(format!(
                "handler of the connection from {} still running {waited:?} after it was shut \
                 down (open for {:?}); {fate}",
                conn.peer,
                conn.since.elapsed()
            ));
        }
        runners
    }

    /// The report of a shutdown of the server on `addr`: `Ok(())`, or an error listing
    /// every failure recorded since the last report.
    pub(crate) fn report(&mut self, addr: SocketAddr) -> io::Result<()> {
        let stuck = std::mem::take(&mut self.stuck);
        let failures = std::mem::take(&mut self.failures);
        if failures.is_empty() {
            return Ok(());
        }
        let mut list = String::new();
        for failure in &failures {
            let _ = write!(list, "\n  - {failure}");
        }
        Err(error(
            if stuck {
                ErrorKind::TimedOut
            } else {
                ErrorKind::Other
            },
            format_args!("shut down test server on {addr}: {list}"),
            if stuck {
                "a handler blocked outside its connection (a lock, a channel, a sleep) does \
                 not return when the connection is shut down; give it a way out"
            } else {
                "the handler's panic or error above is the test's failure"
            },
        ))
    }
}

/// Shuts `stream` down both ways, so that a blocked read returns, with a reset on close
/// (`SO_LINGER` 0): a peer still writing into a full window would otherwise wait minutes
/// for the kernel to give up on the orphaned socket, and no `TIME_WAIT` is left.
pub(crate) fn shut_down(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}

/// What went wrong with the handler of the connection from `peer`, given how it ended
/// (`Err` holds a panic's payload); `None` if nothing did. An error after the shutdown
/// began, or one that means the peer went away, is no failure.
pub(crate) fn failure(
    peer: SocketAddr,
    ended: std::thread::Result<io::Result<()>>,
    stopping: bool,
) -> Option<String> {
    match ended {
        Ok(Ok(())) => None,
        Ok(Err(e)) if stopping || peer_left(&e) => None,
        Ok(Err(e)) => Some(format!("handler of the connection from {peer} failed: {e}")),
        Err(panic) => Some(format!(
            "handler of the connection from {peer} panicked: {}",
            panic_message(&*panic)
        )),
    }
}

/// Whether `e` means the client went away, which is no failure of the server's.
fn peer_left(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    }
}
