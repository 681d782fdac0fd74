//! Removing the isolated directories of processes that died without unwinding.
//!
//! Runs once per process, before its first isolated directory. For every owner whose lock
//! file it can lock (so the owner is dead), it removes each recorded directory that still
//! looks like one isofix made — and nothing else, so a forged or stale record cannot make
//! it delete what it should not:
//!
//! - the record's name starts with `isofix-` and equals the recorded path's last
//!   component, which is absolute;
//! - the path is a real directory (`lstat(2)`: not a link, which is never followed) owned
//!   by this user.
//!
//! Sweepers run concurrently in many processes. The owner's lock serialises them per
//! owner; a directory or file that another sweeper removed first (`NotFound`) counts as
//! removed. Every error is ignored: the sweep is housekeeping, and what it cannot remove
//! now stays recorded for the next one.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::Path;

use super::remove::remove_tree;
use crate::common::file_lock::{self, LockMode};
use crate::sys;

/// The suffix of an owner's lock file.
pub(crate) const LOCK_SUFFIX: &str = ".lock";
/// The suffix of a lock file not yet locked and renamed by its creator.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
/// Every isolated directory's name starts with this.
pub(crate) const NAME_PREFIX: &str = "isofix-";

/// Sweeps the registry in `owners`.
pub(crate) fn sweep(owners: &Path) {
    let Ok(entries) = fs::read_dir(owners) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = name.strip_suffix(LOCK_SUFFIX) {
            sweep_owner(owners, id);
        } else if name.ends_with(TEMP_SUFFIX) {
            // Left by a process that died between creating and renaming its lock file.
            // Its creator, if alive, either locks it first (then this fails) or finds it
            // gone and starts over.
            let path = entry.path();
            if lock_if_dead(&path).is_some() {
                let _ = fs::remove_file(&path);
            }
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

fn sweep_owner(owners: &Path, id: &str) {
    let lock_path = owners.join(format!("{id}{LOCK_SUFFIX}"));
    // Held until the end of this function, so that no other sweeper works on this owner
    // at the same time.
    let Some(_lock) = lock_if_dead(&lock_path) else {
        return;
    };
    let records = owners.join(id);
    if let Ok(entries) = fs::read_dir(&records) {
        for entry in entries.flatten() {
            let record = entry.path();
            if remove_recorded(&record, &entry.file_name()) {
                let _ = fs::remove_file(&record);
            }
        }
    }
    match fs::remove_dir(&records) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        // Records remain (a directory that could not be removed): keep the lock file so
        // that the next sweep tries again.
        Err(_) => return,
    }
    let _ = fs::remove_file(&lock_path);
}

/// Removes the directory named by the record at `record` (file name `name`) if it is an
/// isolated directory of this user. Returns whether the record is done with: the
/// directory is gone, or the record names nothing that may be removed.
fn remove_recorded(record: &Path, name: &OsStr) -> bool {
    let Ok(bytes) = fs::read(record) else {
        return false;
    };
    let Some(dir) = sys::path_from_bytes(bytes) else {
        return true;
    };
    let plausible = name.to_str().is_some_and(|n| n.starts_with(NAME_PREFIX))
        && dir.is_absolute()
        && dir.file_name() == Some(name);
    if !plausible {
        return true;
    }
    match fs::symlink_metadata(&dir) {
        Err(e) => e.kind() == ErrorKind::NotFound,
        Ok(meta) if !meta.is_dir() || !sys::owned_by_current_user(&meta) => true,
        Ok(_) => match remove_tree(&dir) {
            Ok(()) => true,
            Err(e) => e.kind() == ErrorKind::NotFound,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A scratch directory that the test removes itself (not an `IsolatedDir`, whose
    /// registration would make these tests depend on the code under test).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(what: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "isofix-unit-{what}-{}",
                uuid::Uuid::new_v4().simple()
            ));
            sys::create_private_dir(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = remove_tree(&self.0);
        }
    }

    /// Writes an owner `id` into `owners`, with one record per `(record name, content)`.
    fn owner(owners: &Path, id: &str, records: &[(&str, &Path)]) -> PathBuf {
        let lock = owners.join(format!("{id}{LOCK_SUFFIX}"));
        File::create(&lock).unwrap();
        fs::create_dir(owners.join(id)).unwrap();
        for (name, content) in records {
            fs::write(
                owners.join(id).join(name),
                sys::path_to_bytes(content).unwrap(),
            )
            .unwrap();
        }
        lock
    }

    fn isolated(base: &Path, tag: &str) -> PathBuf {
        let dir = base.join(format!("{NAME_PREFIX}{tag}"));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("data"), "x").unwrap();
        dir
    }

    #[test]
    fn removes_a_dead_owners_directories_and_entry() {
        let owners = Scratch::new("owners");
        let base = Scratch::new("base");
        let dir = isolated(&base.0, "dead");
        let lock = owner(&owners.0, "dead", &[("isofix-dead", &dir)]);

        sweep(&owners.0);

        assert!(!dir.exists());
        assert!(!lock.exists());
        assert!(!owners.0.join("dead").exists());
    }

    #[test]
    fn leaves_a_live_owner_alone() {
        let owners = Scratch::new("owners");
        let base = Scratch::new("base");
        let dir = isolated(&base.0, "live");
        let lock = owner(&owners.0, "live", &[("isofix-live", &dir)]);
        // A separate open file description conflicts with the sweeper's even in-process.
        let held = File::open(&lock).unwrap();
        assert!(file_lock::try_lock(&held, LockMode::Exclusive).unwrap());

        sweep(&owners.0);

        assert!(dir.join("data").exists());
        assert!(owners.0.join("live").join("isofix-live").exists());
        assert!(lock.exists());
    }

    #[test]
    fn never_follows_or_removes_what_a_record_merely_names() {
        let owners = Scratch::new("owners");
        let base = Scratch::new("base");
        let victim = base.0.join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("precious"), "x").unwrap();
        let wrong_prefix = base.0.join("victim-2");
        fs::create_dir(&wrong_prefix).unwrap();
        let renamed = isolated(&base.0, "real");
        let mut records: Vec<(&str, &Path)> = vec![
            // Name and path disagree.
            ("isofix-other", &renamed),
            // Not an isofix name at all.
            ("victim-2", &wrong_prefix),
        ];
        #[cfg(unix)]
        let link = base.0.join("isofix-link");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            records.push(("isofix-link", &link));
        }
        let relative = Path::new("isofix-relative");
        records.push(("isofix-relative", relative));
        owner(&owners.0, "forged", &records);

        sweep(&owners.0);

        assert!(victim.join("precious").exists());
        assert!(wrong_prefix.exists());
        assert!(renamed.join("data").exists());
        #[cfg(unix)]
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(
            !owners.0.join("forged").exists(),
            "records that name nothing removable are dropped"
        );
    }

    #[test]
    fn removes_unlocked_temporary_lock_files_only() {
        let owners = Scratch::new("owners");
        let stale = owners.0.join(format!("stale{TEMP_SUFFIX}"));
        let fresh = owners.0.join(format!("fresh{TEMP_SUFFIX}"));
        File::create(&stale).unwrap();
        let held = File::create(&fresh).unwrap();
        assert!(file_lock::try_lock(&held, LockMode::Exclusive).unwrap());

        sweep(&owners.0);

        assert!(!stale.exists());
        assert!(fresh.exists());
    }
}
