//! Removing a directory tree that a test may have locked itself out of.
//!
//! `std::fs::remove_dir_all` already refuses to follow symbolic links (it works through
//! `openat(2)`/`unlinkat(2)` with `O_NOFOLLOW` on Unix, and the equivalent handles on
//! Windows), so a link inside the tree is removed, never its target. What it cannot do is
//! empty a directory the test made read-only (mode 0500 on Unix), or delete a read-only
//! file on Windows. So on failure the tree is opened up once — every real directory and
//! file made owner-writable, links left alone — and removed again.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use crate::sys;

/// Removes the tree at `path`, fixing permissions and retrying once if needed. A link at
/// `path` itself is removed, not followed.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(e),
        Err(e) => {
            // Only a real directory can be fixed by opening it up; anything else (a file or
            // link that replaced the directory) keeps the first, more telling error.
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    open_up(path);
                    fs::remove_dir_all(path)
                }
                _ => Err(e),
            }
        }
    }
}

/// Makes `root` and every real directory and file below it owner-writable (and, on Unix,
/// readable and searchable), without following links. Best effort: an entry that cannot be
/// fixed is skipped, and the removal that follows reports it.
fn open_up(root: &Path) {
    // An explicit stack rather than recursion: a test may build a deep tree.
    let mut pending: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        // Before reading the directory: a mode-0000 directory cannot even be listed.
        let _ = sys::make_owner_writable(&path, &meta);
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "isofix-unit-{name}-{}",
            super::super::names::random_id()
        ));
        fs::create_dir(&dir).unwrap();
        dir
    }

    // Works as root too: it checks the modes `open_up` leaves, which root cannot bypass.
    #[test]
    fn open_up_restores_owner_access_below_links_it_leaves_alone() {
        let root = scratch("open-up");
        let outside = scratch("open-up-outside");
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o500)).unwrap();
        let locked = root.join("locked");
        fs::create_dir(&locked).unwrap();
        let sealed = locked.join("sealed");
        fs::create_dir(&sealed).unwrap();
        fs::write(locked.join("file"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        fs::set_permissions(&sealed, fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(locked.join("file"), fs::Permissions::from_mode(0o400)).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();

        open_up(&root);

        assert_eq!(mode(&locked) & 0o700, 0o700);
        assert_eq!(mode(&sealed) & 0o700, 0o700);
        assert_eq!(mode(&locked.join("file")) & 0o700, 0o700);
        assert_eq!(
            mode(&outside),
            0o500,
            "the link's target must not be touched"
        );

        remove_tree(&root).unwrap();
        assert!(!root.exists());
        assert!(outside.is_dir(), "the link's target must survive");
        fs::remove_dir(&outside).unwrap();
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error_and_survives() {
        let root = scratch("not-a-dir");
        let file = root.join("file");
        fs::write(&file, "keep me").unwrap();
        let err = remove_tree(&file).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADirectory, "{err}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");
        remove_tree(&root).unwrap();
    }
}
