//! Removing the isolated directories of processes that died without unwinding.
//!
//! Runs once per process, before its first isolated directory. For every owner whose lock
//! file it can lock (so the owner is dead), it lists each base the owner recorded and
//! removes the entries that are the owner's directories — and nothing else, so that a
//! forged or stale record cannot make it delete what it should not:
//!
//! - the entry's name is one the owner made (`isofix-…-<id><n>`, see `names.rs`), and not
//!   one the owner kept;
//! - it is a real directory (`lstat(2)`: not a link, which is never followed) owned by
//!   this user.
//!
//! A live owner's directories are never touched: its lock is held, and no other process
//! has its id (ids are taken with create-new semantics in the registry).
//!
//! Sweepers run concurrently in many processes. The owner's lock serialises them per
//! owner; a directory or file that another sweeper removed first (`NotFound`) counts as
//! removed. Every error is ignored: the sweep is housekeeping, and what it cannot remove
//! now stays recorded for the next one.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::names;
use super::registry::{BASE_TAG, KEPT_TAG};
use super::remove::remove_tree;
use crate::common::file_lock::{self, LockMode};
use crate::sys;

/// The suffix of an owner's lock file.
pub(crate) const LOCK_SUFFIX: &str = ".lock";

/// Sweeps the registry in `owners`.
pub(crate) fn sweep(owners: &Path) {
    let Ok(entries) = fs::read_dir(owners) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(LOCK_SUFFIX)) else {
            continue;
        };
        if names::is_id(id) {
            sweep_owner(&entry.path(), id);
        }
    }
}

/// Opens and locks the lock file at `path` if nobody holds it, which for an owner's lock
/// file means its process is gone.
fn lock_if_dead(path: &Path) -> Option<File> {
    let file = File::open(path).ok()?;
    match file_lock::try_lock(&file, LockMode::Exclusive) {
        Ok(true) => Some(file),
        _ => None,
    }
}

/// What a dead owner recorded.
#[derive(Debug, Default, PartialEq)]
struct Recorded {
    bases: Vec<PathBuf>,
    kept: Vec<OsString>,
}

/// Parses the NUL-terminated entries of an owner's file. An entry cut short by a crash
/// (no NUL) named a base before any directory was created there, and is ignored.
fn parse(bytes: &[u8]) -> Recorded {
    let mut recorded = Recorded::default();
    let mut entries = bytes.split(|&b| b == 0);
    // The last piece follows the last NUL: empty, or an entry cut short.
    entries.next_back();
    for entry in entries {
        let Some((&tag, text)) = entry.split_first() else {
            continue;
        };
        let Some(path) = sys::path_from_bytes(text.to_vec()) else {
            continue;
        };
        match tag {
            BASE_TAG if path.is_absolute() => recorded.bases.push(path),
            KEPT_TAG => recorded.kept.push(path.into_os_string()),
            _ => {}
        }
    }
    recorded
}

fn sweep_owner(lock_path: &Path, id: &str) {
    // Held until the end of this function, so that no other sweeper works on this owner
    // at the same time, and so that a process being born under this file's name finds it
    // gone (see `registry.rs`).
    let Some(mut lock) = lock_if_dead(lock_path) else {
        return;
    };
    let mut bytes = Vec::new();
    if lock.read_to_end(&mut bytes).is_err() {
        return;
    }
    let recorded = parse(&bytes);
    let mut done = true;
    for base in &recorded.bases {
        done &= sweep_base(base, id, &recorded.kept);
    }
    // Something could not be removed: keep the file so that the next sweep tries again.
    if done {
        let _ = fs::remove_file(lock_path);
    }
}

/// Removes the directories of the owner `id` in `base`, except the `kept` ones; returns
/// whether none is left.
fn sweep_base(base: &Path, id: &str, kept: &[OsString]) -> bool {
    let entries = match fs::read_dir(base) {
        Ok(entries) => entries,
        Err(e) => return e.kind() == ErrorKind::NotFound,
    };
    let mut done = true;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| names::is_made_by(n, id)) || kept.contains(&name) {
            continue;
        }
        let dir = entry.path();
        let removable = fs::symlink_metadata(&dir)
            .is_ok_and(|meta| meta.is_dir() && sys::owned_by_current_user(&meta));
        if removable {
            if let Err(e) = remove_tree(&dir) {
                done &= e.kind() == ErrorKind::NotFound;
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory that the test removes itself (not an `IsolatedDir`, whose
    /// registration would make these tests depend on the code under test).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(what: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("isofix-unit-{what}-{}", names::random_id()));
            sys::create_private_dir(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = remove_tree(&self.0);
        }
    }

    /// Writes the file of an owner that recorded `bases` and kept `kept`; returns its path
    /// and its id.
    fn owner(owners: &Path, bases: &[&Path], kept: &[&str]) -> (PathBuf, String) {
        let id = names::random_id();
        let mut bytes = Vec::new();
        for base in bases {
            bytes.push(BASE_TAG);
            bytes.extend(sys::path_to_bytes(base).unwrap());
            bytes.push(0);
        }
        for name in kept {
            bytes.push(KEPT_TAG);
            bytes.extend(name.as_bytes());
            bytes.push(0);
        }
        let lock = owners.join(format!("{id}{LOCK_SUFFIX}"));
        fs::write(&lock, bytes).unwrap();
        (lock, id)
    }

    /// Makes directory number `n` of the owner `id` in `base`, with a file in it.
    fn isolated(base: &Path, id: &str, n: u64) -> PathBuf {
        let dir = base.join(names::dir_name(Some("t"), id, n));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("data"), "x").unwrap();
        dir
    }

    #[test]
    fn removes_a_dead_owners_directories_but_not_those_it_kept() {
        let owners = Scratch::new("owners");
        let (a, b) = (Scratch::new("base-a"), Scratch::new("base-b"));
        let (lock, id) = owner(&owners.0, &[&a.0, &b.0], &[]);
        let dead = [isolated(&a.0, &id, 0), isolated(&b.0, &id, 1)];
        let kept = isolated(&a.0, &id, 2);
        let kept_name = kept.file_name().unwrap().to_str().unwrap().to_owned();
        fs::write(&lock, {
            let mut bytes = fs::read(&lock).unwrap();
            bytes.push(KEPT_TAG);
            bytes.extend(kept_name.as_bytes());
            bytes.push(0);
            bytes
        })
        .unwrap();
        let others = isolated(&a.0, &names::random_id(), 0);

        sweep(&owners.0);

        assert!(dead.iter().all(|d| !d.exists()), "{dead:?}");
        assert!(kept.join("data").exists());
        assert!(others.join("data").exists());
        assert!(!lock.exists());
    }

    #[test]
    fn leaves_a_live_owner_alone() {
        let owners = Scratch::new("owners");
        let base = Scratch::new("base");
        let (lock, id) = owner(&owners.0, &[&base.0], &[]);
        let dir = isolated(&base.0, &id, 0);
        // A separate open file description conflicts with the sweeper's even in-process.
        let held = File::open(&lock).unwrap();
        assert!(file_lock::try_lock(&held, LockMode::Exclusive).unwrap());

        sweep(&owners.0);

        assert!(dir.join("data").exists());
        assert!(lock.exists());
    }

    #[test]
    fn never_follows_or_removes_what_merely_has_the_name() {
        let owners = Scratch::new("owners");
        let base = Scratch::new("base");
        let victim = Scratch::new("victim");
        fs::write(victim.0.join("precious"), "x").unwrap();
        let relative = Path::new("relative-base");
        let (lock, id) = owner(&owners.0, &[&base.0, relative], &[]);
        let file = base.0.join(names::dir_name(Some("f"), &id, 0));
        fs::write(&file, "not a directory").unwrap();
        #[cfg(unix)]
        let link = base.0.join(names::dir_name(Some("l"), &id, 1));
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim.0, &link).unwrap();

        sweep(&owners.0);

        assert!(victim.0.join("precious").exists());
        assert_eq!(fs::read_to_string(&file).unwrap(), "not a directory");
        #[cfg(unix)]
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!lock.exists(), "nothing removable is left to retry");
    }

    #[test]
    fn an_empty_dead_file_is_removed_and_a_cut_entry_ignored() {
        let owners = Scratch::new("owners");
        let empty = owners
            .0
            .join(format!("{}{LOCK_SUFFIX}", names::random_id()));
        File::create(&empty).unwrap();
        let foreign = owners.0.join("notes.lock");
        File::create(&foreign).unwrap();

        sweep(&owners.0);

        assert!(!empty.exists());
        assert!(foreign.exists(), "not an owner's file");
        assert_eq!(
            parse(b"b/a\0kname\0b/cut"),
            Recorded {
                bases: vec![PathBuf::from("/a")],
                kept: vec![OsString::from("name")],
            }
        );
    }
}
