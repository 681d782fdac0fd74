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

/// Writes all of `buf` at `offset` (`WriteFile` with an `OVERLAPPED` offset).
pub(crate) fn write_at(file: &std::fs::File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}
