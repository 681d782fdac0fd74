//! A websocket-style echo server on plain tokio TCP, and tests that run it in parallel.
//!
//! Run it with `cargo run --example ws_echo --features tokio`, its tests with
//! `cargo test --all-features --example ws_echo` or `cargo nextest run --all-features -E 'binary(ws_echo)'`.
//!
//! The server accepts the opening handshake of RFC 6455 (`GET` with `Upgrade: websocket`
//! and a `Sec-WebSocket-Key`, answered by `101 Switching Protocols` and the matching
//! `Sec-WebSocket-Accept`), then echoes newline-delimited text messages. It is
//! websocket-*style*: the handshake is the real one, the framing after it is not RFC 6455.
//!
//! What it shows:
//! - `main` and every test start their own server on an [`EphemeralTcp`] turned into a
//!   tokio listener with `into_tokio()`: no port is picked, released and raced for, so
//!   the tests run in parallel without colliding.
//! - Two tests share something fixed — a broadcast log at one path under the system temp
//!   dir, as a service with a configured log file would have. They take turns through the
//!   group `ws-example-broadcast-log`: one with `#[isofix::serial_group]` under
//!   `#[tokio::test]`, which holds the group until the test's runtime and the server tasks
//!   on it are gone, one with `SerialGuard::lock_async` inside the body, which waits without
//!   blocking the runtime. They take turns across threads (`cargo test`) and processes
//!   (`cargo nextest run`).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use isofix::EphemeralTcp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The GUID RFC 6455 appends to the client's key before hashing it.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// A handshake longer than this many header lines is refused.
const MAX_HEADERS: usize = 64;

/// A running echo server; dropping it stops the server and all its connections.
struct EchoServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Serves on `listener`; with `log`, appends every message it echoes to that file.
    fn start(listener: TcpListener, log: Option<PathBuf>) -> io::Result<EchoServer> {
        let addr = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, log.map(Arc::from)));
        Ok(EchoServer { addr, task })
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, log: Option<Arc<Path>>) {
    // Connections live in this set, so aborting the server task drops them all. An accept
    // error (out of file descriptors, say) stops the server.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        // A failed connection ends only itself: its client sees the close.
        connections.spawn(handle(stream, log.clone()));
    }
}

async fn handle(stream: TcpStream, log: Option<Arc<Path>>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let head = read_head(&mut read).await?;
    let upgrade = header(&head, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = header(&head, "sec-websocket-key");
    let get = head[0].starts_with("GET ");
    let (true, true, Some(key)) = (get, upgrade, key) else {
        return write.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    );
    write.write_all(response.as_bytes()).await?;
    let mut line = String::new();
    while read.read_line(&mut line).await? > 0 {
        if let Some(log) = &log {
            // One small append per message; the file is opened with O_APPEND so that
            // concurrent connections never overwrite each other's lines.
            let mut file = std::fs::OpenOptions::new().append(true).open(log)?;
            io::Write::write_all(&mut file, line.as_bytes())?;
        }
        write.write_all(line.as_bytes()).await?;
        line.clear();
    }
    Ok(())
}

/// Reads an HTTP head up to its blank line: the request or status line (so the head is
/// never empty), then the headers.
async fn read_head(read: &mut BufReader<OwnedReadHalf>) -> io::Result<Vec<String>> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 || head.len() > MAX_HEADERS {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad handshake"));
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() && !head.is_empty() {
            return Ok(head);
        }
        head.push(line);
    }
}

/// The value of header `name` (any case) in `head`.
fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// A client that has completed the handshake.
struct Client {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr, key: &str) -> io::Result<Client> {
        let (read, mut write) = TcpStream::connect(addr).await?.into_split();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        write.write_all(request.as_bytes()).await?;
        let mut read = BufReader::new(read);
        let head = read_head(&mut read).await?;
        let accept = header(&head, "sec-websocket-accept");
        if !head[0].starts_with("HTTP/1.1 101 ") || accept != Some(accept_key(key).as_str()) {
            let msg = format!("handshake refused: {head:?}");
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, msg));
        }
        Ok(Client { read, write })
    }

    /// Sends one message and returns the server's answer.
    async fn send(&mut self, msg: &str) -> io::Result<String> {
        self.write.write_all(format!("{msg}\n").as_bytes()).await?;
        let mut answer = String::new();
        if self.read.read_line(&mut answer).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(answer.trim_end().to_owned())
    }
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455, section 4.2.2).
fn accept_key(key: &str) -> String {
    base64(&sha1(format!("{key}{WS_GUID}").as_bytes()))
}

/// SHA-1 (RFC 3174). Only for the handshake: SHA-1 is not fit for security any more.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (wi, word) in w.iter_mut().zip(block.chunks_exact(4)) {
            *wi = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.into_iter().enumerate() {
            let (f, k) = match i {
                0..20 => ((b & c) | (!b & d), 0x5A827999),
                20..40 => (b ^ c ^ d, 0x6ED9EBA1),
                40..60 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = [f, e, k, wi]
                .into_iter()
                .fold(a.rotate_left(5), u32::wrapping_add);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0; 20];
    for (o, x) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with padding (RFC 4648, section 4).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let c = char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]);
            out.push(if i <= chunk.len() { c } else { '=' });
        }
    }
    out
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let server = EchoServer::start(EphemeralTcp::bind()?.into_tokio()?, None)?;
    println!("echo server on ws://{}", server.addr);
    let mut clients = JoinSet::new();
    for id in 0..3u8 {
        let addr = server.addr;
        clients.spawn(async move {
            let mut client = Client::connect(addr, &base64(&[id; 16])).await?;
            let answer = client.send(&format!("hello from client {id}")).await?;
            io::Result::Ok(format!("client {id} got {answer:?}"))
        });
    }
    // Every client ends after one message; the timeout only guards against a bug.
    let all = async {
        while let Some(result) = clients.join_next().await {
            println!("{}", result??);
        }
        io::Result::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(5), all).await??;
    drop(server); // stops the server task and its connections
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::future::Future;

    use isofix::SerialGuard;
    use tokio::io::AsyncReadExt;

    use super::*;

    /// The group of the tests that use the broadcast log.
    const LOG_GROUP: &str = "ws-example-broadcast-log";

    /// A safety net, not a wait: a hung test fails instead of hanging the suite.
    async fn bounded<T>(work: impl Future<Output = io::Result<T>>) -> T {
        let result = tokio::time::timeout(Duration::from_secs(30), work).await;
        result.expect("timed out").expect("I/O error")
    }

    async fn own_server() -> EchoServer {
        let listener = EphemeralTcp::bind_tokio().await.unwrap();
        EchoServer::start(listener, None).unwrap()
    }

    #[test]
    fn accept_key_matches_rfc_6455() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" // RFC 6455, section 1.3
        );
        let abc: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(abc, "a9993e364706816aba3e25717850c26c9cd0d89d");
        let encoded: Vec<_> = ["", "f", "fo", "foo", "foob"]
            .map(|s| base64(s.as_bytes()))
            .into();
        assert_eq!(encoded, ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg=="]);
    }

    // The next three run in parallel, each with its own server on its own port.

    #[tokio::test]
    async fn echoes_messages_in_order() {
        let server = own_server().await;
        bounded(async {
            let mut client = Client::connect(server.addr, "dGhlIHNhbXBsZSBub25jZQ==").await?;
            for msg in ["one", "two", "three"] {
                assert_eq!(client.send(msg).await?, msg);
            }
            Ok(())
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_concurrent_clients() {
        let server = own_server().await;
        let mut clients = JoinSet::new();
        for id in 0..8u8 {
            let addr = server.addr;
            clients.spawn(bounded(async move {
                let mut client = Client::connect(addr, &base64(&[id; 16])).await?;
                client.send(&format!("client {id}")).await
            }));
        }
        let mut answers = clients.join_all().await;
        answers.sort();
        assert_eq!(
            answers,
            (0..8).map(|id| format!("client {id}")).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn refuses_a_request_without_upgrade() {
        let server = own_server().await;
        let answer = bounded(async {
            let mut stream = TcpStream::connect(server.addr).await?;
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
                .await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            Ok(answer)
        })
        .await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    }

    // The next two share one fixed file, so they take turns through `LOG_GROUP`.

    /// The broadcast log: one fixed path for every run on this machine.
    fn log_path() -> PathBuf {
        std::env::temp_dir().join("isofix-ws-example-broadcast.log")
    }

    /// Held only while a test is inside `LOG_GROUP`: a second test inside fails to take it.
    /// It is a kernel lock that is only ever tried, never waited for, so a run killed
    /// inside leaves no stale lock behind; the file goes when the test leaves the group.
    struct Inside {
        path: PathBuf,
        _file: fs::File,
    }

    impl Inside {
        fn enter() -> Inside {
            let path = log_path().with_extension("inside");
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap();
            if let Err(e) = file.try_lock() {
                panic!("{}: {e}: another test is inside the group", path.display());
            }
            Inside { path, _file: file }
        }
    }

    impl Drop for Inside {
        fn drop(&mut self) {
            // Removed while still locked: a test that entered beside this one would have
            // found the lock taken already, so removing it splits nothing it guards.
            let _ = fs::remove_file(&self.path);
        }
    }

    /// Empties the log, has `clients` each send `messages` through a fresh server, and
    /// checks that the log holds exactly what was sent.
    async fn broadcast_and_check_log(clients: u8, messages: &[&str]) {
        let _inside = Inside::enter();
        fs::write(log_path(), "").unwrap();
        let listener = EphemeralTcp::bind().unwrap().into_tokio().unwrap();
        let server = EchoServer::start(listener, Some(log_path())).unwrap();
        let mut tasks = JoinSet::new();
        for id in 0..clients {
            let addr = server.addr;
            let messages: Vec<_> = messages.iter().map(|m| format!("{id}: {m}")).collect();
            tasks.spawn(bounded(async move {
                let mut client = Client::connect(addr, &base64(&[id; 16])).await?;
                for msg in &messages {
                    assert_eq!(&client.send(msg).await?, msg);
                }
                Ok(messages)
            }));
        }
        let mut sent = tasks.join_all().await.concat();
        let log = fs::read_to_string(log_path()).unwrap();
        let mut logged: Vec<_> = log.lines().collect();
        sent.sort();
        logged.sort();
        assert_eq!(
            logged, sent,
            "the log holds another test's lines or lost ours"
        );
        fs::remove_file(log_path()).unwrap();
    }

    #[tokio::test]
    #[isofix::serial_group("ws-example-broadcast-log", timeout = 30)]
    async fn logs_one_client() {
        broadcast_and_check_log(1, &["alpha", "beta", "gamma"]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logs_several_clients() {
        let _log = bounded(SerialGuard::lock_async(LOG_GROUP)).await;
        broadcast_and_check_log(4, &["red", "green"]).await;
    }
}
