//! The lock directory: found, created private, checked, and reached through a handle.
//!
//! Every file of the lock protocol and of the holder records is created, opened and
//! removed through a [`DirHandle`] of the versioned layout directory `<lock dir>/v1`,
//! opened without following a symbolic link and checked when it was opened (a directory,
//! owned by the effective user, closed to group and others), so that swapping any of these
//! directories for a symbolic link later cannot make isofix touch anything outside them.
//!
//! Handles are kept in a small cache ([`CACHE_MAX`] directories, 2 descriptors each: the
//! handle and this process's record file); a directory in use by a held guard stays open
//! until the guard drops. A request checks each file it locked (see
//! [`LockFile::is_unlinked`]): one removed with the directory fails the request, one removed
//! alone is opened afresh. Each process also remembers the identity of every lock directory
//! it used, and refuses another directory at that path when it opens the path again:
//! either way it never silently starts a second lock space beside the locks still held in
//! the removed one.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::records::{self, Record, Table};
use super::settings::DIR_VAR;
use crate::common::error::{error, wrap};
use crate::common::file_lock::{self, LockMode};
use crate::common::private_dir::{refusal_cause, refusal_hint, Chooser};
use crate::sys::{self, DirHandle};

/// `ISOFIX_LOCK_DIR`, which moves the lock directory.
const LOCK_DIR: Chooser = Chooser {
    var: DIR_VAR,
    example: "$HOME/.cache/isofix-locks",
};

/// The layout's protocol version, the name of the directory that holds it: a future
/// incompatible protocol uses another name, and must look for live holders here before
/// it takes a group (see docs/serial.md), so that two copies of isofix never split a lock.
pub(crate) const LAYOUT: &str = "v1";
/// Lock directories kept open besides those that held guards use.
pub(crate) const CACHE_MAX: usize = 4;
/// Unlocked lock files kept open per lock directory for the next acquisition: opening a
/// file costs more than locking it.
pub(crate) const POOL_MAX: usize = 4;
/// Descriptors isofix keeps open when nothing is held: per cached directory its handle,
/// its record file and its pool.
pub(crate) const KEPT_FDS: usize = CACHE_MAX * (2 + POOL_MAX);

/// One lock directory, opened and checked.
#[derive(Debug)]
pub(crate) struct LockDir {
    /// The lock directory as configured, for messages and lookups.
    path: PathBuf,
    /// `<path>/v1`, the directory of the handle.
    versioned: PathBuf,
    handle: DirHandle,
    identity: (u64, u64),
    /// This process's record file here, made on first use.
    table: Mutex<Option<Arc<Table>>>,
    /// Unlocked open lock files, by name.
    pool: Mutex<Vec<(String, File)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent: a panic elsewhere poisons nothing.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

static CACHE: Mutex<Vec<Arc<LockDir>>> = Mutex::new(Vec::new());
/// `(versioned path, identity)` of every lock directory this process used.
static KNOWN: Mutex<Vec<(PathBuf, (u64, u64))>> = Mutex::new(Vec::new());

/// Where lock files go when neither the builder nor `ISOFIX_LOCK_DIR` says:
/// `/tmp/isofix-<uid>/locks` on Unix. Fixed, not taken from `TMPDIR` or
/// `XDG_RUNTIME_DIR`: processes of one user whose environments differ (ssh without a
/// session, cron, `sudo -u`, `docker exec`) would otherwise split every lock silently.
#[cfg(unix)]
fn default_base() -> PathBuf {
    PathBuf::from("/tmp")
}

/// The per-user temp directory (`%TEMP%`), the same for every process of the user.
#[cfg(windows)]
fn default_base() -> PathBuf {
    std::env::temp_dir()
}

/// `<base>/isofix-<uid>/locks`.
fn default_in(base: &Path) -> PathBuf {
    base.join(format!("isofix-{}", sys::user_tag()))
        .join("locks")
}

/// The default lock directory, worked out once: it is on every acquisition's path.
fn default_path() -> &'static Path {
    static DEFAULT: OnceLock<PathBuf> = OnceLock::new();
    DEFAULT.get_or_init(|| default_in(&default_base()))
}

impl LockDir {
    /// The lock directory `configured` (the builder's or `ISOFIX_LOCK_DIR`), else the
    /// default one (under `base` if given, for tests), opened or taken from the cache. For
    /// `locking`, it is created if missing and remembered (see the module docs); else a
    /// missing one is `NotFound` and nothing is made or remembered.
    pub(crate) fn get(
        configured: Option<&Path>,
        base: Option<&Path>,
        locking: bool,
    ) -> io::Result<Arc<LockDir>> {
        let in_base;
        let path = match (configured, base) {
            (Some(path), _) => path,
            (None, Some(base)) => {
                in_base = default_in(base);
                &in_base
            }
            (None, None) => default_path(),
        };
        let cached = lock(&CACHE).iter().find(|d| d.path == path).cloned();
        if let Some(dir) = cached {
            // Checked once the request holds its lock (see `Attempt`): one `fstat` per
            // acquisition.
            return Ok(dir);
        }
        let versioned = path.join(LAYOUT);
        let known = lock(&KNOWN)
            .iter()
            .find(|(p, _)| *p == versioned)
            .map(|(_, id)| *id);
        // A directory this process used is never made again: see the module docs.
        let create = locking && known.is_none();
        let handle = match configured {
            Some(_) => open_private(None, path, path, create),
            None => open_default(path, create),
        }
        .and_then(|root| {
            let name = Path::new(LAYOUT);
            open_private(Some(&root), name, &versioned, create)
        });
        let handle = match handle {
            Err(e) if e.kind() == ErrorKind::NotFound && known.is_some() => {
                return Err(removed(path, "removed"))
            }
            other => other?,
        };
        let identity = sys::file_identity(&handle.metadata()?);
        match known {
            Some(id) if id != identity => {
                return Err(removed(path, "replaced by another directory"))
            }
            Some(_) => {}
            None if locking => lock(&KNOWN).push((versioned.clone(), identity)),
            None => {}
        }
        let dir = Arc::new(LockDir {
            path: path.to_owned(),
            versioned,
            handle,
            identity,
            table: Mutex::new(None),
            pool: Mutex::new(Vec::new()),
        });
        if !locking {
            // Not cached either: a later lock here must remember it as it is then.
            return Ok(dir);
        }
        dir.handle.keep_from_cleaners();
        let mut cache = lock(&CACHE);
        if cache.len() >= CACHE_MAX {
            cache.remove(0);
        }
        cache.push(Arc::clone(&dir));
        Ok(dir)
    }

    /// Fails if the directory was removed since it was opened (its handle's link count is
    /// 0): a request that waited while it was removed holds a lock that no longer
    /// excludes newcomers.
    pub(crate) fn still_there(&self) -> io::Result<()> {
        match self.handle.is_unlinked() {
            Ok(false) => Ok(()),
            Ok(true) => Err(removed(&self.path, "removed")),
            Err(e) => Err(wrap(
                e,
                format_args!("inspect lock directory {}", self.path.display()),
                format_args!("set {DIR_VAR} to a directory of your own"),
            )),
        }
    }

    /// The lock directory as configured.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `other` is the same directory (two handles may be open on one).
    pub(crate) fn same(&self, other: &LockDir) -> bool {
        self.identity == other.identity && self.path == other.path
    }

    /// The records of holders and waiters here (of `group` only, if given).
    pub(crate) fn holders(&self, group: Option<&str>) -> io::Result<Vec<super::Holder>> {
        records::read(&self.handle, &self.versioned, group)
    }

    /// The record files of processes that are gone, removed first if `remove`.
    pub(crate) fn stale_records(&self, remove: bool) -> io::Result<Vec<PathBuf>> {
        records::stale_files(&self.handle, &self.versioned, remove)
    }

    /// The lock file `name`, unlocked: from the pool, else opened (created if missing),
    /// never through a symbolic link. Goes back to the pool when dropped.
    pub(crate) fn open_file(self: &Arc<Self>, name: String) -> io::Result<LockFile> {
        let pooled = {
            let mut pool = lock(&self.pool);
            let at = pool.iter().position(|(n, _)| *n == name);
            at.map(|at| pool.swap_remove(at).1)
        };
        let file = match pooled {
            Some(file) => file,
            None => self.handle.open_file(&name)?,
        };
        Ok(LockFile {
            dir: Arc::clone(self),
            name,
            file: Some(file),
            locked: false,
        })
    }

    /// Writes `line`, of the group `stem`, into this process's record file here (made on
    /// first use).
    pub(crate) fn record(&self, line: &[u8], stem: &str) -> io::Result<Record> {
        let mut table = lock(&self.table);
        let table = match &*table {
            Some(table) => Arc::clone(table),
            None => Arc::clone(
                table.get_or_insert(Arc::new(Table::create(&self.handle, &self.versioned)?)),
            ),
        };
        Ok(table.put(line, stem))
    }
}

/// An open lock file of a [`LockDir`]; unlocked and pooled (or closed) when dropped.
#[derive(Debug)]
pub(crate) struct LockFile {
    dir: Arc<LockDir>,
    name: String,
    file: Option<File>,
    locked: bool,
}

impl LockFile {
    /// Whether the file was removed (its link count is 0), with the directory or alone.
    /// Such a file is closed when dropped, never pooled.
    pub(crate) fn is_unlinked(&mut self) -> io::Result<bool> {
        let file = self.file.as_ref().expect("open until dropped");
        let unlinked = sys::is_unlinked(file)?;
        if unlinked {
            // Other copies kept for the name are as stale.
            lock(&self.dir.pool).retain(|(n, _)| *n != self.name);
            self.name.clear();
        }
        Ok(unlinked)
    }

    /// Locks the file in `mode`, blocking if `block`; whether it did (`flock(2)`).
    pub(crate) fn lock(&mut self, mode: LockMode, block: bool) -> io::Result<bool> {
        let file = self.file.as_ref().expect("open until dropped");
        self.locked = match block {
            true => file_lock::lock(file, mode).map(|()| true)?,
            false => file_lock::try_lock(file, mode)?,
        };
        Ok(self.locked)
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        // A file whose unlock failed is closed, which releases its lock for certain.
        if self.locked && file_lock::unlock(&file).is_err() {
            return;
        }
        let mut pool = lock(&self.dir.pool);
        if pool.len() < POOL_MAX && !self.name.is_empty() {
            pool.push((std::mem::take(&mut self.name), file));
        }
    }
}

fn removed(path: &Path, how: &str) -> io::Error {
    error(
        ErrorKind::NotFound,
        format_args!(
            "use lock directory {}: it was {how} while this process used it, so locks \
             held in the old one no longer exclude newcomers; refusing to start a second \
             lock space beside them",
            path.display()
        ),
        format_args!(
            "do not remove a lock directory while tests run (keep {DIR_VAR} out of target/, \
             which `cargo clean` removes), then run the tests again"
        ),
    )
}

/// `<base>/isofix-<uid>`, then `locks` in it.
fn open_default(path: &Path, create: bool) -> io::Result<DirHandle> {
    let (Some(root), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(ErrorKind::InvalidInput));
    };
    let root = open_private(None, root, root, create)?;
    open_private(Some(&root), Path::new(name), path, create)
}

/// Opens the directory `name` (a path when `parent` is `None`, else an entry of
/// `parent`; `full` is its whole path, for messages), creating it 0700 if missing and
/// `create`, and checks it. Only the last component is created: a configured path with
/// missing parents is refused.
fn open_private(
    parent: Option<&DirHandle>,
    name: &Path,
    full: &Path,
    create: bool,
) -> io::Result<DirHandle> {
    let shown = || format!("lock directory {}", full.display());
    let open = || match parent {
        Some(p) => p.open_dir(name.to_str().unwrap_or_default()),
        None => DirHandle::open(name),
    };
    let opened = match open() {
        Err(e) if e.kind() == ErrorKind::NotFound && create => {
            let made = match parent {
                Some(p) => p.create_dir(name.to_str().unwrap_or_default()),
                None => sys::create_private_dir(name),
            };
            match made {
                Ok(()) => open(),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => open(),
                Err(e) => Err(e),
            }
        }
        other => other,
    };
    let handle = opened.map_err(|e| {
        // For the message only: the handle's open already refused it.
        let found = std::fs::symlink_metadata(full).ok();
        if let Some((meta, cause)) = found
            .as_ref()
            .and_then(|meta| Some((meta, refusal_cause(meta)?)))
        {
            return error(
                ErrorKind::PermissionDenied,
                format_args!("refusing to use {}: {cause}", shown()),
                refusal_hint(meta, &LOCK_DIR),
            );
        }
        let hint = if sys::is_out_of_descriptors(&e) {
            "the process is out of file descriptors: raise `ulimit -n`, or find what else \
             keeps so many open"
                .to_owned()
        } else if e.kind() == ErrorKind::NotFound {
            format!("create its parent directory first, or set {DIR_VAR} to an existing place")
        } else {
            format!("set {DIR_VAR} to a directory that only you own (mode 0700)")
        };
        wrap(e, format_args!("open {}", shown()), hint)
    })?;
    let meta = handle.metadata()?;
    let Some(reason) = refusal_cause(&meta) else {
        return Ok(handle);
    };
    Err(error(
        ErrorKind::PermissionDenied,
        format_args!("refusing to use {}: {reason}", shown()),
        refusal_hint(&meta, &LOCK_DIR),
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_squatted_default_root_gets_a_hint_the_victim_can_follow() {
        let base = std::env::temp_dir().join(format!("isofix-squat-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&base).unwrap();
        let root = base.join(format!("isofix-{}", sys::user_tag()));
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let squatted = std::os::unix::fs::chown(&root, Some(65534), None).is_ok();
        let err = LockDir::get(None, Some(&base), true).unwrap_err();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&root.display().to_string()), "{msg}");
        if !squatted {
            println!("not checked: another user's root (changing owners needs root)");
            assert!(msg.contains("chmod 700"), "{msg}");
            return;
        }
        assert!(msg.contains("owned by uid 65534"), "{msg}");
        assert!(msg.contains("set ISOFIX_LOCK_DIR"), "{msg}");
        assert!(
            !msg.contains("remove"),
            "a hint the victim cannot follow: {msg}"
        );
    }
}
