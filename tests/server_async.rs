//! `AsyncTestServer`: the tokio variant of `TestServer`, on both runtime flavors — tracked
//! connections, clean shutdown, reported failures, stuck handlers cancelled, no leaks.
#![cfg(feature = "tokio")]

#[path = "support/child.rs"]
mod child;
#[cfg(target_os = "linux")]
#[path = "proc_support/mod.rs"]
mod procs;
#[path = "support/server.rs"]
mod servers;

use std::io::{self, ErrorKind};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use isofix::{AsyncTestServer, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

async fn echo(mut conn: TcpStream) -> io::Result<()> {
    let (mut reader, mut writer) = conn.split();
    tokio::io::copy(&mut reader, &mut writer).await.map(drop)
}

/// Sends `byte` and reads it back, so the echo handler is known to be running.
async fn round_trip(client: &mut TcpStream, byte: u8) {
    client.write_all(&[byte]).await.unwrap();
    let mut back = [0];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(back, [byte]);
}

/// Closes `client` with a reset (`SO_LINGER` 0): no `TIME_WAIT` is left behind.
fn reset(client: TcpStream) {
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// Asserts that the server ended `client`'s connection: a read sees the end of the stream
/// or a reset.
async fn assert_ended(client: &mut TcpStream) {
    match client.read(&mut [0; 8]).await {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the connection is still open: {other:?}"),
    }
}

/// Runs each named `async fn` of this file as a test on a `current_thread` runtime and
/// again on a `multi_thread` one, in modules named after the flavor.
macro_rules! on_both_flavors {
    ($($test:ident),* $(,)?) => {
        mod current_thread {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test().await
                }
            )*
        }
        mod multi_thread {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test().await
                }
            )*
        }
    };
}

on_both_flavors!(
    an_echo_server_is_a_few_lines,
    shutdown_ends_handlers_blocked_in_read,
    a_panicking_handler_is_reported_with_its_peer,
    a_failing_handler_is_reported_but_a_leaving_peer_is_not,
    an_error_caused_by_the_shutdown_is_no_failure,
    a_handler_awaiting_forever_is_named_and_cancelled,
    dropping_the_server_stops_it_too,
    a_client_writing_while_the_server_shuts_down,
);

async fn an_echo_server_is_a_few_lines() {
    let mut server = AsyncTestServer::start(|mut conn: TcpStream| async move {
        let (mut reader, mut writer) = conn.split();
        tokio::io::copy(&mut reader, &mut writer).await.map(drop)
    })
    .unwrap();
    let mut client = TcpStream::connect(server.addr()).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut back = [0; 5];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello");
    assert_eq!(server.url("ws"), format!("ws://{}", server.addr()));
    // The server and its shutdown can move to another task.
    tokio::spawn(async move { server.shutdown().await })
        .await
        .unwrap()
        .unwrap();
}

async fn shutdown_ends_handlers_blocked_in_read() {
    let mut server = AsyncTestServer::start(echo).unwrap();
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        round_trip(&mut client, i).await;
        clients.push(client);
    }
    assert_eq!(server.connections(), 3);
    server.shutdown().await.unwrap();
    assert_eq!(server.connections(), 0);
    for client in &mut clients {
        // The server shut the connection down: the client sees the end, not a hang.
        assert_ended(client).await;
    }
    server.shutdown().await.unwrap();
}

async fn a_panicking_handler_is_reported_with_its_peer() {
    let mut server =
        AsyncTestServer::start(|_conn| async { panic!("the handler has a bug") }).unwrap();
    let mut client = TcpStream::connect(server.addr()).await.unwrap();
    let peer = client.local_addr().unwrap();
    let _ = client.read_to_end(&mut Vec::new()).await;
    let err = server.shutdown().await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("panicked: the handler has a bug"), "{msg}");
    assert!(msg.contains(&peer.to_string()), "{msg}");
}

async fn a_failing_handler_is_reported_but_a_leaving_peer_is_not() {
    let mut server = AsyncTestServer::start(|mut conn: TcpStream| async move {
        let mut byte = [0];
        conn.read_exact(&mut byte).await?;
        if byte == [b'!'] {
            return Err(io::Error::new(ErrorKind::InvalidData, "bad request byte"));
        }
        conn.read_exact(&mut byte).await.map(drop) // the client resets: not a failure
    })
    .unwrap();
    let mut bad = TcpStream::connect(server.addr()).await.unwrap();
    bad.write_all(b"!").await.unwrap();
    let _ = bad.read_to_end(&mut Vec::new()).await;
    let mut leaving = TcpStream::connect(server.addr()).await.unwrap();
    leaving.write_all(b"a").await.unwrap();
    reset(leaving);
    let err = server.shutdown().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    let msg = err.to_string();
    assert!(msg.contains("bad request byte"), "{msg}");
    assert_eq!(msg.matches("handler of the connection").count(), 1, "{msg}");
}

/// A handler that turns the end of its connection into an error of its own, as protocol
/// parsers do: when the shutdown ended the connection, that is no failure.
async fn an_error_caused_by_the_shutdown_is_no_failure() {
    let (started, mut running) = tokio_mpsc::unbounded_channel();
    let mut server = AsyncTestServer::start(move |mut conn: TcpStream| {
        let _ = started.send(());
        async move {
            let mut request = [0; 2];
            match conn.read(&mut request).await? {
                0 => Err(io::Error::new(ErrorKind::InvalidData, "no request")),
                _ => Ok(()),
            }
        }
    })
    .unwrap();
    let client = TcpStream::connect(server.addr()).await.unwrap();
    running.recv().await.unwrap();
    server.shutdown().await.unwrap();
    reset(client);
}

/// A handler awaiting something that never completes, and not its connection: shutdown
/// names it, returns, and cancels its task.
async fn a_handler_awaiting_forever_is_named_and_cancelled() {
    let (started, mut running) = tokio_mpsc::unbounded_channel();
    let mut server = TestServer::builder()
        .deadline(Duration::from_millis(50))
        .start_async(move |_conn| {
            let (dropped, gone) = oneshot::channel::<()>();
            started.send(gone).unwrap();
            async move {
                let _held_until_cancelled = dropped;
                std::future::pending::<io::Result<()>>().await
            }
        })
        .unwrap();
    let client = TcpStream::connect(server.addr()).await.unwrap();
    let gone = running.recv().await.unwrap();
    let err = hang_guard(server.shutdown()).await.unwrap_err();
    servers::assert_names_stuck(&err, client.local_addr().unwrap());
    assert!(err.to_string().contains("its task is cancelled"), "{err}");
    // The task is dropped: what its handler held is released.
    assert!(hang_guard(gone).await.is_err());
}

/// A handler that blocks its worker thread in synchronous code (only `multi_thread` can
/// run anything else meanwhile): shutdown still returns and names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_blocking_its_thread_is_named_and_shutdown_returns() {
    let (release, blocked) = mpsc::channel::<()>();
    let blocked = Arc::new(Mutex::new(blocked));
    let (started, mut running) = tokio_mpsc::unbounded_channel();
    let mut server = TestServer::builder()
        .deadline(Duration::from_millis(50))
        .start_async(move |_conn| {
            let blocked = Arc::clone(&blocked);
            let _ = started.send(());
            async move {
                let _ = blocked.lock().unwrap().recv();
                Ok(())
            }
        })
        .unwrap();
    let client = TcpStream::connect(server.addr()).await.unwrap();
    running.recv().await.unwrap();
    let stopped = hang_guard(server.shutdown()).await;
    // Lets the handler return, so that the runtime can shut down even if an assertion fails.
    drop(release);
    servers::assert_names_stuck(&stopped.unwrap_err(), client.local_addr().unwrap());
}

#[test]
fn starting_outside_a_runtime_is_a_clear_error() {
    let err = AsyncTestServer::start(|_conn| async { Ok(()) }).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no tokio runtime is running"), "{msg}");
    assert!(msg.contains("#[tokio::test]"), "{msg}");
}

async fn dropping_the_server_stops_it_too() {
    let server = AsyncTestServer::start(echo).unwrap();
    let mut client = TcpStream::connect(server.addr()).await.unwrap();
    round_trip(&mut client, 7).await;
    drop(server);
    hang_guard(assert_ended(&mut client)).await;
}

/// Dropping the server cannot wait for anything, but what it already knows — here a
/// handler's panic — goes to stderr, as `TestServer`'s drop does.
#[test]
fn dropping_the_server_writes_the_failures_it_knows_to_stderr() {
    const DROP: &str = "drop";
    if child::role().as_deref() == Some(DROP) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server =
                AsyncTestServer::start(|_conn| async { panic!("a bug seen by the drop") }).unwrap();
            let mut client = TcpStream::connect(server.addr()).await.unwrap();
            // The server holds the connection open until the panic is recorded.
            let _ = client.read_to_end(&mut Vec::new()).await;
            drop(server);
        });
        return;
    }
    let finished = child::spawn(
        "dropping_the_server_writes_the_failures_it_knows_to_stderr",
        DROP,
        &[("", "")][..0],
    )
    .finish();
    finished.assert_success();
    assert!(
        finished.stderr.contains("panicked: a bug seen by the drop"),
        "{}",
        finished.stderr
    );
}

/// The leak class of the issue: a client keeps writing while the server shuts down. The
/// server must end cleanly every time, and the client must see an error (the connection
/// shut down or reset) — never a hang, never a descriptor closed under a live writer.
async fn a_client_writing_while_the_server_shuts_down() {
    for round in 0..200 {
        let (started, mut running) = tokio_mpsc::unbounded_channel();
        let mut server = AsyncTestServer::start(move |mut conn: TcpStream| {
            let _ = started.send(());
            async move {
                tokio::io::copy(&mut conn, &mut tokio::io::sink())
                    .await
                    .map(drop)
            }
        })
        .unwrap();
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        let writer = tokio::spawn(async move {
            let chunk = [b'x'; 16 * 1024];
            loop {
                if let Err(e) = client.write_all(&chunk).await {
                    reset(client);
                    return e;
                }
            }
        });
        running.recv().await.unwrap();
        server
            .shutdown()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let err = writer.await.unwrap();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ),
            "round {round}: {err:?}"
        );
    }
}

/// Awaits `future`, which completes at once unless the server is broken, failing the test
/// instead of hanging it if it does not complete within a minute.
async fn hang_guard<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("waited a minute for what should have happened at once")
}

/// 10,000 start/serve/stop cycles on each runtime flavor, in a process of their own, leave
/// its descriptor and thread counts where they were (counted after the runtime started),
/// after each cycle.
/// Every client resets its connection (`SO_LINGER` 0), so the loop leaves no `TIME_WAIT`
/// behind for the tests running beside it.
#[cfg(target_os = "linux")]
#[test]
fn ten_thousand_cycles_leak_nothing() {
    child::in_own_process("ten_thousand_cycles_leak_nothing", || {
        let flavors = [
            tokio::runtime::Builder::new_current_thread(),
            tokio::runtime::Builder::new_multi_thread(),
        ];
        for mut flavor in flavors {
            let runtime = flavor.worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(cycles());
        }
    });
}

#[cfg(target_os = "linux")]
async fn cycles() {
    let (fds, threads) = (procs::fds(), procs::threads());
    for i in 0..10_000u32 {
        let mut server = AsyncTestServer::start(echo).unwrap();
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        round_trip(&mut client, i as u8).await;
        if i % 2 == 0 {
            // The server shuts a live connection down.
            server.shutdown().await.unwrap();
            reset(client);
        } else {
            reset(client);
            server.shutdown().await.unwrap();
        }
        // Checked every cycle: once `shutdown()` returns, the listener and every socket of
        // the server are closed, not just closed later.
        assert_eq!(procs::fds(), fds, "cycle {i}");
        assert_eq!(procs::threads(), threads, "cycle {i}");
    }
}
