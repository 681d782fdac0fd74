//! `EphemeralUnix` and `EphemeralUnixDatagram`: short private paths, removed on drop, and
//! swept after their process is killed.

#![cfg(unix)]

#[path = "support/child.rs"]
mod child;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use isofix::{EphemeralUnix, EphemeralUnixDatagram, IsolatedDir};

/// The most bytes a socket's path has after the temp dir, as `EphemeralUnix` documents.
const PATH_AFTER_TEMP_MAX: usize = 47;
/// The longest socket path macOS takes (104 bytes with the final NUL), the tighter limit.
const SUN_PATH_MAX: usize = 103;
/// What a child says before each path it reports.
const PATH_PREFIX: &str = "path=";

/// Plays a role when this binary is started as a child by one of the tests below; does
/// nothing in the test run itself.
#[test]
fn child_role() {
    let Some(role) = child::role() else {
        return;
    };
    let report = |path: &Path| child::say(&format!("{PATH_PREFIX}{}", path.display()));
    match role.as_str() {
        // Binds a listener and a datagram socket, and holds them until stdin is closed.
        "hold" => {
            let (stream, datagram) = (
                EphemeralUnix::bind().unwrap(),
                EphemeralUnixDatagram::bind().unwrap(),
            );
            report(stream.path());
            report(datagram.path());
            child::wait_for_stdin_to_close();
        }
        // Binds (sweeping, as the process's first) and drops a listener.
        "bind" => report(EphemeralUnix::bind().unwrap().path()),
        // Lists what `cargo isofix clean` would remove.
        "list" => {
            for path in IsolatedDir::list_stale().unwrap() {
                report(&path);
            }
        }
        // Binds at the longest temp dir the documentation promises to fit.
        "longest" => {
            let server = EphemeralUnix::bind().unwrap();
            let _client = server.connect().unwrap();
            report(server.path());
        }
        other => panic!("unknown role {other}"),
    }
}

/// A short private directory of the test's own, for its children's `TMPDIR`: their socket
/// directories and registry are then shared with no other test's. Removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let name = format!("nu{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let path = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap();
        Scratch(path)
    }

    fn spawn(&self, role: &str) -> child::Child {
        child::spawn("child_role", role, &[("TMPDIR", &self.0)])
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_path(child: &mut child::Child) -> PathBuf {
    let said = child.read_marked();
    match said.strip_prefix(PATH_PREFIX) {
        Some(path) => PathBuf::from(path),
        None => panic!("expected a path, the child said {said:?}"),
    }
}

fn reported(out: &child::Finished) -> HashSet<PathBuf> {
    out.said()
        .filter_map(|said| said.strip_prefix(PATH_PREFIX))
        .map(PathBuf::from)
        .collect()
}

#[test]
fn a_killed_process_socket_directories_go_with_the_next_process_and_a_live_one_stays() {
    let scratch = Scratch::new();
    let mut dead = scratch.spawn("hold");
    let dead_dirs: HashSet<PathBuf> = (0..2)
        .map(|_| read_path(&mut dead).parent().unwrap().to_owned())
        .collect();
    let mut live = scratch.spawn("hold");
    let live_sockets = [read_path(&mut live), read_path(&mut live)];
    dead.kill();
    assert!(
        dead_dirs.iter().all(|dir| dir.is_dir()),
        "SIGKILL must leave the directories behind"
    );

    let listed = scratch.spawn("list").finish();
    listed.assert_success();
    assert_eq!(reported(&listed), dead_dirs, "{listed:?}");
    scratch.spawn("bind").finish().assert_success();

    for dir in &dead_dirs {
        assert!(!dir.exists(), "{} was not swept", dir.display());
    }
    UnixStream::connect(&live_sockets[0]).expect("a live process's listener was swept");
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"x", &live_sockets[1])
        .expect("a live process's datagram socket was swept");
    live.finish().assert_success();
    for socket in &live_sockets {
        assert!(!socket.parent().unwrap().exists(), "{}", socket.display());
    }
}

/// The documented bound, with a real bind: a temp dir of `SUN_PATH_MAX -
/// PATH_AFTER_TEMP_MAX` bytes takes any socket path, and `EphemeralUnix` binds in it.
#[test]
fn a_temp_dir_of_the_documented_length_fits() {
    let scratch = Scratch::new();
    let room = SUN_PATH_MAX - PATH_AFTER_TEMP_MAX;
    let used = scratch.0.as_os_str().len() + 1;
    if used >= room {
        println!(
            "skipped: the system temp dir {} is too long to build a temp dir of {room} bytes",
            std::env::temp_dir().display()
        );
        return;
    }
    let temp = scratch.0.join("t".repeat(room - used));
    assert_eq!(temp.as_os_str().len(), room);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&temp)
        .unwrap();
    let longest = temp.join("x".repeat(PATH_AFTER_TEMP_MAX - 1));
    assert_eq!(longest.as_os_str().len(), SUN_PATH_MAX);
    drop(UnixListener::bind(&longest).expect("the longest documented path binds"));

    let out = child::spawn("child_role", "longest", &[("TMPDIR", &temp)]).finish();
    out.assert_success();
    let path = reported(&out).into_iter().next().expect("a path");
    assert!(path.starts_with(&temp), "{}", path.display());
    assert!(path.as_os_str().len() <= SUN_PATH_MAX, "{}", path.display());
}

#[test]
fn a_listener_serves_and_its_path_goes_with_it() {
    let server = EphemeralUnix::bind().unwrap();
    let path = server.path().to_owned();
    let dir = path.parent().unwrap().to_owned();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", dir.display());
    let mut client = UnixStream::connect(&path).unwrap();
    let (mut conn, _) = server.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0; 4];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    drop(server);
    assert!(!path.exists() && !dir.exists(), "{}", dir.display());
}

#[test]
fn paths_are_short_and_distinct() {
    let servers: Vec<EphemeralUnix> = (0..64).map(|_| EphemeralUnix::bind().unwrap()).collect();
    let paths: HashSet<_> = servers.iter().map(|s| s.path().to_owned()).collect();
    assert_eq!(paths.len(), servers.len());
    let tmp = std::env::temp_dir().as_os_str().len();
    for path in &paths {
        // <temp>/isofix-<uid>/u<id><n>/s
        assert!(
            path.as_os_str().len() <= tmp + PATH_AFTER_TEMP_MAX,
            "{}",
            path.display()
        );
    }
}

#[test]
fn close_reports_and_removes() {
    let server = EphemeralUnix::bind().unwrap();
    let path = server.path().to_owned();
    server.close().unwrap();
    assert!(!path.exists());
}

#[test]
fn a_datagram_socket_receives_and_its_path_goes_with_it() {
    let server = EphemeralUnixDatagram::bind().unwrap();
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(b"ping", server.path()).unwrap();
    let mut buf = [0; 8];
    let len = server.recv(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"ping");
    let path = server.path().to_owned();
    drop(server);
    assert!(!path.exists());
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn tokio_listeners_share_the_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = EphemeralUnix::bind().unwrap();
    let listener = server.to_tokio().unwrap();
    let mut client = tokio::net::UnixStream::connect(server.path())
        .await
        .unwrap();
    let (mut conn, _) = listener.accept().await.unwrap();
    client.write_all(b"hi").await.unwrap();
    let mut buf = [0; 2];
    conn.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi");
}

#[cfg(feature = "tokio")]
#[test]
fn to_tokio_outside_a_runtime_is_an_error() {
    let err = EphemeralUnix::bind().unwrap().to_tokio().unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}
