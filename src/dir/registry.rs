//! Which isolated directories belong to which process, so that a later process can remove
//! those whose owner died without unwinding (`SIGKILL`, `panic = "abort"`, a runner's
//! timeout).
//!
//! Layout, inside the private per-user state root:
//!
//! ```text
//! owners/<process-id>.lock        held locked (flock) by the live process, all its life
//! owners/<process-id>/<dir-name>  one record per live directory; content: its full path
//! owners/<process-id>.tmp         a lock file being born (see `Owner::start`)
//! ```
//!
//! The kernel drops a process's lock when the process dies, however it dies, so "the lock
//! file can be locked" proves "the owner is gone". A live process never shows an unlocked
//! lock file: it locks the file under a temporary name first and only then renames it.
//! See `sweep.rs` for the other half.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

use super::sweep;
use crate::common::file_lock::{self, LockMode};
use crate::common::private_dir::{ensure_private_dir_cached, state_root};
use crate::sys;

/// This process's entry in the registry. Its lock file stays open, and so locked, until
/// the process ends; the files are left for the next sweep to remove, since nothing runs
/// reliably at process exit.
struct Owner {
    records: PathBuf,
    _lock: File,
}

/// The record of one live isolated directory.
#[derive(Debug)]
pub(crate) struct Record {
    path: PathBuf,
}

impl Record {
    /// Removes the record: the directory is gone, or was kept on purpose and must outlive
    /// the process. Dropping a `Record` without calling this leaves the directory to the
    /// sweep of a later process (for a directory that could not be removed now).
    pub(crate) fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Records `dir` (named `name`) as belonging to this process, sweeping the directories of
/// dead processes first if this is the first call. Returns `None` when the registry cannot
/// be used; the directory is then still removed on drop, only not after a crash.
pub(crate) fn register(dir: &Path, name: &str) -> Option<Record> {
    static OWNER: OnceLock<Option<Owner>> = OnceLock::new();
    let owner = OWNER
        .get_or_init(|| Owner::start().map_err(warn_once).ok())
        .as_ref()?;
    let path = owner.records.join(name);
    match write_record(&path, dir) {
        Ok(()) => Some(Record { path }),
        Err(e) => {
            warn_once(e);
            None
        }
    }
}

fn write_record(path: &Path, dir: &Path) -> io::Result<()> {
    let Some(bytes) = sys::path_to_bytes(dir) else {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("record {}: path is not valid Unicode", dir.display()),
        ));
    };
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    if let Err(e) = file.write_all(&bytes) {
        // A partial record would name no directory; leave none.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(())
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

/// The registry directory, `<state root>/owners`.
fn owners_dir() -> io::Result<PathBuf> {
    let owners = state_root()?.join("owners");
    ensure_private_dir_cached(&owners, "TMPDIR")?;
    Ok(owners)
}

/// How many fresh names `Owner::start` tries when sweepers keep taking its temporary file.
const START_ATTEMPTS: usize = 8;

impl Owner {
    /// Sweeps, then enters this process in the registry.
    fn start() -> io::Result<Owner> {
        let owners = owners_dir()?;
        sweep::sweep(&owners);
        for _ in 0..START_ATTEMPTS {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let temp = owners.join(format!("{id}{}", sweep::TEMP_SUFFIX));
            let lock = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            // A sweeper may take the fresh temporary file for one left by a dead process:
            // it locks it (our try fails) or deletes it (our rename fails). Either way,
            // start over under a new name.
            if !file_lock::try_lock(&lock, LockMode::Exclusive)? {
                continue;
            }
            match fs::rename(&temp, owners.join(format!("{id}{}", sweep::LOCK_SUFFIX))) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => {
                    let _ = fs::remove_file(&temp);
                    return Err(e);
                }
            }
            let records = owners.join(&id);
            sys::create_private_dir(&records)?;
            return Ok(Owner {
                records,
                _lock: lock,
            });
        }
        Err(io::Error::other(format!(
            "create a lock file in {}: taken by concurrent sweepers {START_ATTEMPTS} times",
            owners.display()
        )))
    }
}
