//! `IsolatedDir`: a private, uniquely named temporary directory removed on drop.
//!
//! The user-facing story (removal, keeping, the sweep after crashes, path length) is told
//! on [`IsolatedDir`] itself, since this module is private. Here: `names.rs` makes and
//! recognises directory names, `remove.rs` removes a tree without following links,
//! `policy.rs` reads `ISOFIX_KEEP`, `registry.rs` records which live process owns which
//! directories in the slot files of `slot.rs`, and `sweep.rs` removes the directories of
//! dead processes.

mod names;
mod policy;
mod registry;
mod remove;
mod slot;
mod sweep;

use std::fmt;
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::common::error::{error, wrap};
use crate::common::private_dir::env_path;
use crate::common::test_name;
use crate::sys;
pub(crate) use names::Kind;
#[cfg(unix)]
pub(crate) use names::SOCKET_NAME_MAX as SOCKET_DIR_NAME_MAX;
use policy::KeepPolicy;
pub(crate) use registry::Registry;

/// The environment variable naming the directory that isolated directories are created in.
const TMPDIR_VAR: &str = "ISOFIX_TMPDIR";

/// How many names [`IsolatedDir::new`] tries when the path it picked already exists
/// (something else made a directory of that name).
const NAME_ATTEMPTS: usize = 64;

/// A private temporary directory, unique to one test, removed with everything in it when
/// dropped.
///
/// # Where and how it is created
///
/// [`IsolatedDir::new`] creates `<base>/isofix-<test>-<id><n>`, where `<base>` is the
/// directory named by the `ISOFIX_TMPDIR` environment variable if it is set and not empty,
/// and [`std::env::temp_dir`] otherwise; [`IsolatedDir::new_in`] takes the base as an
/// argument.
///
/// - `<test>` is the part of the running test's name a human recognises: its last path
///   segments, reduced to ASCII letters, digits, `-` and `_`, outer segments dropped or
///   cut first, so that an rstest case keeps its function's name
///   (`my_test::case_1` gives `my_test_case_1`). The name comes from `NEXTEST_TEST_NAME`
///   under `cargo nextest run`, which holds on every thread of the test, and otherwise
///   from the test thread's name; on a thread the test spawned (a tokio worker, say) under
///   `cargo test`, and outside tests, it is left out: `isofix-<id><n>`.
/// - `<id>` is 12 random base-32 digits chosen once per process (from std's randomly
///   keyed hasher), and `<n>` counts the process's directories in base 32.
///
/// The directory is created with create-new semantics (an existing path is never reused:
/// on a clash the next number is tried) and private: mode 0700 on Unix, so other users
/// cannot read or plant files in it. [`path`](IsolatedDir::path) is absolute even when the
/// base was given as a relative path, so it stays right if the test changes its working
/// directory.
///
/// # Path length
///
/// The directory's name is at most 57 bytes, so that its path is at most the base's length
/// plus 58. This matters for Unix-domain sockets, whose paths are limited to 108 bytes on
/// Linux and 104 on macOS, the final NUL included: with `/tmp` as the base, a socket's file
/// name of up to 40 bytes inside the directory fits on macOS (5 + 57 + 1 + 40 = 103), and
/// up to 44 bytes on Linux. On macOS the default temp dir (`/var/folders/…/T/`) alone takes
/// about 50 bytes; set `ISOFIX_TMPDIR=/tmp` there if tests put sockets in their
/// directories.
///
/// # Removal
///
/// Dropping the guard removes the directory and everything in it — also when the test
/// panics, since the guard is dropped while unwinding. Read-only files and directories
/// the test left inside are made writable and removed too. Symbolic links inside are
/// removed, never followed: their targets are not touched. Dropping never panics; if the
/// directory cannot be removed, a line naming it is written to stderr (a directory that is
/// already gone is not an error for a drop). [`close`](IsolatedDir::close) removes it and
/// returns any error instead.
///
/// # Keeping a directory to inspect it
///
/// - [`keep`](IsolatedDir::keep) hands the path over; nothing removes it any more.
/// - [`keep_if`](IsolatedDir::keep_if) keeps it when the guard is dropped if a condition
///   held, and prints `isofix: kept <path> (keep_if)` on stderr.
/// - `ISOFIX_KEEP=failed` keeps the directories of tests that fail by panicking (the
///   directory is dropped while the thread panics), `ISOFIX_KEEP=always` keeps all of
///   them, and `ISOFIX_KEEP=never` (the default) keeps none. Each kept directory is named
///   on stderr: `isofix: kept <path> (ISOFIX_KEEP=failed)`. Any other value is reported
///   once on stderr and treated as the default.
///
/// A test that fails by *returning* `Err` does not panic while its guards are dropped
/// (the harness panics only after the test function has returned), so `ISOFIX_KEEP=failed`
/// cannot see that failure. Such a test can say itself what it wants kept:
///
/// ```
/// # use isofix::IsolatedDir;
/// # fn body(_: &std::path::Path) -> std::io::Result<()> { Ok(()) }
/// # fn main() -> std::io::Result<()> {
/// let mut dir = IsolatedDir::new()?;
/// let result = body(dir.path());
/// dir.keep_if(result.is_err());
/// result
/// # }
/// ```
///
/// # Cleanup after a crash
///
/// A process that dies without unwinding — killed by `SIGKILL`, built with
/// `panic = "abort"`, stopped by a test runner's timeout — drops nothing, so its
/// directories stay behind. To keep them from piling up, every process that creates an
/// isolated directory holds a kernel file lock for its whole life on a slot of a private
/// per-user registry (a small file, reused by later processes, under
/// `/dev/shm/isofix-<uid>/dir-owners` on Linux when `TMPDIR` is not set, else under
/// `<system temp dir>/isofix-<uid>/dir-owners`), where it lists its id and the bases it created directories
/// in; its id is in every directory's name. The first isolated directory a process creates
/// sweeps that registry: in the bases recorded in every slot whose lock is free — which
/// the kernel guarantees only once its process is gone — the directories named with that
/// process's id are removed. A live process's directories are never touched, nor anything
/// that is not a real (non-link) directory of this user named by isofix for the dead
/// process. Kept directories are recorded as such and never swept. A process that exits
/// normally with none of its directories left empties its slot (on Unix), so that the
/// next process has nothing to sweep.
/// [`sweep_stale`](IsolatedDir::sweep_stale) runs the sweep now and says what it removed
/// (`cargo isofix clean`), and [`list_stale`](IsolatedDir::list_stale) only lists.
///
/// # Examples
///
/// ```
/// use isofix::IsolatedDir;
///
/// # fn main() -> std::io::Result<()> {
/// let dir = IsolatedDir::new()?;
/// std::fs::write(dir.join("config.toml"), "verbose = true")?;
/// assert!(dir.path().join("config.toml").exists());
/// let path = dir.path().to_owned();
/// drop(dir);
/// assert!(!path.exists());
/// # Ok(())
/// # }
/// ```
pub struct IsolatedDir {
    /// Empty once [`keep`](IsolatedDir::keep) or [`close`](IsolatedDir::close) has taken
    /// the directory over, which tells `Drop` there is nothing left to do.
    path: PathBuf,
    /// Whether the registry counts the directory as this process's, until it is gone or
    /// kept.
    recorded: bool,
    keep_requested: bool,
}

impl IsolatedDir {
    /// Creates a private directory for the running test in `ISOFIX_TMPDIR`, or in the
    /// system temp dir if that variable is unset or empty (`mkdir(2)`, mode 0700).
    ///
    /// # Errors
    ///
    /// Fails, naming the base and the `ISOFIX_TMPDIR` variable, when the base does not
    /// exist, is not a directory, or does not let this user create entries in it.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let dir = IsolatedDir::new()?;
    /// assert!(dir.path().is_dir());
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> io::Result<IsolatedDir> {
        match env_path(TMPDIR_VAR) {
            Some(base) => IsolatedDir::create(
                &base,
                &format_args!(
                    "{TMPDIR_VAR} is {}; set it to an existing directory you can write to",
                    base.display()
                ),
            ),
            None => IsolatedDir::create(
                &std::env::temp_dir(),
                &format_args!(
                    "{TMPDIR_VAR} is not set, so the system temp dir is used; set \
                     {TMPDIR_VAR} to an existing directory you can write to"
                ),
            ),
        }
    }

    /// Creates a private directory for the running test in `base` (`mkdir(2)`, mode
    /// 0700), whatever `ISOFIX_TMPDIR` says. A relative `base` is taken relative to the
    /// current directory.
    ///
    /// # Errors
    ///
    /// Fails, naming `base`, when it does not exist, is not a directory, or does not let
    /// this user create entries in it.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let outer = IsolatedDir::new()?;
    /// let inner = IsolatedDir::new_in(outer.path())?;
    /// assert_eq!(inner.path().parent(), Some(outer.path()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new_in(base: impl AsRef<Path>) -> io::Result<IsolatedDir> {
        IsolatedDir::create(
            base.as_ref(),
            &"pass an existing directory you can write to",
        )
    }

    fn create(base: &Path, hint: &dyn fmt::Display) -> io::Result<IsolatedDir> {
        let what = || format!("create isolated directory in {}", base.display());
        let base = absolute(base).map_err(|e| wrap(e, what(), hint))?;
        let registry = Registry::get();
        // Recorded before it exists, so that a crash right after `mkdir` cannot leave an
        // unrecorded directory behind.
        let recorded = registry.enter(&base, Kind::Isolated);
        let test = test_name::current_slug(names::TEST_NAME_MAX);
        for _ in 0..NAME_ATTEMPTS {
            let name = names::dir_name(test.as_deref(), registry.id(), names::next_number());
            let path = base.join(name);
            match sys::create_private_dir(&path) {
                Ok(()) => {
                    return Ok(IsolatedDir {
                        path,
                        recorded,
                        keep_requested: false,
                    })
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    if recorded {
                        registry.leave();
                    }
                    return Err(wrap(e, what(), hint));
                }
            }
        }
        if recorded {
            registry.leave();
        }
        Err(error(
            ErrorKind::AlreadyExists,
            format_args!("{}: {NAME_ATTEMPTS} fresh names were all taken", what()),
            "something else creates isofix-* directories there; choose another base",
        ))
    }

    /// The directory's absolute path.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let dir = IsolatedDir::new()?;
    /// assert!(dir.path().is_absolute());
    /// # Ok(())
    /// # }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path` inside the directory: shorthand for `dir.path().join(path)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let dir = IsolatedDir::new()?;
    /// std::fs::write(dir.join("data.txt"), "hello")?;
    /// assert_eq!(std::fs::read_to_string(dir.path().join("data.txt"))?, "hello");
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        self.path.join(path)
    }

    /// Keeps the directory when the guard is dropped if `condition` is true, and names it
    /// on stderr then (`isofix: kept <path> (keep_if)`). Once asked, it stays asked: a
    /// later `keep_if(false)` does not undo it. Made for tests that fail by returning
    /// `Err`, which `ISOFIX_KEEP=failed` cannot see.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut dir = IsolatedDir::new()?;
    /// let result: std::io::Result<()> = std::fs::write(dir.join("out.log"), "done");
    /// dir.keep_if(result.is_err());
    /// result
    /// # }
    /// ```
    pub fn keep_if(&mut self, condition: bool) {
        self.keep_requested |= condition;
    }

    /// Gives the directory up: it is no longer removed, neither on drop nor by the sweep
    /// after a crash, and its path is returned. Removing it is now the caller's business.
    /// This is `tempfile`'s `TempDir::keep` (formerly `into_path`).
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let path = IsolatedDir::new()?.keep();
    /// assert!(path.is_dir());
    /// std::fs::remove_dir_all(&path)?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use = "the directory is no longer removed: keep its path to find it"]
    #[doc(alias = "into_path")]
    pub fn keep(mut self) -> PathBuf {
        self.forget(true);
        std::mem::take(&mut self.path)
    }

    /// Removes the directory now, as dropping does, but returns the error instead of
    /// writing it to stderr — including when the directory is already gone. A directory
    /// that [`keep_if`](IsolatedDir::keep_if) or `ISOFIX_KEEP=always` keeps is kept and
    /// named on stderr, and `Ok(())` is returned.
    ///
    /// # Errors
    ///
    /// Fails, naming the directory, when it or something in it cannot be removed, or when
    /// it no longer exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let dir = IsolatedDir::new()?;
    /// let path = dir.path().to_owned();
    /// dir.close()?;
    /// assert!(!path.exists());
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(mut self) -> io::Result<()> {
        if let Some(reason) = self.keep_reason(false) {
            self.forget(true);
            announce_kept(&std::mem::take(&mut self.path), reason);
            return Ok(());
        }
        let path = std::mem::take(&mut self.path);
        self.remove(&path).map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::NotFound {
                "something else removed or moved it before close"
            } else {
                "check what still uses it, then remove it by hand"
            };
            wrap(
                e,
                format_args!("remove isolated directory {}", path.display()),
                hint,
            )
        })
    }

    /// Removes now the isolated directories that processes which died without unwinding
    /// left behind — the sweep described under *Cleanup after a crash*, which otherwise
    /// runs before a process's first isolated directory — and returns each directory with
    /// the outcome of its removal. A live process's directories are never touched, nor
    /// anything that is not a real directory of this user named by isofix for the dead
    /// process. What cannot be removed stays recorded for a later sweep.
    ///
    /// The private directories of the dead processes' Unix sockets
    /// ([`EphemeralUnix`](crate::EphemeralUnix), recorded in the same registry) are swept
    /// and reported too.
    ///
    /// `cargo isofix clean` runs this.
    ///
    /// # Errors
    ///
    /// Fails, naming it, when the registry directory cannot be created or is not private to
    /// this user. Each directory's own removal error is in its entry, naming its path.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// for (path, removed) in IsolatedDir::sweep_stale()? {
    ///     match removed {
    ///         Ok(()) => println!("removed {}", path.display()),
    ///         Err(e) => eprintln!("{e}"),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn sweep_stale() -> io::Result<Vec<(PathBuf, io::Result<()>)>> {
        let mut found = Vec::new();
        sweep::sweep_reporting(&registry::owners_dir()?, sweep::Report::Removed(&mut found));
        Ok(found
            .into_iter()
            .map(|(path, removed)| {
                let removed = removed.map_err(|e| {
                    wrap(
                        e,
                        format_args!("remove stale isolated directory {}", path.display()),
                        "check what is in it and who owns it, then remove it by hand",
                    )
                });
                (path, removed)
            })
            .collect())
    }

    /// The isolated directories that [`sweep_stale`](IsolatedDir::sweep_stale) would
    /// remove now, left in place: those of processes that died without unwinding (with
    /// their Unix sockets' directories).
    ///
    /// `cargo isofix clean --dry-run` runs this.
    ///
    /// # Errors
    ///
    /// Fails, naming it, when the registry directory cannot be created or is not private to
    /// this user.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let live = IsolatedDir::new()?;
    /// assert!(!IsolatedDir::list_stale()?.contains(&live.path().to_owned()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn list_stale() -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        sweep::sweep_reporting(&registry::owners_dir()?, sweep::Report::Listed(&mut found));
        Ok(found)
    }

    /// Why the directory is kept if dropped now, if it is.
    fn keep_reason(&self, panicking: bool) -> Option<&'static str> {
        if self.keep_requested {
            return Some("keep_if");
        }
        KeepPolicy::current().keeps(panicking)
    }

    /// Removes the tree, and tells the registry once it is gone. After a failure the
    /// directory stays recorded, so that a later process's sweep tries again once this one
    /// has exited.
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        remove::remove_tree(path)?;
        self.forget(false);
        Ok(())
    }

    /// Tells the registry the directory at `self.path` is gone, or is `kept` and must
    /// never be swept.
    fn forget(&mut self, kept: bool) {
        if !std::mem::take(&mut self.recorded) {
            return;
        }
        match self.path.file_name() {
            Some(name) if kept => Registry::get().keep(name),
            _ => Registry::get().leave(),
        }
    }
}

/// Names a kept directory on stderr, so that the user can find it. Written straight to the
/// process's stderr, not through the test harness's capture, and failures are ignored:
/// this runs inside `Drop`, maybe while unwinding, where a panic would abort.
fn announce_kept(path: &Path, reason: &str) {
    let _ = writeln!(io::stderr(), "isofix: kept {} ({reason})", path.display());
}

impl Drop for IsolatedDir {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        if let Some(reason) = self.keep_reason(std::thread::panicking()) {
            self.forget(true);
            announce_kept(&self.path, reason);
            return;
        }
        let path = std::mem::take(&mut self.path);
        match self.remove(&path) {
            Ok(()) => {}
            // Gone already (the test removed it): what drop was to achieve.
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.forget(false),
            Err(e) => {
                let _ = writeln!(
                    io::stderr(),
                    "isofix: cannot remove isolated directory {}: {e}; remove it by hand",
                    path.display()
                );
            }
        }
    }
}

/// `base` made absolute against the current directory, without touching the file system
/// (`std::path::absolute` needs Rust 1.79).
fn absolute(base: &Path) -> io::Result<PathBuf> {
    if base.is_absolute() {
        Ok(base.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(base))
    }
}

impl AsRef<Path> for IsolatedDir {
    /// The directory's path, so that an `IsolatedDir` can be passed where a path is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use isofix::IsolatedDir;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let dir = IsolatedDir::new()?;
    /// assert!(std::fs::read_dir(&dir)?.next().is_none());
    /// # Ok(())
    /// # }
    /// ```
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for IsolatedDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IsolatedDir").field(&self.path).finish()
    }
}
