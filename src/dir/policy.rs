//! `ISOFIX_KEEP`: which isolated directories outlive their guard, for inspection.

use std::ffi::OsStr;
use std::io::Write;
use std::sync::OnceLock;

/// The environment variable that chooses the [`KeepPolicy`].
pub(crate) const KEEP_VAR: &str = "ISOFIX_KEEP";

/// What happens to an isolated directory when its guard is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepPolicy {
    /// Removed (the default; also `ISOFIX_KEEP=never`).
    Never,
    /// Kept when dropped while the thread panics, which is how a test fails.
    Failed,
    /// Always kept.
    Always,
}

impl KeepPolicy {
    /// The policy of this process, read from `ISOFIX_KEEP` once: the variable is meant to
    /// be set for a whole run, and reading it once lets an unknown value be reported once.
    pub(crate) fn current() -> KeepPolicy {
        static POLICY: OnceLock<KeepPolicy> = OnceLock::new();
        *POLICY.get_or_init(|| {
            let value = std::env::var_os(KEEP_VAR);
            KeepPolicy::parse(value.as_deref()).unwrap_or_else(|shown| {
                // Written straight to stderr, ignoring failure: this runs inside `Drop`.
                let _ = writeln!(
                    std::io::stderr(),
                    "isofix: ignoring {KEEP_VAR}={shown}: accepted values are `never` \
                     (the default), `failed` and `always`; isolated directories are removed"
                );
                KeepPolicy::Never
            })
        })
    }

    /// Parses a value of `ISOFIX_KEEP` (unset or empty means the default), or returns the
    /// rejected value for the warning.
    fn parse(value: Option<&OsStr>) -> Result<KeepPolicy, String> {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(KeepPolicy::Never);
        };
        let text = value.to_string_lossy();
        let text = text.trim();
        if text.eq_ignore_ascii_case("never") {
            Ok(KeepPolicy::Never)
        } else if text.eq_ignore_ascii_case("failed") {
            Ok(KeepPolicy::Failed)
        } else if text.eq_ignore_ascii_case("always") {
            Ok(KeepPolicy::Always)
        } else {
            Err(value.to_string_lossy().into_owned())
        }
    }

    /// Why a directory dropped now (while `panicking` or not) is kept, if it is.
    pub(crate) fn keeps(self, panicking: bool) -> Option<&'static str> {
        match self {
            KeepPolicy::Always => Some("ISOFIX_KEEP=always"),
            KeepPolicy::Failed if panicking => Some("ISOFIX_KEEP=failed"),
            KeepPolicy::Failed | KeepPolicy::Never => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_values() {
        let parse = |v: &str| KeepPolicy::parse(Some(OsStr::new(v)));
        assert_eq!(KeepPolicy::parse(None), Ok(KeepPolicy::Never));
        assert_eq!(parse(""), Ok(KeepPolicy::Never));
        assert_eq!(parse("never"), Ok(KeepPolicy::Never));
        assert_eq!(parse("failed"), Ok(KeepPolicy::Failed));
        assert_eq!(parse(" Always "), Ok(KeepPolicy::Always));
        assert_eq!(parse("yes"), Err("yes".to_owned()));
    }

    #[test]
    fn failed_keeps_only_while_panicking() {
        assert_eq!(KeepPolicy::Never.keeps(true), None);
        assert_eq!(KeepPolicy::Failed.keeps(false), None);
        assert_eq!(KeepPolicy::Failed.keeps(true), Some("ISOFIX_KEEP=failed"));
        assert_eq!(KeepPolicy::Always.keeps(false), Some("ISOFIX_KEEP=always"));
    }
}
