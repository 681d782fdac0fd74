//! `EphemeralTcp` on real sockets: many live listeners at once, echo, URLs, builder
//! options read back from the kernel, IPv6 where the host has it, error messages, tokio.

#[path = "support/sockets.rs"]
mod sockets;

use std::error::Error;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, TcpListener};
use std::thread;

use isofix::EphemeralTcp;
use socket2::SockRef;
use sockets::{distinct_ports, other_host_refused_clearly, OTHER_HOST};

const THREADS: usize = 32;

/// Whether this host can bind the IPv6 loopback, asked of std rather than of isofix.
fn ipv6_available() -> bool {
    sockets::ipv6_available(TcpListener::bind)
}

/// Serves one connection on `listener` in a thread: reads to end of stream, writes it back.
fn spawn_echo(listener: TcpListener) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        let (mut conn, _) = listener.accept()?;
        let mut data = Vec::new();
        conn.read_to_end(&mut data)?;
        conn.write_all(&data)
    })
}

fn echo_round_trip(server: EphemeralTcp, message: &[u8]) -> io::Result<Vec<u8>> {
    let mut client = server.connect()?;
    let echo = spawn_echo(server.into_listener());
    client.write_all(message)?;
    client.shutdown(Shutdown::Write)?;
    let mut back = Vec::new();
    client.read_to_end(&mut back)?;
    echo.join().expect("echo thread panicked")?;
    Ok(back)
}

#[test]
fn many_threads_bind_distinct_live_ports_and_echo() -> io::Result<()> {
    let ports = distinct_ports(THREADS, |i, all_bound| {
        let server = EphemeralTcp::bind()?;
        let port = server.port();
        // Every listener is live when the ports are compared: none was released.
        all_bound.wait();
        let message = format!("hello from thread {i} on port {port}");
        let back = echo_round_trip(server, message.as_bytes())?;
        assert_eq!(back, message.as_bytes());
        Ok([port])
    })?;
    assert_eq!(ports.len(), THREADS);
    Ok(())
}

#[test]
fn accessors_agree_with_the_kernel() -> Result<(), Box<dyn Error>> {
    let server = EphemeralTcp::bind()?;
    assert_eq!(server.addr(), server.local_addr()?);
    assert_eq!(server.addr().ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(server.port(), server.listener().local_addr()?.port());

    let client = server.connect()?;
    assert_eq!(client.peer_addr()?, server.addr());
    // Deref reaches std's accept and incoming.
    let (_conn, peer) = server.accept()?;
    assert_eq!(peer, client.local_addr()?);
    let second = server.connect()?;
    let conn = server.incoming().next().expect("incoming never ends")?;
    assert_eq!(conn.peer_addr()?, second.local_addr()?);

    let addr = server.addr();
    let listener = server.into_listener();
    assert_eq!(listener.local_addr()?, addr);
    Ok(())
}

#[test]
fn url_formats_ipv4() -> io::Result<()> {
    let server = EphemeralTcp::bind()?;
    let port = server.port();
    assert_eq!(server.url("http"), format!("http://127.0.0.1:{port}"));
    assert_eq!(server.url("https://"), format!("https://127.0.0.1:{port}"));
    Ok(())
}

#[test]
fn ipv6_binds_echoes_and_formats_where_available() -> io::Result<()> {
    if !ipv6_available() {
        let err = EphemeralTcp::bind_v6().expect_err("std could not bind [::1] but isofix did");
        assert!(err.to_string().contains("hint: "), "{err}");
        return Ok(());
    }
    let server = EphemeralTcp::bind_v6()?;
    assert_eq!(server.addr().ip(), Ipv6Addr::LOCALHOST);
    let port = server.port();
    assert_eq!(server.url("http"), format!("http://[::1]:{port}"));
    assert_eq!(echo_round_trip(server, b"over IPv6")?, b"over IPv6");

    let via_ip = EphemeralTcp::bind_ip(Ipv6Addr::LOCALHOST)?;
    assert_eq!(via_ip.url("ws"), format!("ws://[::1]:{}", via_ip.port()));
    Ok(())
}

#[test]
fn nonblocking_option_is_applied() -> io::Result<()> {
    let server = EphemeralTcp::builder().nonblocking(true).bind()?;
    // Asked of the kernel first, so that a regression fails here instead of blocking below.
    #[cfg(unix)]
    assert!(SockRef::from(&server).nonblocking()?);
    assert_eq!(server.accept().unwrap_err().kind(), ErrorKind::WouldBlock);

    let blocking = EphemeralTcp::builder().nonblocking(false).bind()?;
    #[cfg(unix)]
    assert!(!SockRef::from(&blocking).nonblocking()?);
    // A queued connection is still accepted by the blocking listener.
    let _client = blocking.connect()?;
    blocking.accept()?;
    Ok(())
}

#[test]
fn reuse_address_option_is_applied() -> io::Result<()> {
    for reuse in [true, false] {
        let server = EphemeralTcp::builder().reuse_address(reuse).bind()?;
        assert_eq!(SockRef::from(&server).reuse_address()?, reuse);
    }
    Ok(())
}

#[test]
fn builder_ip_and_rebinding_give_distinct_ports() -> io::Result<()> {
    let builder = EphemeralTcp::builder().ip(Ipv4Addr::LOCALHOST).backlog(4);
    let a = builder.bind()?;
    let b = builder.bind()?;
    assert_eq!(a.addr().ip(), Ipv4Addr::LOCALHOST);
    assert_ne!(a.port(), b.port());
    assert_eq!(echo_round_trip(a, b"a")?, b"a");
    assert_eq!(echo_round_trip(b, b"b")?, b"b");
    Ok(())
}

/// The backlog a listening socket was given, as the kernel reports it: for a socket in
/// `LISTEN` state, `TCP_INFO`'s `tcpi_sacked` holds `sk_max_ack_backlog`.
#[cfg(target_os = "linux")]
fn kernel_backlog(listener: &TcpListener) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain integers, for which all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the fd is open for the borrow's duration, and `info`/`len` describe a
    // writable buffer of the size the kernel is told.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.tcpi_sacked)
}

#[cfg(target_os = "linux")]
#[test]
fn backlog_option_is_applied() -> io::Result<()> {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")?
        .trim()
        .parse()
        .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
    for requested in [1, 8, 100] {
        let server = EphemeralTcp::builder().backlog(requested).bind()?;
        assert_eq!(kernel_backlog(&server)?, requested.min(somaxconn));
    }
    let default = EphemeralTcp::bind()?;
    assert!(kernel_backlog(&default)? > 0);
    Ok(())
}

#[test]
fn binding_an_address_of_another_host_fails_clearly() {
    if !other_host_refused_clearly(EphemeralTcp::bind_ip(OTHER_HOST), "TCP listener") {
        return;
    }

    let builder_err = EphemeralTcp::builder()
        .ip(OTHER_HOST)
        .nonblocking(true)
        .bind()
        .unwrap_err();
    assert_eq!(builder_err.kind(), ErrorKind::AddrNotAvailable);

    if ipv6_available() {
        // 2001:db8::/32 is the IPv6 documentation prefix.
        let v6_err = EphemeralTcp::bind_ip("2001:db8::1".parse::<Ipv6Addr>().unwrap())
            .expect_err("documentation prefix bound");
        assert_eq!(v6_err.kind(), ErrorKind::AddrNotAvailable, "{v6_err}");
        assert!(v6_err.to_string().contains("[2001:db8::1]:0"), "{v6_err}");
        assert!(v6_err.to_string().contains("hint: "), "{v6_err}");
    }
}

#[test]
fn debug_names_the_address() -> io::Result<()> {
    let server = EphemeralTcp::bind()?;
    let debug = format!("{server:?}");
    assert!(debug.starts_with("EphemeralTcp(TcpListener {"), "{debug}");
    assert!(debug.contains(&server.addr().to_string()), "{debug}");
    let builder = format!("{:?}", EphemeralTcp::builder().backlog(3));
    assert!(builder.contains("backlog: 3"), "{builder}");
    Ok(())
}

#[cfg(feature = "tokio")]
mod tokio_conversions {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn async_echo_round_trip(
        listener: tokio::net::TcpListener,
        message: Vec<u8>,
    ) -> io::Result<()> {
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await?;
            let mut data = Vec::new();
            conn.read_to_end(&mut data).await?;
            conn.write_all(&data).await?;
            io::Result::Ok(())
        });
        let mut client = tokio::net::TcpStream::connect(addr).await?;
        client.write_all(&message).await?;
        client.shutdown().await?;
        let mut back = Vec::new();
        client.read_to_end(&mut back).await?;
        server.await.expect("server task panicked")?;
        assert_eq!(back, message);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_tasks_echo_through_converted_listeners() -> io::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..THREADS {
            let server = EphemeralTcp::bind()?;
            let message = format!("task {i} on {}", server.url("tcp")).into_bytes();
            let listener = server.into_tokio()?;
            tasks.spawn(async_echo_round_trip(listener, message));
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("echo task panicked")?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn bind_tokio_echoes() -> io::Result<()> {
        let listener = EphemeralTcp::bind_tokio().await?;
        assert!(listener.local_addr()?.ip().is_loopback());
        async_echo_round_trip(listener, b"bind_tokio".to_vec()).await
    }

    #[tokio::test]
    async fn builder_options_survive_conversion() -> io::Result<()> {
        let server = EphemeralTcp::builder().reuse_address(true).bind()?;
        let listener = server.into_tokio()?;
        assert!(SockRef::from(&listener).reuse_address()?);
        #[cfg(unix)]
        assert!(SockRef::from(&listener).nonblocking()?);
        async_echo_round_trip(listener, b"converted".to_vec()).await
    }

    #[tokio::test]
    async fn ipv6_converts_where_available() -> io::Result<()> {
        if !ipv6_available() {
            return Ok(());
        }
        let listener = EphemeralTcp::bind_v6()?.into_tokio()?;
        assert_eq!(listener.local_addr()?.ip(), Ipv6Addr::LOCALHOST);
        async_echo_round_trip(listener, b"v6".to_vec()).await
    }

    #[test]
    fn into_tokio_outside_a_runtime_is_an_error() -> io::Result<()> {
        let server = EphemeralTcp::bind()?;
        let addr = server.addr();
        let err = server.into_tokio().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("TCP listener on {addr} into a tokio listener")),
            "{msg}"
        );
        assert!(msg.contains("no tokio runtime"), "{msg}");
        assert!(msg.contains("hint: "), "{msg}");
        Ok(())
    }
}
