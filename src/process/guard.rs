use std::fmt;
use std::io::{self, ErrorKind, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::Duration;

use super::output::both_tails;
use super::ChildGuardBuilder;
use crate::common::error::{error, Context};
use crate::net::listening::{poll, probe, read_port_file_while, timed_out};
use crate::sys::{self, Ended};
use crate::IsolatedDir;

/// How many lines of each output stream an error or a failing test shows.
const TAIL_LINES: usize = 20;

/// A child process that cannot outlive its test: started in its own process group with its
/// output captured to files, and stopped — the whole group — when the guard is dropped,
/// also while the test unwinds from a panic.
///
/// # What it does
///
/// - [`ChildGuard::spawn`] starts the command in a new process group (the child's pid is
///   the group's id), with stdin from `/dev/null` and stdout and stderr written to
///   `stdout.log` and `stderr.log` in an [`IsolatedDir`] of its own
///   ([`stdout_path`](Self::stdout_path), [`stderr_path`](Self::stderr_path)). It sets
///   these on the `Command` it is given.
/// - [`wait_listening`](Self::wait_listening) waits for the server to accept connections,
///   and fails *at once* if the child dies first, with its exit status and the last lines
///   of its output.
/// - Dropping the guard (or [`stop`](Self::stop)) sends `SIGTERM` to the whole group,
///   waits up to a grace period (3 s; [`ChildGuardBuilder::grace`]) for the child to end,
///   then sends `SIGKILL` to the group — so whatever the child started in the foreground
///   goes too — waits (at most 5 s) until no process of the group is alive, and reaps the
///   child. Nothing is left running and no zombie of ours stays. The wait reads `/proc`
///   on Linux, where zombies of the group count as dead; elsewhere it asks
///   `kill(-pgid, 0)`, where they count until their new parent reaps them.
/// - A guard dropped while its thread panics (a failing test) prints the last lines of the
///   child's output to stderr, and `ISOFIX_KEEP=failed` keeps the output files (see
///   [`IsolatedDir`]).
///
/// A server that daemonizes (forks, starts a new session, and lets its first process exit)
/// leaves the group and escapes the guard: run servers in the foreground
/// (`redis-server --daemonize no`, `postgres` rather than `pg_ctl start`).
///
/// # Under tokio
///
/// With the `tokio` feature, [`wait_listening_async`](Self::wait_listening_async),
/// [`wait_async`](Self::wait_async) and [`stop_async`](Self::stop_async) wait without
/// blocking a runtime thread and without helper threads, so a dropped future leaves
/// nothing behind. A `tokio::process::Command` is started through its std form:
/// `ChildGuard::spawn(command.as_std_mut())` (tokio 1.39 and later). Dropping the guard
/// stays synchronous: inside a runtime it blocks that thread for at most the grace period,
/// plus at most 5 s for the rest of a killed group to die (usually a few milliseconds);
/// call `stop_async` to avoid even that.
///
/// # When the test process itself is killed
///
/// A test process killed with `SIGKILL` (a timeout of the test runner, the OOM killer)
/// runs no drop. On Linux the child is started with `PR_SET_PDEATHSIG` set to `SIGKILL`,
/// so the kernel kills it when the test process dies, whatever the cause. Only the child
/// itself is signalled: processes it started (its group) are not, and are orphaned; a
/// server that forks workers should kill them when it dies. Since the kernel sends that
/// signal when the *thread* that started the child exits, children are started on one
/// thread of isofix's own (`isofix-spawner`, started with the first child, one per
/// process) that lives as long as the process. The setting survives `exec`, except of
/// set-user-ID, set-group-ID or file-capability programs. Other systems have no such
/// setting: there, a killed test process leaves its children running.
///
/// Unix only.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// use isofix::{ChildGuard, ReservedPort};
///
/// # fn main() -> std::io::Result<()> {
/// // A child that fails to start: its output is in the error, at once.
/// let port = ReservedPort::tcp()?;
/// let mut child = ChildGuard::spawn(Command::new("sh").args(["-c", "echo no config >&2; exit 3"]))?;
/// let err = child.wait_listening(port.addr(), Duration::from_secs(60)).unwrap_err();
/// assert!(err.to_string().contains("exit status: 3"), "{err}");
/// assert!(err.to_string().contains("no config"), "{err}");
/// # Ok(())
/// # }
/// ```
pub struct ChildGuard {
    child: Child,
    program: String,
    grace: Duration,
    stdout: PathBuf,
    stderr: PathBuf,
    /// Set once the child is reaped.
    status: Option<ExitStatus>,
    logs: IsolatedDir,
}

impl ChildGuard {
    /// Starts `command` under a guard, with the default options (see the type's docs).
    /// Fails with an error naming the program if it cannot be started, or if the
    /// directory for its output cannot be created.
    ///
    /// ```
    /// use std::process::Command;
    /// use isofix::ChildGuard;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let child = ChildGuard::spawn(Command::new("sleep").arg("600"))?;
    /// drop(child); // SIGTERM, then wait: the sleep does not outlive the test
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn(command: &mut Command) -> io::Result<ChildGuard> {
        Self::builder().spawn(command)
    }

    /// Options: the grace period, and a listener to hand over as `LISTEN_FDS`.
    ///
    /// ```
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let child = isofix::ChildGuard::builder()
    ///     .grace(Duration::from_millis(500))
    ///     .spawn(&mut Command::new("true"))?;
    /// # drop(child);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> ChildGuardBuilder {
        ChildGuardBuilder::new()
    }

    pub(crate) fn from_parts(
        child: Child,
        program: String,
        grace: Duration,
        logs: IsolatedDir,
        stdout: PathBuf,
        stderr: PathBuf,
    ) -> Self {
        ChildGuard {
            child,
            program,
            grace,
            stdout,
            stderr,
            status: None,
            logs,
        }
    }

    /// The child's process id, which is also its process group's id.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let child = isofix::ChildGuard::spawn(&mut std::process::Command::new("true"))?;
    /// assert_ne!(child.id(), std::process::id());
    /// # Ok(())
    /// # }
    /// ```
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The file that receives the child's stdout.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let mut child = isofix::ChildGuard::spawn(std::process::Command::new("echo").arg("hi"))?;
    /// child.wait()?;
    /// assert_eq!(std::fs::read_to_string(child.stdout_path())?, "hi\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn stdout_path(&self) -> &Path {
        &self.stdout
    }

    /// The file that receives the child's stderr.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let mut child = isofix::ChildGuard::spawn(std::process::Command::new("sh").args(["-c", "echo oops >&2"]))?;
    /// child.wait()?;
    /// assert_eq!(std::fs::read_to_string(child.stderr_path())?, "oops\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// The last `lines` lines of the child's stdout and stderr so far, each under a
    /// heading naming its file.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let mut child = isofix::ChildGuard::spawn(
    ///     std::process::Command::new("sh").args(["-c", "echo starting; exit 1"]),
    /// )?;
    /// // Fails as soon as the child has ended, so all its output is written.
    /// let port = isofix::ReservedPort::tcp()?;
    /// assert!(child.wait_listening(port.addr(), Duration::from_secs(60)).is_err());
    /// assert!(child.output_tail(5).contains("starting"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn output_tail(&self, lines: usize) -> String {
        both_tails(&self.stdout, &self.stderr, lines)
    }

    /// Fails, with the exit status and output tail, if the child has ended; the child is
    /// not reaped, so its pid (the group id) stays its own.
    fn check_running(&self, waiting_for: &dyn fmt::Display, port: Option<u16>) -> io::Result<()> {
        let ended = sys::peek_exit(self.id(), false)
            .context(|| format!("check whether child {self} is running"), "")?;
        match ended {
            None => Ok(()),
            Some(ended) => Err(error(
                ErrorKind::Other,
                format_args!(
                    "wait for child {self} {waiting_for}: it ended first, with {}; its \
                     output:{}",
                    describe(ended),
                    self.output_tail(TAIL_LINES)
                ),
                match port.filter(|_| self.says_addr_in_use()).and_then(holders) {
                    // The usual cause of a server that dies at once: EADDRINUSE.
                    Some(holders) => format!(
                        "{holders}; give the child a port of its own (ReservedPort), and stop \
                         any holder left over from an earlier run"
                    ),
                    None => "its output says why; a server that daemonizes must be told to \
                             stay in the foreground"
                        .to_owned(),
                },
            )),
        }
    }

    /// Whether the child's output reports `EADDRINUSE` ("Address already in use").
    fn says_addr_in_use(&self) -> bool {
        self.output_tail(TAIL_LINES)
            .to_ascii_lowercase()
            .contains("in use")
    }

    /// Blocks until something accepts TCP connections on `addr` (typically the
    /// [`ReservedPort`](crate::ReservedPort) the child was told to use), or `timeout`
    /// passes, like [`net::wait_listening`](crate::net::wait_listening). If the child ends
    /// first, fails at once with its exit status and the tail of its output.
    ///
    /// On Linux, a connection accepted by someone else does not count: once one is
    /// accepted, the listening sockets where it may have landed are looked up in `/proc`,
    /// and if all of them belong to processes outside the child's process group, the wait
    /// fails at once ([`ErrorKind::AddrInUse`]) naming those processes and the port. A
    /// listener whose holder cannot be read (another user's process) is given the benefit
    /// of the doubt; a server whose port is answered by a process outside its group (a
    /// container runtime's proxy) must be waited for with
    /// [`net::wait_listening`](crate::net::wait_listening). Elsewhere, any listener counts.
    ///
    /// ```
    /// use std::process::Command;
    /// use std::time::Duration;
    /// use isofix::{ChildGuard, ReservedPort};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let port = ReservedPort::tcp()?;
    /// let mut child = ChildGuard::spawn(Command::new("sh").args(["-c", "exit 7"]))?;
    /// let err = child.wait_listening(port.addr(), Duration::from_secs(60)).unwrap_err();
    /// assert!(err.to_string().contains("exit status: 7"), "{err}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) -> io::Result<()> {
        let waiting_for = format_args!("to listen on {addr}").to_string();
        poll(
            timeout,
            || self.check_running(&waiting_for, Some(addr.port())),
            |left| probe(addr, left).map(Ok),
            |last| timed_out(addr, timeout, &last),
        )
        .map_err(|e| self.with_output(e))?;
        self.check_listener_is_ours(addr)
    }

    /// Fails if what accepted a connection on `addr` is not the child's (Linux): when the
    /// sockets listening there are all held by processes outside the child's group.
    fn check_listener_is_ours(&self, addr: SocketAddr) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            if let Some(holders) = crate::net::holders::foreign_listeners(addr, self.id()) {
                return Err(error(
                    ErrorKind::AddrInUse,
                    format_args!(
                        "wait for child {self} to listen on {addr}: port {} is answered by \
                         {holders}, not by the child's process group",
                        addr.port()
                    ),
                    "the port was taken by someone else: give the child a port of its own \
                     (ReservedPort) or hand it a listener (ChildGuard::builder().listener), \
                     and stop any holder left over from an earlier run; a server that \
                     daemonizes leaves the child's group: keep it in the foreground",
                ));
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = addr;
        Ok(())
    }

    /// The async form of [`wait_listening`](Self::wait_listening) (feature `tokio`).
    ///
    /// ```
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let port = isofix::ReservedPort::tcp()?;
    ///     let mut child = isofix::ChildGuard::spawn(&mut Command::new("false"))?;
    ///     let err = child.wait_listening_async(port.addr(), Duration::from_secs(60)).await;
    ///     assert!(err.unwrap_err().to_string().contains("exit status: 1"));
    ///     Ok(())
    /// }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn wait_listening_async(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<()> {
        let waiting_for = format_args!("to listen on {addr}").to_string();
        crate::net::listening::wait_listening_async_while(addr, timeout, || {
            self.check_running(&waiting_for, Some(addr.port()))
        })
        .await
        .map_err(|e| self.with_output(e))?;
        self.check_listener_is_ours(addr)
    }

    /// Waits until the child writes its address to `path`, like
    /// [`net::read_port_file`](crate::net::read_port_file), failing at once if the child
    /// ends first.
    ///
    /// ```
    /// use std::process::Command;
    /// use std::time::Duration;
    /// use isofix::{ChildGuard, IsolatedDir};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let dir = IsolatedDir::new()?;
    /// let file = dir.join("addr");
    /// let mut child = ChildGuard::spawn(
    ///     Command::new("sh").arg("-c").arg("echo 127.0.0.1:41234 > \"$0\"; sleep 600").arg(&file),
    /// )?;
    /// let addr = child.wait_port_file(&file, Duration::from_secs(60))?;
    /// assert_eq!(addr.port(), 41234);
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_port_file(
        &mut self,
        path: impl AsRef<Path>,
        timeout: Duration,
    ) -> io::Result<SocketAddr> {
        let path = path.as_ref();
        let waiting_for = format_args!("to write its address to {}", path.display()).to_string();
        read_port_file_while(path, timeout, || self.check_running(&waiting_for, None))
    }

    /// A timeout error with the output tail added, so the reason is in the message.
    fn with_output(&self, e: io::Error) -> io::Error {
        if e.kind() == ErrorKind::TimedOut {
            io::Error::new(
                e.kind(),
                format!(
                    "{e}; child {self} is still running; its output:{}",
                    self.output_tail(TAIL_LINES)
                ),
            )
        } else {
            e
        }
    }

    /// Stops the child as dropping the guard does (`SIGTERM` to its group, the grace
    /// period, `SIGKILL` to the group, reap) and returns how it ended; a child that was
    /// stopped by the `SIGTERM` reports that signal. Errors name the child.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use std::process::Command;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let child = isofix::ChildGuard::spawn(Command::new("sleep").arg("600"))?;
    /// let status = child.stop()?;
    /// assert_eq!(status.signal(), Some(15)); // SIGTERM
    /// # Ok(())
    /// # }
    /// ```
    pub fn stop(mut self) -> io::Result<ExitStatus> {
        self.terminate()
    }

    /// Waits for the child to end on its own (no signal), then kills whatever is left of
    /// its process group and reaps it, and returns how it ended: for a command the test
    /// runs to completion. Blocks as long as the child runs. Its output files stay until
    /// the guard is dropped.
    ///
    /// ```
    /// use std::process::Command;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut child = isofix::ChildGuard::spawn(Command::new("sh").args(["-c", "exit 4"]))?;
    /// assert_eq!(child.wait()?.code(), Some(4));
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let name = self.to_string();
        sys::peek_exit(self.id(), true).context(|| format!("wait for child {name}"), "")?;
        self.terminate()
    }

    /// The async form of [`wait`](Self::wait) (feature `tokio`): waits for the child to end
    /// on its own without blocking a runtime thread — on Linux the runtime waits on a
    /// pidfd; elsewhere the child is checked after pauses growing from 1 ms to 50 ms — then
    /// kills the rest of its group, waits for it the same way, and reaps the child. No
    /// thread is used: a dropped future leaves nothing waiting, and the guard stays
    /// usable. Needs a runtime with I/O and time enabled, as `#[tokio::test]` has.
    ///
    /// To start a `tokio::process::Command`, hand over its std form:
    /// `ChildGuard::spawn(command.as_std_mut())` (tokio 1.39 and later).
    ///
    /// ```
    /// use std::process::Command;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let mut child = isofix::ChildGuard::spawn(Command::new("sh").args(["-c", "exit 4"]))?;
    ///     assert_eq!(child.wait_async().await?.code(), Some(4));
    ///     Ok(())
    /// }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn wait_async(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let name = self.to_string();
        super::async_wait::exited(self.id())
            .await
            .context(|| format!("wait for child {name}"), "")?;
        self.kill_group_async().await
    }

    /// The async form of [`stop`](Self::stop) (feature `tokio`): `SIGTERM` to the group,
    /// up to the grace period for the child to end, `SIGKILL` to the group, and the reap,
    /// all without blocking a runtime thread (see [`wait_async`](Self::wait_async)). A
    /// future dropped before it completes drops the guard, which stops the child the
    /// synchronous way.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use std::process::Command;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let child = isofix::ChildGuard::spawn(Command::new("sleep").arg("600"))?;
    ///     assert_eq!(child.stop_async().await?.signal(), Some(15)); // SIGTERM
    ///     Ok(())
    /// }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn stop_async(mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let pid = self.id();
        let name = self.to_string();
        let what = || format!("stop child {name}");
        if sys::peek_exit(pid, false).context(what, "")?.is_none() {
            sys::signal_group(pid, sys::SIGTERM).context(what, "")?;
            // Ended or not, the group gets SIGKILL next.
            let _ = tokio::time::timeout(self.grace, super::async_wait::exited(pid)).await;
        }
        self.kill_group_async().await
    }

    /// The end of [`stop_async`](Self::stop_async) and [`wait_async`](Self::wait_async):
    /// `SIGKILL` to the group, the wait for the child and the rest of the group, the reap
    /// (as in [`terminate`](Self::terminate)).
    #[cfg(feature = "tokio")]
    async fn kill_group_async(&mut self) -> io::Result<ExitStatus> {
        use super::async_wait::{exited, group_dead};
        let pid = self.id();
        let name = self.to_string();
        let what = || format!("stop child {name}");
        sys::signal_group(pid, sys::SIGKILL).context(what, "")?;
        exited(pid).await.context(what, "")?;
        #[cfg(target_os = "linux")]
        group_dead(pid, sys::group_alive, GROUP_DEATH_LIMIT).await;
        // The child has ended: this reaps it at once.
        let status = self.child.wait().context(what, "")?;
        #[cfg(not(target_os = "linux"))]
        group_dead(pid, sys::group_exists, GROUP_DEATH_LIMIT).await;
        self.status = Some(status);
        Ok(status)
    }

    fn terminate(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let pid = self.id();
        let name = self.to_string();
        let what = || format!("stop child {name}");
        let running = sys::peek_exit(pid, false).context(what, "")?.is_none();
        if running {
            sys::signal_group(pid, sys::SIGTERM).context(what, "")?;
            end_within(pid, self.grace).context(what, "")?;
        }
        // Whatever else runs in the group goes now. The child itself is not reaped yet, so
        // the group id cannot have been reused by an unrelated process.
        sys::signal_group(pid, sys::SIGKILL).context(what, "")?;
        // `/proc` tells zombies apart, so the child stays unreaped while the group is
        // watched; `kill(-pgid, 0)` counts the zombie child, so it is reaped first.
        #[cfg(target_os = "linux")]
        wait_group_dead(pid, sys::group_alive);
        let status = self.child.wait().context(what, "")?;
        #[cfg(not(target_os = "linux"))]
        wait_group_dead(pid, sys::group_exists);
        self.status = Some(status);
        Ok(status)
    }
}

/// Waits for the child `pid` to end (without reaping it), for at most `grace`; if it has
/// not ended by then, sends `SIGKILL` to its group, and waits for it to end. The blocking
/// `waitid` runs on a helper thread, because it takes no timeout; the helper is joined
/// before this returns.
fn end_within(pid: u32, grace: Duration) -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::Builder::new()
        .name("isofix-child-wait".to_owned())
        .spawn(move || {
            let ended = sys::peek_exit(pid, true);
            let _ = tx.send(());
            ended
        });
    let Ok(waiter) = waiter else {
        // No thread to time the grace period with: skip it.
        return sys::signal_group(pid, sys::SIGKILL);
    };
    let killed = match rx.recv_timeout(grace) {
        Ok(()) => Ok(()),
        Err(_) => sys::signal_group(pid, sys::SIGKILL),
    };
    let _ = waiter.join();
    killed
}

/// Who holds TCP port `port`, if anyone can be found (Linux).
fn holders(port: u16) -> Option<String> {
    #[cfg(target_os = "linux")]
    return crate::net::holders::describe_holders(port);
    #[cfg(not(target_os = "linux"))]
    return {
        let _ = port;
        None
    };
}

/// How long a drop waits for the rest of a killed group to die.
pub(super) const GROUP_DEATH_LIMIT: Duration = Duration::from_secs(5);

/// Waits until no process of the group `pgid`, which has been sent `SIGKILL`, is `alive`,
/// for at most [`GROUP_DEATH_LIMIT`]. `SIGKILL` is delivered asynchronously, and the
/// others are not our children, so they cannot be waited for: `alive` is asked again after
/// pauses growing from 1 ms to 50 ms. On Linux, `alive` reads `/proc`, where zombies count
/// as dead: they hold no port, file or CPU, and in a container whose pid 1 does not reap
/// they would stay forever. Elsewhere it is `kill(-pgid, 0)`, where zombies count until
/// their new parent reaps them.
fn wait_group_dead(pgid: u32, alive: fn(u32) -> bool) {
    let _ = poll(
        GROUP_DEATH_LIMIT,
        || Ok(()),
        |_| {
            if alive(pgid) {
                Err(io::Error::new(ErrorKind::WouldBlock, "still alive"))
            } else {
                Ok(Ok(()))
            }
        },
        |e| e,
    );
}

/// "exit status: 3" or "signal 9 (SIGKILL)", as std's `ExitStatus` prints them.
fn describe(ended: Ended) -> String {
    match ended {
        Ended::Exited(code) => format!("exit status: {code}"),
        Ended::Signaled(signal) => format!("signal: {signal}"),
    }
}

impl fmt::Display for ChildGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` (pid {})", self.program, self.id())
    }
}

impl fmt::Debug for ChildGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildGuard")
            .field("program", &self.program)
            .field("pid", &self.id())
            .field("status", &self.status)
            .field("output", &self.logs.path())
            .finish()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let result = self.terminate();
        let mut err = io::stderr().lock();
        if let Err(e) = result {
            let _ = writeln!(err, "{e}");
        }
        if std::thread::panicking() {
            let _ = writeln!(
                err,
                "isofix: output of child {self}, stopped while the test failed:{}",
                both_tails(&self.stdout, &self.stderr, TAIL_LINES)
            );
        }
    }
}
