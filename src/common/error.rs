//! Errors that say what failed, on what, and what to do about it.
//!
//! Every isofix error is a plain [`std::io::Error`] so that `?` works in tests returning
//! `io::Result<()>`, `Result<(), Box<dyn Error>>` or `anyhow::Result<()>`. The original
//! [`ErrorKind`] is kept so callers can still match on it, and an OS error stays reachable
//! as the error's [`source()`](std::error::Error::source); the message reads
//! `isofix: <operation> <target>: <cause>; hint: <hint>`.

use std::fmt::{self, Display};
use std::io::{self, ErrorKind};

/// Builds an error detected by isofix itself (no underlying OS error).
pub(crate) fn error(kind: ErrorKind, what: impl Display, hint: impl Display) -> io::Error {
    io::Error::new(kind, format!("isofix: {what}; hint: {hint}"))
}

/// An error's message with the error it wraps as its source.
#[derive(Debug)]
struct Wrapped {
    message: String,
    source: io::Error,
}

impl Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Adds the operation, its target and a hint to an OS error, which stays the source.
pub(crate) fn wrap(err: io::Error, what: impl Display, hint: impl Display) -> io::Error {
    let hint = hint.to_string();
    let message = if hint.is_empty() {
        format!("isofix: {what}: {err}")
    } else {
        format!("isofix: {what}: {err}; hint: {hint}")
    };
    io::Error::new(
        err.kind(),
        Wrapped {
            message,
            source: err,
        },
    )
}

/// `result.context(|| format!("bind {addr}"), "hint")`: [`wrap`] for results.
pub(crate) trait Context<T> {
    fn context<W: Display>(self, what: impl FnOnce() -> W, hint: impl Display) -> io::Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn context<W: Display>(self, what: impl FnOnce() -> W, hint: impl Display) -> io::Result<T> {
        self.map_err(|e| wrap(e, what(), hint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn wrap_keeps_kind_and_names_everything() {
        let e = wrap(
            io::Error::from(ErrorKind::AddrInUse),
            "bind TCP listener on 127.0.0.1:80",
            "pick port 0",
        );
        assert_eq!(e.kind(), ErrorKind::AddrInUse);
        let msg = e.to_string();
        assert!(
            msg.starts_with("isofix: bind TCP listener on 127.0.0.1:80: "),
            "{msg}"
        );
        assert!(msg.ends_with("; hint: pick port 0"), "{msg}");
    }

    #[test]
    fn wrap_keeps_the_os_error_as_source() {
        let e = wrap(io::Error::from_raw_os_error(2), "open /x", "create it");
        let source = e.source().expect("a source");
        let os = source.downcast_ref::<io::Error>().expect("an io::Error");
        assert_eq!(os.raw_os_error(), Some(2));
    }

    #[test]
    fn empty_hint_is_left_out() {
        let e = wrap(io::Error::from(ErrorKind::NotFound), "open /x", "");
        assert!(!e.to_string().contains("hint"), "{e}");
    }
}
