//! `EphemeralUnix` and `EphemeralUnixDatagram`: short private paths, removed on drop.

#![cfg(unix)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};

use isofix::{EphemeralUnix, EphemeralUnixDatagram};

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
        // <temp>/isofix-<uid>/u<16 hex>/s
        assert!(path.as_os_str().len() <= tmp + 40, "{}", path.display());
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
