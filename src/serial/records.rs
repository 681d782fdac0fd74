//! Where holders leave their records: a table of fixed-size slots per process and lock
//! directory, in files mapped into memory, so that writing a record costs no system call.
//!
//! Each process keeps, for as long as it lives, one or more files
//! `<lock dir>/holders/<pid>-<token>-<n>` of [`SLOTS`] slots of [`SLOT_LEN`] bytes. Every
//! held group owns one slot: it writes its line there when it takes the group and marks
//! the slot free (one byte) before letting go. Each file is locked exclusively (`flock`)
//! from its creation until the process exits, so a reader tells the three cases apart
//! without the holder's help:
//!
//! - file lockable: its process is gone (the kernel dropped the lock); the file is stale
//!   and whoever finds it removes it;
//! - slot starting with [`FREE`]: nobody holds anything through it;
//! - slot starting with [`HELD`]: a live holder, described by the rest of the line.
//!
//! A new file is created under a temporary name, locked, filled with free slots and only
//! then renamed into place, so a reader never finds a live file unlocked. Whoever creates a
//! file first removes the stale ones it finds, so files of dead processes do not pile up
//! even when nobody waits long enough to read them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::diag::pid;
use crate::common::file_lock::{self, LockMode};
use crate::sys::{self, SharedMap};

/// Bytes per slot: one line, padded with spaces, ending in `\n`.
pub(crate) const SLOT_LEN: usize = 256;
/// Slots per file.
const SLOTS: usize = 32;
/// First byte of a slot in use.
pub(crate) const HELD: u8 = b'H';
/// First byte of a free slot.
pub(crate) const FREE: u8 = b'-';

/// The directory of record files inside a lock directory.
pub(crate) fn records_dir(lock_dir: &Path) -> PathBuf {
    lock_dir.join("holders")
}

/// One record file of this process, locked and mapped for the rest of its life (the map
/// keeps the file open, and with it the `flock` that tells readers this process is alive).
#[derive(Debug)]
struct Chunk {
    map: SharedMap,
}

/// This process's record slots in one lock directory.
#[derive(Debug)]
pub(crate) struct Records {
    lock_dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Free slots: file, slot.
    free: Vec<(&'static Chunk, usize)>,
    files: usize,
}

impl Records {
    /// The table for `lock_dir`, made on first use. Tables live as long as the process,
    /// since their files must stay locked that long.
    pub(crate) fn for_dir(lock_dir: &Path) -> &'static Records {
        static ALL: Mutex<Vec<&'static Records>> = Mutex::new(Vec::new());
        let mut all = ALL.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = all.iter().find(|r| r.lock_dir == lock_dir) {
            return found;
        }
        let made: &'static Records = Box::leak(Box::new(Records {
            lock_dir: lock_dir.to_owned(),
            inner: Mutex::new(Inner::default()),
        }));
        all.push(made);
        made
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a free slot and writes `line` (exactly [`SLOT_LEN`] bytes, starting with
    /// [`HELD`]) into it; the slot is marked free again when the returned value drops.
    pub(crate) fn hold(&'static self, line: &[u8; SLOT_LEN]) -> io::Result<RecordSlot> {
        let mut inner = self.inner();
        let (chunk, slot) = match inner.free.pop() {
            Some(found) => found,
            None => {
                self.add_file(&mut inner)?;
                inner.free.pop().expect("a new file has free slots")
            }
        };
        drop(inner);
        let at = slot * SLOT_LEN;
        // The line first, then its first byte: a reader that sees HELD sees the line.
        chunk.map.write(at + 1, &line[1..]);
        chunk.map.publish(at, line[0]);
        Ok(RecordSlot {
            records: self,
            chunk,
            slot,
        })
    }

    fn add_file(&self, inner: &mut Inner) -> io::Result<()> {
        let dir = records_dir(&self.lock_dir);
        match sys::create_private_dir(&dir) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        remove_stale(&dir);
        let name = format!("{}-{:x}-{}", pid(), process_token(), inner.files);
        let tmp = dir.join(format!("{name}.tmp"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let ready = (|| {
            file_lock::lock(&file, LockMode::Exclusive)?;
            // Real bytes, not a hole: the blocks are allocated now, so a store into the
            // mapping never needs disk space later.
            let mut blank = [b' '; SLOT_LEN];
            blank[0] = FREE;
            blank[SLOT_LEN - 1] = b'\n';
            for _ in 0..SLOTS {
                file.write_all(&blank)?;
            }
            fs::rename(&tmp, dir.join(&name))?;
            SharedMap::new(file, SLOTS * SLOT_LEN)
        })();
        let map = match ready {
            Ok(map) => map,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let chunk: &'static Chunk = Box::leak(Box::new(Chunk { map }));
        inner.files += 1;
        inner
            .free
            .extend((0..SLOTS).rev().map(|slot| (chunk, slot)));
        Ok(())
    }
}

/// Tells this process's files from those of an earlier process that had the same pid.
fn process_token() -> u64 {
    static TOKEN: OnceLock<u64> = OnceLock::new();
    *TOKEN.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

/// Record files in `dir` that belong to live processes, open; removes those of dead ones.
/// Files still being created (`.tmp`) are skipped.
pub(crate) fn live_files(dir: &Path) -> Vec<File> {
    let mut live = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return live;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some() {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file_lock::try_lock(&file, LockMode::Shared) {
            Ok(false) => live.push(file),
            // Lockable: its process is gone.
            Ok(true) => {
                let _ = fs::remove_file(&path);
            }
            Err(_) => {}
        }
    }
    live
}

fn remove_stale(dir: &Path) {
    drop(live_files(dir));
}

/// A slot holding one record; marked free (one byte) and returned when dropped.
pub(crate) struct RecordSlot {
    records: &'static Records,
    chunk: &'static Chunk,
    slot: usize,
}

impl Drop for RecordSlot {
    fn drop(&mut self) {
        self.chunk.map.publish(self.slot * SLOT_LEN, FREE);
        self.records.inner().free.push((self.chunk, self.slot));
    }
}

impl std::fmt::Debug for RecordSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSlot")
            .field("slot", &self.slot)
            .finish()
    }
}
