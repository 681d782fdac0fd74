//! The classic flaky patterns under parallel load, next to their isofix versions.
//!
//! Run with `cargo run -p isofix-demo` or `cargo isofix demo`. Each row runs many workers at once for a
//! fixed time and counts what went wrong; nothing is simulated but the start-up delay of
//! a server, which is the race window real test suites have.
//!
//! - *pick a free port, bind later*: bind port 0, note the port, close it, start the server
//!   a millisecond later on that port. Any other test that binds port 0 in that window may
//!   be handed the same port, and the server then fails with "address in use".
//! - *`EphemeralTcp`*: the same test, but the port is never released: the live listener is
//!   kept, so the server's slow start cannot lose it.
//! - *shared fixed temp path*: every worker uses one directory under the temp dir; they
//!   delete each other's files and read each other's data.
//! - *`IsolatedDir`*: the same work in a private directory per worker.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use isofix::{EphemeralTcp, IsolatedDir};

/// Concurrent workers per port row: a busy `cargo test` or nextest run on a CI machine.
const PORT_WORKERS: usize = 64;
/// How long a server takes to start after its port was chosen.
const SERVER_START: Duration = Duration::from_millis(1);
const PORT_ROW_TIME: Duration = Duration::from_secs(2);
const DIR_WORKERS: usize = 8;
const DIR_ROW_TIME: Duration = Duration::from_secs(1);

/// What one row measured.
struct Row {
    pattern: &'static str,
    attempts: u64,
    failures: u64,
    example: Option<String>,
}

/// Runs `attempt` on `workers` threads until `time` is up; an `Err` counts as a failure.
fn run_row(
    pattern: &'static str,
    workers: usize,
    time: Duration,
    attempt: impl Fn(usize) -> io::Result<()> + Sync,
) -> Row {
    let attempts = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let example = std::sync::Mutex::new(None);
    let deadline = Instant::now() + time;
    std::thread::scope(|s| {
        for worker in 0..workers {
            let (attempts, failures, example, attempt) = (&attempts, &failures, &example, &attempt);
            s.spawn(move || {
                while Instant::now() < deadline {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = attempt(worker) {
                        failures.fetch_add(1, Ordering::Relaxed);
                        example
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| e.to_string());
                    }
                }
            });
        }
    });
    Row {
        pattern,
        attempts: attempts.into_inner(),
        failures: failures.into_inner(),
        example: example.into_inner().unwrap_or_else(|p| p.into_inner()),
    }
}

/// One request against a freshly started server: connect, send a byte, read it back.
/// The server resets the connection on close so that no TIME_WAIT entries pile up and
/// starve the rest of the machine of ports.
fn serve_one(listener: &TcpListener) -> io::Result<()> {
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    socket2::SockRef::from(&server).set_linger(Some(Duration::ZERO))?;
    client.write_all(b"x")?;
    let mut byte = [0u8; 1];
    server.read_exact(&mut byte)?;
    Ok(())
}

fn pick_then_bind(_worker: usize) -> io::Result<()> {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    std::thread::sleep(SERVER_START);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    serve_one(&listener)
}

fn ephemeral_tcp(_worker: usize) -> io::Result<()> {
    let srv = EphemeralTcp::bind()?;
    std::thread::sleep(SERVER_START);
    serve_one(srv.listener())
}

/// Writes this worker's id into `dir/data`, reads it back and cleans up, as a test would.
fn use_dir(dir: &Path, worker: usize) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("data");
    let mine = format!("worker {worker}");
    std::fs::write(&file, &mine)?;
    let read = std::fs::read_to_string(&file)?;
    if read != mine {
        return Err(io::Error::new(
            io::ErrorKind::Other,
            format!("read {read:?}, wrote {mine:?}"),
        ));
    }
    std::fs::remove_dir_all(dir)
}

/// Runs every row and prints the table: attempts and failures per pattern, and an example
/// of each failure. It takes about six seconds.
///
/// ```no_run
/// isofix_demo::run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run() -> io::Result<()> {
    let shared = std::env::temp_dir().join(format!("isofix-flake-demo-{}", std::process::id()));
    let rows = [
        run_row(
            "pick a free port, bind later",
            PORT_WORKERS,
            PORT_ROW_TIME,
            pick_then_bind,
        ),
        run_row(
            "isofix EphemeralTcp",
            PORT_WORKERS,
            PORT_ROW_TIME,
            ephemeral_tcp,
        ),
        run_row("shared fixed temp path", DIR_WORKERS, DIR_ROW_TIME, |w| {
            use_dir(&shared, w)
        }),
        run_row("isofix IsolatedDir", DIR_WORKERS, DIR_ROW_TIME, |w| {
            let dir = IsolatedDir::new()?;
            use_dir(&dir.join("work"), w)?;
            dir.close()
        }),
    ];
    // The racy row may leave the shared directory behind; it is ours to remove.
    let _ = std::fs::remove_dir_all(&shared);

    println!(
        "{PORT_WORKERS} workers per port row ({} ms server start), {DIR_WORKERS} per directory row\n",
        SERVER_START.as_millis()
    );
    println!("{:<30} {:>10} {:>10}", "pattern", "attempts", "failures");
    for row in &rows {
        println!(
            "{:<30} {:>10} {:>10}",
            row.pattern, row.attempts, row.failures
        );
    }
    println!();
    for row in rows.iter().filter(|r| r.failures > 0) {
        if let Some(e) = &row.example {
            println!("{}: e.g. {e}", row.pattern);
        }
    }
    Ok(())
}
