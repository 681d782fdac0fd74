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

/// Always `false`: std does not expose a handle's link count on Windows (open files there
/// are rarely deletable anyway), so a file removed while open goes unnoticed.
pub(crate) fn is_unlinked(_file: &std::fs::File) -> io::Result<bool> {
    Ok(false)
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

/// A file's first bytes, written in place: the Unix counterpart maps them into memory;
/// here each store is a positional write (`WriteFile` with an `OVERLAPPED` offset). Stores
/// are diagnostics only, so a failed one is ignored. Writes go through the very handle
/// given (a lock taken on it stays its own).
#[derive(Debug)]
pub(crate) struct SharedMap {
    file: std::fs::File,
    len: usize,
}

impl SharedMap {
    /// Keeps `file` open for writing its first `len` bytes.
    pub(crate) fn new(file: std::fs::File, len: usize) -> io::Result<Self> {
        Ok(Self { file, len })
    }

    /// Writes `bytes` at `offset`. Panics if the range is out of the first `len` bytes.
    pub(crate) fn write(&self, mut offset: usize, mut bytes: &[u8]) {
        use std::os::windows::fs::FileExt;
        assert!(offset + bytes.len() <= self.len, "write past the mapping");
        while !bytes.is_empty() {
            match self.file.seek_write(bytes, offset as u64) {
                Ok(n) if n > 0 => {
                    bytes = &bytes[n..];
                    offset += n;
                }
                _ => return,
            }
        }
    }

    /// Writes `byte` at `offset`, after the earlier writes (each is a system call, so they
    /// are ordered already).
    pub(crate) fn publish(&self, offset: usize, byte: u8) {
        self.write(offset, &[byte]);
    }
}

// ---- Isolated directories (`src/dir/`) ----

/// Always `false`: std has no exit hook on Windows, so nothing is registered. What the
/// handler would clean up is left for a later process (see `src/dir/registry.rs`).
pub(crate) fn at_exit(_handler: extern "C" fn()) -> bool {
    false
}
