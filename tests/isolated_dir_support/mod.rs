//! Child processes for the `IsolatedDir` tests: the test binary re-runs itself (see
//! `support/child.rs`), running only its `child_role` test, whose role says what to do.
//! This lets a test set process-wide environment variables or kill a process without
//! touching its own.

#![allow(dead_code)] // Each test binary uses a different part.

#[path = "../support/child.rs"]
mod child;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use isofix::IsolatedDir;

pub use child::{role, Child, Finished};

/// The name of the test that each binary defines to call [`run_role`].
const ROLE_TEST: &str = "child_role";
/// What a child says before each path it reports.
const PATH_PREFIX: &str = "path=";
/// What a child says before an error it reports.
const ERROR_PREFIX: &str = "error=";

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
        // Takes the names a second directory would get, so that it must skip them.
        "squat" => {
            let first = IsolatedDir::new().unwrap();
            report(&first);
            let name = first.path().to_str().unwrap();
            let stem = name
                .strip_suffix('0')
                .expect("a process's first directory is number 0");
            for n in ["1", "2"] {
                let squatter = PathBuf::from(format!("{stem}{n}"));
                std::fs::create_dir(&squatter).unwrap();
                std::fs::write(squatter.join("mine"), "x").unwrap();
                child::say(&format!("{PATH_PREFIX}{}", squatter.display()));
            }
            report(&IsolatedDir::new().unwrap());
        }
        // Creates a directory with a file in it, and leaks it: exits without dropping it.
        "leak" => {
            let dir = IsolatedDir::new().unwrap();
            std::fs::write(dir.join("file"), "x").unwrap();
            report(&dir);
            std::mem::forget(dir);
        }
        // Creates a directory and holds it until stdin is closed.
        "hold" => {
            let dir = IsolatedDir::new().unwrap();
            report(&dir);
            child::wait_for_stdin_to_close();
        }
        // Creates a directory, keeps it, and waits until stdin is closed.
        "hold-kept" => {
            let path = IsolatedDir::new().unwrap().keep();
            child::say(&format!("{PATH_PREFIX}{}", path.display()));
            child::wait_for_stdin_to_close();
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
            Err(e) => child::say(&format!("{ERROR_PREFIX}{e}")),
        },
        other => panic!("unknown {}: {other}", child::ROLE_VAR),
    }
}

fn report(dir: &IsolatedDir) {
    child::say(&format!("{PATH_PREFIX}{}", dir.path().display()));
}

/// What the `IsolatedDir` tests read in what a child left.
pub trait Reported {
    /// The paths the child reported that were not read while it ran.
    fn paths(&self) -> Vec<PathBuf>;
    /// The only path the child reported.
    fn path(&self) -> PathBuf;
    /// The error the child reported.
    fn error(&self) -> String;
}

impl Reported for Finished {
    fn paths(&self) -> Vec<PathBuf> {
        self.said()
            .filter_map(|text| text.strip_prefix(PATH_PREFIX))
            .map(PathBuf::from)
            .collect()
    }

    fn path(&self) -> PathBuf {
        match self.paths().as_slice() {
            [path] => path.clone(),
            other => panic!("expected one path, got {other:?}: {self:?}"),
        }
    }

    fn error(&self) -> String {
        self.said()
            .find_map(|text| text.strip_prefix(ERROR_PREFIX))
            .unwrap_or_else(|| panic!("the child reported no error: {self:?}"))
            .to_owned()
    }
}

/// Blocks until `child` reports a path, and returns it.
pub fn read_path(child: &mut Child) -> PathBuf {
    let text = child.read_marked();
    match text.strip_prefix(PATH_PREFIX) {
        Some(path) => PathBuf::from(path),
        None => panic!("expected a path, the child said {text:?}"),
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
    let mut command = command(role, envs);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    Child::spawn(&mut command)
}

/// The command [`spawn`] runs, to adjust before [`Child::spawn`].
pub fn command<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    role: &str,
    envs: &[(K, V)],
) -> std::process::Command {
    let mut command = child::command(ROLE_TEST, role);
    command
        .env_remove("ISOFIX_KEEP")
        .env_remove("ISOFIX_TMPDIR")
        // The child names its directories after its own test, not the parent's.
        .env_remove("NEXTEST_TEST_NAME")
        .env_remove("NEXTEST_EXECUTION_MODE")
        .envs(envs.iter().map(|(k, v)| (k, v)));
    command
}

/// Asserts that this process removes directories on drop, as the tests expect.
pub fn assert_default_keep_policy() {
    let keep = std::env::var("ISOFIX_KEEP").unwrap_or_default();
    assert!(
        keep.is_empty() || keep == "never",
        "these tests check removal; unset ISOFIX_KEEP (it is {keep:?}) to run them"
    );
}
