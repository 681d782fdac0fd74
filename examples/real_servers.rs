//! Real servers in tests: a `redis-server` on a reserved port with its data in an
//! isolated directory, and a child that takes a live listener by `LISTEN_FDS`.
//!
//! `cargo run --example real_servers` (needs `redis-server` for the first part; Unix).

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    unix::main()
}

#[cfg(not(unix))]
fn main() {
    eprintln!("this example uses process groups and Unix file descriptors: Unix only");
}

#[cfg(unix)]
mod unix {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::process::Command;
    use std::time::Duration;

    use isofix::{ChildGuard, EphemeralTcp, IsolatedDir, ReservedPort};

    /// Set in the child of the second part.
    const CHILD_VAR: &str = "REAL_SERVERS_CHILD";

    pub fn main() -> io::Result<()> {
        if std::env::var_os(CHILD_VAR).is_some() {
            return serve_inherited_listener();
        }
        redis()?;
        inherited_listener()
    }

    /// One redis-server of our own: nobody can take its port, its data goes with the
    /// test, and it is stopped (with everything it started) even if the test panics.
    fn redis() -> io::Result<()> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            println!(
                "redis: skipped, redis-server is not installed (apt-get install redis-server)"
            );
            return Ok(());
        }
        let port = ReservedPort::tcp()?;
        let data = IsolatedDir::new()?;
        let mut redis = ChildGuard::spawn(
            Command::new("redis-server")
                .args(["--bind", &port.ip().to_string()])
                .args(["--port", &port.port().to_string()])
                .arg("--dir")
                .arg(data.path())
                .args(["--daemonize", "no", "--save", "", "--appendonly", "no"]),
        )?;
        // Fails at once, with redis's own words, if it cannot start.
        redis.wait_listening(port.addr(), Duration::from_secs(30))?;
        println!(
            "redis: listening on {} with data in {}",
            port.addr(),
            data.path().display()
        );
        println!(
            "redis: SET -> {}",
            call(port.addr(), &["SET", "greeting", "hello"])?
        );
        println!("redis: GET -> {}", call(port.addr(), &["GET", "greeting"])?);
        let status = redis.stop()?;
        println!("redis: stopped ({status})");
        Ok(())
    }

    /// Sends one RESP command; returns the reply's value line.
    fn call(addr: SocketAddr, args: &[&str]) -> io::Result<String> {
        let mut conn = TcpStream::connect(addr)?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        conn.write_all(request.as_bytes())?;
        let mut reply = BufReader::new(conn);
        let mut line = String::new();
        reply.read_line(&mut line)?;
        if line.starts_with('$') {
            line.clear();
            reply.read_line(&mut line)?;
        }
        Ok(line.trim_end().to_owned())
    }

    /// The zero-race path: the listener exists before the child does, and is handed over.
    fn inherited_listener() -> io::Result<()> {
        let listener = EphemeralTcp::bind()?;
        let addr = listener.addr();
        let mut child = ChildGuard::builder()
            .listener(listener.into_listener())
            .spawn(Command::new(std::env::current_exe()?).env(CHILD_VAR, "1"))?;
        // No wait needed: connections queue on the listener until the child accepts.
        let mut reply = String::new();
        TcpStream::connect(addr)?.read_to_string(&mut reply)?;
        println!("LISTEN_FDS: {reply}");
        child.wait()?;
        Ok(())
    }

    /// The child: takes fd 3 the way `sd_listen_fds(3)` does.
    fn serve_inherited_listener() -> io::Result<()> {
        let for_me = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
        if !for_me || std::env::var("LISTEN_FDS").ok().as_deref() != Some("1") {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no listener passed",
            ));
        }
        // SAFETY: LISTEN_FDS=1 with our own LISTEN_PID: fd 3 is the listener handed to us,
        // and nothing else in this process owns it.
        let listener = unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(3) };
        let (mut conn, _) = listener.accept()?;
        write!(
            conn,
            "served by pid {} from the inherited listener",
            std::process::id()
        )
    }
}
