//! The `flaky` fixture's tests with their one-line isofix fixes: a live ephemeral port, a
//! private directory, and a serial group around the file that has to be shared.

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::path::PathBuf;

    use isofix::{EphemeralTcp, IsolatedDir};

    const ROUNDS: usize = 300;

    fn serve_on_own_port() {
        for _ in 0..ROUNDS {
            let listener = EphemeralTcp::bind().unwrap();
            let mut client = listener.connect().unwrap();
            let (mut server, _) = listener.accept().unwrap();
            client.write_all(b"x").unwrap();
            let mut byte = [0];
            server.read_exact(&mut byte).unwrap();
        }
    }

    #[test]
    fn fixed_port_server_a() {
        serve_on_own_port();
    }

    #[test]
    fn fixed_port_server_b() {
        serve_on_own_port();
    }

    fn use_own_dir(me: &str) {
        for _ in 0..ROUNDS {
            let dir = IsolatedDir::new().unwrap();
            std::fs::write(dir.join(me), me).unwrap();
            dir.close().unwrap();
        }
    }

    #[test]
    fn shared_temp_dir_a() {
        use_own_dir("a");
    }

    #[test]
    fn shared_temp_dir_b() {
        use_own_dir("b");
    }

    fn shared_file() -> PathBuf {
        std::env::temp_dir().join("isofix-fixture-fixed-shared-file.txt")
    }

    fn write_then_read(me: &str) {
        let file = shared_file();
        for round in 0..ROUNDS {
            let mine = format!("{me} {round}");
            std::fs::write(&file, &mine).unwrap();
            let read = std::fs::read_to_string(&file).unwrap();
            assert_eq!(read, mine, "content of {}", file.display());
        }
    }

    #[test]
    #[isofix::serial_group("isofix-fixture-shared-file")]
    fn shared_file_writer_a() {
        write_then_read("a");
    }

    #[test]
    #[isofix::serial_group("isofix-fixture-shared-file")]
    fn shared_file_writer_b() {
        write_then_read("b");
    }
}
