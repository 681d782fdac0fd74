//! The environment variables that tune every acquisition, read and checked once per
//! process, on its first acquisition: a typo fails the first test that takes a group, not
//! a random one that happens to wait.

use std::ffi::{OsStr, OsString};
use std::io::{self, ErrorKind};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::error::error;

/// Moves the lock directory.
pub(crate) const DIR_VAR: &str = "ISOFIX_LOCK_DIR";
/// Seconds a request waits before it says on stderr what it waits for (default 30).
pub(crate) const WARN_VAR: &str = "ISOFIX_WAIT_WARN_SECS";
/// Seconds after which every request without its own timeout fails (default: never).
pub(crate) const TIMEOUT_VAR: &str = "ISOFIX_LOCK_TIMEOUT_SECS";
/// A prefix for every group name, so that projects of one user stop sharing groups.
pub(crate) const SCOPE_VAR: &str = "ISOFIX_LOCK_SCOPE";

const DEFAULT_WARN: Duration = Duration::from_secs(30);
/// Longest scope accepted: it is part of every group name.
const SCOPE_MAX: usize = 128;

/// The checked settings of this process.
#[derive(Debug)]
pub(crate) struct Settings {
    /// `ISOFIX_LOCK_DIR`, if set.
    pub(crate) lock_dir: Option<PathBuf>,
    pub(crate) warn_after: Duration,
    pub(crate) timeout: Option<Duration>,
    /// `ISOFIX_LOCK_SCOPE`, if set.
    pub(crate) scope: Option<String>,
}

/// The settings, or the error of the first bad one (reported on every call).
pub(crate) fn get() -> io::Result<&'static Settings> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    match SETTINGS.get_or_init(read) {
        Ok(settings) => Ok(settings),
        Err(msg) => Err(io::Error::new(ErrorKind::InvalidInput, msg.clone())),
    }
}

fn var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

fn read() -> Result<Settings, String> {
    let invalid = |name: &str, raw: &OsStr, why: &str, hint: &str| {
        error(
            ErrorKind::InvalidInput,
            format_args!("read {name}={raw:?}: {why}"),
            hint,
        )
        .to_string()
    };
    let secs = |name: &str| -> Result<Option<Duration>, String> {
        let Some(raw) = var(name) else {
            return Ok(None);
        };
        raw.to_str()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .and_then(duration_from_secs)
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    name,
                    &raw,
                    "not a number of seconds",
                    &format!("set {name} to e.g. 30 or 0.5, or unset it"),
                )
            })
    };
    let scope = match var(SCOPE_VAR) {
        None => None,
        Some(raw) => match raw.to_str() {
            Some(s) if s.len() <= SCOPE_MAX && !s.chars().any(char::is_control) => {
                Some(s.to_owned())
            }
            _ => {
                return Err(invalid(
                    SCOPE_VAR,
                    &raw,
                    &format!("not a printable UTF-8 text of at most {SCOPE_MAX} bytes"),
                    &format!("set {SCOPE_VAR} to a short project name, e.g. my-service"),
                ))
            }
        },
    };
    let lock_dir = var(DIR_VAR).map(PathBuf::from);
    if let Some(dir) = lock_dir.as_ref().filter(|d| d.is_relative()) {
        // Relative to what? Each crate of a workspace runs its tests in its own directory,
        // and a process that changes directory would lose the one it used.
        return Err(invalid(
            DIR_VAR,
            dir.as_os_str(),
            "a relative path, which would mean another directory in every crate of a \
             workspace",
            &format!(
                "set {DIR_VAR} to an absolute path; in [env] of .cargo/config.toml, write \
                 {DIR_VAR} = {{ value = \"{}\", relative = true }}",
                dir.display()
            ),
        ));
    }
    Ok(Settings {
        lock_dir,
        warn_after: secs(WARN_VAR)?.unwrap_or(DEFAULT_WARN),
        timeout: secs(TIMEOUT_VAR)?,
        scope,
    })
}

/// `secs` as a duration (fractions allowed); a value past `Duration`'s range is the
/// largest one, which means "never" to every deadline.
fn duration_from_secs(secs: f64) -> Option<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    if secs >= u64::MAX as f64 {
        return Some(Duration::MAX);
    }
    Some(Duration::from_secs_f64(secs))
}
