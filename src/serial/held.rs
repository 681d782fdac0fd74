//! One group held by this process: its locked files, its record, and the per-thread
//! registry that lets a thread take a group it already holds.
//!
//! Lock files are kept open between uses, one pool per path, because opening a file costs
//! more than locking it. A `flock` belongs to the open file description, so a pooled file
//! is handed to one holder at a time and only ever returned unlocked: two threads of this
//! process never share a description and so still exclude each other.

use std::cell::RefCell;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};

use super::name::{FastMap, FileKey, GroupFiles};
use super::records::RecordSlot;
use crate::common::error::error;
use crate::common::file_lock::{self, LockMode};
use crate::common::private_dir::{ensure_private_dir_cached, forget_checked};
use crate::sys;

/// The environment variable that moves the lock directory, named in hints.
pub(crate) const DIR_VAR: &str = "ISOFIX_LOCK_DIR";

/// How a group is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Alone.
    Exclusive,
    /// With any number of other shared holders.
    Shared,
    /// With at most this many other limited holders.
    Limited(usize),
}

impl Mode {
    /// How messages name the mode.
    pub(crate) fn describe(self) -> String {
        match self {
            Mode::Exclusive => "exclusively".to_owned(),
            Mode::Shared => "shared".to_owned(),
            Mode::Limited(n) => format!("as one of at most {n} holders"),
        }
    }
}

/// Unlocked open lock files, by path, ready for the next holder.
static POOL: LazyLock<Mutex<FastMap<FileKey, Vec<File>>>> = LazyLock::new(Default::default);
/// Files kept per path: more than the holders one process usually has at once.
const POOL_MAX: usize = 8;

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its map consistent, so a panic elsewhere
    // poisons nothing that matters.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A lock file taken from the pool (or opened); goes back to the pool when dropped,
/// unlocked first if it was locked.
pub(crate) struct PooledFile {
    key: FileKey,
    file: Option<File>,
    locked: bool,
}

impl PooledFile {
    /// Takes an unlocked open file for `path` (pooled as `key`), opening (and creating) it
    /// if the pool has none (`open(2)` with `O_RDWR | O_CREAT`).
    fn open(path: &Path, key: FileKey) -> io::Result<Self> {
        let pooled = lock_ignoring_poison(&POOL).get_mut(&key).and_then(Vec::pop);
        let file = match pooled {
            Some(file) => file,
            None => open_lock_file(path)?,
        };
        Ok(Self {
            key,
            file: Some(file),
            locked: false,
        })
    }

    /// Opens (see [`open`](Self::open)) and locks `path` in `mode`, blocking until it can
    /// (`flock(2)`).
    pub(crate) fn lock(path: &Path, key: FileKey, mode: LockMode) -> io::Result<Self> {
        loop {
            let mut file = Self::open(path, key)?;
            file_lock::lock(file.file(), mode)?;
            file.locked = true;
            if let Some(file) = file.still_named()? {
                return Ok(file);
            }
        }
    }

    /// [`lock`](Self::lock) if that is possible at once (`flock(2)` with `LOCK_NB`).
    pub(crate) fn try_lock(path: &Path, key: FileKey, mode: LockMode) -> io::Result<Option<Self>> {
        loop {
            let mut file = Self::open(path, key)?;
            if !file_lock::try_lock(file.file(), mode)? {
                return Ok(None);
            }
            file.locked = true;
            if let Some(file) = file.still_named()? {
                return Ok(Some(file));
            }
        }
    }

    /// The locked file if it still has a name (`fstat(2)`); else `None`, the file closed and
    /// never pooled. A file loses its name when the lock directory is removed while it is
    /// open (typically while it sits in the pool), and a lock on a file nobody else can
    /// open any more excludes nobody: the caller opens the path again, which makes the
    /// directory again.
    fn still_named(mut self) -> io::Result<Option<Self>> {
        if !sys::is_unlinked(self.file())? {
            return Ok(Some(self));
        }
        self.unlock();
        self.file = None;
        Ok(None)
    }

    fn file(&self) -> &File {
        self.file.as_ref().expect("present until drop")
    }

    /// Unlocks the file now (`flock(LOCK_UN)`).
    fn unlock(&mut self) {
        if self.locked {
            self.locked = false;
            if file_lock::unlock(self.file()).is_err() {
                // Closing releases the lock for certain; don't pool a file in doubt.
                self.file = None;
            }
        }
    }
}

impl Drop for PooledFile {
    fn drop(&mut self) {
        self.unlock();
        if let Some(file) = self.file.take() {
            let mut pool = lock_ignoring_poison(&POOL);
            let files = pool.entry(self.key).or_default();
            if files.len() < POOL_MAX {
                files.push(file);
            }
        }
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    };
    match open() {
        // The lock directory was removed since it was checked: make it again.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                forget_checked(dir);
                ensure_private_dir_cached(dir, DIR_VAR)?;
            }
            open()
        }
        other => other,
    }
}

/// One group held in one mode: what a [`SerialGuard`](super::SerialGuard) keeps alive.
pub(crate) struct Held {
    pub(crate) files: Arc<GroupFiles>,
    pub(crate) mode: Mode,
    // Dropped in this order: the record is marked free before the locks go.
    _record: RecordSlot,
    _slot: Option<PooledFile>,
    _main: PooledFile,
}

impl Held {
    pub(crate) fn new(
        files: Arc<GroupFiles>,
        mode: Mode,
        main: PooledFile,
        slot: Option<PooledFile>,
        record: RecordSlot,
    ) -> Self {
        Self {
            files,
            mode,
            _record: record,
            _slot: slot,
            _main: main,
        }
    }
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("group", &self.files.group)
            .field("mode", &self.mode)
            .field("lock_file", &self.files.main())
            .finish()
    }
}

/// Registrations a thread keeps before it forgets those whose guards are gone.
const REGISTRY_TIDY: usize = 16;

thread_local! {
    /// What this thread holds, by group key: weak, so that the last guard's drop releases
    /// the lock. Per thread, as nesting is, so it needs no lock; an entry whose guard was
    /// dropped (maybe on another thread) is noticed and replaced on the next look.
    static REGISTRY: RefCell<Vec<(u128, Weak<Held>)>> = const { RefCell::new(Vec::new()) };
}

/// The guard registered by the calling thread for `files`, if it is still held, cloned
/// (counted); an error if `mode` would need more than the thread holds.
pub(crate) fn reentrant(files: &GroupFiles, mode: Mode) -> io::Result<Option<Arc<Held>>> {
    let key = files.key();
    let found = REGISTRY.with(|registry| {
        let registry = registry.borrow();
        registry
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, held)| held.upgrade())
    });
    let Some(held) = found else {
        return Ok(None);
    };
    if mode == Mode::Exclusive && held.mode != Mode::Exclusive {
        return Err(error(
            ErrorKind::WouldBlock,
            format_args!(
                "acquire serial group {:?} exclusively: this thread already holds it {}, \
                 and waiting for the other holders to leave could wait for itself forever",
                files.group,
                held.mode.describe()
            ),
            "take the group exclusively in the outer acquisition, or drop the outer guard first",
        ));
    }
    Ok(Some(held))
}

/// Records that the calling thread holds `held`, and shares it out.
pub(crate) fn register(held: Held) -> Arc<Held> {
    let held = Arc::new(held);
    let key = held.files.key();
    REGISTRY.with(|registry| {
        let mut registry = registry.borrow_mut();
        if let Some(entry) = registry.iter_mut().find(|(k, _)| *k == key) {
            entry.1 = Arc::downgrade(&held);
            return;
        }
        if registry.len() >= REGISTRY_TIDY {
            registry.retain(|(_, held)| held.strong_count() > 0);
        }
        registry.push((key, Arc::downgrade(&held)));
    });
    held
}
