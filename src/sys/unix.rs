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
    // With the special bits, so that a sticky 1777 directory reads as such.
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Some(format!(
            "its mode is {mode:04o}; it must not be open to group or others (0700)"
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

// ---------------------------------------------------------------------------------------
// Serial locks (src/serial, src/common/file_lock.rs): `flock(2)` and directory handles.
// ---------------------------------------------------------------------------------------

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};

/// What [`flock`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlockOp {
    /// `LOCK_SH`.
    Shared,
    /// `LOCK_EX`.
    Exclusive,
    /// `LOCK_UN`.
    Unlock,
}

/// `flock(2)` on `file`, with `LOCK_NB` unless `block`, retried on `EINTR`. Returns
/// `false` when `LOCK_NB` met a conflicting lock (`EWOULDBLOCK`).
pub(crate) fn flock(file: &File, op: FlockOp, block: bool) -> io::Result<bool> {
    let mut flags = match op {
        FlockOp::Shared => libc::LOCK_SH,
        FlockOp::Exclusive => libc::LOCK_EX,
        FlockOp::Unlock => libc::LOCK_UN,
    };
    if !block {
        flags |= libc::LOCK_NB;
    }
    loop {
        // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
        if unsafe { libc::flock(file.as_raw_fd(), flags) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !block => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Whether `err` is `EMFILE` or `ENFILE`: the process or the system ran out of file
/// descriptors (std files both under `ErrorKind::Uncategorized`).
pub(crate) fn is_out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Whether `err` is `ELOOP`: an open with `O_NOFOLLOW` met a symbolic link.
pub(crate) fn is_symlink_refused(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ELOOP)
}

/// The identity of a file (`st_dev`, `st_ino`), which tells a directory from another one
/// made later at the same path.
pub(crate) fn file_identity(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// The `flock(2)` locks on the system, as `(pid, inode)` of each holder and file, from
/// `/proc/locks`; `None` where it cannot be read. Pids are as this process sees them.
/// The device is left out: `/proc/locks` names the superblock's, which is not what
/// `stat(2)` reports on btrfs subvolumes or on an overlay across filesystems.
#[cfg(target_os = "linux")]
pub(crate) fn flock_holders() -> Option<Vec<(u32, u64)>> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    // `1: FLOCK  ADVISORY  WRITE 4242 fd:01:5678 0 EOF`; a blocked request reads
    // `1: -> FLOCK ...`.
    let parse = |line: &str| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, pid, file) = (*fields.get(1)?, *fields.get(4)?, *fields.get(5)?);
        let inode = file.rsplit(':').next()?.parse().ok()?;
        (kind == "FLOCK").then_some((pid.parse().ok()?, inode))
    };
    Some(text.lines().filter_map(parse).collect())
}

/// The inodes of the files that the process `pid` holds `flock(2)` locks on, from the
/// `lock:` lines of `/proc/<pid>/fdinfo/*`; `None` if its descriptors cannot be listed.
/// Each descriptor's lines are read at once, unlike `/proc/locks`, whose reads in pieces
/// miss entries that move while other processes lock and unlock files.
#[cfg(target_os = "linux")]
pub(crate) fn flocked_inodes(pid: u32) -> Option<Vec<u64>> {
    let fdinfo = Path::new("/proc").join(pid.to_string()).join("fdinfo");
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir(fdinfo).ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        // `lock:\t1: FLOCK  ADVISORY  WRITE 4242 fd:01:5678 0 EOF`
        inodes.extend(text.lines().filter_map(|line| {
            let fields: Vec<&str> = line.strip_prefix("lock:")?.split_whitespace().collect();
            let (kind, file) = (*fields.get(1)?, *fields.get(5)?);
            let inode = file.rsplit(':').next()?.parse::<u64>().ok()?;
            (kind == "FLOCK").then_some(inode)
        }));
    }
    Some(inodes)
}

/// Whether the open `file` no longer has a name (`fstat(2)` link count 0): it, or the
/// directory it was in, was removed.
pub(crate) fn is_unlinked(file: &File) -> io::Result<bool> {
    Ok(file.metadata()?.nlink() == 0)
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `O_CLOEXEC | O_NOFOLLOW` and `flags`, through `openat(2)` from `dir` (or the current
/// directory when `None`): the last component of `name` is never followed if it is a
/// symbolic link (`ELOOP`).
fn open_at(dir: Option<&File>, name: &OsStr, flags: libc::c_int) -> io::Result<File> {
    let name = c_name(name)?;
    let dirfd = dir.map_or(libc::AT_FDCWD, AsRawFd::as_raw_fd);
    let flags = flags | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    loop {
        // SAFETY: `name` is a NUL-terminated string that lives for the call, `dirfd` is
        // open (kept by `dir`) or AT_FDCWD; mode 0600 applies only when O_CREAT creates.
        let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags, 0o600 as libc::c_uint) };
        if fd >= 0 {
            // SAFETY: `fd` was just opened and is owned by nothing else.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// An open directory, reached without following a symbolic link in its last component:
/// files inside it are created, opened and removed through it with the `*at` calls, so
/// a directory swapped at its path after it was opened (and checked) cannot redirect them.
#[derive(Debug)]
pub(crate) struct DirHandle(File);

impl DirHandle {
    /// `open(2)` of `path` with `O_DIRECTORY | O_NOFOLLOW`.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        open_at(None, path.as_os_str(), libc::O_RDONLY | libc::O_DIRECTORY).map(Self)
    }

    /// `openat(2)` of the subdirectory `name` with `O_DIRECTORY | O_NOFOLLOW`.
    pub(crate) fn open_dir(&self, name: &str) -> io::Result<Self> {
        open_at(
            Some(&self.0),
            name.as_ref(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )
        .map(Self)
    }

    /// `mkdirat(2)` of the subdirectory `name` with mode 0700.
    pub(crate) fn create_dir(&self, name: &str) -> io::Result<()> {
        let name = c_name(name.as_ref())?;
        // SAFETY: the descriptor is open for the call and `name` is NUL-terminated.
        if unsafe { libc::mkdirat(self.0.as_raw_fd(), name.as_ptr(), 0o700) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `openat(2)` of the file `name` for reading and writing, created 0600 if missing,
    /// never through a symbolic link.
    pub(crate) fn open_file(&self, name: &str) -> io::Result<File> {
        open_at(Some(&self.0), name.as_ref(), libc::O_RDWR | libc::O_CREAT)
    }

    /// `openat(2)` of a new file `name` (`O_CREAT | O_EXCL`), 0600.
    pub(crate) fn create_new_file(&self, name: &str) -> io::Result<File> {
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        open_at(Some(&self.0), name.as_ref(), flags)
    }

    /// `openat(2)` of an existing entry `name` for reading, never through a symbolic link
    /// and without blocking on a FIFO (`O_NONBLOCK`).
    pub(crate) fn open_existing(&self, name: &str) -> io::Result<File> {
        open_at(
            Some(&self.0),
            name.as_ref(),
            libc::O_RDONLY | libc::O_NONBLOCK,
        )
    }

    /// `unlinkat(2)` of the file `name`.
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        let name = c_name(name.as_ref())?;
        // SAFETY: the descriptor is open for the call and `name` is NUL-terminated.
        if unsafe { libc::unlinkat(self.0.as_raw_fd(), name.as_ptr(), 0) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The directory's own metadata (`fstat(2)`).
    pub(crate) fn metadata(&self) -> io::Result<Metadata> {
        self.0.metadata()
    }

    /// Locks the directory shared (`flock(2)`, `LOCK_SH | LOCK_NB`) for as long as the
    /// handle is open: age-based temp-file cleaners (systemd-tmpfiles) leave a locked
    /// directory's contents alone. Best effort: a directory that cannot be locked is used
    /// all the same.
    pub(crate) fn keep_from_cleaners(&self) {
        let _ = flock(&self.0, FlockOp::Shared, false);
    }

    /// Whether the directory was removed since it was opened (see [`is_unlinked`]).
    pub(crate) fn is_unlinked(&self) -> io::Result<bool> {
        is_unlinked(&self.0)
    }

    /// The names in the directory that are valid UTF-8, without `.` and `..`
    /// (`fdopendir(3)` on a duplicate of the descriptor, `readdir(3)`, `closedir(3)`).
    pub(crate) fn entry_names(&self) -> io::Result<Vec<String>> {
        // The stream takes over the descriptor it reads, so it gets a copy of its own.
        let copy = self.0.try_clone()?;
        // SAFETY: `copy` is an open directory descriptor, handed over to the stream (which
        // closes it), so it is not closed twice: `into_raw_fd` gives up ownership.
        let stream = unsafe { libc::fdopendir(std::os::fd::IntoRawFd::into_raw_fd(copy)) };
        if stream.is_null() {
            return Err(io::Error::last_os_error());
        }
        // Reading from the start: the copy shares its position with the original.
        // SAFETY: `stream` is a valid stream until closed below.
        unsafe { libc::rewinddir(stream) };
        let mut names = Vec::new();
        loop {
            // SAFETY: as above; the entry returned is valid until the next readdir call,
            // and its name is copied out before that.
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                break;
            }
            // SAFETY: `d_name` of a returned entry is a NUL-terminated string.
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
            if let Ok(name) = name.to_str() {
                if name != "." && name != ".." {
                    names.push(name.to_owned());
                }
            }
        }
        // SAFETY: closes the stream (and its descriptor) exactly once.
        unsafe { libc::closedir(stream) };
        Ok(names)
    }
}

// ---- Child processes and inherited listeners (used by `process::ChildGuard`). ----

/// Sends `signal` to every process of the process group `pgid` (`killpg(2)`). A group that
/// no longer exists (`ESRCH`) is not an error: there is nothing left to signal.
pub(crate) fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "process group id too large"))?;
    // SAFETY: killpg only reads its two integer arguments.
    if unsafe { libc::killpg(pgid, signal) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// `SIGTERM`, the polite stop.
pub(crate) const SIGTERM: i32 = libc::SIGTERM;
/// `SIGKILL`, the stop that cannot be refused.
pub(crate) const SIGKILL: i32 = libc::SIGKILL;

/// How a child ended, as `waitid(2)` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// Whether the child `pid` has ended, without reaping it (`waitid(P_PID, pid, WEXITED |
/// WNOWAIT)`, with `WNOHANG` unless `block`): it stays a zombie, so its pid — which is also
/// its process group's id — cannot be reused before it is reaped. Retries on `EINTR`.
pub(crate) fn peek_exit(pid: u32, block: bool) -> io::Result<Option<Ended>> {
    let id = libc::id_t::from(pid);
    let mut flags = libc::WEXITED | libc::WNOWAIT;
    if !block {
        flags |= libc::WNOHANG;
    }
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
        let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, flags) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        // SAFETY: waitid filled `info` for a child event (or left si_pid 0 under WNOHANG);
        // si_pid and si_status are the fields it sets for SIGCHLD-class events.
        let (child, status) = unsafe { (info.si_pid(), info.si_status()) };
        if child == 0 {
            return Ok(None);
        }
        return Ok(Some(if info.si_code == libc::CLD_EXITED {
            Ended::Exited(status)
        } else {
            Ended::Signaled(status)
        }));
    }
}

/// Makes `command`'s child receive the listener `fd` as descriptor 3, the first one the
/// `LISTEN_FDS` convention hands over, by running [`place_listen_fd`] in the child between
/// `fork` and `exec`. `fd` stays close-on-exec in this process, so children that other
/// threads spawn meanwhile never get it. The caller keeps `fd` open until the spawn returns.
pub(crate) fn inherit_as_fd3(command: &mut std::process::Command, fd: std::os::fd::RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child, where only async-signal-safe calls are
    // allowed: it calls dup2/fcntl on an integer it captured by value, allocates nothing
    // and takes no lock.
    unsafe {
        command.pre_exec(move || place_listen_fd(fd));
    }
}

/// In a child between `fork` and `exec` (`pre_exec`): puts the listener `fd` at
/// descriptor 3 for the program, the first one the `LISTEN_FDS` convention hands over.
/// `dup2(2)` gives the copy no close-on-exec flag; if `fd` is already 3, the flag is cleared
/// with `fcntl(2)`. Both are async-signal-safe and allocate nothing.
fn place_listen_fd(fd: std::os::fd::RawFd) -> io::Result<()> {
    const FIRST: libc::c_int = 3;
    if fd == FIRST {
        // SAFETY: fcntl on a descriptor this child owns; only reads and sets its flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(());
    }
    // SAFETY: dup2 of a descriptor open in this child onto descriptor 3, which the program
    // is meant to receive; whatever 3 was in the child (a close-on-exec descriptor of the
    // parent's) is closed atomically, and nothing in this child uses it after exec.
    if unsafe { libc::dup2(fd, FIRST) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `prctl(2)` `PR_SET_PDEATHSIG`: the kernel sends `signal` to this process when the
/// thread that forked it exits. Async-signal-safe (for `pre_exec`).
#[cfg(target_os = "linux")]
fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    let signal = libc::c_ulong::try_from(signal)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: PR_SET_PDEATHSIG only reads its integer argument and changes a setting of
    // the calling process; it touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getppid(2)`: the pid of this process's parent. Async-signal-safe.
#[cfg(target_os = "linux")]
fn parent_pid() -> libc::pid_t {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe { libc::getppid() }
}

/// `_exit(2)`: ends this process at once, without running atexit handlers or destructors
/// (a forked child must not run the parent's). Async-signal-safe.
#[cfg(target_os = "linux")]
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process; it reads only its integer argument.
    unsafe { libc::_exit(code) }
}

/// Makes `command`'s child get `SIGKILL` when the thread that starts it exits (Linux): the
/// hook that runs in the child between `fork` and `exec` sets `PR_SET_PDEATHSIG`, then
/// exits at once if this process died already, after the `fork` and before the `prctl`
/// (the child was reparented, so `getppid` no longer names us). The setting survives
/// `exec`, except of set-user-ID, set-group-ID or file-capability programs.
#[cfg(target_os = "linux")]
pub(crate) fn kill_with_parent(command: &mut std::process::Command) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let parent = libc::pid_t::try_from(std::process::id())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "process id too large"))?;
    // SAFETY: the closure runs in the forked child, where only async-signal-safe calls are
    // allowed: prctl, getppid and _exit on integers captured by value; it allocates
    // nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            set_parent_death_signal(libc::SIGKILL)?;
            if parent_pid() != parent {
                exit_now(1);
            }
            Ok(())
        });
    }
    Ok(())
}

/// `pidfd_open(2)` (Linux 5.3 and later): a descriptor for the process `pid` that becomes
/// readable when it ends, so that an event loop can wait for a child. Close-on-exec.
#[cfg(all(target_os = "linux", feature = "tokio"))]
pub(crate) fn pidfd_open(pid: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "process id too large"))?;
    // SAFETY: pidfd_open reads two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = std::os::fd::RawFd::try_from(fd).unwrap_or(-1);
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The processes in `/proc` (Linux): each pid with its `/proc/<pid>` directory. Empty if
/// `/proc` cannot be read.
#[cfg(target_os = "linux")]
pub(crate) fn proc_pids() -> impl Iterator<Item = (u32, PathBuf)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, entry.path()))
        })
}

/// The state letter and process group of the process whose `/proc/<pid>` directory is
/// `dir`, from its `stat` file (Linux); `None` if it is gone or unreadable.
#[cfg(target_os = "linux")]
pub(crate) fn proc_state_and_group(dir: &Path) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
    let rest = stat.rfind(')').and_then(|i| stat.get(i + 2..))?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse::<u32>().ok()?;
    Some((state, pgrp))
}

/// Whether any process of the process group `pgid` is still alive — neither gone nor a
/// zombie — read from `/proc/<pid>/stat` of every process (Linux). Processes that vanish
/// while being read count as gone; an unreadable `/proc` counts as none alive.
#[cfg(target_os = "linux")]
pub(crate) fn group_alive(pgid: u32) -> bool {
    proc_pids().any(|(_, dir)| match proc_state_and_group(&dir) {
        Some((state, pgrp)) => pgrp == pgid && !matches!(state, 'Z' | 'X'),
        None => false,
    })
}

/// Whether any process — zombies included — is in the process group `pgid`, from
/// `kill(2)` with signal 0 to `-pgid`: `ESRCH` means none. A group whose processes this
/// user may not signal (`EPERM`) exists. Used where there is no `/proc` ([`group_alive`]).
#[cfg(any(test, not(target_os = "linux")))]
pub(crate) fn group_exists(pgid: u32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: kill only reads its two integer arguments; signal 0 sends nothing.
    unsafe {
        libc::kill(-pgid, 0) == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_group_exists_until_its_last_process_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        assert!(group_exists(pgid));
        signal_group(pgid, SIGKILL).unwrap();
        assert!(peek_exit(pgid, true).unwrap().is_some());
        // A zombie is still in its group (where `/proc` says it is not alive).
        assert!(group_exists(pgid));
        #[cfg(target_os = "linux")]
        assert!(!group_alive(pgid));
        child.wait().unwrap();
        assert!(!group_exists(pgid));
    }
}
