//! Child processes for the `IsolatedDir` tests: the test binary re-runs itself, running
//! only its `child_role` test, with `ISOFIX_TEST_ROLE` telling that test what to do. This
//! works the same under `cargo test` and `cargo nextest run`, and lets a test set
//! process-wide environment variables or kill a process without touching its own.

#![allow(dead_code)] // Each test binary uses a different part.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

use isofix::IsolatedDir;

/// Chooses the child's role; unset in the test run itself.
pub const ROLE_VAR: &str = "ISOFIX_TEST_ROLE";
/// The name of the test that each binary defines to call [`run_role`].
const ROLE_TEST: &str = "child_role";
/// What a child prints before each path it reports on stdout, at the start of a line
/// (libtest has already written `test child_role ... ` without a line break).
const PATH_PREFIX: &str = "path=";
/// What a child prints before an error it reports on stdout.
const ERROR_PREFIX: &str = "error=";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// Plays `role` in a child process.
pub fn run_role(role: &str) {
    match role {
        // Creates a directory (sweeping, as the first one of a process) and drops it.
        "create" => report(&IsolatedDir::new().unwrap()),
        // Creates two directories and drops them.
        "create-two" => {
            let (a, b) = (IsolatedDir::new().unwrap(), IsolatedDir::new().unwrap());
            report(&a);
            report(&b);
        }
        // Creates a directory and holds it until stdin is closed.
        "hold" => {
            let dir = IsolatedDir::new().unwrap();
            report(&dir);
            wait_for_stdin_to_close();
        }
        // Creates a directory, keeps it, and waits until stdin is closed.
        "hold-kept" => {
            let path = IsolatedDir::new().unwrap().keep();
            println!("\n{PATH_PREFIX}{}", path.display());
            wait_for_stdin_to_close();
        }
        // Fails the way a test fails: panics while holding a directory.
        "panic" => {
            let dir = IsolatedDir::new().unwrap();
            report(&dir);
            panic!("the child test fails on purpose");
        }
        "keep-if" => {
            let mut dir = IsolatedDir::new().unwrap();
            dir.keep_if(true);
            report(&dir);
        }
        // Puts a file where the directory was, so that dropping the guard cannot remove it.
        "drop-fails" => {
            let dir = IsolatedDir::new().unwrap();
            std::fs::remove_dir(dir.path()).unwrap();
            std::fs::write(dir.path(), "not a directory").unwrap();
            report(&dir);
        }
        "error" => match IsolatedDir::new() {
            Ok(dir) => panic!("expected an error, got {dir:?}"),
            Err(e) => println!("\n{ERROR_PREFIX}{e}"),
        },
        other => panic!("unknown {ROLE_VAR}: {other}"),
    }
}

fn report(dir: &IsolatedDir) {
    println!("\n{PATH_PREFIX}{}", dir.path().display());
}

fn wait_for_stdin_to_close() {
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).unwrap();
}

/// A running child.
pub struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// What a child left when it ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// Stdout after the lines already read, with the paths and errors in it.
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The paths the child reported that were not read while it ran.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(PATH_PREFIX))
            .map(PathBuf::from)
            .collect()
    }

    /// The only path the child reported.
    pub fn path(&self) -> PathBuf {
        match self.paths().as_slice() {
            [path] => path.clone(),
            other => panic!("expected one path, got {other:?}: {self:?}"),
        }
    }

    /// The error the child reported.
    pub fn error(&self) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(ERROR_PREFIX))
            .unwrap_or_else(|| panic!("the child reported no error: {self:?}"))
            .to_owned()
    }

    /// Asserts the child exited successfully.
    pub fn assert_success(&self) -> &Finished {
        assert!(self.status.success(), "child failed: {self:?}");
        self
    }
}

/// Starts this binary as a child in `role`, with `ISOFIX_KEEP` and `ISOFIX_TMPDIR` unset
/// unless `envs` sets them.
pub fn spawn<K: AsRef<OsStr>, V: AsRef<OsStr>>(role: &str, envs: &[(K, V)]) -> Child {
    spawn_in(role, envs, None)
}

/// [`spawn`], in the working directory `cwd`.
pub fn spawn_in<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    role: &str,
    envs: &[(K, V)],
    cwd: Option<&Path>,
) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([ROLE_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .env_remove("ISOFIX_KEEP")
        .env_remove("ISOFIX_TMPDIR")
        // The child names its directories after its own test, not the parent's.
        .env_remove("NEXTEST_TEST_NAME")
        .env_remove("NEXTEST_EXECUTION_MODE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn().unwrap();
    let stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    Child {
        child,
        stdin,
        stdout,
    }
}

impl Child {
    /// Blocks until the child reports a path on stdout, and returns it.
    pub fn read_path(&mut self) -> PathBuf {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line).unwrap() == 0 {
                let rest = self.finish_now();
                panic!("the child ended without reporting a path: {rest:?}");
            }
            if let Some(path) = line.trim_end().strip_prefix(PATH_PREFIX) {
                return PathBuf::from(path);
            }
        }
    }

    /// Closes the child's stdin (releasing a `hold` child) and waits for it to end.
    pub fn finish(mut self) -> Finished {
        self.finish_now()
    }

    fn finish_now(&mut self) -> Finished {
        drop(self.stdin.take());
        let mut stdout = String::new();
        self.stdout.read_to_string(&mut stdout).unwrap();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).unwrap();
        }
        let status = self.child.wait().unwrap();
        Finished {
            status,
            stdout,
            stderr,
        }
    }

    /// Kills the child with `SIGKILL` (`TerminateProcess` on Windows), so that it cannot
    /// unwind or run any cleanup, and waits for it to be gone.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Asserts that this process removes directories on drop, as the tests expect.
pub fn assert_default_keep_policy() {
    let keep = std::env::var("ISOFIX_KEEP").unwrap_or_default();
    assert!(
        keep.is_empty() || keep == "never",
        "these tests check removal; unset ISOFIX_KEEP (it is {keep:?}) to run them"
    );
}
