//! Diagnostics: who holds a group, and the settings that decide when a waiter speaks up.
//!
//! Records are information only; the locks themselves never depend on them. Every holder
//! writes one line into a slot of its process's record table (see [`super::records`]),
//! which costs a memory copy, and marks it free before letting go. Readers (a waiter past
//! its warning, a timeout's error message) scan the table files of the lock directory.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, ErrorKind, Read};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::held::Mode;
use super::name::GroupFiles;
use super::records::{self, FREE, HELD, SLOT_LEN};
use crate::common::error::error;
use crate::common::test_name;

/// Seconds a request waits before it says on stderr what it waits for (default 30).
pub(crate) const WARN_VAR: &str = "ISOFIX_WAIT_WARN_SECS";
/// Seconds after which every request without its own timeout fails (default: never).
pub(crate) const TIMEOUT_VAR: &str = "ISOFIX_LOCK_TIMEOUT_SECS";
const DEFAULT_WARN: Duration = Duration::from_secs(30);

/// The value of `var` when this process first asked: the settings are read once per
/// process, since reading the environment takes a process-wide lock.
fn env_once(
    var: &'static str,
    cell: &'static OnceLock<Option<OsString>>,
) -> Option<&'static OsStr> {
    cell.get_or_init(|| std::env::var_os(var).filter(|v| !v.is_empty()))
        .as_deref()
}

/// Reads a duration in seconds (fractions allowed) from `var` (read once per process);
/// unset or empty is `None`.
fn env_secs(
    var: &'static str,
    cell: &'static OnceLock<Option<OsString>>,
) -> io::Result<Option<Duration>> {
    let Some(raw) = env_once(var, cell) else {
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
    static RAW: OnceLock<Option<OsString>> = OnceLock::new();
    Ok(env_secs(WARN_VAR, &RAW)?.unwrap_or(DEFAULT_WARN))
}

/// The timeout of requests that set none: `ISOFIX_LOCK_TIMEOUT_SECS`, default none.
pub(crate) fn default_timeout() -> io::Result<Option<Duration>> {
    static RAW: OnceLock<Option<OsString>> = OnceLock::new();
    env_secs(TIMEOUT_VAR, &RAW)
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
    pub(crate) test: Option<Arc<str>>,
}

thread_local! {
    /// A thread's test never changes (libtest names the thread once, nextest sets its
    /// variables once per process), so it is looked up once per thread, off the
    /// acquisition path.
    static CURRENT: Holder = Holder {
        pid: pid(),
        test: test_name::current().map(Arc::from),
    };
}

impl Holder {
    /// The calling thread's test: helper threads that wait on its behalf have names of
    /// their own, so this is asked on the caller's thread.
    pub(crate) fn current() -> Self {
        CURRENT.with(Clone::clone)
    }

    /// One slot's line: `H pid=<pid> since=<unix s>.<ns> mode=<mode> group=<key> test=<name>`,
    /// padded with spaces to [`SLOT_LEN`] bytes and ending in `\n`. `mode` is `exclusive`,
    /// `shared` or `slot-<i>/<n>` (slot `i` of a group limited to `n`, from 1); the test
    /// name goes last because it may have spaces, and is cut to fit. Written by hand, not
    /// with `format!`, since it is on every acquisition's path.
    pub(crate) fn record(&self, mode: Mode, slot: Option<usize>, group: &str) -> [u8; SLOT_LEN] {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = Line::new();
        line.put(b" pid=");
        line.put_num(u64::from(self.pid), 0);
        line.put(b" since=");
        line.put_num(since.as_secs(), 0);
        line.put(b".");
        line.put_num(u64::from(since.subsec_nanos()), 9);
        line.put(b" mode=");
        match (mode, slot) {
            (Mode::Exclusive, _) => line.put(b"exclusive"),
            (Mode::Limited(n), Some(i)) => {
                line.put(b"slot-");
                line.put_num(i as u64 + 1, 0);
                line.put(b"/");
                line.put_num(n as u64, 0);
            }
            _ => line.put(b"shared"),
        }
        line.put(b" group=");
        line.put(group.as_bytes());
        line.put(b" test=");
        let test = self.test.as_deref().unwrap_or("-");
        let mut cut = test.len().min(line.room());
        while !test.is_char_boundary(cut) {
            cut -= 1;
        }
        line.put(&test.as_bytes()[..cut]);
        line.bytes
    }
}

/// A slot's line being written: starts with [`HELD`], ends with `\n`, spaces between.
struct Line {
    bytes: [u8; SLOT_LEN],
    at: usize,
}

impl Line {
    fn new() -> Self {
        let mut bytes = [b' '; SLOT_LEN];
        bytes[0] = HELD;
        bytes[SLOT_LEN - 1] = b'\n';
        Self { bytes, at: 1 }
    }

    /// Bytes left before the final `\n`.
    fn room(&self) -> usize {
        SLOT_LEN - 1 - self.at
    }

    /// Appends as much of `text` as fits.
    fn put(&mut self, text: &[u8]) {
        let n = text.len().min(self.room());
        self.bytes[self.at..self.at + n].copy_from_slice(&text[..n]);
        self.at += n;
    }

    /// Appends `n` in decimal, zero-padded to `width` digits.
    fn put_num(&mut self, mut n: u64, width: usize) {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        while n > 0 || start == digits.len() {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        start = start.min(digits.len().saturating_sub(width));
        self.put(&digits[start..]);
    }
}

/// A holder's record as read back.
#[derive(Debug)]
pub(crate) struct Record {
    pid: u32,
    since: Duration,
    mode: String,
    group: String,
    test: String,
}

impl Record {
    /// Parses one slot; `None` for a free or unreadable one.
    fn parse(slot: &[u8]) -> Option<Self> {
        let (&state, rest) = slot.split_first()?;
        if state != HELD {
            return None;
        }
        let line = std::str::from_utf8(rest).ok()?.trim();
        let mut parts = line.splitn(5, ' ');
        let pid = parts.next()?.strip_prefix("pid=")?.parse().ok()?;
        let (secs, nanos) = parts.next()?.strip_prefix("since=")?.split_once('.')?;
        let since = Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
        let mode = parts.next()?.strip_prefix("mode=")?.to_owned();
        let group = parts.next()?.strip_prefix("group=")?.to_owned();
        let test = parts.next()?.strip_prefix("test=")?.to_owned();
        Some(Self {
            pid,
            since,
            mode,
            group,
            test,
        })
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        write!(
            f,
            "pid {} (test {}, {}, for {:.1} s)",
            self.pid,
            self.test,
            self.mode,
            now.saturating_sub(self.since).as_secs_f64()
        )
    }
}

/// The live holders of a group, as their records tell; removes the record files of
/// processes that are gone on the way.
pub(crate) fn holders(files: &GroupFiles) -> Vec<Record> {
    let mut found = Vec::new();
    for mut file in records::live_files(&records::records_dir(files.lock_dir())) {
        let mut table = Vec::new();
        if file.read_to_end(&mut table).is_err() {
            continue;
        }
        found.extend(
            table
                .chunks(SLOT_LEN)
                .filter(|slot| slot.first() != Some(&FREE))
                .filter_map(Record::parse)
                .filter(|rec| rec.group == files.key_hex()),
        );
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
            test: Some(Arc::from("a b::c")),
        };
        let line = holder.record(Mode::Limited(3), Some(0), "00ff");
        let rec = Record::parse(&line).unwrap();
        assert_eq!((rec.pid, rec.mode.as_str()), (42, "slot-1/3"));
        assert_eq!((rec.group.as_str(), rec.test.as_str()), ("00ff", "a b::c"));
        let shown = rec.to_string();
        assert!(
            shown.starts_with("pid 42 (test a b::c, slot-1/3, for "),
            "{shown}"
        );
    }

    #[test]
    fn numbers_are_written_padded() {
        let mut line = Line::new();
        line.put_num(5, 9);
        line.put(b" ");
        line.put_num(0, 0);
        line.put(b" ");
        line.put_num(u64::MAX, 0);
        let text = std::str::from_utf8(&line.bytes[1..line.at]).unwrap();
        assert_eq!(text, format!("000000005 0 {}", u64::MAX));
    }

    #[test]
    fn long_test_names_are_cut_on_a_character_boundary() {
        let holder = Holder {
            pid: 7,
            test: Some(Arc::from("é".repeat(SLOT_LEN))),
        };
        let line = holder.record(Mode::Exclusive, None, "00ff");
        assert_eq!(line[SLOT_LEN - 1], b'\n');
        let rec = Record::parse(&line).unwrap();
        assert!(
            rec.test.starts_with("éé") && rec.test.len() < SLOT_LEN,
            "{}",
            rec.test
        );
    }
}
