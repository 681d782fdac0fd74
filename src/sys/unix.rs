//! Unix: permission bits and file ownership.

use std::fs::{DirBuilder, Metadata};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// The real user id of this process (`getuid(2)`), which names the per-user state directory.
pub(crate) fn user_tag() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    uid.to_string()
}

/// `mkdir(2)` with mode 0700 (before the umask, which can only remove bits).
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// Why an existing directory is not private to this user, or `None` when it is: it must be
/// owned by the caller (`lstat(2)` uid equals `getuid(2)`) and closed to group and others.
pub(crate) fn not_private_reason(meta: &Metadata) -> Option<String> {
    // SAFETY: as above.
    let uid = unsafe { libc::getuid() };
    if meta.uid() != uid {
        return Some(format!(
            "it is owned by uid {}, not by this user (uid {uid})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Some(format!(
            "its mode is {mode:03o}; it must not be open to group or others (0700)"
        ));
    }
    None
}

/// Makes `path` writable by its owner again (`chmod(2)`), so that its entries can be removed.
pub(crate) fn make_owner_writable(path: &Path, meta: &Metadata) -> io::Result<()> {
    let mut perms = meta.permissions();
    let mode = perms.mode();
    if mode & 0o700 == 0o700 {
        return Ok(());
    }
    perms.set_mode(mode | 0o700);
    std::fs::set_permissions(path, perms)
}

/// Writes all of `buf` at `offset` without moving the file position (`pwrite(2)`), in one
/// call for the short records isofix writes.
pub(crate) fn write_at(file: &std::fs::File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}
