//! Unix: permission bits and file ownership.

use std::ffi::OsStr;
use std::fs::{DirBuilder, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The effective user id (`geteuid(2)`): the owner of everything this process creates,
/// and so the one its private directories must belong to.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective user id as text, which names the per-user state directory.
pub(crate) fn user_tag() -> String {
    euid().to_string()
}

/// `mkdir(2)` with mode 0700 (before the umask, which can only remove bits).
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// Why an existing directory is not private to this user, or `None` when it is: it must be
/// owned by the caller (`lstat(2)` uid equals `geteuid(2)`) and closed to group and others.
pub(crate) fn not_private_reason(meta: &Metadata) -> Option<String> {
    if !owned_by_current_user(meta) {
        let uid = euid();
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

/// Whether the entry described by `meta` (from `lstat(2)`) belongs to this process's
/// effective user (`geteuid(2)`), the one that owns what this process creates.
pub(crate) fn owned_by_current_user(meta: &Metadata) -> bool {
    meta.uid() == euid()
}

/// A path as bytes for storing in a file; Unix paths are byte strings, so every path fits.
pub(crate) fn path_to_bytes(path: &Path) -> Option<Vec<u8>> {
    Some(path.as_os_str().as_bytes().to_vec())
}

/// The inverse of [`path_to_bytes`].
pub(crate) fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    Some(PathBuf::from(OsStr::from_bytes(&bytes)))
}

/// Whether `err` is `EAFNOSUPPORT`: `socket(2)` or `bind(2)` met an address family the
/// kernel was built or booted without (typically IPv6 with `ipv6.disable=1`). std files it
/// under `ErrorKind::Uncategorized`, so the raw code is the only way to tell.
pub(crate) fn is_address_family_unsupported(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EAFNOSUPPORT)
}

/// Writes all of `buf` at `offset` without moving the file position (`pwrite(2)`), in one
/// call for the short records isofix writes.
pub(crate) fn write_at(file: &std::fs::File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}
