//! Which process owns which isolated directories and socket directories (those of
//! `EphemeralUnix` and `EphemeralUnixDatagram`), so that a later process can remove those
//! whose owner died without unwinding (`SIGKILL`, `panic = "abort"`, a runner's timeout).
//!
//! One record per process, not one per directory, so that a directory costs no more than
//! its `mkdir(2)` and its removal; and the records are files reused from process to
//! process, so that a process creates and deletes no file of its own either. Inside the
//! private per-user state root:
//!
//! ```text
//! dir-owners/<n>.lock   a slot: held locked (flock) by the live process using it
//! ```
//!
//! A process claims the first slot it can lock, or adds one (`<n>` counts up from 0, so
//! there are as many slots as isofix processes of this user ever ran at once). Every
//! directory the process creates is named `isofix-<test>-<id><n>` (see `names.rs`), and
//! before its first `mkdir(2)` in a base the process appends to its slot, as NUL-terminated
//! entries, its id (`i<id>`, once) and that base (`b<path>`, or `s<path>` for the state root
//! that holds its socket directories `u<id><n>`); it appends the names of the
//! directories it keeps (`k<name>`). A process whose directories are all gone when it
//! exits empties its slot (`atexit(3)`), so an empty slot needs no sweep.
//!
//! The kernel drops a process's lock when the process dies, however it dies, so "the slot
//! can be locked" proves "its last owner is gone": a sweeper that finds a slot free and not
//! empty removes the dead owner's directories by name in its bases (`sweep.rs`), then
//! empties it.

use std::fs::File;
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once, OnceLock, PoisonError};

use super::names::{self, Kind};
use super::slot;
use super::sweep;
use crate::common::file_lock::{self, LockMode};
use crate::common::private_dir::{ensure_private_dir_cached, state_root, TMPDIR};
use crate::sys;

/// This process's registry, made on first use.
static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// This process's id, and its slot in the registry if the registry could be used.
pub(crate) struct Registry {
    id: String,
    owner: Option<Owner>,
}

struct Owner {
    pid: u32,
    state: Mutex<State>,
}

struct State {
    /// The slot, open and so locked until the process ends; `None` once
    /// the exit handler has emptied it, after which nothing more is recorded.
    slot: Option<File>,
    /// Whether the id is written.
    has_id: bool,
    /// The bases already written, with the kind of directories made there.
    bases: Vec<(PathBuf, Kind)>,
    /// Directories created and not yet removed or kept.
    live: usize,
}

impl Registry {
    /// The registry of this process, entered (after a sweep of the dead owners' directories)
    /// on first use. A registry that cannot be used is reported once on stderr; isolated
    /// directories still work then, and are only not swept after a crash.
    pub(crate) fn get() -> &'static Registry {
        REGISTRY.get_or_init(|| {
            let id = names::random_id();
            let owner = Owner::start().map_err(warn_once).ok();
            Registry { id, owner }
        })
    }

    /// The id that this process's directory names end with (before their number).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The name of this process's next socket directory.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn socket_dir_name(&self) -> String {
        names::socket_dir_name(&self.id, names::next_number())
    }

    /// Records that a directory of `kind` is about to be created in `base`; returns whether
    /// it is recorded, in which case [`leave`](Registry::leave) or [`keep`](Registry::keep)
    /// must follow once it is gone or kept.
    pub(crate) fn enter(&self, base: &Path, kind: Kind) -> bool {
        let Some(owner) = &self.owner else {
            return false;
        };
        let mut state = owner.lock();
        let State {
            slot,
            has_id,
            bases,
            live,
        } = &mut *state;
        let Some(file) = slot else {
            return false;
        };
        if !bases.iter().any(|(known, k)| known == base && *k == kind) {
            let mut entries = if *has_id {
                Vec::new()
            } else {
                slot::id_entry(&self.id)
            };
            entries.extend(slot::base_entry(base, kind));
            if let Err(e) = slot::append(file, &entries) {
                warn_once(e);
                return false;
            }
            *has_id = true;
            bases.push((base.to_owned(), kind));
        }
        *live += 1;
        true
    }

    /// A recorded directory is gone.
    pub(crate) fn leave(&self) {
        if let Some(owner) = &self.owner {
            let mut state = owner.lock();
            state.live = state.live.saturating_sub(1);
        }
    }

    /// A recorded directory, named `name`, is kept: the sweep must leave it alone.
    pub(crate) fn keep(&self, name: &std::ffi::OsStr) {
        let Some(owner) = &self.owner else {
            return;
        };
        let mut state = owner.lock();
        state.live = state.live.saturating_sub(1);
        if let Some(file) = &mut state.slot {
            if let Err(e) = slot::append(file, &slot::kept_entry(name)) {
                let _ = writeln!(
                    io::stderr(),
                    "isofix: cannot record kept directory {} ({e}); if this process \
                     crashes, a later sweep may remove it",
                    name.to_string_lossy()
                );
            }
        }
    }
}

/// Reports the first registry failure of the process on stderr; the rest would only repeat
/// it. Isolated directories keep working, they are only not swept after a crash.
fn warn_once(err: io::Error) {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        let _ = writeln!(
            io::stderr(),
            "isofix: cannot record isolated directories and socket directories for cleanup \
             after a crash: {err}; they are still removed on drop"
        );
    });
}

/// The registry directory: `/dev/shm/isofix-<uid>/dir-owners` on Linux when `TMPDIR` is
/// not set, else `<state root>/dir-owners` (under the system temp dir).
///
/// Every process writes its slot twice (when it makes its first directory, and at exit).
/// On a disk file system each write is a journalled metadata update, which on a busy
/// machine can take milliseconds — as much as the rest of a short test process's own
/// file work. In memory (tmpfs) it costs microseconds. A user who set `TMPDIR` chose where
/// temporary state goes, and gets it there.
pub(crate) fn owners_dir() -> io::Result<PathBuf> {
    let root = match memory_root() {
        Some(root) => {
            ensure_private_dir_cached(&root, &TMPDIR)?;
            root
        }
        None => state_root()?,
    };
    let owners = root.join("dir-owners");
    ensure_private_dir_cached(&owners, &TMPDIR)?;
    Ok(owners)
}

/// `/dev/shm/isofix-<uid>`, on Linux when `/dev/shm` is a directory and `TMPDIR` is unset.
fn memory_root() -> Option<PathBuf> {
    if !cfg!(target_os = "linux") || std::env::var_os("TMPDIR").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let shm = Path::new("/dev/shm");
    std::fs::metadata(shm)
        .is_ok_and(|meta| meta.is_dir())
        .then(|| shm.join(format!("isofix-{}", sys::user_tag())))
}

/// How many new slots `Owner::start` tries to add when other processes take each one
/// before it can lock it.
const NEW_SLOT_ATTEMPTS: usize = 16;

impl Owner {
    /// Sweeps, then takes a free slot, or adds one.
    fn start() -> io::Result<Owner> {
        let owners = owners_dir()?;
        let (free, next) = sweep::sweep(&owners);
        let file = match free {
            Some(file) => file,
            None => add_slot(&owners, next)?,
        };
        // Without the handler (on Windows), the slot stays as it is for a later process's
        // sweep, which finds nothing to remove: only slower.
        sys::at_exit(empty_at_exit);
        Ok(Owner {
            pid: std::process::id(),
            state: Mutex::new(State {
                slot: Some(file),
                has_id: false,
                bases: Vec::new(),
                live: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Empties the slot if no directory of this process is left to sweep, and records
    /// nothing more after that.
    fn exit(&self) {
        // A child forked without `exec` runs the exit handlers too: the slot is its
        // parent's.
        if self.pid != std::process::id() {
            return;
        }
        let mut state = self.lock();
        if state.live == 0 {
            if let Some(file) = state.slot.take() {
                if state.has_id {
                    let _ = file.set_len(0);
                }
            }
        }
    }
}

/// Creates and locks a new slot, numbered from `first` on.
fn add_slot(owners: &Path, first: u32) -> io::Result<File> {
    for n in (first..).take(NEW_SLOT_ATTEMPTS) {
        let path = owners.join(format!("{n}{}", slot::SUFFIX));
        match slot::options().create_new(true).open(&path) {
            // Another process may lock the new, empty slot first; then try the next.
            Ok(file) => {
                if file_lock::try_lock(&file, LockMode::Exclusive)? {
                    return Ok(file);
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        ErrorKind::AlreadyExists,
        format!(
            "add a slot in {}: {NEW_SLOT_ATTEMPTS} new slots were taken by other processes",
            owners.display()
        ),
    ))
}

/// The `atexit(3)` handler: never unwinds (unwinding out of an `extern "C"` function is
/// undefined behaviour before Rust 1.81), never blocks on a registry not yet made.
extern "C" fn empty_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(owner) = REGISTRY.get().and_then(|r| r.owner.as_ref()) {
            owner.exit();
        }
    });
}
