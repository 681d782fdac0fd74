use std::io::{self, ErrorKind, Write};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::common::error::{error, wrap, Context};
use crate::common::private_dir::state_root;
use crate::dir::{Kind, Registry, SOCKET_DIR_NAME_MAX};
use crate::sys;

/// The socket's file name inside its directory.
const SOCKET_NAME: &str = "s";

/// The most bytes a socket's path has after the system temp dir:
/// `/isofix-<uid>/u<id><n>/s`, with a `u32` uid of up to 10 digits and a counter of up to
/// 13 (see `dir/names.rs`).
const PATH_AFTER_TEMP_MAX: usize =
    "/isofix-".len() + 10 + 1 + SOCKET_DIR_NAME_MAX + 1 + SOCKET_NAME.len();

/// The longest temp dir in which every socket path fits in `sun_path` on every platform
/// (macOS: 104 bytes with the final NUL).
const TEMP_DIR_MAX: usize = 104 - 1 - PATH_AFTER_TEMP_MAX;

/// How many names [`SocketDir::new`] tries when the directory it picked already exists
/// (something else made a directory of that name).
const NAME_ATTEMPTS: usize = 64;

/// A fresh private directory for one socket: `<state root>/u<id><n>` (see
/// `dir/names.rs`), created with create-new semantics and mode 0700, so nobody else can
/// connect to, replace or read the socket inside. Removed with the socket by
/// [`SocketDir::remove`], or, if the process dies without unwinding, by the sweep of
/// `IsolatedDir`'s registry, in which it is recorded as this process's.
#[derive(Debug)]
pub(crate) struct SocketDir {
    dir: PathBuf,
    path: PathBuf,
    /// Whether the registry counts the directory as this process's, until it is gone.
    recorded: bool,
    /// Whether [`SocketDir::remove`] succeeded, after which a drop has nothing to do.
    removed: bool,
}

impl SocketDir {
    pub(crate) fn new() -> io::Result<SocketDir> {
        let root = state_root()?;
        let registry = Registry::get();
        // Recorded before it exists, so that a crash right after `mkdir` cannot leave an
        // unrecorded directory behind.
        let recorded = registry.enter(&root, Kind::Socket);
        let mut dir = SocketDir {
            dir: PathBuf::new(),
            path: PathBuf::new(),
            recorded,
            removed: true,
        };
        for _ in 0..NAME_ATTEMPTS {
            dir.dir = root.join(registry.socket_dir_name());
            match sys::create_private_dir(&dir.dir) {
                Ok(()) => {
                    dir.path = dir.dir.join(SOCKET_NAME);
                    dir.removed = false;
                    return Ok(dir);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(wrap(
                        e,
                        format_args!("create socket directory {}", dir.dir.display()),
                        "set TMPDIR to a writable directory",
                    ))
                }
            }
        }
        Err(error(
            ErrorKind::AlreadyExists,
            format_args!(
                "create socket directory in {}: {NAME_ATTEMPTS} fresh names were all taken",
                root.display()
            ),
            "something else creates directories there; set TMPDIR to a directory of yours",
        ))
    }

    /// What to do about a failed bind at `self.path`. The directory goes when `self` is
    /// dropped.
    pub(crate) fn bind_failed(&self, e: io::Error, kind: &str) -> io::Error {
        let hint = if e.kind() == ErrorKind::InvalidInput {
            format!(
                "the path is too long for a Unix socket (sun_path: 108 bytes on Linux, 104 on \
                 macOS); set TMPDIR to a directory of at most {TEMP_DIR_MAX} bytes, such as /tmp"
            )
        } else {
            String::new()
        };
        wrap(
            e,
            format_args!("bind Unix {kind} at {}", self.path.display()),
            hint,
        )
    }

    /// Removes the socket file and its directory (what is already gone is no error); a
    /// drop calls it, reports failures, and tells the registry once the directory is gone.
    pub(crate) fn remove(&mut self) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(e).context(|| format!("remove Unix socket {}", self.path.display()), "")
            }
            _ => {}
        }
        match std::fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                // Still recorded, so that a sweep tries again once this process is gone.
                return Err(e).context(
                    || format!("remove socket directory {}", self.dir.display()),
                    "something else was put in it",
                );
            }
            _ => {}
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            let _ = writeln!(io::stderr(), "{e}");
        }
        if self.removed && std::mem::take(&mut self.recorded) {
            Registry::get().leave();
        }
    }
}

/// A Unix-domain stream listener at a fresh short path in a private directory, both
/// removed when it is dropped: the Unix-socket counterpart of
/// [`EphemeralTcp`](crate::EphemeralTcp).
///
/// The path is `<system temp dir>/isofix-<uid>/u<id><n>/s`, where `<id>` is the 12-digit
/// id of the process that [`IsolatedDir`](crate::IsolatedDir) names its directories with
/// too, and `<n>` counts the process's directories. With `/tmp` as the temp dir that is 30
/// bytes for uid 0 and the first 32 sockets, and at most 51 (a 10-digit uid, a 13-digit
/// counter): the path is at most 47 bytes longer than the temp dir, far below the limit of
/// `sun_path` (108 bytes on Linux, 104 on macOS, counting the final NUL), so a temp dir of
/// up to 56 bytes always fits — macOS's default `/var/folders/…/T/` included. The
/// directory is created private (0700), so no other user can connect or plant a socket
/// there.
///
/// A process killed before it could drop the guard (`SIGKILL`, `panic = "abort"`, a
/// runner's timeout) leaves the directory behind; it is removed like the directories of
/// [`IsolatedDir`](crate::IsolatedDir), by the sweep that the next process's first
/// `EphemeralUnix` or `IsolatedDir` runs (and [`IsolatedDir::sweep_stale`]), never while
/// its process lives.
///
/// [`IsolatedDir::sweep_stale`]: crate::IsolatedDir::sweep_stale
///
/// It dereferences to [`std::os::unix::net::UnixListener`]. Unix only.
///
/// ```
/// use std::io::{Read, Write};
/// use isofix::EphemeralUnix;
///
/// # fn main() -> std::io::Result<()> {
/// let server = EphemeralUnix::bind()?;
/// let mut client = server.connect()?;
/// let (mut conn, _) = server.accept()?;
/// client.write_all(b"ping")?;
/// let mut buf = [0; 4];
/// conn.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// let path = server.path().to_owned();
/// drop(server);
/// assert!(!path.exists());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EphemeralUnix {
    listener: UnixListener,
    dir: SocketDir,
}

impl EphemeralUnix {
    /// Creates the private directory and binds a listening stream socket in it.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::EphemeralUnix::bind()?;
    /// assert!(server.path().as_os_str().len() < 104);
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind() -> io::Result<EphemeralUnix> {
        let dir = SocketDir::new()?;
        let listener = UnixListener::bind(&dir.path).map_err(|e| dir.bind_failed(e, "listener"))?;
        Ok(EphemeralUnix { listener, dir })
    }

    /// The socket's path, to give to the code under test.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::EphemeralUnix::bind()?;
    /// let client = std::os::unix::net::UnixStream::connect(server.path())?;
    /// # drop(client);
    /// # Ok(())
    /// # }
    /// ```
    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    /// Borrows the listener (the same as dereferencing).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::EphemeralUnix::bind()?;
    /// let listener: &std::os::unix::net::UnixListener = server.listener();
    /// # let _ = listener;
    /// # Ok(())
    /// # }
    /// ```
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Connects a client to the listener; its `accept` then returns the server side.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let server = isofix::EphemeralUnix::bind()?;
    /// let _client = server.connect()?;
    /// server.accept()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(&self) -> io::Result<UnixStream> {
        UnixStream::connect(self.path()).context(
            || format!("connect to Unix listener at {}", self.path().display()),
            "",
        )
    }

    /// Removes the socket and its directory, returning any error instead of writing it to
    /// stderr as a drop does.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// isofix::EphemeralUnix::bind()?.close()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(self) -> io::Result<()> {
        let EphemeralUnix { listener, mut dir } = self;
        drop(listener);
        dir.remove()
    }

    /// A [`tokio::net::UnixListener`] on the same socket (feature `tokio`), registered with
    /// the current runtime. It shares the socket: this guard must outlive it (it removes
    /// the path), and the socket becomes nonblocking for both.
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let server = isofix::EphemeralUnix::bind()?;
    ///     let listener = server.to_tokio()?;
    ///     let mut client = tokio::net::UnixStream::connect(server.path()).await?;
    ///     let (_conn, _) = listener.accept().await?;
    ///     client.write_all(b"hi").await?;
    ///     Ok(())
    /// }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn to_tokio(&self) -> io::Result<tokio::net::UnixListener> {
        super::tokio_runtime::hand_over(
            || format!("use Unix listener at {} with tokio", self.path().display()),
            || self.listener.try_clone(),
            |listener| listener.set_nonblocking(true),
            tokio::net::UnixListener::from_std,
        )
    }
}

impl std::ops::Deref for EphemeralUnix {
    type Target = UnixListener;

    fn deref(&self) -> &UnixListener {
        &self.listener
    }
}

impl std::os::fd::AsFd for EphemeralUnix {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

/// A Unix-domain datagram socket bound at a fresh short path in a private directory, both
/// removed on drop: the datagram variant of [`EphemeralUnix`], with the same paths.
///
/// It dereferences to [`std::os::unix::net::UnixDatagram`]. Unix only.
///
/// ```
/// use std::os::unix::net::UnixDatagram;
/// use isofix::EphemeralUnixDatagram;
///
/// # fn main() -> std::io::Result<()> {
/// let server = EphemeralUnixDatagram::bind()?;
/// let client = UnixDatagram::unbound()?;
/// client.send_to(b"ping", server.path())?;
/// let mut buf = [0; 8];
/// let len = server.recv(&mut buf)?;
/// assert_eq!(&buf[..len], b"ping");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EphemeralUnixDatagram {
    socket: UnixDatagram,
    dir: SocketDir,
}

impl EphemeralUnixDatagram {
    /// Creates the private directory and binds a datagram socket in it.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let socket = isofix::EphemeralUnixDatagram::bind()?;
    /// assert!(socket.path().exists());
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind() -> io::Result<EphemeralUnixDatagram> {
        let dir = SocketDir::new()?;
        let socket =
            UnixDatagram::bind(&dir.path).map_err(|e| dir.bind_failed(e, "datagram socket"))?;
        Ok(EphemeralUnixDatagram { socket, dir })
    }

    /// The socket's path.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let socket = isofix::EphemeralUnixDatagram::bind()?;
    /// assert!(socket.path().is_absolute());
    /// # Ok(())
    /// # }
    /// ```
    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    /// A [`tokio::net::UnixDatagram`] on the same socket (feature `tokio`); as with
    /// [`EphemeralUnix::to_tokio`], this guard must outlive it.
    ///
    /// ```
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> std::io::Result<()> {
    ///     let server = isofix::EphemeralUnixDatagram::bind()?;
    ///     let socket = server.to_tokio()?;
    ///     let client = tokio::net::UnixDatagram::unbound()?;
    ///     client.send_to(b"hi", server.path()).await?;
    ///     let mut buf = [0; 2];
    ///     socket.recv(&mut buf).await?;
    ///     assert_eq!(&buf, b"hi");
    ///     Ok(())
    /// }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn to_tokio(&self) -> io::Result<tokio::net::UnixDatagram> {
        super::tokio_runtime::hand_over(
            || {
                let path = self.path().display();
                format!("use Unix datagram socket at {path} with tokio")
            },
            || self.socket.try_clone(),
            |socket| socket.set_nonblocking(true),
            tokio::net::UnixDatagram::from_std,
        )
    }
}

impl std::ops::Deref for EphemeralUnixDatagram {
    type Target = UnixDatagram;

    fn deref(&self) -> &UnixDatagram {
        &self.socket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_path_bound_holds() {
        // EphemeralUnix's documentation: at most 47 bytes after the temp dir.
        assert_eq!(PATH_AFTER_TEMP_MAX, 47);
        assert_eq!(TEMP_DIR_MAX, 56);
        let uid_max = u32::MAX.to_string().len();
        assert_eq!(uid_max, 10);
    }
}
