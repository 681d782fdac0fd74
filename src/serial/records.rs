//! Holder records: who holds or waits for which group, for messages and for tools.
//!
//! Records are information only; the locks never depend on them. Each process keeps one
//! record file per lock directory it uses, `v1/holders/<pid>-<start>-<n>.rec`, locked
//! (`flock`, exclusive) for as long as it is open, so a reader tells a live process's
//! file (locked) from a dead one's (lockable). The file is a sequence of [`LINE`]-byte
//! lines, one per acquisition in progress, written with positional writes (`pwrite`):
//!
//! ```text
//! H pid=4242 since=1764541234.123456789 mode=exclusive group=db-<hash> test=tests::a
//! ```
//!
//! The first byte is `H` (held), `W` (waiting) or `-` (free); then the holder's pid (in
//! its own pid namespace: containers sharing `/tmp` may show pids that mean nothing here),
//! the Unix time it started holding or waiting, its mode (`exclusive`, `shared`,
//! `slot-<i>/<n>` of a group limited to `n`, `max-<n>` while waiting for one), the
//! group's file stem, and the test's name, cut to fit; spaces pad the line to its `\n`.
//! On Linux a release leaves its `H` line as it is, and readers drop the lines of holds
//! that `/proc/locks` no longer shows (see [`drop_released`]). Since `/proc/locks` tells
//! processes apart, not holds, a process keeps at most one line per group reading as
//! held beyond its live holds, and none while it holds or waits for that group.
//!
//! A process removes the files of dead processes when it creates its own, without waiting
//! for anyone: a file is stale when it is lockable and not [empty and young](CREATING),
//! since a process locks its new file before it writes to it. Only regular files of this
//! user named like a record file are removed.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::settings::DIR_VAR;
use crate::common::error::{error, wrap};
use crate::common::file_lock::{self, LockMode};
use crate::sys::{self, DirHandle};

/// Bytes per line.
pub(crate) const LINE: usize = 256;
const HOLDERS: &str = "holders";
/// How long an empty, unlocked record file may be one that its process has just created
/// and is about to lock.
const CREATING: Duration = Duration::from_secs(60);
const SUFFIX: &str = ".rec";

/// State of a request, its line's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Held,
    Waiting,
}

/// This process's record file in one lock directory.
#[derive(Debug)]
pub(crate) struct Table {
    file: File,
    name: String,
    lines: Mutex<Lines>,
}

/// The lines of a record file: the free ones, and what each one is used for.
#[derive(Debug, Default)]
struct Lines {
    free: Vec<u64>,
    /// By line number: its use, and the stem of the group it was last written for.
    each: Vec<(Use, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    Free,
    /// Free, but still reading as held: a release left it (see [`drop_released`]).
    Left,
    Waiting,
    Held,
}

/// This process's id, asked once (`getpid(2)` is on every acquisition's path).
pub(crate) fn pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// `<pid>-<16 hex digits>-<n>.rec`: what [`Table::create`] makes and the sweep removes.
fn is_record_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(SUFFIX) else {
        return false;
    };
    let parts: Vec<&str> = stem.split('-').collect();
    matches!(parts.as_slice(), [pid, start, n]
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
            && start.len() == 16 && start.bytes().all(|b| b.is_ascii_hexdigit())
            && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `holders/` in `dir` (the layout directory at `shown`, for messages), created 0700 if
/// missing, checked like the lock directory.
fn holders_dir(dir: &DirHandle, shown: &Path, create: bool) -> io::Result<DirHandle> {
    let path = shown.join(HOLDERS);
    let opened = match dir.open_dir(HOLDERS) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => match dir.create_dir(HOLDERS) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => dir.open_dir(HOLDERS),
        },
        other => other,
    };
    let opened = opened.map_err(|e| {
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        match is_link {
            true => error(
                io::ErrorKind::PermissionDenied,
                format_args!(
                    "refusing to use holders directory {}: it is a symbolic link, which \
                     could point anywhere",
                    path.display()
                ),
                "remove the link (isofix makes the directory again), and find out who made it",
            ),
            false => wrap(
                e,
                format_args!("open holders directory {}", path.display()),
                format_args!(
                    "check that the lock directory is yours and writable, or set {DIR_VAR}"
                ),
            ),
        }
    })?;
    match sys::not_private_reason(&opened.metadata()?) {
        None => Ok(opened),
        Some(reason) => Err(error(
            io::ErrorKind::PermissionDenied,
            format_args!("refusing to use holders directory {}: {reason}", path.display()),
            format_args!("run `chmod 700` on it if it is yours, or set {DIR_VAR} to a directory that only you own"),
        )),
    }
}

/// Opens the record file `name` of another process if it is one: a regular file of
/// this user (never a symbolic link or a FIFO), with a record file's name.
fn open_record(holders: &DirHandle, name: &str) -> Option<File> {
    if !is_record_name(name) {
        return None;
    }
    let file = holders.open_existing(name).ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && sys::owned_by_current_user(&meta)).then_some(file)
}

/// Whether a record file belongs to a process that is gone: unlocked, and not one that
/// its process has just created and not yet locked.
fn is_stale(file: &File) -> bool {
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let age = meta.modified().ok().and_then(|at| at.elapsed().ok());
    let creating = meta.len() == 0 && !matches!(age, Some(age) if age >= CREATING);
    !creating && file_lock::try_lock(file, LockMode::Shared).unwrap_or(false)
}

impl Table {
    /// Creates this process's record file in `dir`, removing those of dead processes
    /// (as far as it can: the records are information only).
    pub(crate) fn create(dir: &DirHandle, shown: &Path) -> io::Result<Table> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let holders = holders_dir(dir, shown, true)?;
        stale(&holders, true);
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let name = format!(
            "{}-{start:016x}-{}{SUFFIX}",
            pid(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let file = holders.create_new_file(&name)?;
        // Empty and new, nobody else locks it but a reader for an instant: never waits long.
        file_lock::lock(&file, LockMode::Exclusive)?;
        Ok(Table {
            file,
            name,
            lines: Mutex::new(Lines::default()),
        })
    }

    /// What each line is used for. Every critical section leaves it consistent: a panic
    /// elsewhere poisons nothing.
    fn lines(&self) -> MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `line` ([`LINE`] bytes) for the group `stem` into a free line, freed when
    /// the record drops.
    pub(crate) fn put(self: Arc<Self>, line: &[u8], stem: &str) -> Record {
        let at = {
            let mut lines = self.lines();
            let at = match lines.free.pop() {
                Some(at) => at,
                None => {
                    lines.each.push((Use::Free, String::new()));
                    lines.each.len() as u64 - 1
                }
            };
            let (usage, group) = &mut lines.each[at as usize];
            *usage = Use::Waiting;
            group.clear();
            group.push_str(stem);
            at
        };
        let record = Record { table: self, at };
        record.rewrite(line);
        record
    }
}

/// One line of this process's record file; marked free when dropped, except on Linux
/// after the process's last hold of the group (see [`drop_released`]).
#[derive(Debug)]
pub(crate) struct Record {
    table: Arc<Table>,
    at: u64,
}

impl Record {
    /// Replaces the line (one `pwrite(2)`). Information only: a line that cannot be
    /// written (a full disk, a file size limit) leaves the record missing or stale, and
    /// never fails the lock.
    pub(crate) fn rewrite(&self, line: &[u8]) {
        let held = line.first() == Some(&b'H');
        let mut lines = self.table.lines();
        let at = self.at as usize;
        // A line that a release of this group left reading as held would list this process
        // as a holder twice, or while it waits (holding the lock file shared for a slot).
        for i in 0..lines.each.len() {
            if lines.each[i].0 == Use::Left && lines.each[i].1 == lines.each[at].1 {
                let _ = write_at(&self.table.file, b"-", i as u64 * LINE as u64);
                lines.each[i].0 = Use::Free;
            }
        }
        lines.each[at].0 = if held { Use::Held } else { Use::Waiting };
        let _ = write_at(&self.table.file, line, self.at * LINE as u64);
    }

    /// Whether `entry` is this record.
    pub(crate) fn is(&self, entry: &Holder) -> bool {
        entry.file == self.table.name && entry.at == self.at
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let mut lines = self.table.lines();
        let at = self.at as usize;
        let (usage, group) = &lines.each[at];
        // Left as it is, the line of a hold reads as held while this process holds the
        // group on another line (shared), and so lists that hold twice.
        let alone = !lines
            .each
            .iter()
            .enumerate()
            .any(|(i, (u, g))| i != at && *u == Use::Held && g == group);
        lines.each[at].0 = if RELEASE_UNWRITTEN && *usage == Use::Held && alone {
            Use::Left
        } else {
            // Information only: a failed write leaves a stale line, which its file's lock
            // makes harmless once the process is gone.
            let _ = write_at(&self.table.file, b"-", self.at * LINE as u64);
            Use::Free
        };
        lines.free.push(self.at);
    }
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
}

#[cfg(windows)]
fn write_at(file: &File, mut bytes: &[u8], mut at: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, at)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        at += n as u64;
    }
    Ok(())
}

/// A record's line: state, pid, start, mode, group stem and test name.
pub(crate) fn line(state: State, mode: &str, stem: &str, test: Option<&str>) -> Vec<u8> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let state = match state {
        State::Held => "H",
        State::Waiting => "W",
    };
    // Put together by hand, not with `format!`: this is on every acquisition's path.
    let mut bytes = Vec::with_capacity(LINE);
    bytes.extend_from_slice(state.as_bytes());
    bytes.extend_from_slice(b" pid=");
    push_decimal(&mut bytes, pid().into(), 1);
    bytes.extend_from_slice(b" since=");
    push_decimal(&mut bytes, since.as_secs(), 1);
    bytes.push(b'.');
    push_decimal(&mut bytes, since.subsec_nanos().into(), 9);
    for (key, value) in [(" mode=", mode), (" group=", stem), (" test=", "")] {
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(value.as_bytes());
    }
    let test = test.unwrap_or("-");
    let mut cut = test.len().min((LINE - 1).saturating_sub(bytes.len()));
    while !test.is_char_boundary(cut) {
        cut -= 1;
    }
    bytes.extend_from_slice(&test.as_bytes()[..cut]);
    bytes.truncate(LINE - 1);
    bytes.resize(LINE - 1, b' ');
    bytes.push(b'\n');
    bytes
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_decimal(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let (mut n, mut at) = (n, digits.len());
    while n > 0 || digits.len() - at < width {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[at..]);
}

/// A holder of a serial group, or a request waiting for one, as its process recorded it
/// in the lock directory: from [`holders`](super::holders).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let _guard = isofix::SerialGuard::lock("doc-holder")?;
/// let me = isofix::serial::holders(None)?
///     .into_iter()
///     .find(|h| h.pid() == std::process::id() && h.group_file().starts_with("doc-holder-"))
///     .expect("recorded");
/// assert_eq!((me.mode(), me.is_waiting()), ("exclusive", false));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Holder {
    pub(crate) state: State,
    pid: u32,
    since: Duration,
    mode: String,
    group: String,
    test: String,
    file: String,
    at: u64,
}

impl Holder {
    /// The holder's process id, in its own pid namespace (a container sharing `/tmp` may
    /// show one that means nothing here).
    ///
    /// ```
    /// # let _g = isofix::SerialGuard::lock("doc-holder-pid").unwrap();
    /// assert!(isofix::serial::holders(None).unwrap().iter().any(|h| h.pid() == std::process::id()));
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The test that holds or waits, if it was known (`None` outside a test).
    ///
    /// ```
    /// # let _g = isofix::SerialGuard::lock("doc-holder-test").unwrap();
    /// for h in isofix::serial::holders(None).unwrap() {
    ///     println!("{}", h.test().unwrap_or("(not a test)"));
    /// }
    /// ```
    pub fn test(&self) -> Option<&str> {
        Some(self.test.as_str()).filter(|t| *t != "-")
    }

    /// `exclusive`, `shared`, `slot-<i>/<n>` (one of at most `n` holders) or, while
    /// waiting for a group limited to `n`, `max-<n>`.
    ///
    /// ```
    /// # let _g = isofix::SerialGuard::shared("doc-holder-mode").unwrap();
    /// assert!(isofix::serial::holders(None).unwrap().iter().any(|h| h.mode() == "shared"));
    /// ```
    pub fn mode(&self) -> &str {
        &self.mode
    }

    /// The group's lock file stem: a readable slug of its name and a hash of it.
    ///
    /// ```
    /// # let _g = isofix::SerialGuard::lock("doc-holder-group").unwrap();
    /// let all = isofix::serial::holders(None).unwrap();
    /// assert!(all.iter().any(|h| h.group_file().starts_with("doc-holder-group-")));
    /// ```
    pub fn group_file(&self) -> &str {
        &self.group
    }

    /// Whether this is a request still waiting rather than a holder.
    ///
    /// ```
    /// # let _g = isofix::SerialGuard::lock("doc-holder-waiting").unwrap();
    /// let waiting = isofix::serial::holders(None).unwrap().iter().filter(|h| h.is_waiting()).count();
    /// # let _ = waiting;
    /// ```
    pub fn is_waiting(&self) -> bool {
        self.state == State::Waiting
    }

    /// When it started holding, or waiting.
    ///
    /// ```
    /// # let _g = isofix::SerialGuard::lock("doc-holder-since").unwrap();
    /// for h in isofix::serial::holders(None).unwrap() {
    ///     assert!(h.since() <= std::time::SystemTime::now());
    /// }
    /// ```
    pub fn since(&self) -> SystemTime {
        UNIX_EPOCH + self.since
    }

    fn parse(line: &[u8], file: &str, at: u64) -> Option<Holder> {
        let (&state, rest) = line.split_first()?;
        let state = match state {
            b'H' => State::Held,
            b'W' => State::Waiting,
            _ => return None,
        };
        let text = std::str::from_utf8(rest).ok()?.trim();
        let mut parts = text.splitn(5, ' ');
        let pid = parts.next()?.strip_prefix("pid=")?.parse().ok()?;
        let (secs, nanos) = parts.next()?.strip_prefix("since=")?.split_once('.')?;
        let since = Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
        Some(Holder {
            state,
            pid,
            since,
            mode: parts.next()?.strip_prefix("mode=")?.to_owned(),
            group: parts.next()?.strip_prefix("group=")?.to_owned(),
            test: parts.next()?.strip_prefix("test=")?.to_owned(),
            file: file.to_owned(),
            at,
        })
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let state = match self.state {
            State::Held => "for",
            State::Waiting => "waiting for",
        };
        write!(
            f,
            "pid {} (test {}, {}, {state} {:.1} s)",
            self.pid,
            self.test,
            self.mode,
            now.saturating_sub(self.since).as_secs_f64()
        )
    }
}

/// The names of the record files of processes that are gone in `holders`, removed first
/// if `remove` (those that could not be removed are left out).
fn stale(holders: &DirHandle, remove: bool) -> Vec<String> {
    let mut found = holders.entry_names().unwrap_or_default();
    found.retain(|name| {
        open_record(holders, name).is_some_and(|file| is_stale(&file))
            && (!remove || holders.remove_file(name).is_ok())
    });
    found
}

/// The record files that processes which are gone left in the lock directory `dir`,
/// removed first if `remove`.
pub(crate) fn stale_files(dir: &DirHandle, shown: &Path, remove: bool) -> io::Result<Vec<PathBuf>> {
    let holders = match holders_dir(dir, shown, false) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let at = shown.join(HOLDERS);
    Ok(stale(&holders, remove)
        .into_iter()
        .map(|name| at.join(name))
        .collect())
}

/// The live records in the lock directory `dir` (of `group` only, if given). Files of
/// dead processes are skipped, never removed here.
pub(crate) fn read(dir: &DirHandle, shown: &Path, group: Option<&str>) -> io::Result<Vec<Holder>> {
    let holders = match holders_dir(dir, shown, false) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut found = Vec::new();
    let mut inodes = Vec::new();
    for name in holders.entry_names()? {
        let Some(mut file) = open_record(&holders, &name) else {
            continue;
        };
        if file_lock::try_lock(&file, LockMode::Shared)? {
            continue;
        }
        if let Ok(meta) = file.metadata() {
            inodes.push((name.clone(), sys::file_identity(&meta).1));
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            continue;
        }
        found.extend(
            bytes
                .chunks(LINE)
                .enumerate()
                .filter_map(|(at, line)| Holder::parse(line, &name, at as u64))
                .filter(|e| match group {
                    Some(g) => e.group == g,
                    None => true,
                }),
        );
    }
    drop_released(dir, &inodes, &mut found);
    Ok(found)
}

/// Whether a release leaves its line as it was: on Linux it does, which saves a `pwrite`
/// per acquisition, and readers tell a released hold from a live one by `/proc/locks`.
const RELEASE_UNWRITTEN: bool = cfg!(target_os = "linux");

/// Drops the held records whose process no longer holds the group's lock file, by
/// `/proc/locks`. A record file is locked by its process for as long as it lives, so
/// `/proc/locks` names that process as this one sees it (a holder in a child pid
/// namespace has another pid here), or leaves it out (one outside this pid namespace, as
/// a container sharing `/tmp` sees the host): its lines are then all kept, as they are
/// where `/proc/locks` cannot be read. `inodes` are the record files' inode numbers, by
/// name (devices are left out, see [`sys::flock_holders`]).
#[cfg(target_os = "linux")]
fn drop_released(dir: &DirHandle, inodes: &[(String, u64)], found: &mut Vec<Holder>) {
    use std::collections::HashMap;
    let Some(locks) = sys::flock_holders() else {
        return;
    };
    let mut lock_files: HashMap<String, Option<u64>> = HashMap::new();
    // `/proc/locks` is read in pieces and misses entries while other locks come and go:
    // what it does not show is looked for in the process's own descriptors.
    let mut fdinfo: HashMap<u32, Option<Vec<u64>>> = HashMap::new();
    // (`unknown` where neither can tell.)
    let mut holds = |pid: u32, ino: u64, unknown: bool| {
        locks.contains(&(pid, ino))
            || fdinfo
                .entry(pid)
                .or_insert_with(|| sys::flocked_inodes(pid))
                .as_ref()
                .map_or(unknown, |inodes| inodes.contains(&ino))
    };
    found.retain(|h| {
        if h.state == State::Waiting {
            return true;
        }
        let Some(&(_, record)) = inodes.iter().find(|(name, _)| *name == h.file) else {
            return true;
        };
        // The process that locks the record file, as this one sees it.
        let shown = locks.iter().find(|l| l.1 == record).map(|l| l.0);
        let Some(pid) = shown.or_else(|| holds(h.pid, record, false).then_some(h.pid)) else {
            return true;
        };
        let lock_file = lock_files.entry(h.group.clone()).or_insert_with(|| {
            let file = dir.open_existing(&format!("{}.lock", h.group)).ok()?;
            Some(sys::file_identity(&file.metadata().ok()?).1)
        });
        lock_file.map_or(true, |ino| holds(pid, ino, true))
    });
}

#[cfg(not(target_os = "linux"))]
fn drop_released(_dir: &DirHandle, _inodes: &[(String, u64)], _found: &mut [Holder]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_match_what_format_prints() {
        for (n, width) in [(0, 1), (7, 1), (5, 9), (123_456_789, 9), (u64::MAX, 1)] {
            let mut out = Vec::new();
            push_decimal(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$}").into_bytes());
        }
    }

    #[test]
    fn lines_round_trip_and_cut_long_names() {
        let line = line(State::Waiting, "max-3", "db-00ff", Some("a b::c"));
        assert_eq!(line.len(), LINE);
        let e = Holder::parse(&line, "f", 0).unwrap();
        assert_eq!((e.state, e.pid), (State::Waiting, std::process::id()));
        assert_eq!((e.mode.as_str(), e.group.as_str()), ("max-3", "db-00ff"));
        assert_eq!(e.test, "a b::c");
        let long = "é".repeat(LINE);
        let line = super::line(State::Held, "exclusive", "g", Some(&long));
        assert_eq!((line.len(), line[LINE - 1]), (LINE, b'\n'));
        assert!(Holder::parse(&line, "f", 0).unwrap().test.starts_with("éé"));
    }

    #[test]
    fn only_record_names_match() {
        assert!(is_record_name("12-00000000deadbeef-0.rec"));
        for name in [
            "x.rec",
            "12-deadbeef-0.rec",
            "12-00000000deadbeef-0",
            "sweep.lock",
        ] {
            assert!(!is_record_name(name), "{name}");
        }
    }
}
