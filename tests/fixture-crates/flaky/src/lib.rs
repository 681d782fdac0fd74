//! Three classic races, each between two tests that run at the same time: a fixed port,
//! a shared temp directory and an unsynchronized shared file. Each test repeats its racy
//! step so that the two overlap whenever they run together, and reports the first error
//! at the end, so that both sides of a race fail, not only the one that lost first.

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::PathBuf;

    const ROUNDS: usize = 300;

    /// Runs `round` [`ROUNDS`] times and panics with the first error, if any.
    fn repeat(round: impl Fn(usize) -> std::io::Result<()>) {
        let errors: Vec<_> = (0..ROUNDS).filter_map(|i| round(i).err()).collect();
        if let Some(e) = errors.first() {
            panic!("{e}");
        }
    }

    /// Binds the one port both tests use and serves a few requests on it, again and
    /// again. A round whose bind failed serves on a port of its own instead, so that both
    /// tests keep the same pace and both meet the collision.
    fn serve_on_fixed_port() {
        let mut first_error = None;
        for _ in 0..ROUNDS {
            let listener = TcpListener::bind("127.0.0.1:47391").unwrap_or_else(|e| {
                first_error.get_or_insert(e);
                TcpListener::bind("127.0.0.1:0").unwrap()
            });
            for _ in 0..5 {
                let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                let (mut server, _) = listener.accept().unwrap();
                client.write_all(b"x").unwrap();
                server.read_exact(&mut [0]).unwrap();
            }
        }
        if let Some(e) = first_error {
            panic!("{e}");
        }
    }

    #[test]
    fn fixed_port_server_a() {
        serve_on_fixed_port();
    }

    #[test]
    fn fixed_port_server_b() {
        serve_on_fixed_port();
    }

    /// Creates, fills and removes the one directory both tests use.
    fn use_shared_dir(me: &str) {
        let dir = std::env::temp_dir().join("isofix-fixture-shared-dir");
        repeat(|_| {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(me), me)?;
            std::fs::remove_dir_all(&dir)
        });
    }

    #[test]
    fn shared_temp_dir_a() {
        use_shared_dir("a");
    }

    #[test]
    fn shared_temp_dir_b() {
        use_shared_dir("b");
    }

    fn shared_file() -> PathBuf {
        std::env::temp_dir().join("isofix-fixture-shared-file.txt")
    }

    /// Writes to the one file both tests use and expects to read back what it wrote.
    fn write_then_read(me: &str) {
        let file = shared_file();
        let mut mismatch = None;
        // A round is quick: take more of them to make sure the two writers overlap.
        for round in 0..ROUNDS * 10 {
            let mine = format!("{me} {round}");
            std::fs::write(&file, &mine).unwrap();
            let read = std::fs::read_to_string(&file).unwrap();
            if read != mine {
                mismatch.get_or_insert((read, mine));
            }
        }
        if let Some((read, mine)) = mismatch {
            assert_eq!(read, mine, "content of {}", file.display());
        }
    }

    #[test]
    fn shared_file_writer_a() {
        write_then_read("a");
    }

    #[test]
    fn shared_file_writer_b() {
        write_then_read("b");
    }
}
