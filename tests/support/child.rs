//! The test binary re-run as a child process, for tests of cross-process behaviour.
//!
//! The parent starts its own executable with `--exact <test> --nocapture
//! --test-threads=1`, so that only `<test>` runs, and sets [`ROLE_VAR`] to tell that test
//! what to play. This works the same under `cargo test` and `cargo nextest run`. The two
//! talk over pipes: the child [`say`]s marked lines on stdout (libtest writes its own
//! lines there too), the parent reads them with [`Child::read_marked`] and lets the child
//! go by closing its stdin, which the child waits for with [`wait_for_stdin_to_close`].
//! Stderr is collected for the parent to check when the child ends.

#![allow(dead_code)] // Each test binary uses a different part.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

/// Chooses the child's role; unset in the parent.
pub const ROLE_VAR: &str = "ISOFIX_TEST_ROLE";
/// What starts each line a child says to its parent.
const MARK: &str = "ISOFIX-CHILD: ";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// In a child: tells the parent `text` on a marked line of its own. The line break in
/// front ends whatever libtest left open (`test <name> ... `).
pub fn say(text: &str) {
    let mut out = io::stdout().lock();
    writeln!(out, "\n{MARK}{text}").unwrap();
    out.flush().unwrap();
}

/// In a child: blocks until the parent closes our stdin, its signal to let go.
pub fn wait_for_stdin_to_close() {
    let mut rest = Vec::new();
    let _ = io::stdin().read_to_end(&mut rest);
}

/// A command that re-runs this binary as a child running only `test`, in `role`, with
/// its stdin, stdout and stderr piped to the parent. Adjust it, then [`Child::spawn`] it.
pub fn command(test: &str, role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts this binary as a child running only `test`, in `role`, with `envs` set.
pub fn spawn<K: AsRef<OsStr>, V: AsRef<OsStr>>(test: &str, role: &str, envs: &[(K, V)]) -> Child {
    let mut command = command(test, role);
    command.envs(envs.iter().map(|(k, v)| (k, v)));
    Child::spawn(&mut command)
}

/// Runs `body` in a child process of its own — this binary re-run with only `test`, the
/// test calling this — where the tests running beside it cannot change what it counts
/// (descriptors, threads), and asserts that it finished. The parent only waits.
pub fn in_own_process(test: &str, body: impl FnOnce()) {
    const ALONE: &str = "alone";
    if role().as_deref() == Some(ALONE) {
        body();
        say("finished");
        return;
    }
    let finished = spawn(test, ALONE, &[("", "")][..0]).finish();
    finished.assert_success();
    assert_eq!(finished.said().collect::<Vec<_>>(), ["finished"]);
}

/// A running child.
pub struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: BufReader<ChildStderr>,
    /// Stdout read but not yet consumed.
    pending: Vec<u8>,
}

/// What a child left when it ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// Stdout after what was already read while the child ran.
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The marked lines in [`stdout`](Finished::stdout), without their mark.
    pub fn said(&self) -> impl Iterator<Item = &str> {
        self.stdout.lines().filter_map(|l| l.strip_prefix(MARK))
    }

    /// Asserts the child exited successfully.
    pub fn assert_success(&self) -> &Finished {
        assert!(self.status.success(), "child failed: {self:?}");
        self
    }
}

impl Child {
    /// Starts `command` (made by [`command`]).
    pub fn spawn(command: &mut Command) -> Child {
        let mut child = command.spawn().unwrap();
        Child {
            stdin: child.stdin.take(),
            stdout: child.stdout.take().unwrap(),
            stderr: BufReader::new(child.stderr.take().unwrap()),
            child,
            pending: Vec::new(),
        }
    }

    /// Blocks until the child says something, and returns it; panics if it ends first.
    pub fn read_marked(&mut self) -> String {
        match self.try_read_marked() {
            Some(text) => text,
            None => panic!(
                "the child ended without saying more: {:?}",
                self.finish_now()
            ),
        }
    }

    /// Blocks until the child says something, and returns it; `None` if it ends first.
    pub fn try_read_marked(&mut self) -> Option<String> {
        loop {
            while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if let Some(text) = line.trim_end().strip_prefix(MARK) {
                    return Some(text.to_owned());
                }
            }
            if !self.read_more() {
                return None;
            }
        }
    }

    /// Blocks until `text` appears on the child's stdout, even in an unfinished line (as
    /// libtest's `test <name> ... ` is until the test ends); `false` if the child ends first.
    pub fn wait_for_text(&mut self, text: &str) -> bool {
        let text = text.as_bytes();
        loop {
            if let Some(at) = self.pending.windows(text.len()).position(|w| w == text) {
                self.pending.drain(..at + text.len());
                return true;
            }
            if !self.read_more() {
                return false;
            }
        }
    }

    /// Appends what the child writes next to `pending`; `false` at the end of stdout.
    fn read_more(&mut self) -> bool {
        let mut chunk = [0; 4096];
        let len = self.stdout.read(&mut chunk).unwrap();
        self.pending.extend_from_slice(&chunk[..len]);
        len > 0
    }

    /// Blocks until the child writes a line on stderr, and appends it to `line`; `false`
    /// at the end of stderr.
    pub fn read_stderr_line(&mut self, line: &mut String) -> bool {
        self.stderr.read_line(line).unwrap() > 0
    }

    /// Takes the child's stdin, so that another thread can close it to let the child go.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Closes the child's stdin (its signal to let go) and waits for it to end.
    pub fn finish(mut self) -> Finished {
        self.finish_now()
    }

    fn finish_now(&mut self) -> Finished {
        drop(self.stdin.take());
        let mut stdout = Vec::new();
        self.stdout.read_to_end(&mut stdout).unwrap();
        self.pending.extend_from_slice(&stdout);
        let stdout = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
        let mut stderr = String::new();
        self.stderr.read_to_string(&mut stderr).unwrap();
        let status = self.child.wait().unwrap();
        Finished {
            status,
            stdout,
            stderr,
        }
    }

    /// Kills the child with `SIGKILL`, then reads its stdout and stderr to their ends —
    /// which come only once every process holding a copy of them has ended — and waits.
    pub fn kill_and_finish(mut self) -> Finished {
        self.child.kill().unwrap();
        self.finish_now()
    }

    /// Kills the child with `SIGKILL` (`TerminateProcess` on Windows), so that it cannot
    /// unwind or run any cleanup, and waits for it to be gone.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// `wrapper` (e.g. `setpriv ...` or `prlimit ...`) running `child`'s command, with its
/// environment and piped standard streams.
pub fn wrapped(mut wrapper: Command, child: &Command) -> Child {
    wrapper.arg(child.get_program()).args(child.get_args());
    for (key, value) in child.get_envs() {
        match value {
            Some(value) => wrapper.env(key, value),
            None => wrapper.env_remove(key),
        };
    }
    wrapper
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Child::spawn(&mut wrapper)
}
