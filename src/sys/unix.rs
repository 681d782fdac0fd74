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

/// `mkdir(2)` of `path` and every missing parent, each with mode 0700.
pub(crate) fn create_private_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
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

/// Whether `file` no longer has a name (`fstat(2)` link count 0): its directory entry was
/// removed since it was opened, so nobody opening the path gets this file any more.
pub(crate) fn is_unlinked(file: &std::fs::File) -> io::Result<bool> {
    Ok(file.metadata()?.nlink() == 0)
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

/// A file's first bytes mapped into memory shared with every process that reads the file
/// (`mmap(2)` with `PROT_READ | PROT_WRITE` and `MAP_SHARED`): a store into it is what a
/// later `read(2)` of the file returns, with no system call per store. Unmapped
/// (`munmap(2)`) when dropped; the file, and any lock on it, is kept open until then.
#[derive(Debug)]
pub(crate) struct SharedMap {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    _file: std::fs::File,
}

// SAFETY: the mapping is plain memory owned by this value; it is only written through raw
// pointers (`write`, `publish`), which callers keep to ranges no other thread writes.
unsafe impl Send for SharedMap {}
// SAFETY: as above.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// Maps the first `len` bytes of `file`, which must be at least that long and open for
    /// reading and writing.
    pub(crate) fn new(file: std::fs::File, len: usize) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh mapping chosen by the kernel (null hint) of a file descriptor that
        // stays valid for the call; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?;
        Ok(Self {
            ptr,
            len,
            _file: file,
        })
    }

    /// Copies `bytes` to `offset` (a memory copy). Panics if the range is out of the map.
    pub(crate) fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len, "write past the mapping");
        // SAFETY: the range is inside the mapping (checked above), and `bytes` cannot
        // overlap it (it is memory of this process's own, not the mapping).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset),
                bytes.len(),
            );
        }
    }

    /// Stores `byte` at `offset` after every earlier store to the map (release ordering),
    /// so that a reader who sees it also sees what was written before it.
    pub(crate) fn publish(&self, offset: usize, byte: u8) {
        assert!(offset < self.len, "write past the mapping");
        // SAFETY: in bounds (checked above) and u8 has no alignment requirement; the byte
        // is only ever accessed atomically within this process.
        let cell = unsafe { std::sync::atomic::AtomicU8::from_ptr(self.ptr.as_ptr().add(offset)) };
        cell.store(byte, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, which nothing uses any more.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

// ---- Isolated directories (`src/dir/`) ----

/// Registers `handler` to run when the process exits normally (`atexit(3)`: on return from
/// `main` or on `exit(3)`, which `std::process::exit` calls; not on a signal or `abort`).
/// Returns whether it was registered (the C library may run out of room for handlers).
pub(crate) fn at_exit(handler: extern "C" fn()) -> bool {
    // SAFETY: atexit only stores the pointer of a function that lives as long as the
    // program and takes nothing; the handler itself must not unwind, which its callers
    // ensure.
    unsafe { libc::atexit(handler) == 0 }
}
