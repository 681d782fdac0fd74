//! Shared by the `serial_*` tests: unique names, scratch directories, marker-file checks of
//! exclusion, and child processes (this test binary re-run in a role chosen by an env var).
#![allow(dead_code)]

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use isofix::SerialGuard;

/// Selects the child's role; unset in the parent.
const ROLE_VAR: &str = "ISOFIX_SERIAL_TEST_ROLE";
/// Prefix of the lines a child prints for its parent (libtest prints its own lines too).
const MARK: &str = "ISOFIX-CHILD: ";

/// A generous bound for waits that must end, so that a bug fails instead of hanging.
pub const SAFETY: Duration = Duration::from_secs(60);

/// A group name no other test (or run) uses.
pub fn unique(tag: &str) -> String {
    format!("isofix-test {tag} {}", uuid::Uuid::new_v4())
}

/// A fresh scratch directory, mode 0700, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("isofix-serial-test-{tag}-{}", uuid::Uuid::new_v4()));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// How a worker takes the group.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Exclusive,
    Shared,
    Max(usize),
}

impl Mode {
    fn to_arg(self) -> String {
        match self {
            Mode::Exclusive => "ex".into(),
            Mode::Shared => "sh".into(),
            Mode::Max(n) => format!("max{n}"),
        }
    }

    fn from_arg(arg: &str) -> Self {
        match arg {
            "ex" => Mode::Exclusive,
            "sh" => Mode::Shared,
            other => Mode::Max(other.strip_prefix("max").unwrap().parse().unwrap()),
        }
    }

    pub fn acquire(self, group: &str) -> io::Result<SerialGuard> {
        let builder = SerialGuard::group(group).timeout(SAFETY);
        match self {
            Mode::Exclusive => builder.acquire(),
            Mode::Shared => builder.shared().acquire(),
            Mode::Max(n) => builder.max_holders(n).acquire(),
        }
    }
}

/// A marker proving who is inside a critical section; removed on drop, before the guard
/// is (declare it after the guard).
pub struct Marker(PathBuf);

impl Drop for Marker {
    fn drop(&mut self) {
        fs::remove_file(&self.0).unwrap();
    }
}

/// Enters the critical section of `mode` in `dir`, failing if the markers already there
/// show that someone is inside who should not be.
pub fn enter(dir: &Path, mode: Mode, who: &str) -> Result<Marker, String> {
    let create = |name: &str| {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .map(|_| Marker(dir.join(name)))
    };
    match mode {
        Mode::Exclusive => {
            let marker = create("exclusive")
                .map_err(|e| format!("{who}: another exclusive holder is inside: {e}"))?;
            let others: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n != "exclusive")
                .collect();
            if !others.is_empty() {
                return Err(format!("{who}: exclusive while others inside: {others:?}"));
            }
            Ok(marker)
        }
        Mode::Shared => {
            let marker = create(&format!("shared-{who}"))
                .map_err(|e| format!("{who}: duplicate shared marker: {e}"))?;
            if dir.join("exclusive").exists() {
                return Err(format!("{who}: shared while an exclusive holder is inside"));
            }
            Ok(marker)
        }
        Mode::Max(n) => {
            for i in 0..n {
                if let Ok(marker) = create(&format!("slot-{i}")) {
                    return Ok(marker);
                }
            }
            Err(format!("{who}: more than {n} holders inside"))
        }
    }
}

/// `rounds` times: take the group, enter, leave, release.
pub fn hammer(group: &str, dir: &Path, mode: Mode, who: &str, rounds: usize) -> Result<(), String> {
    for round in 0..rounds {
        let guard = mode.acquire(group).map_err(|e| e.to_string())?;
        let marker = enter(dir, mode, &format!("{who}-{round}"))?;
        std::thread::yield_now();
        drop(marker);
        drop(guard);
    }
    Ok(())
}

/// This binary re-run as a child: `--exact <test> --nocapture`, role in the environment.
pub struct ChildProc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub stderr: BufReader<ChildStderr>,
}

pub fn spawn(test: &str, role: &[&str], envs: &[(&str, &str)]) -> ChildProc {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture"])
        .env(ROLE_VAR, role.join("\x1f"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    ChildProc {
        stdin: child.stdin.take(),
        stdout: BufReader::new(child.stdout.take().unwrap()),
        stderr: BufReader::new(child.stderr.take().unwrap()),
        child,
    }
}

impl ChildProc {
    /// The rest of the next line the child marked, waiting for it.
    pub fn next(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                let _ = io::Read::read_to_string(&mut self.stderr, &mut err);
                panic!("child ended without saying more; stderr:\n{err}");
            }
            if let Some(rest) = line.trim_end().strip_prefix(MARK) {
                return rest.to_owned();
            }
        }
    }

    /// Closes the child's stdin (its signal to let go) and waits for it.
    pub fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let mut rest = String::new();
        io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        let mut err = String::new();
        io::Read::read_to_string(&mut self.stderr, &mut err).unwrap();
        let status = self.child.wait().unwrap();
        (status.success(), format!("{rest}\n{err}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn say(text: &str) {
    let mut out = io::stdout().lock();
    writeln!(out, "{MARK}{text}").unwrap();
    out.flush().unwrap();
}

fn wait_for_stdin_eof() {
    let mut sink = String::new();
    let _ = io::Read::read_to_string(&mut io::stdin(), &mut sink);
}

/// In a child, plays the role and exits; in the parent, returns at once. Every test that
/// spawns children calls it first.
///
/// Roles: `hold <group> <mode> [<marker dir>]` (hold until stdin closes),
/// `hammer <group> <mode> <marker dir> <rounds>`, `try <group>` (report the result).
pub fn child_role() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let args: Vec<&str> = role.split('\x1f').collect();
    let code = match args.as_slice() {
        ["hold", group, mode, rest @ ..] => {
            let mode = Mode::from_arg(mode);
            let guard = mode.acquire(group).unwrap();
            let marker = rest.first().map(|dir| {
                enter(
                    Path::new(dir),
                    mode,
                    &format!("child-{}", std::process::id()),
                )
                .unwrap()
            });
            say(&format!("held {}", std::process::id()));
            wait_for_stdin_eof();
            drop(marker);
            drop(guard);
            say("released");
            0
        }
        ["hammer", group, mode, dir, rounds] => {
            let who = format!("child-{}", std::process::id());
            match hammer(
                group,
                Path::new(dir),
                Mode::from_arg(mode),
                &who,
                rounds.parse().unwrap(),
            ) {
                Ok(()) => {
                    say("done");
                    0
                }
                Err(e) => {
                    say(&format!("violation {e}"));
                    1
                }
            }
        }
        ["try", group] => {
            match SerialGuard::lock(group) {
                Ok(_) => say("ok"),
                Err(e) => say(&format!("err {:?} {e}", e.kind())),
            }
            0
        }
        other => panic!("unknown role {other:?}"),
    };
    std::process::exit(code);
}

/// Spawns a child role for the test `test`, with `group`, `mode`.
pub fn role_args<'a>(name: &'a str, group: &'a str, mode: &'a str) -> Vec<&'a str> {
    vec![name, group, mode]
}

pub fn mode_arg(mode: Mode) -> String {
    mode.to_arg()
}
