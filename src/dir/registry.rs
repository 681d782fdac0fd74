//! Which process owns which isolated directories, so that a later process can remove those
//! whose owner died without unwinding (`SIGKILL`, `panic = "abort"`, a runner's timeout).
//!
//! One record per process, not one per directory, so that a directory costs no more than
//! its `mkdir(2)` and its removal. Inside the private per-user state root:
//!
//! ```text
//! dir-owners/<id>.lock   held locked (flock) by the live process <id>, all its life
//! ```
//!
//! Every directory the process creates is named `isofix-<test>-<id><n>` (see `names.rs`),
//! and the file lists, as NUL-terminated entries, each base the process created
//! directories in (`b<path>`, written before the first `mkdir(2)` there) and the names of
//! the directories it kept (`k<name>`). The kernel drops a process's lock when the process
//! dies, however it dies, so "the file can be locked" proves "the owner is gone": a sweeper
//! then removes the dead owner's directories by name in its bases (`sweep.rs`).
//!
//! A process whose directories are all gone when it exits removes its file at exit
//! (`atexit(3)`), so that the next process has nothing to sweep; only crashed processes, or
//! processes that leaked a directory, leave theirs.
//!
//! A live process never shows an unlocked, non-empty file: it creates the file empty,
//! locks it, checks it still has its name (a sweeper may have taken the empty file for a
//! dead owner's and removed it; then it starts over under a new id), and only then writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once, OnceLock, PoisonError};

use super::names;
use super::sweep;
use crate::common::file_lock::{self, LockMode};
use crate::common::private_dir::{ensure_private_dir_cached, state_root};
use crate::sys;

/// The tag of an entry naming a base directory.
pub(crate) const BASE_TAG: u8 = b'b';
/// The tag of an entry naming a kept directory.
pub(crate) const KEPT_TAG: u8 = b'k';

/// This process's registry, made on first use.
static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// This process's id, and its entry in the registry if the registry could be used.
pub(crate) struct Registry {
    id: String,
    owner: Option<Owner>,
}

struct Owner {
    path: PathBuf,
    pid: u32,
    state: Mutex<State>,
}

struct State {
    /// Open, and so locked, until the process ends; `None` once the exit handler has
    /// removed the file, after which nothing more is recorded.
    file: Option<File>,
    /// The bases already written to the file.
    bases: Vec<PathBuf>,
    /// Directories created and not yet removed or kept.
    live: usize,
}

impl Registry {
    /// The registry of this process, entered (after a sweep of the dead owners' directories)
    /// on first use. A registry that cannot be used is reported once on stderr; isolated
    /// directories still work then, with a random id, and are only not swept after a crash.
    pub(crate) fn get() -> &'static Registry {
        REGISTRY.get_or_init(|| match Owner::start() {
            Ok((id, owner)) => Registry {
                id,
                owner: Some(owner),
            },
            Err(e) => {
                warn_once(e);
                Registry {
                    id: names::random_id(),
                    owner: None,
                }
            }
        })
    }

    /// The id that this process's directory names end with (before their counter).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Records that a directory is about to be created in `base`; returns whether it is
    /// recorded, in which case [`leave`](Registry::leave) or [`keep`](Registry::keep) must
    /// follow once it is gone or kept.
    pub(crate) fn enter(&self, base: &Path) -> bool {
        let Some(owner) = &self.owner else {
            return false;
        };
        let mut state = owner.lock();
        let State { file, bases, live } = &mut *state;
        let Some(file) = file else {
            return false;
        };
        if !bases.iter().any(|known| known == base) {
            if let Err(e) = write_entry(file, BASE_TAG, base.as_os_str()) {
                warn_once(e);
                return false;
            }
            bases.push(base.to_owned());
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
        if let Some(file) = &state.file {
            if let Err(e) = write_entry(file, KEPT_TAG, name) {
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

/// Appends one entry: its tag, its bytes, a NUL (which no path contains).
fn write_entry(mut file: &File, tag: u8, text: &std::ffi::OsStr) -> io::Result<()> {
    let Some(bytes) = sys::path_to_bytes(Path::new(text)) else {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("record {}: not valid Unicode", Path::new(text).display()),
        ));
    };
    let mut entry = Vec::with_capacity(bytes.len() + 2);
    entry.push(tag);
    entry.extend_from_slice(&bytes);
    entry.push(0);
    file.write_all(&entry)
}

/// Reports the first registry failure of the process on stderr; the rest would only repeat
/// it. Isolated directories keep working, they are only not swept after a crash.
fn warn_once(err: io::Error) {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        let _ = writeln!(
            io::stderr(),
            "isofix: cannot record isolated directories for cleanup after a crash: {err}; \
             they are still removed on drop"
        );
    });
}

/// The registry directory, `<state root>/dir-owners`.
fn owners_dir() -> io::Result<PathBuf> {
    let owners = state_root()?.join("dir-owners");
    ensure_private_dir_cached(&owners, "TMPDIR")?;
    Ok(owners)
}

/// How many fresh ids `Owner::start` tries when its file is taken (by a sweeper, or by
/// a namesake, which 60 random bits make all but impossible).
const START_ATTEMPTS: usize = 8;

impl Owner {
    /// Sweeps, then enters this process in the registry under a fresh id.
    fn start() -> io::Result<(String, Owner)> {
        let owners = owners_dir()?;
        sweep::sweep(&owners);
        for _ in 0..START_ATTEMPTS {
            let id = names::random_id();
            let path = owners.join(format!("{id}{}", sweep::LOCK_SUFFIX));
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            // Between create and lock, a sweeper may take the empty file for a dead
            // owner's: it locks it (our try fails) or removes it (the file has no name any
            // more). Either way, start over under a new id.
            if !file_lock::try_lock(&file, LockMode::Exclusive)? || sys::is_unlinked(&file)? {
                continue;
            }
            let owner = Owner {
                path,
                pid: std::process::id(),
                state: Mutex::new(State {
                    file: Some(file),
                    bases: Vec::new(),
                    live: 0,
                }),
            };
            // Without the handler (on Windows), the file stays for the next process's
            // sweep, which finds nothing to remove: only slower.
            sys::at_exit(remove_at_exit);
            return Ok((id, owner));
        }
        Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "create a lock file in {}: taken by concurrent sweepers {START_ATTEMPTS} times",
                owners.display()
            ),
        ))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes the file if no directory of this process is left to sweep, and records
    /// nothing more after that.
    fn exit(&self) {
        // A child forked without `exec` runs the exit handlers too: the file is its
        // parent's.
        if self.pid != std::process::id() {
            return;
        }
        let mut state = self.lock();
        if state.live == 0 && state.file.is_some() {
            // Removed while still locked, so that no sweeper works on it meanwhile.
            let _ = fs::remove_file(&self.path);
            state.file = None;
        }
    }
}

/// The `atexit(3)` handler: never unwinds (unwinding out of an `extern "C"` function is
/// undefined behaviour before Rust 1.81), never blocks on a registry not yet made.
extern "C" fn remove_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(owner) = REGISTRY.get().and_then(|r| r.owner.as_ref()) {
            owner.exit();
        }
    });
}
