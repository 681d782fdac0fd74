//! `EphemeralUdp` on real sockets: many live sockets at once, echo, connected pairs, IPv6
//! where the host has it, error messages, tokio.

#[path = "support/sockets.rs"]
mod sockets;

use std::error::Error;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::thread;
use std::time::Duration;

use isofix::EphemeralUdp;
use sockets::{distinct_ports, other_host_refused_clearly, OTHER_HOST};

const THREADS: usize = 32;

/// Loopback datagrams are not lost in practice, but if one were, the test should fail with
/// `WouldBlock`/`TimedOut` rather than hang: a safety net, never a wait for something.
const SAFETY_NET: Option<Duration> = Some(Duration::from_secs(20));

/// Whether this host can bind the IPv6 loopback, asked of std rather than of isofix.
fn ipv6_available() -> bool {
    sockets::ipv6_available(UdpSocket::bind)
}

/// Answers one datagram on `socket` in a thread by sending it back to its sender.
fn spawn_echo(socket: UdpSocket) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        socket.set_read_timeout(SAFETY_NET)?;
        let mut buf = [0; 512];
        let (n, from) = socket.recv_from(&mut buf)?;
        socket.send_to(&buf[..n], from)?;
        Ok(())
    })
}

fn echo_round_trip(server: EphemeralUdp, client: &UdpSocket, message: &[u8]) -> io::Result<()> {
    let server_addr = server.addr();
    let echo = spawn_echo(server.into_socket());
    client.set_read_timeout(SAFETY_NET)?;
    client.send_to(message, server_addr)?;
    let mut buf = [0; 512];
    let (n, from) = client.recv_from(&mut buf)?;
    echo.join().expect("echo thread panicked")?;
    assert_eq!(&buf[..n], message);
    assert_eq!(from, server_addr);
    Ok(())
}

#[test]
fn many_threads_bind_distinct_live_ports_and_echo() -> io::Result<()> {
    let ports = distinct_ports(THREADS, |i, all_bound| {
        let server = EphemeralUdp::bind()?;
        let port = server.port();
        // Every socket is live when the ports are compared: none was released.
        all_bound.wait();
        let client = EphemeralUdp::bind()?;
        let message = format!("hello from thread {i} to port {port}");
        echo_round_trip(server, &client, message.as_bytes())?;
        Ok([port])
    })?;
    assert_eq!(ports.len(), THREADS);
    Ok(())
}

#[test]
fn pair_is_connected_both_ways() -> Result<(), Box<dyn Error>> {
    let (client, server) = EphemeralUdp::pair()?;
    assert_ne!(client.port(), server.port());
    assert_eq!(client.peer_addr()?, server.addr());
    assert_eq!(server.peer_addr()?, client.addr());
    client.set_read_timeout(SAFETY_NET)?;
    server.set_read_timeout(SAFETY_NET)?;

    let mut buf = [0; 64];
    client.send(b"request")?;
    let n = server.recv(&mut buf)?;
    assert_eq!(&buf[..n], b"request");
    server.send(b"response")?;
    let n = client.recv(&mut buf)?;
    assert_eq!(&buf[..n], b"response");
    Ok(())
}

#[test]
fn pairs_from_many_threads_are_distinct() -> io::Result<()> {
    let ports = distinct_ports(THREADS, |i, all_bound| {
        let (a, b) = EphemeralUdp::pair()?;
        all_bound.wait();
        b.set_read_timeout(SAFETY_NET)?;
        let message = format!("pair {i}");
        a.send(message.as_bytes())?;
        let mut buf = [0; 64];
        let n = b.recv(&mut buf)?;
        assert_eq!(&buf[..n], message.as_bytes());
        Ok([a.port(), b.port()])
    })?;
    assert_eq!(ports.len(), 2 * THREADS);
    Ok(())
}

#[test]
fn accessors_agree_with_the_kernel() -> io::Result<()> {
    let udp = EphemeralUdp::bind()?;
    assert_eq!(udp.addr(), udp.local_addr()?);
    assert_eq!(udp.addr().ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(udp.port(), udp.socket().local_addr()?.port());
    let addr = udp.addr();
    let socket = UdpSocket::from(udp);
    assert_eq!(socket.local_addr()?, addr);
    Ok(())
}

#[test]
fn ipv6_binds_and_echoes_where_available() -> io::Result<()> {
    if !ipv6_available() {
        let err = EphemeralUdp::bind_v6().expect_err("std could not bind [::1] but isofix did");
        assert!(err.to_string().contains("hint: "), "{err}");
        return Ok(());
    }
    let server = EphemeralUdp::bind_v6()?;
    assert_eq!(server.addr().ip(), Ipv6Addr::LOCALHOST);
    let client = EphemeralUdp::bind_ip(Ipv6Addr::LOCALHOST)?;
    echo_round_trip(server, &client, b"over IPv6")
}

#[test]
fn binding_an_address_of_another_host_fails_clearly() {
    other_host_refused_clearly(EphemeralUdp::bind_ip(OTHER_HOST), "UDP socket");
}

#[test]
fn debug_names_the_address() -> io::Result<()> {
    let udp = EphemeralUdp::bind()?;
    let debug = format!("{udp:?}");
    assert!(debug.starts_with("EphemeralUdp(UdpSocket {"), "{debug}");
    assert!(debug.contains(&udp.addr().to_string()), "{debug}");
    Ok(())
}

#[cfg(feature = "tokio")]
mod tokio_conversions {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_tasks_echo_through_converted_pairs() -> io::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..THREADS {
            let (client, server) = EphemeralUdp::pair()?;
            let (client, server) = (client.into_tokio()?, server.into_tokio()?);
            tasks.spawn(async move {
                let echo = tokio::spawn(async move {
                    let mut buf = [0; 64];
                    let n = server.recv(&mut buf).await?;
                    server.send(&buf[..n]).await?;
                    io::Result::Ok(())
                });
                let message = format!("task {i}");
                client.send(message.as_bytes()).await?;
                let mut buf = [0; 64];
                let n = client.recv(&mut buf).await?;
                echo.await.expect("echo task panicked")?;
                assert_eq!(&buf[..n], message.as_bytes());
                io::Result::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task panicked")?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn bind_tokio_round_trips() -> io::Result<()> {
        let server = EphemeralUdp::bind_tokio().await?;
        let client = EphemeralUdp::bind_tokio().await?;
        let server_addr = server.local_addr()?;
        assert!(server_addr.ip().is_loopback());
        client.send_to(b"ping", server_addr).await?;
        let mut buf = [0; 16];
        let (n, from) = server.recv_from(&mut buf).await?;
        assert_eq!((&buf[..n], from), (&b"ping"[..], client.local_addr()?));
        Ok(())
    }

    #[test]
    fn into_tokio_outside_a_runtime_is_an_error() -> io::Result<()> {
        let udp = EphemeralUdp::bind()?;
        let addr = udp.addr();
        let msg = udp.into_tokio().unwrap_err().to_string();
        assert!(
            msg.contains(&format!("UDP socket on {addr} into a tokio socket")),
            "{msg}"
        );
        assert!(msg.contains("no tokio runtime"), "{msg}");
        assert!(msg.contains("hint: "), "{msg}");
        Ok(())
    }
}
