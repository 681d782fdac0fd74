//! Removing the isolated directories of processes that died without unwinding.
//!
//! Runs once per process, before its first isolated directory or Unix socket, and on demand
//! ([`IsolatedDir::sweep_stale`](super::IsolatedDir::sweep_stale), which reports what it
//! removes, and [`IsolatedDir::list_stale`](super::IsolatedDir::list_stale), which only
//! lists it). For every slot of the
//! registry that it can lock (so its last owner is gone) and that is not empty (so the
//! owner left directories behind, or died before it could say it had not), it lists each
//! base the owner recorded and removes the entries that are the owner's directories — and
//! nothing else, so that a forged or stale record cannot make it delete what it should not:
//!
//! - the entry's name is one the owner made, of the kind the owner recorded for that base
//!   (`isofix-…-<id><n>` for isolated directories, `u<id><n>` for the private directories
//!   of its Unix sockets; see `names.rs`), and not one the owner kept;
//! - it is a real directory (`lstat(2)`: not a link, which is never followed) owned by
//!   this user.
//!
//! A live owner's directories are never touched: its lock is held, and its id — 60 random
//! bits — is in no other process's names.
//!
//! Sweepers run concurrently in many processes. The slot's lock serialises them per
//! slot; a directory or file that another sweeper removed first (`NotFound`) counts as
//! removed. Errors are ignored (`sweep_stale` reports removal errors): the sweep is
//! housekeeping, and what it cannot remove now stays recorded for the next one.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::names::Kind;
use super::remove::remove_tree;
use super::slot;
use crate::sys;

/// Sweeps every free slot in `owners`. Returns the first free slot found empty or emptied,
/// still locked, for the caller to take, and the number a new slot would get.
pub(crate) fn sweep(owners: &Path) -> (Option<File>, u32) {
    sweep_reporting(owners, Report::Quiet)
}

/// Where a sweep reports the dead owners' directories it finds.
pub(crate) enum Report<'a> {
    /// Nowhere: the sweep before a process's first directory.
    Quiet,
    /// Each directory with the outcome of its removal.
    Removed(&'a mut Vec<(PathBuf, io::Result<()>)>),
    /// Each directory, left in place: a dry run, which empties no slot.
    Listed(&'a mut Vec<PathBuf>),
}

/// [`sweep`], reporting the directories found in `report`.
pub(crate) fn sweep_reporting(owners: &Path, mut report: Report<'_>) -> (Option<File>, u32) {
    let mut free = None;
    let mut next = 0;
    let Ok(entries) = fs::read_dir(owners) else {
        return (free, next);
    };
    for entry in entries.flatten() {
        let Some(n) = entry.file_name().to_str().and_then(slot::number) else {
            continue;
        };
        next = next.max(n.saturating_add(1));
        let Some(file) = slot::lock_if_free(&entry.path()) else {
            continue;
        };
        if sweep_slot(&file, &mut report) && free.is_none() {
            free = Some(file);
        }
    }
    (free, next)
}

/// Removes the directories the last owner of the (locked) slot `file` left, and empties
/// it; returns whether it is empty now. A dry run removes nothing and returns `false`.
fn sweep_slot(mut file: &File, report: &mut Report<'_>) -> bool {
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return false;
    }
    if bytes.is_empty() {
        return true;
    }
    let recorded = slot::parse(&bytes);
    let mut done = true;
    if let Some(id) = &recorded.id {
        for (base, kind) in &recorded.bases {
            done &= sweep_base(base, *kind, id, &recorded.kept, report);
        }
    }
    if let Report::Listed(_) = report {
        return false;
    }
    // Something could not be removed: keep the record so that the next sweep tries again.
    done && file.set_len(0).is_ok()
}

/// Removes the directories of `kind` of the owner `id` in `base`, except the `kept` ones;
/// returns whether none is left.
fn sweep_base(
    base: &Path,
    kind: Kind,
    id: &str,
    kept: &[OsString],
    report: &mut Report<'_>,
) -> bool {
    let entries = match fs::read_dir(base) {
        Ok(entries) => entries,
        Err(e) => return e.kind() == ErrorKind::NotFound,
    };
    let mut done = true;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| kind.is_made_by(n, id)) || kept.contains(&name) {
            continue;
        }
        let dir = entry.path();
        let removable = fs::symlink_metadata(&dir)
            .is_ok_and(|meta| meta.is_dir() && sys::owned_by_current_user(&meta));
        if !removable {
            continue;
        }
        let removed = match report {
            Report::Listed(found) => {
                found.push(dir);
                continue;
            }
            _ => remove_tree(&dir),
        };
        match removed {
            // Another sweeper was first.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            removed => {
                done &= removed.is_ok();
                if let Report::Removed(found) = report {
                    found.push((dir, removed));
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::file_lock::{self, LockMode};
    use crate::dir::names;
    use std::path::PathBuf;

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

    /// Writes slot `n` as an owner that recorded `bases` left it; returns its path and the
    /// owner's id.
    fn owner(owners: &Path, n: u32, bases: &[&Path]) -> (PathBuf, String) {
        let id = names::random_id();
        let mut bytes = slot::id_entry(&id);
        for base in bases {
            bytes.extend(slot::base_entry(base, Kind::Isolated));
        }
        let path = owners.join(format!("{n}{}", slot::SUFFIX));
        fs::write(&path, bytes).unwrap();
        (path, id)
    }

    /// Makes directory number `n` of the owner `id` in `base`, with a file in it.
    fn isolated(base: &Path, id: &str, n: u64) -> PathBuf {
        let dir = base.join(names::dir_name(Some("t"), id, n));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("data"), "x").unwrap();
        dir
    }

    fn len(path: &Path) -> u64 {
        fs::metadata(path).unwrap().len()
    }

    #[test]
    fn removes_a_dead_owners_directories_but_not_those_it_kept() {
        let owners = Scratch::new("owners");
        let (a, b) = (Scratch::new("base-a"), Scratch::new("base-b"));
        let id = names::random_id();
        let dead = [isolated(&a.0, &id, 0), isolated(&b.0, &id, 1)];
        let kept = isolated(&a.0, &id, 2);
        let others = isolated(&a.0, &names::random_id(), 0);
        let mut bytes = slot::id_entry(&id);
        bytes.extend(slot::base_entry(&a.0, Kind::Isolated));
        bytes.extend(slot::base_entry(&b.0, Kind::Isolated));
        bytes.extend(slot::kept_entry(kept.file_name().unwrap()));
        let path = owners.0.join(format!("3{}", slot::SUFFIX));
        fs::write(&path, bytes).unwrap();

        let (free, next) = sweep(&owners.0);

        assert!(dead.iter().all(|d| !d.exists()), "{dead:?}");
        assert!(kept.join("data").exists());
        assert!(others.join("data").exists());
        assert_eq!(len(&path), 0, "the slot is emptied");
        assert!(free.is_some(), "and handed out");
        assert_eq!(next, 4);
    }

    #[test]
    fn a_dry_run_lists_what_a_sweep_then_removes_and_reports() {
        let owners = Scratch::new("owners");
        let base = Scratch::new("base");
        let (path, id) = owner(&owners.0, 0, &[&base.0]);
        let dir = isolated(&base.0, &id, 0);
        let before = len(&path);

        let mut listed = Vec::new();
        let (free, _) = sweep_reporting(&owners.0, Report::Listed(&mut listed));
        assert_eq!(listed, std::slice::from_ref(&dir));
        assert!(dir.join("data").exists(), "a dry run removes nothing");
        assert_eq!(len(&path), before, "nor empties the slot");
        assert!(free.is_none());

        let mut removed = Vec::new();
        sweep_reporting(&owners.0, Report::Removed(&mut removed));
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].0, dir);
        assert!(removed[0].1.is_ok(), "{removed:?}");
        assert!(!dir.exists());
        assert_eq!(len(&path), 0);
    }

    #[test]
    fn leaves_a_live_owner_alone() {
        let owners = Scratch::new("owners");
        let base = Scratch::new("base");
        let (path, id) = owner(&owners.0, 0, &[&base.0]);
        let dir = isolated(&base.0, &id, 0);
        // A separate open file description conflicts with the sweeper's even in-process.
        let held = fs::File::open(&path).unwrap();
        assert!(file_lock::try_lock(&held, LockMode::Exclusive).unwrap());
        let before = len(&path);

        let (free, next) = sweep(&owners.0);

        assert!(dir.join("data").exists());
        assert_eq!(len(&path), before);
        assert!(free.is_none());
        assert_eq!(next, 1);
    }

    #[test]
    fn never_follows_or_removes_what_merely_has_the_name() {
        let owners = Scratch::new("owners");
        let base = Scratch::new("base");
        let victim = Scratch::new("victim");
        fs::write(victim.0.join("precious"), "x").unwrap();
        let relative = Path::new("relative-base");
        let (path, id) = owner(&owners.0, 0, &[&base.0, relative]);
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
        assert_eq!(len(&path), 0, "nothing removable is left to retry");
    }

    #[test]
    fn socket_directories_go_only_from_their_own_base_and_only_by_their_own_name() {
        let owners = Scratch::new("owners");
        let (root, base) = (Scratch::new("root"), Scratch::new("base"));
        let id = names::random_id();
        let socket_dir = |at: &Path, n| {
            let dir = at.join(names::socket_dir_name(&id, n));
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("s"), "").unwrap();
            dir
        };
        let dead = socket_dir(&root.0, 0);
        let in_other_base = socket_dir(&base.0, 1);
        let isolated_in_root = isolated(&root.0, &id, 2);
        let mut bytes = slot::id_entry(&id);
        bytes.extend(slot::base_entry(&root.0, Kind::Socket));
        bytes.extend(slot::base_entry(&base.0, Kind::Isolated));
        fs::write(owners.0.join(format!("0{}", slot::SUFFIX)), bytes).unwrap();

        sweep(&owners.0);

        assert!(!dead.exists());
        assert!(in_other_base.join("s").exists(), "not a socket base");
        assert!(
            isolated_in_root.join("data").exists(),
            "not an isolated base"
        );
    }

    #[test]
    fn other_files_are_not_slots() {
        let owners = Scratch::new("owners");
        let notes = owners.0.join("notes.lock");
        fs::write(&notes, "x").unwrap();
        let (free, next) = sweep(&owners.0);
        assert!(free.is_none());
        assert_eq!(next, 0);
        assert_eq!(fs::read_to_string(&notes).unwrap(), "x");
    }
}
