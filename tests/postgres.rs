//! Real PostgreSQL servers, several at once, each on its own reserved port with its cluster
//! in its own directory. The binaries come from Debian's `postgresql` package (in
//! `/usr/lib/postgresql/<version>/bin`), which CI installs. `postgres` refuses to run as
//! root, so as root (CI) `initdb` and `postgres` run as the unprivileged uid 65534 through
//! util-linux's `setpriv`, in a directory handed to that uid. Where this cannot be done the
//! tests skip, saying why — unless `ISOFIX_REQUIRE_POSTGRES` is set (as CI sets it), when
//! they fail.

#![cfg(unix)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use isofix::{ChildGuard, IsolatedDir, ReservedPort};

#[path = "support/nobody.rs"]
mod nobody;

const STARTUP: Duration = Duration::from_secs(120);
/// Time a server gets to shut down cleanly on `SIGTERM`; generous, so that a loaded
/// machine never turns a clean stop into a `SIGKILL`.
const SHUTDOWN: Duration = Duration::from_secs(120);

/// How to run the PostgreSQL binaries here.
struct Binaries {
    bin: PathBuf,
    /// Runs a server binary as uid 65534 (as root), or as this user.
    as_other_user: bool,
}

impl Binaries {
    /// The newest installed version's binaries, if they can be run; prints why not, or
    /// panics if they are required.
    fn find() -> Option<Binaries> {
        match Binaries::try_find() {
            Ok(found) => Some(found),
            Err(why) => {
                let why = format!("skipped: {why}");
                assert!(
                    std::env::var_os("ISOFIX_REQUIRE_POSTGRES").is_none(),
                    "{why}"
                );
                eprintln!("{why}");
                None
            }
        }
    }

    fn try_find() -> Result<Binaries, String> {
        let root = Path::new("/usr/lib/postgresql");
        let newest = std::fs::read_dir(root)
            .map_err(|e| format!("no PostgreSQL in {} ({e})", root.display()))?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version: u32 = entry.file_name().to_str()?.parse().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .filter(|(_, bin)| bin.join("postgres").is_file())
            .max();
        let (_, bin) = newest.ok_or_else(|| {
            format!(
                "no {}/<version>/bin/postgres; install the Debian package postgresql",
                root.display()
            )
        })?;
        let as_other_user = nobody::is_root();
        let found = Binaries { bin, as_other_user };
        let version = found.command("postgres").arg("--version").output();
        match version {
            Ok(out) if out.status.success() => Ok(found),
            other => Err(format!(
                "{} --version cannot be run{} ({other:?})",
                found.bin.join("postgres").display(),
                if as_other_user {
                    " as uid 65534 through setpriv (util-linux)"
                } else {
                    ""
                }
            )),
        }
    }

    /// A command running `program` of the bin directory as the server's user.
    fn command(&self, program: &str) -> Command {
        self.run_as_server(self.bin.join(program))
    }

    /// A command running `program` as the server's user.
    fn run_as_server(&self, program: impl AsRef<OsStr>) -> Command {
        if self.as_other_user {
            let mut command = nobody::setpriv_as(nobody::NOBODY);
            command.arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

/// Panics with `what` and the command's output unless it succeeded.
fn check(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An isolated directory for a server, owned by the server's user.
fn server_dir(binaries: &Binaries) -> IsolatedDir {
    let dir = IsolatedDir::new().unwrap();
    if binaries.as_other_user {
        check(
            "hand the directory to the server's user",
            Command::new("chown")
                .arg(format!("{0}:{0}", nobody::NOBODY))
                .arg(dir.path())
                .output(),
        );
    }
    dir
}

/// A fresh cluster made by `initdb`, in `data` of an isolated directory: made once per
/// test and copied for each server, as `initdb` takes seconds.
fn init_cluster(binaries: &Binaries) -> IsolatedDir {
    let dir = server_dir(binaries);
    check(
        "initdb",
        binaries
            .command("initdb")
            .current_dir(dir.path())
            .args(["--username=postgres", "--auth=trust", "--no-sync"])
            .args(["--locale=C", "--encoding=UTF8", "--no-instructions"])
            .arg("-D")
            .arg(dir.join("data"))
            .output(),
    );
    dir
}

/// A running PostgreSQL server on a reserved port, its cluster in an isolated directory.
struct Postgres {
    // Dropped in this order: the server, then its port and its directory.
    server: ChildGuard,
    port: ReservedPort,
    dir: IsolatedDir,
    bin: PathBuf,
}

impl Postgres {
    /// A copy of `cluster` in a fresh directory, then `postgres` in the foreground on a
    /// reserved port, waited for until it accepts connections.
    fn start(binaries: &Binaries, cluster: &IsolatedDir) -> Postgres {
        let dir = server_dir(binaries);
        let data = dir.join("data");
        check(
            "copy the cluster",
            binaries
                .run_as_server("cp")
                .arg("-a")
                .arg(cluster.join("data"))
                .arg(&data)
                .output(),
        );
        let port = ReservedPort::tcp().unwrap();
        let mut server = ChildGuard::builder()
            .grace(SHUTDOWN)
            .spawn(
                binaries
                    .command("postgres")
                    .current_dir(dir.path())
                    .arg("-D")
                    .arg(&data)
                    .args(["-p", &port.port().to_string()])
                    // Its Unix socket beside the cluster, not in the shared /run/postgresql.
                    .arg("-k")
                    .arg(dir.path())
                    .arg("-c")
                    .arg(format!("listen_addresses={}", port.ip()))
                    .args(["-c", "fsync=off", "-c", "shared_buffers=16MB"]),
            )
            .unwrap();
        server.wait_listening(port.addr(), STARTUP).unwrap();
        let pg = Postgres {
            server,
            port,
            dir,
            bin: binaries.bin.clone(),
        };
        pg.wait_ready();
        pg
    }

    /// Waits until the server takes queries: it accepts connections some time before,
    /// refusing them with "the database system is starting up". Nothing announces the
    /// moment but the server's answers, so `pg_isready` asks, with growing pauses.
    fn wait_ready(&self) {
        let deadline = Instant::now() + STARTUP;
        let mut pause = Duration::from_millis(1);
        loop {
            let out = Command::new(self.bin.join("pg_isready"))
                .args(["-h", &self.port.ip().to_string()])
                .args(["-p", &self.port.port().to_string()])
                .args(["-U", "postgres", "-t", "60"])
                .output()
                .expect("run pg_isready");
            match out.status.code() {
                Some(0) => return,
                // 1: the server refuses connections, as while it starts.
                Some(1) if Instant::now() < deadline => {}
                _ => panic!(
                    "server on {} is not ready ({}: {}); its output:\n{}",
                    self.port.addr(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout).trim(),
                    self.server.output_tail(20)
                ),
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Runs `sql` with `psql` over TCP and returns its unaligned output.
    fn sql(&self, sql: &str) -> String {
        let out = check(
            "psql",
            Command::new(self.bin.join("psql"))
                .args(["-h", &self.port.ip().to_string()])
                .args(["-p", &self.port.port().to_string()])
                .args(["-U", "postgres", "-d", "postgres"])
                .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
                .env("PGCONNECT_TIMEOUT", "60")
                .output(),
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }
}

/// Starts `n` servers at once, writes a row of its own into each, and reads every row
/// back: each test talks to its own server, never to another's. Each then stops cleanly.
fn instances_in_parallel(n: usize) {
    let Some(binaries) = Binaries::find() else {
        return;
    };
    let cluster = init_cluster(&binaries);
    let servers: Vec<Postgres> = std::thread::scope(|s| {
        let started: Vec<_> = (0..n)
            .map(|_| s.spawn(|| Postgres::start(&binaries, &cluster)))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, pg) in servers.iter().enumerate() {
        let mine = format!("{}-{i}", pg.port.port());
        pg.sql(&format!(
            "CREATE TABLE owner (name text); INSERT INTO owner VALUES ('{mine}')"
        ));
    }
    for (i, pg) in servers.iter().enumerate() {
        assert_eq!(
            pg.sql("SELECT name FROM owner"),
            format!("{}-{i}", pg.port.port())
        );
        let data = pg.dir.join("data");
        assert_eq!(
            pg.sql("SHOW data_directory"),
            data.to_str().unwrap(),
            "server on {}",
            pg.port.addr()
        );
        assert_eq!(pg.sql("SHOW port"), pg.port.port().to_string());
    }
    for pg in servers {
        let pid = pg.server.id();
        let status = pg.server.stop().unwrap();
        // SIGTERM is PostgreSQL's smart shutdown: with no client left it exits cleanly
        // and removes its pid file.
        assert!(status.success(), "postgres {pid}: {status:?}");
        let pid_file = pg.dir.join("data").join("postmaster.pid");
        assert!(
            !pid_file.exists(),
            "{} is left after a clean stop",
            pid_file.display()
        );
    }
}

#[test]
fn three_instances_at_once() {
    instances_in_parallel(3);
}

#[test]
fn two_more_instances_at_once() {
    instances_in_parallel(2);
}

#[test]
fn a_postgres_that_cannot_start_fails_at_once_with_its_reason() {
    let Some(binaries) = Binaries::find() else {
        return;
    };
    let port = ReservedPort::tcp().unwrap();
    let missing = IsolatedDir::new().unwrap().join("no-cluster-here");
    let mut server = ChildGuard::spawn(
        binaries
            .command("postgres")
            .arg("-D")
            .arg(&missing)
            .args(["-p", &port.port().to_string()])
            .args([OsStr::new("-k"), missing.as_os_str()]),
    )
    .unwrap();
    let err = server
        .wait_listening(port.addr(), Duration::from_secs(3600))
        .unwrap_err();
    assert!(err.to_string().contains("no-cluster-here"), "{err}");
}
