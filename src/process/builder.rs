use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{spawner, ChildGuard};
use crate::common::error::Context;
use crate::sys;
use crate::IsolatedDir;

/// The shell line that starts the real program with `LISTEN_PID` set to its own pid: the
/// shell exports its pid (`$$`) and then `exec`s the program, which keeps that pid.
const SET_LISTEN_PID: &str = "LISTEN_PID=$$; export LISTEN_PID; exec \"$@\"";

/// Options of a [`ChildGuard`], from [`ChildGuard::builder`].
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
///
/// # fn main() -> std::io::Result<()> {
/// let child = isofix::ChildGuard::builder()
///     .grace(Duration::from_secs(1))
///     .spawn(Command::new("sleep").arg("600"))?;
/// # drop(child);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until spawn()"]
pub struct ChildGuardBuilder {
    grace: Duration,
    listener: Option<OwnedFd>,
}

impl ChildGuardBuilder {
    pub(crate) fn new() -> Self {
        ChildGuardBuilder {
            grace: Duration::from_secs(3),
            listener: None,
        }
    }

    /// How long the child has to end after `SIGTERM` before its group gets `SIGKILL`
    /// (default 3 s). `Duration::ZERO` kills at once.
    ///
    /// ```
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// // A child that ignores SIGTERM is killed after the grace period.
    /// let child = isofix::ChildGuard::builder()
    ///     .grace(Duration::from_millis(100))
    ///     .spawn(Command::new("sh").args(["-c", "trap '' TERM; sleep 600"]))?;
    /// # drop(child);
    /// # Ok(())
    /// # }
    /// ```
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Hands `listener` — a bound, listening socket such as
    /// [`EphemeralTcp::into_listener`](crate::EphemeralTcp::into_listener)'s — to the
    /// child by the `LISTEN_FDS` convention of systemd socket activation: the child gets it
    /// as descriptor 3, with `LISTEN_FDS=1` and `LISTEN_PID` set to the child's own pid.
    /// There is no race at all: the socket is listening before the child starts and is
    /// never closed in between. This process's copy is closed once the child is started.
    ///
    /// The descriptor reaches fd 3 through a `dup2` in the child between `fork` and `exec`,
    /// so children that other threads start meanwhile never get it. `LISTEN_PID` must be
    /// the pid of the program itself, which `Command` cannot know before starting it, so
    /// the command is run as `/bin/sh -c 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"' sh
    /// <program> <args>…`, keeping its program, arguments, environment changes and working
    /// directory (other `Command` settings, such as `uid` or `pre_exec`, are not carried
    /// over).
    ///
    /// Consumers: the `listenfd` crate accepts the socket with or without `LISTEN_PID`;
    /// `tokio-listener`, `sd_listen_fds(3)` and systemd-aware servers require `LISTEN_PID`
    /// to match, which it does.
    ///
    /// ```
    /// use std::process::Command;
    /// use std::time::Duration;
    /// use isofix::{ChildGuard, EphemeralTcp};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let server = EphemeralTcp::bind()?;
    /// let addr = server.addr();
    /// let mut child = ChildGuard::builder()
    ///     .listener(server.into_listener())
    ///     .spawn(Command::new("sh").args(["-c", "echo $LISTEN_FDS $LISTEN_PID $$; sleep 600"]))?;
    /// // The kernel queues connections on the inherited listener: it is live at once.
    /// child.wait_listening(addr, Duration::from_secs(60))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn listener(mut self, listener: impl Into<OwnedFd>) -> Self {
        self.listener = Some(listener.into());
        self
    }

    /// Starts `command` under a [`ChildGuard`] with these options. Its stdin, stdout,
    /// stderr and process group are set here (see [`ChildGuard`]); on Linux, so is a
    /// `pre_exec` hook that makes the child die with the test process, which stays on
    /// `command` (see [When the test process itself is
    /// killed](ChildGuard#when-the-test-process-itself-is-killed)).
    ///
    /// ```
    /// use std::process::Command;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let err = isofix::ChildGuard::builder()
    ///     .spawn(&mut Command::new("isofix-no-such-program"))
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// assert!(err.to_string().contains("isofix-no-such-program"), "{err}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn(self, command: &mut Command) -> io::Result<ChildGuard> {
        let program = command.get_program().to_string_lossy().into_owned();
        let logs = IsolatedDir::new()?;
        let stdout = logs.join("stdout.log");
        let stderr = logs.join("stderr.log");
        let create = |path: &std::path::Path| {
            File::create(path).context(
                || format!("create output file {} for `{program}`", path.display()),
                "",
            )
        };
        let (out, err) = (create(&stdout)?, create(&stderr)?);
        let mut wrapped;
        let target = match &self.listener {
            None => command,
            Some(fd) => {
                wrapped = with_listen_pid(command);
                sys::inherit_as_fd3(&mut wrapped, fd.as_raw_fd());
                &mut wrapped
            }
        };
        target
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = spawner::spawn(target).context(
            || format!("start child `{program}`"),
            "is it installed, and on PATH?",
        )?;
        // The child has its own copy now; ours would keep the port after it ends.
        drop(self.listener);
        Ok(ChildGuard::from_parts(
            child, program, self.grace, logs, stdout, stderr,
        ))
    }
}

/// `/bin/sh -c SET_LISTEN_PID sh <program> <args>…` with `command`'s environment changes,
/// working directory and `LISTEN_FDS=1`.
fn with_listen_pid(command: &Command) -> Command {
    let mut wrapped = Command::new("/bin/sh");
    wrapped
        .args(["-c", SET_LISTEN_PID, "sh"])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped.env("LISTEN_FDS", "1").env_remove("LISTEN_FDNAMES");
    wrapped
}
