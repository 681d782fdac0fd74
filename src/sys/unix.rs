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

/// Whether `err` is `EAFNOSUPPORT`: `socket(2)` or `bind(2)` met an address family the
/// kernel was built or booted without (typically IPv6 with `ipv6.disable=1`). std files it
/// under `ErrorKind::Uncategorized`, so the raw code is the only way to tell.
pub(crate) fn is_address_family_unsupported(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EAFNOSUPPORT)
}
