//! Root-cause classes of flaky tests, told from a failure's message, each with its isofix
//! fix. The words looked for are the OS's error texts (as Rust prints them, with the
//! `os error N` that follows) and the runners' timeout reports.

use serde::Serialize;

/// Why a test flakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    PortCollision,
    FilesystemRace,
    SharedServiceRace,
    LeakOrExhaustion,
    HangOrTimeout,
    Other,
}

impl Class {
    /// The class's name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Class::PortCollision => "port collision",
            Class::FilesystemRace => "filesystem race",
            Class::SharedServiceRace => "shared-service race",
            Class::LeakOrExhaustion => "leak / exhaustion",
            Class::HangOrTimeout => "hang / timeout",
            Class::Other => "other",
        }
    }

    /// The one-line isofix change that removes the cause.
    pub fn fix(self) -> &'static str {
        match self {
            Class::PortCollision => {
                "bind with `let srv = isofix::EphemeralTcp::bind()?;` and pass `srv.port()` on: the port stays bound, nobody else can take it"
            }
            Class::FilesystemRace => {
                "work in `let dir = isofix::IsolatedDir::new()?;` instead of a shared path; if the file must be shared, `#[isofix::serial_group(\"that-file\")]` on every test that touches it"
            }
            Class::SharedServiceRace => {
                "`#[isofix::serial_group(\"service\")]` on every test that uses the shared service or state (it holds across threads and nextest's processes)"
            }
            Class::LeakOrExhaustion => {
                "hold sockets and directories in isofix guards, which close on drop; bound what each test opens"
            }
            Class::HangOrTimeout => {
                "give waits a bound: `SerialGuard::group(..).timeout(..)` or ISOFIX_LOCK_TIMEOUT_SECS; its error names the group and who holds it"
            }
            Class::Other => "no known pattern: read the first failure and rerun with more load",
        }
    }
}

/// The class a failure's `text` (its message and output) points to. `timed_out` is the
/// runner's verdict that the test did not finish.
pub fn classify(text: &str, timed_out: bool) -> Class {
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if timed_out || has(&["timed out after", "has waited", "TIMEOUT"]) {
        return Class::HangOrTimeout;
    }
    if has(&[
        "Too many open files",
        "os error 24",
        "Bad file descriptor",
        "os error 9)",
        "Cannot assign requested address",
        "os error 99",
        "EMFILE",
        "EBADF",
        "EADDRNOTAVAIL",
    ]) {
        return Class::LeakOrExhaustion;
    }
    if has(&[
        "Address already in use",
        "os error 98",
        "EADDRINUSE",
        "Connection refused",
        "os error 111",
        "Connection reset",
        "os error 104",
    ]) {
        return Class::PortCollision;
    }
    if has(&[
        "No such file or directory",
        "os error 2)",
        "File exists",
        "os error 17",
        "Directory not empty",
        "os error 39",
        "ENOENT",
        "EEXIST",
        "ENOTEMPTY",
    ]) {
        return Class::FilesystemRace;
    }
    let mismatch = has(&["left == right", "left != right", "assertion failed"]);
    if mismatch && mentions_a_path(text) {
        return Class::FilesystemRace;
    }
    if has(&[
        "duplicate key",
        "unique constraint",
        "UNIQUE constraint",
        "already exists",
        "deadlock detected",
        "database is locked",
    ]) || mismatch
    {
        return Class::SharedServiceRace;
    }
    Class::Other
}

/// Whether `text` names a file: an absolute path or a temp-dir path.
fn mentions_a_path(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '`' || c == '\'')
        .any(|word| {
            (word.starts_with('/') && word[1..].contains('/'))
                || word.contains("/tmp/")
                || word.contains("temp_dir")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_pick_their_class() {
        let cases = [
            ("Address already in use (os error 98)", Class::PortCollision),
            ("Connection refused (os error 111)", Class::PortCollision),
            (
                "No such file or directory (os error 2)",
                Class::FilesystemRace,
            ),
            ("Directory not empty (os error 39)", Class::FilesystemRace),
            ("File exists (os error 17)", Class::FilesystemRace),
            ("Too many open files (os error 24)", Class::LeakOrExhaustion),
            (
                "write: Bad file descriptor (os error 9)",
                Class::LeakOrExhaustion,
            ),
            (
                "Cannot assign requested address (os error 99)",
                Class::LeakOrExhaustion,
            ),
            (
                "acquire serial group \"db\" exclusively: timed out after 60.0 s",
                Class::HangOrTimeout,
            ),
            (
                "UNIQUE constraint failed: users.email",
                Class::SharedServiceRace,
            ),
            ("attempt to subtract with overflow", Class::Other),
        ];
        for (text, class) in cases {
            assert_eq!(classify(text, false), class, "{text}");
        }
        assert_eq!(classify("anything", true), Class::HangOrTimeout);
    }

    #[test]
    fn content_mismatches_on_a_path_are_filesystem_races() {
        let on_path = "assertion `left == right` failed: content of /tmp/shared.txt\n  left: \"a\"\n right: \"b\"";
        assert_eq!(classify(on_path, false), Class::FilesystemRace);
        let on_state = "assertion `left == right` failed\n  left: 3\n right: 4";
        assert_eq!(classify(on_state, false), Class::SharedServiceRace);
    }
}
