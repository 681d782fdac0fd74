//! Windows: the system temp directory is already per-user (`%LOCALAPPDATA%\Temp`), and
//! ACLs, not mode bits, guard it; ownership checks are left to those ACLs.

use std::fs::{DirBuilder, Metadata};
use std::io;
use std::path::{Path, PathBuf};

/// The user name (`%USERNAME%`), which names the per-user state directory.
pub(crate) fn user_tag() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "user".to_owned())
}

/// `CreateDirectoryW` with the parent's inherited ACL.
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().create(path)
}

/// `CreateDirectoryW` of `path` and every missing parent, with inherited ACLs.
pub(crate) fn create_private_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).create(path)
}

/// Always `None`: see the module documentation.
pub(crate) fn not_private_reason(_meta: &Metadata) -> Option<String> {
    None
}

/// Clears the read-only attribute (`SetFileAttributesW`), so that the entry can be removed.
pub(crate) fn make_owner_writable(path: &Path, meta: &Metadata) -> io::Result<()> {
    let mut perms = meta.permissions();
    if !perms.readonly() {
        return Ok(());
    }
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms)
}

/// Always `true`: see the module documentation.
pub(crate) fn owned_by_current_user(_meta: &Metadata) -> bool {
    true
}

/// A path as UTF-8 bytes for storing in a file, or `None` for the rare path that is not
/// valid Unicode (such a path is then simply not stored).
pub(crate) fn path_to_bytes(path: &Path) -> Option<Vec<u8>> {
    path.to_str().map(|s| s.as_bytes().to_vec())
}

/// The inverse of [`path_to_bytes`].
pub(crate) fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    String::from_utf8(bytes).ok().map(PathBuf::from)
}

/// Whether `err` is `WSAEAFNOSUPPORT` (10047): `socket`/`bind` met an address family this
/// host has no stack for. std files it under `ErrorKind::Uncategorized`.
pub(crate) fn is_address_family_unsupported(err: &io::Error) -> bool {
    const WSAEAFNOSUPPORT: i32 = 10047;
    err.raw_os_error() == Some(WSAEAFNOSUPPORT)
}

// ---------------------------------------------------------------------------------------
// Serial locks (src/serial, src/common/file_lock.rs): `LockFileEx` and directory paths.
// Never run: no Windows target is tested; kept small and path-based (Windows has no
// `openat`, and its ACLs, not these checks, protect a user's directories).
// ---------------------------------------------------------------------------------------

use std::fs::File;

/// What [`flock`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlockOp {
    /// A shared lock.
    Shared,
    /// An exclusive lock.
    Exclusive,
    /// Release.
    Unlock,
}

#[repr(C)]
struct Overlapped {
    internal: usize,
    internal_high: usize,
    offset: u32,
    offset_high: u32,
    event: *mut core::ffi::c_void,
}

const LOCKFILE_FAIL_IMMEDIATELY: u32 = 0x1;
const LOCKFILE_EXCLUSIVE_LOCK: u32 = 0x2;
const ERROR_LOCK_VIOLATION: i32 = 33;

#[link(name = "kernel32")]
extern "system" {
    fn LockFileEx(
        file: *mut core::ffi::c_void,
        flags: u32,
        reserved: u32,
        low: u32,
        high: u32,
        overlapped: *mut Overlapped,
    ) -> i32;
    fn UnlockFile(
        file: *mut core::ffi::c_void,
        off_low: u32,
        off_high: u32,
        low: u32,
        high: u32,
    ) -> i32;
}

/// `LockFileEx` (with `LOCKFILE_FAIL_IMMEDIATELY` unless `block`) or `UnlockFile` over the
/// whole file; `false` when a non-blocking request met a conflicting lock.
pub(crate) fn flock(file: &File, op: FlockOp, block: bool) -> io::Result<bool> {
    use std::os::windows::io::AsRawHandle;
    let handle = file.as_raw_handle().cast();
    let ok = if op == FlockOp::Unlock {
        // SAFETY: the handle is open for the call; the range is the whole file.
        unsafe { UnlockFile(handle, 0, 0, u32::MAX, u32::MAX) }
    } else {
        let mut flags = if op == FlockOp::Exclusive {
            LOCKFILE_EXCLUSIVE_LOCK
        } else {
            0
        };
        if !block {
            flags |= LOCKFILE_FAIL_IMMEDIATELY;
        }
        let mut overlapped = Overlapped {
            internal: 0,
            internal_high: 0,
            offset: 0,
            offset_high: 0,
            event: std::ptr::null_mut(),
        };
        // SAFETY: the handle is open for the call and `overlapped` outlives it (the
        // handle is synchronous, so the call completes before returning).
        unsafe { LockFileEx(handle, flags, 0, u32::MAX, u32::MAX, &mut overlapped) }
    };
    if ok != 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if !block && err.raw_os_error() == Some(ERROR_LOCK_VIOLATION) {
        return Ok(false);
    }
    Err(err)
}

/// Whether `err` says the process ran out of handles (`ERROR_TOO_MANY_OPEN_FILES`).
pub(crate) fn is_out_of_descriptors(err: &io::Error) -> bool {
    err.raw_os_error() == Some(4)
}

/// Whether `err` says a symbolic link was refused: reparse points are opened as
/// themselves on Windows, so this never happens.
pub(crate) fn is_symlink_refused(_err: &io::Error) -> bool {
    false
}

/// Always `(0, 0)`: std exposes no file index on Windows, so a replaced directory is
/// noticed only when it is missing.
pub(crate) fn file_identity(_meta: &Metadata) -> (u64, u64) {
    (0, 0)
}

/// Always `false`: std exposes no link count on Windows, so a removed lock file or
/// directory is not noticed there.
pub(crate) fn is_unlinked(_file: &File) -> io::Result<bool> {
    Ok(false)
}

/// A directory, by path (see the note above this block).
#[derive(Debug)]
pub(crate) struct DirHandle(PathBuf);

impl DirHandle {
    /// Checks that `path` is a directory.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        if std::fs::symlink_metadata(path)?.is_dir() {
            Ok(Self(path.to_owned()))
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    }

    /// The subdirectory `name`.
    pub(crate) fn open_dir(&self, name: &str) -> io::Result<Self> {
        Self::open(&self.0.join(name))
    }

    /// `CreateDirectoryW` of the subdirectory `name`.
    pub(crate) fn create_dir(&self, name: &str) -> io::Result<()> {
        std::fs::create_dir(self.0.join(name))
    }

    /// Opens `name` for reading and writing, created if missing.
    pub(crate) fn open_file(&self, name: &str) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.0.join(name))
    }

    /// Creates the new file `name`.
    pub(crate) fn create_new_file(&self, name: &str) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.0.join(name))
    }

    /// Opens the existing `name` for reading.
    pub(crate) fn open_existing(&self, name: &str) -> io::Result<File> {
        File::open(self.0.join(name))
    }

    /// `DeleteFileW` of `name`.
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.0.join(name))
    }

    /// The directory's metadata.
    pub(crate) fn metadata(&self) -> io::Result<Metadata> {
        std::fs::symlink_metadata(&self.0)
    }

    /// Nothing: Windows has no age-based cleaner that honours locks.
    pub(crate) fn keep_from_cleaners(&self) {}

    /// Whether the directory is gone from its path.
    pub(crate) fn is_unlinked(&self) -> io::Result<bool> {
        match std::fs::symlink_metadata(&self.0) {
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The names in the directory that are valid UTF-8.
    pub(crate) fn entry_names(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.0)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
}

// ---- Isolated directories (`src/dir/`) ----

/// Always `false`: std has no exit hook on Windows, so nothing is registered. What the
/// handler would clean up is left for a later process (see `src/dir/registry.rs`).
pub(crate) fn at_exit(_handler: extern "C" fn()) -> bool {
    false
}
