//! The private per-user directories that isofix keeps its state in.
//!
//! They live in shared places such as `/tmp` and `/dev/shm`, so each is created 0700 and,
//! when it already exists, must be a real directory (not a symlink) owned by this user and
//! closed to group and others. Anything else is refused with an error naming the path and
//! the environment variable that moves it. Another user can make a per-user root
//! (`/tmp/isofix-<uid>`, `/dev/shm/isofix-<uid>`) before its user does — a squat, which in
//! a sticky shared directory only they can undo — so the hint for a directory of someone
//! else's names a private place to move to, never a removal. Every root (the state root,
//! the registry's, the lock root) gets its refusal from [`refusal_cause`] and
//! [`refusal_hint`].

use std::collections::HashSet;
use std::fs::Metadata;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::error::{error, wrap};
use crate::sys;

/// An environment variable that moves one of isofix's private directories, with a private
/// place to suggest for it when the default one is refused.
pub(crate) struct Chooser {
    pub(crate) var: &'static str,
    pub(crate) example: &'static str,
}

/// `TMPDIR`, which moves the state root (sockets' directories) and the registry of
/// isolated directories' owners.
pub(crate) const TMPDIR: Chooser = Chooser {
    var: "TMPDIR",
    example: "$HOME/.cache/tmp, made with mode 0700",
};

/// Why the entry described by `meta` (from `lstat(2)` or an opened handle) cannot be one of
/// isofix's private directories, if it cannot.
pub(crate) fn refusal_cause(meta: &Metadata) -> Option<String> {
    if meta.file_type().is_symlink() {
        Some("it is a symbolic link, which could point anywhere".to_owned())
    } else if !meta.is_dir() {
        Some("it is not a directory".to_owned())
    } else {
        sys::not_private_reason(meta)
    }
}

/// What the user can do about a refused private directory described by `meta`: only what
/// they can do. A directory of theirs they can close; another user's entry in a sticky
/// shared directory they can neither fix nor remove, so they are told to move away from it.
pub(crate) fn refusal_hint(meta: &Metadata, chooser: &Chooser) -> String {
    let Chooser { var, example } = chooser;
    if !sys::owned_by_current_user(meta) {
        format!(
            "another user made it; set {var} to a private directory of yours (for example \
             {example}) wherever your tests run, e.g. in [env] of .cargo/config.toml"
        )
    } else if meta.is_dir() && !meta.file_type().is_symlink() {
        format!("run `chmod 700` on it, or set {var} to a directory that only you own")
    } else {
        format!("set {var} to a directory that only you own (mode 0700)")
    }
}

/// Reads a path from the environment; unset and empty both mean "not set".
pub(crate) fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Creates `path` private to this user, or checks that the existing one is. `chooser`
/// names the environment variable that moves the directory, in the hint of every error.
pub(crate) fn ensure_private_dir(path: &Path, chooser: &Chooser) -> io::Result<()> {
    let var = chooser.var;
    match sys::create_private_dir(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                // Missing parents are made private too: the usual one is this user's state
                // root, recreated after someone removed it mid-run.
                sys::create_private_dir_all(parent).map_err(|e| {
                    wrap(
                        e,
                        format_args!("create parent of private directory {}", path.display()),
                        format_args!("set {var} to a writable directory"),
                    )
                })?;
            }
            return match sys::create_private_dir(path) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => check_private(path, chooser),
                other => other.map_err(|e| create_failed(e, path, var)),
            };
        }
        Err(e) => return Err(create_failed(e, path, var)),
    }
    check_private(path, chooser)
}

fn create_failed(e: io::Error, path: &Path, var: &str) -> io::Error {
    wrap(
        e,
        format_args!("create private directory {}", path.display()),
        format_args!("set {var} to a writable directory"),
    )
}

fn check_private(path: &Path, chooser: &Chooser) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        wrap(
            e,
            format_args!("inspect private directory {}", path.display()),
            format_args!("set {} to a directory of your own", chooser.var),
        )
    })?;
    let Some(reason) = refusal_cause(&meta) else {
        return Ok(());
    };
    Err(error(
        ErrorKind::PermissionDenied,
        format_args!(
            "refusing to use {} as a private directory: {reason}",
            path.display()
        ),
        refusal_hint(&meta, chooser),
    ))
}

/// Paths already checked by [`ensure_private_dir_cached`] in this process.
static CHECKED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn checked() -> std::sync::MutexGuard<'static, Option<HashSet<PathBuf>>> {
    CHECKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`ensure_private_dir`], checked once per path and process: the checks cost several
/// syscalls, and a directory that was private stays so (only its owner can change it).
pub(crate) fn ensure_private_dir_cached(path: &Path, chooser: &Chooser) -> io::Result<()> {
    if checked().as_ref().is_some_and(|set| set.contains(path)) {
        return Ok(());
    }
    ensure_private_dir(path, chooser)?;
    checked()
        .get_or_insert_with(HashSet::new)
        .insert(path.to_owned());
    Ok(())
}

/// This user's state root, `<system temp dir>/isofix-<uid>`, created private.
pub(crate) fn state_root() -> io::Result<PathBuf> {
    let root = std::env::temp_dir().join(format!("isofix-{}", sys::user_tag()));
    ensure_private_dir_cached(&root, &TMPDIR)?;
    Ok(root)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A scratch directory of the test's own, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("isofix-unit-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const V: Chooser = Chooser {
        var: "ISOFIX_TEST_VAR",
        example: "a test's own place",
    };

    fn refusal(path: &Path) -> String {
        let err = ensure_private_dir(path, &V).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("ISOFIX_TEST_VAR"), "{msg}");
        msg
    }

    #[test]
    fn creates_private_and_accepts_it_again() {
        let scratch = Scratch::new();
        let parent = scratch.0.join("a");
        let dir = parent.join("b");
        ensure_private_dir(&dir, &V).unwrap();
        for made in [&parent, &dir] {
            let mode = std::fs::metadata(made).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", made.display());
        }
        ensure_private_dir(&dir, &V).unwrap();
    }

    #[test]
    fn refuses_a_symlink_even_to_a_private_dir() {
        let scratch = Scratch::new();
        let real = scratch.0.join("real");
        ensure_private_dir(&real, &V).unwrap();
        let link = scratch.0.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(refusal(&link).contains("symbolic link"));
    }

    #[test]
    fn refuses_a_file() {
        let scratch = Scratch::new();
        let file = scratch.0.join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(refusal(&file).contains("not a directory"));
    }

    #[test]
    fn refuses_a_dir_open_to_others() {
        let scratch = Scratch::new();
        let dir = scratch.0.join("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(refusal(&dir).contains("777"));
    }

    #[test]
    fn refuses_a_dir_of_another_user() {
        let scratch = Scratch::new();
        let dir = scratch.0.join("theirs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let nobody = 65534;
        if std::os::unix::fs::chown(&dir, Some(nobody), None).is_err() {
            eprintln!("skipped: changing a directory's owner needs root here");
            return;
        }
        let msg = refusal(&dir);
        assert!(msg.contains("owned by uid 65534"), "{msg}");
        assert!(msg.contains("another user made it"), "{msg}");
        assert!(msg.contains("a test's own place"), "{msg}");
        assert!(
            !msg.contains("remove"),
            "a hint the user cannot follow: {msg}"
        );
    }
}
