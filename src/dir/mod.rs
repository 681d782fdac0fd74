//! `IsolatedDir`: a private, uniquely named temporary directory removed on drop.
//!
//! The user-facing story (removal, keeping, the sweep after crashes, path length) is told
//! on [`IsolatedDir`] itself, since this module is private. Here: `remove.rs` removes a
//! tree without following links, `policy.rs` reads `ISOFIX_KEEP`, `registry.rs` records
//! which live process owns which directory, and `sweep.rs` removes the directories of dead
//! processes.

mod policy;
mod registry;
mod remove;
mod sweep;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::common::error::wrap;
use crate::common::private_dir::env_path;
use crate::common::test_name;
use crate::sys;
use policy::KeepPolicy;
use registry::Record;

/// The environment variable naming the directory that isolated directories are created in.
const TMPDIR_VAR: &str = "ISOFIX_TMPDIR";

/// The longest test name, in bytes, put into a directory's name.
const TEST_NAME_MAX: usize = 30;

/// A private temporary directory, unique to one test, removed with everything in it when
/// dropped.
///
/// # Where and how it is created
///
/// [`IsolatedDir::new`] creates `<base>/isofix-<test name>-<uuid>`, where `<base>` is the
/// directory named by the `ISOFIX_TMPDIR` environment variable if it is set and not empty,
/// and [`std::env::temp_dir`] otherwise; [`IsolatedDir::new_in`] takes the base as an
/// argument. The test name is the running test's (found from the test thread's name, or
/// from `NEXTEST_TEST_NAME` under `cargo nextest`), reduced to ASCII letters, digits, `-`
/// and `_` and cut to 30 bytes, so that a directory left behind tells which test made it;
/// outside a test it is left out: `isofix-<uuid>`. The uuid is a random (v4) one in its
/// 32-hex-digit form.
///
/// The directory is created with create-new semantics (an existing path is never reused)
/// and private: mode 0700 on Unix, so other users cannot read or plant files in it.
/// [`path`](IsolatedDir::path) is absolute even when the base was given as a relative
/// path, so it stays right if the test changes its working directory.
///
/// # Path length
///
/// The directory's name is at most 70 bytes: `isofix-` (7), the test name (at most 30),
/// `-` and 32 hex digits. Its full path is therefore at most the base's length plus 71
/// bytes. This matters for Unix-domain sockets, whose paths are limited to 108 bytes on
/// Linux and 104 on macOS (including the final NUL): with `/tmp` as the base, the
/// directory's path takes at most 75 bytes, which leaves 27 bytes for a socket's file name
/// on macOS and 31 on Linux. On macOS the default temp dir
/// (`/var/folders/…/T/`) alone takes about 50 bytes; set `ISOFIX_TMPDIR=/tmp` there if
/// tests put sockets in their directories.
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
/// isolated directory holds a kernel file lock for its whole life and records its live
/// directories in a private per-user registry (under `<system temp dir>/isofix-<uid>`).
/// The first isolated directory a process creates sweeps that registry: the directories
/// of every process whose lock is free — which the kernel guarantees only once the
/// process is gone — are removed. A live process's directories are never touched, nor
/// anything a record names that is not a real (non-link) `isofix-…` directory of this
/// user. Kept directories are taken out of the registry and so are never swept.
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
    record: Option<Record>,
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
        let base = std::path::absolute(base).map_err(|e| wrap(e, what(), hint))?;
        let id = uuid::Uuid::new_v4().simple();
        let name = match test_name::current_slug(TEST_NAME_MAX) {
            Some(test) => format!("{}{test}-{id}", sweep::NAME_PREFIX),
            None => format!("{}{id}", sweep::NAME_PREFIX),
        };
        let path = base.join(&name);
        // Recorded before it exists, so that a crash right after `mkdir` cannot leave an
        // unrecorded directory behind.
        let record = registry::register(&path, &name);
        if let Err(e) = sys::create_private_dir(&path) {
            if let Some(record) = record {
                record.remove();
            }
            return Err(wrap(e, what(), hint));
        }
        Ok(IsolatedDir {
            path,
            record,
            keep_requested: false,
        })
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
    pub fn keep(mut self) -> PathBuf {
        self.forget_record();
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
        let path = std::mem::take(&mut self.path);
        if let Some(reason) = self.keep_reason(false) {
            self.forget_record();
            announce_kept(&path, reason);
            return Ok(());
        }
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

    /// Why the directory is kept if dropped now, if it is.
    fn keep_reason(&self, panicking: bool) -> Option<&'static str> {
        if self.keep_requested {
            return Some("keep_if");
        }
        KeepPolicy::current().keeps(panicking)
    }

    /// Removes the tree, and its record once it is gone. After a failure the record stays,
    /// so that a later process's sweep tries again once this one has exited.
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        remove::remove_tree(path)?;
        self.forget_record();
        Ok(())
    }

    fn forget_record(&mut self) {
        if let Some(record) = self.record.take() {
            record.remove();
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
        let path = std::mem::take(&mut self.path);
        if let Some(reason) = self.keep_reason(std::thread::panicking()) {
            self.forget_record();
            announce_kept(&path, reason);
            return;
        }
        match self.remove(&path) {
            Ok(()) => {}
            // Gone already (the test removed it): what drop was to achieve.
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.forget_record(),
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
