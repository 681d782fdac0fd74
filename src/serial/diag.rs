//! Diagnostics: who holds a group, and the settings that decide when a waiter speaks up.
//!
//! Records are information only; the locks themselves never depend on them. An exclusive
//! holder writes its record into the lock file it holds (one `pwrite`, nobody else can be
//! writing). Shared and limited holders may be many, so each keeps its record in a file of
//! its own under `<group>.holders/`, locked for as long as it holds the group: a record
//! file that can be locked belongs to a holder that is gone (released, or killed), and is
//! skipped and removed by whoever reads it.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::name::GroupFiles;
use crate::common::error::error;
use crate::common::file_lock::{self, LockMode};
use crate::common::test_name;
use crate::sys;

/// Seconds a request waits before it says on stderr what it waits for (default 30).
pub(crate) const WARN_VAR: &str = "ISOFIX_WAIT_WARN_SECS";
/// Seconds after which every request without its own timeout fails (default: never).
pub(crate) const TIMEOUT_VAR: &str = "ISOFIX_LOCK_TIMEOUT_SECS";
const DEFAULT_WARN: Duration = Duration::from_secs(30);

/// Reads a duration in seconds (fractions allowed) from `var`; unset or empty is `None`.
pub(crate) fn env_secs(var: &str) -> io::Result<Option<Duration>> {
    let Some(raw) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    raw.to_str()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .map(Some)
        .ok_or_else(|| {
            error(
                ErrorKind::InvalidInput,
                format_args!("read {var}={raw:?}: not a number of seconds"),
                format_args!("set {var} to e.g. 30 or 0.5, or unset it"),
            )
        })
}

/// How long a waiter stays quiet: `ISOFIX_WAIT_WARN_SECS`, default 30 s.
pub(crate) fn warn_after() -> io::Result<Duration> {
    Ok(env_secs(WARN_VAR)?.unwrap_or(DEFAULT_WARN))
}

/// This process's id (`getpid(2)`, asked once: it is on every acquisition's path).
pub(crate) fn pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Who is asking for (or holding) a group: this process and the test it runs.
#[derive(Clone, Debug)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) test: Option<String>,
}

impl Holder {
    /// The calling thread's test, found now: helper threads that wait on its behalf have
    /// names of their own.
    pub(crate) fn current() -> Self {
        Self {
            pid: pid(),
            test: test_name::current(),
        }
    }

    /// One line: `pid=<pid> since=<unix ms> mode=<mode> test=<name>`; `mode` has no
    /// spaces, and the test name goes last because it may contain some.
    pub(crate) fn record(&self, mode: &str) -> String {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!(
            "pid={} since={since} mode={mode} test={}\n",
            self.pid,
            self.test.as_deref().unwrap_or("-")
        )
    }
}

/// A holder's record as read back.
#[derive(Debug)]
pub(crate) struct Record {
    pid: u32,
    since_ms: u128,
    mode: String,
    test: String,
}

impl Record {
    fn parse(text: &str) -> Option<Self> {
        let line = text.lines().next()?;
        let mut parts = line.splitn(4, ' ');
        let pid = parts.next()?.strip_prefix("pid=")?.parse().ok()?;
        let since_ms = parts.next()?.strip_prefix("since=")?.parse().ok()?;
        let mode = parts.next()?.strip_prefix("mode=")?.to_owned();
        let test = parts.next()?.strip_prefix("test=")?.to_owned();
        Some(Self {
            pid,
            since_ms,
            mode,
            test,
        })
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let held = Duration::from_millis(now.saturating_sub(self.since_ms) as u64);
        write!(
            f,
            "pid {} (test {}, {}, for {:.1} s)",
            self.pid,
            self.test,
            self.mode,
            held.as_secs_f64()
        )
    }
}

/// A shared or limited holder's record file, locked while it holds the group and removed
/// when it lets go.
#[derive(Debug)]
pub(crate) struct RecordFile {
    path: PathBuf,
    _file: File,
}

static RECORD_SEQ: AtomicU64 = AtomicU64::new(0);

impl RecordFile {
    /// Writes `record` under a temporary name, locks it, then renames it into place, so a
    /// reader never sees an unlocked record of a live holder.
    pub(crate) fn create(files: &GroupFiles, record: &str) -> io::Result<Self> {
        let dir = files.holders();
        match sys::create_private_dir(&dir) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let name = format!("{}-{}", pid(), RECORD_SEQ.fetch_add(1, Ordering::Relaxed));
        let tmp = dir.join(format!("{name}.tmp"));
        let path = dir.join(name);
        let file = File::create(&tmp)?;
        file_lock::lock(&file, LockMode::Exclusive)?;
        sys::write_at(&file, record.as_bytes(), 0)?;
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Self { path, _file: file })
    }
}

impl Drop for RecordFile {
    fn drop(&mut self) {
        // Removed while still locked: no reader sees it unlocked and takes it for stale.
        let _ = fs::remove_file(&self.path);
    }
}

fn read_record(file: &mut File) -> Option<Record> {
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    Record::parse(&text)
}

/// The live holders of a group, as far as their records tell.
pub(crate) fn holders(files: &GroupFiles) -> Vec<Record> {
    let mut found = Vec::new();
    // The exclusive holder, if the lock file cannot be shared right now.
    if let Ok(mut main) = File::open(files.main()) {
        if matches!(file_lock::try_lock(&main, LockMode::Shared), Ok(false)) {
            found.extend(read_record(&mut main));
        }
    }
    if let Ok(entries) = fs::read_dir(files.holders()) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some() {
                continue; // being created
            }
            let Ok(mut file) = File::open(&path) else {
                continue;
            };
            match file_lock::try_lock(&file, LockMode::Shared) {
                Ok(false) => found.extend(read_record(&mut file)),
                // Lockable: its holder let go or died; the record is stale.
                Ok(true) => {
                    let _ = fs::remove_file(&path);
                }
                Err(_) => {}
            }
        }
    }
    found
}

/// `held by pid 12 (test a, exclusive, for 3.0 s)`, or what to make of finding no record.
pub(crate) fn describe_holders(files: &GroupFiles) -> String {
    let list = holders(files);
    if list.is_empty() {
        return "no holder recorded (it may have just let go, or this request is queued \
                behind another waiting one)"
            .to_owned();
    }
    let list: Vec<String> = list.iter().map(Record::to_string).collect();
    format!("held by {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let holder = Holder {
            pid: 42,
            test: Some("a b::c".to_owned()),
        };
        let rec = Record::parse(&holder.record("shared")).unwrap();
        assert_eq!((rec.pid, rec.mode.as_str()), (42, "shared"));
        assert_eq!(rec.test, "a b::c");
        let shown = rec.to_string();
        assert!(
            shown.starts_with("pid 42 (test a b::c, shared, for "),
            "{shown}"
        );
    }
}
