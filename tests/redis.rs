//! Real `redis-server` instances, many at once, each on its own reserved port with its data
//! in its own directory. `redis-server` comes from Debian's `redis-server` package, which
//! CI installs. Without it the tests skip, saying so — unless `ISOFIX_REQUIRE_REDIS` is set
//! (as CI sets it), when they fail.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use isofix::{ChildGuard, IsolatedDir, ReservedPort};

const STARTUP: Duration = Duration::from_secs(60);

/// Whether `redis-server` can be run; prints why not, or panics if it is required.
fn redis_available() -> bool {
    match Command::new("redis-server").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        result => {
            let why = format!(
                "skipped: redis-server cannot be run here ({result:?}); install \
                               the Debian package redis-server"
            );
            assert!(std::env::var_os("ISOFIX_REQUIRE_REDIS").is_none(), "{why}");
            eprintln!("{why}");
            false
        }
    }
}

/// A running redis-server on a reserved port, its data in an isolated directory.
struct Redis {
    // Dropped in this order: the server, then its port and its data.
    server: ChildGuard,
    port: ReservedPort,
    data: IsolatedDir,
}

impl Redis {
    fn start() -> Redis {
        let port = ReservedPort::tcp().unwrap();
        let data = IsolatedDir::new().unwrap();
        let mut server = ChildGuard::spawn(
            Command::new("redis-server")
                .args(["--bind", &port.ip().to_string()])
                .args(["--port", &port.port().to_string()])
                .arg("--dir")
                .arg(data.path())
                .args(["--daemonize", "no", "--save", "", "--appendonly", "no"]),
        )
        .unwrap();
        server.wait_listening(port.addr(), STARTUP).unwrap();
        Redis { server, port, data }
    }

    /// Sends one command; the reply is read from what this returns.
    fn send(&self, args: &[&str]) -> BufReader<TcpStream> {
        let mut conn = TcpStream::connect(self.port.addr()).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        conn.write_all(request.as_bytes()).unwrap();
        BufReader::new(conn)
    }

    /// Sends one command and returns the first `lines` lines of the reply.
    fn call_lines(&self, args: &[&str], lines: usize) -> Vec<String> {
        let mut reply = self.send(args);
        (0..lines).map(|_| line(&mut reply)).collect()
    }

    /// Sends one command and returns its reply: a status line, or a bulk string's value.
    fn call(&self, args: &[&str]) -> String {
        let mut reply = self.send(args);
        let first = line(&mut reply);
        if first.starts_with('$') {
            line(&mut reply)
        } else {
            first
        }
    }
}

/// The next line of a reply, without its line break.
fn line(reply: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reply.read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

/// Starts `n` instances at once, writes a value of its own into each, and reads every
/// value back: each test talks to its own server, never to another's.
fn instances_in_parallel(n: usize) {
    if !redis_available() {
        return;
    }
    let servers: Vec<Redis> = std::thread::scope(|s| {
        let started: Vec<_> = (0..n).map(|_| s.spawn(Redis::start)).collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, redis) in servers.iter().enumerate() {
        assert_eq!(redis.call(&["PING"]), "+PONG");
        let mine = format!("{}-{i}", redis.port.port());
        assert_eq!(redis.call(&["SET", "owner", &mine]), "+OK");
    }
    for (i, redis) in servers.iter().enumerate() {
        assert_eq!(
            redis.call(&["GET", "owner"]),
            format!("{}-{i}", redis.port.port())
        );
        let dir = redis.call_lines(&["CONFIG", "GET", "dir"], 5);
        assert_eq!(dir.last().map(String::as_str), redis.data.path().to_str());
    }
    for redis in servers {
        let pid = redis.server.id();
        let status = redis.server.stop().unwrap();
        // redis exits cleanly on SIGTERM.
        assert!(status.success(), "redis {pid}: {status:?}");
    }
}

#[test]
fn four_instances_at_once() {
    instances_in_parallel(4);
}

#[test]
fn four_more_instances_at_once() {
    instances_in_parallel(4);
}

#[test]
fn eight_instances_at_once() {
    instances_in_parallel(8);
}

#[test]
fn a_redis_that_cannot_start_fails_at_once_with_its_reason() {
    if !redis_available() {
        return;
    }
    let port = ReservedPort::tcp().unwrap();
    let mut server = ChildGuard::spawn(
        Command::new("redis-server")
            .args(["--port", &port.port().to_string()])
            .args(["--no-such-option", "1"]),
    )
    .unwrap();
    let err = server
        .wait_listening(port.addr(), Duration::from_secs(3600))
        .unwrap_err();
    assert!(err.to_string().contains("no-such-option"), "{err}");
}
