//! Real child processes for the end-to-end tests of `holders` and `clean`: the test binary
//! runs itself again, as the same test, with a role in the environment; the child says on
//! stdout when it is ready and then lives until it is killed or its stdin closes.

#![allow(dead_code)] // Each test binary uses its part.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Output, Stdio};

/// The environment variable that makes the test binary a child with this role.
const ROLE: &str = "ISOFIX_CLI_TEST_ROLE";
/// What a child prints when it is ready, followed by what it has to say. Not at the start
/// of a line: libtest's `test <name> ... ` comes before it.
const READY: &str = "isofix-child-ready: ";

/// A fresh directory private to this user (0700), for one test's own TMPDIR, lock
/// directory and bases, so that tests running beside it cannot interfere.
pub fn private_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&dir)
        .unwrap();
    dir
}

/// Runs `cargo isofix <args>` with `env`.
pub fn cli(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-isofix"));
    command.arg("isofix").args(args);
    for (var, value) in env {
        command.env(var, value);
    }
    command.output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process playing a role of `test`, killed (`SIGKILL`) and reaped when dropped.
pub struct Child {
    child: std::process::Child,
    out: BufReader<ChildStdout>,
}

impl Child {
    /// Starts the test binary as `test` with `role` and `env`.
    pub fn spawn(test: &str, role: &str, env: &[(&str, &Path)]) -> Child {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (var, value) in env {
            command.env(var, value);
        }
        let mut child = command.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Child { child, out }
    }

    /// Waits for the child's [`READY`] line and returns what follows.
    pub fn ready(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "the child ended before it was ready");
            if let Some((_, what)) = line.split_once(READY) {
                return what.trim_end().to_owned();
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child with `SIGKILL`, so it unwinds nothing, and reaps it.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}

/// In a child, plays its role and returns `true`; in the test itself, returns `false`.
pub fn play_role() -> bool {
    let Some(role) = std::env::var_os(ROLE) else {
        return false;
    };
    let role = role.to_str().unwrap();
    let mut kept = Vec::new();
    match role {
        // Holds one group alone and another one shared.
        "hold" => {
            kept.push(isofix::SerialGuard::lock("alpha").unwrap());
            kept.push(isofix::SerialGuard::shared("beta").unwrap());
            println!("{READY}{}", std::process::id());
        }
        // Waits for `alpha`, then holds it.
        "wait" => {
            kept.push(isofix::SerialGuard::lock("alpha").unwrap());
            println!("{READY}{}", std::process::id());
        }
        // Makes an isolated directory and names it.
        "dir" => {
            let dir = isofix::IsolatedDir::new().unwrap();
            println!("{READY}{}", dir.path().display());
            wait_for_stdin_to_close();
            drop(dir);
            return true;
        }
        // Binds a Unix socket and names it.
        "socket" => {
            let socket = isofix::EphemeralUnix::bind().unwrap();
            println!("{READY}{}", socket.path().display());
            wait_for_stdin_to_close();
            drop(socket);
            return true;
        }
        other => panic!("unknown role {other}"),
    }
    wait_for_stdin_to_close();
    drop(kept);
    true
}

/// Blocks until the parent closes the child's stdin, or dies.
fn wait_for_stdin_to_close() {
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
