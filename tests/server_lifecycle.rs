//! `TestServer`: tracked connections, clean shutdown, reported failures, no leaks.

#[path = "support/child.rs"]
mod child;
#[cfg(target_os = "linux")]
#[path = "proc_support/mod.rs"]
mod procs;
#[path = "support/server.rs"]
mod servers;

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use isofix::TestServer;

fn echo(mut conn: TcpStream) -> io::Result<()> {
    io::copy(&mut conn.try_clone()?, &mut conn).map(drop)
}

/// Sends `byte` and reads it back, so the echo handler is known to be running.
fn round_trip(client: &mut TcpStream, byte: u8) {
    client.write_all(&[byte]).unwrap();
    let mut back = [0];
    client.read_exact(&mut back).unwrap();
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
fn assert_ended(client: &mut TcpStream) {
    match client.read(&mut [0; 8]) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the connection is still open: {other:?}"),
    }
}

#[test]
fn shutdown_ends_handlers_blocked_in_read() {
    let mut server = TestServer::start(echo).unwrap();
    let mut clients: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut client = TcpStream::connect(server.addr()).unwrap();
            round_trip(&mut client, i);
            client
        })
        .collect();
    assert_eq!(server.connections(), 3);
    server.shutdown().unwrap();
    assert_eq!(server.connections(), 0);
    for client in &mut clients {
        // The server shut the connection down: the client sees the end, not a hang.
        assert_ended(client);
    }
    server.shutdown().unwrap();
}

#[test]
fn a_panicking_handler_is_reported_with_its_peer() {
    let mut server = TestServer::start(|_conn| panic!("the handler has a bug")).unwrap();
    let mut client = TcpStream::connect(server.addr()).unwrap();
    let peer = client.local_addr().unwrap();
    let _ = client.read_to_end(&mut Vec::new());
    let err = server.shutdown().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("the handler has a bug"), "{msg}");
    assert!(msg.contains(&peer.to_string()), "{msg}");
}

#[test]
fn a_failing_handler_is_reported_but_a_leaving_peer_is_not() {
    let mut server = TestServer::start(|mut conn| {
        let mut byte = [0];
        conn.read_exact(&mut byte)?;
        if byte == [b'!'] {
            return Err(io::Error::new(ErrorKind::InvalidData, "bad request byte"));
        }
        conn.read_exact(&mut byte) // the client resets: not a failure
    })
    .unwrap();
    let mut bad = TcpStream::connect(server.addr()).unwrap();
    bad.write_all(b"!").unwrap();
    let _ = bad.read_to_end(&mut Vec::new());
    let mut leaving = TcpStream::connect(server.addr()).unwrap();
    leaving.write_all(b"a").unwrap();
    reset(leaving);
    let err = server.shutdown().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad request byte"), "{msg}");
    assert_eq!(msg.matches("handler of the connection").count(), 1, "{msg}");
}

#[test]
fn a_stuck_handler_is_named_and_never_waited_for_forever() {
    let (release, stuck) = mpsc::channel::<()>();
    let stuck = Arc::new(Mutex::new(stuck));
    let (started, running) = mpsc::channel();
    let mut server = TestServer::builder()
        .deadline(Duration::from_millis(50))
        .start(move |_conn| {
            started.send(()).unwrap();
            // Blocked on something other than its connection: shutdown cannot reach it.
            let _ = stuck.lock().unwrap().recv();
            Ok(())
        })
        .unwrap();
    let client = TcpStream::connect(server.addr()).unwrap();
    running.recv().unwrap();
    let err = server.shutdown().unwrap_err();
    servers::assert_names_stuck(&err, client.local_addr().unwrap());
    drop(release); // lets the detached handler finish
}

#[test]
fn dropping_the_server_stops_it_too() {
    let server = TestServer::start(echo).unwrap();
    let mut client = TcpStream::connect(server.addr()).unwrap();
    round_trip(&mut client, 7);
    drop(server);
    assert_ended(&mut client);
}

/// The leak class of the issue: a client keeps writing while the server shuts down. The
/// server must end cleanly every time, and the client must see an error (the connection
/// shut down or reset) — never a hang, never a descriptor closed under a live writer.
#[test]
fn a_client_writing_while_the_server_shuts_down() {
    for round in 0..200 {
        let (started, running) = mpsc::channel();
        let mut server = TestServer::start(move |mut conn| {
            let _ = started.send(());
            io::copy(&mut conn, &mut io::sink()).map(drop)
        })
        .unwrap();
        let mut client = TcpStream::connect(server.addr()).unwrap();
        let writer = std::thread::spawn(move || -> io::Error {
            let chunk = [b'x'; 16 * 1024];
            loop {
                if let Err(e) = client.write_all(&chunk) {
                    reset(client);
                    return e;
                }
            }
        });
        running.recv().unwrap();
        server
            .shutdown()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let err = writer.join().unwrap();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ),
            "round {round}: {err:?}"
        );
    }
}

/// 10,000 start/serve/stop cycles in a process of their own leave its descriptor and
/// thread counts where they were. Every client resets its connection (`SO_LINGER` 0), so
/// the loop leaves no `TIME_WAIT` behind for the tests running beside it.
#[cfg(target_os = "linux")]
#[test]
fn ten_thousand_cycles_leak_nothing() {
    child::in_own_process("ten_thousand_cycles_leak_nothing", || {
        let (fds, threads) = (procs::fds(), procs::threads());
        for i in 0..10_000u32 {
            let mut server = TestServer::start(echo).unwrap();
            let mut client = TcpStream::connect(server.addr()).unwrap();
            round_trip(&mut client, i as u8);
            if i % 2 == 0 {
                // The server shuts a live connection down.
                server.shutdown().unwrap();
                reset(client);
            } else {
                reset(client);
                server.shutdown().unwrap();
            }
        }
        assert_eq!(procs::fds(), fds);
        assert_eq!(procs::threads(), threads);
    });
}
