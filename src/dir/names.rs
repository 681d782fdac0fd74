//! Isolated directories' names, `isofix-<test>-<id><n>`: the part of the test's name a
//! human recognises, the id of the process that made the directory (12 random base-32
//! digits, 60 bits) and a per-process counter (base 32). The id lets a sweep find a dead
//! process's directories by name alone; the counter makes names unique within a process
//! without more randomness.
//!
//! The private directory of an `EphemeralUnix` socket is named more tersely,
//! `u<id><n>`, since its whole path must fit in a socket address; it lives only in the
//! per-user state root, whose name already says isofix.

use std::sync::atomic::{AtomicU64, Ordering};

/// Every isolated directory's name starts with this.
pub(crate) const PREFIX: &str = "isofix-";

/// The longest name of an isolated directory, in bytes: with `/tmp` as the base, a file
/// name of 40 bytes inside still fits in a Unix socket's path on macOS (104 bytes with the
/// final NUL: 5 + 57 + 1 + 40 = 103), and one of 44 bytes on Linux (108).
pub(crate) const NAME_MAX: usize = 57;

/// The length of a process's id.
const ID_LEN: usize = 12;

/// The digits of ids and counters: lowercase, and no `i`, `l`, `o` or `u`, which read as
/// other digits or words.
const DIGITS: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The room left for the test's name: the prefix, a `-`, the id and a counter of up to 4
/// digits (a million directories) take the rest. Longer counters cut the name further.
pub(crate) const TEST_NAME_MAX: usize = NAME_MAX - PREFIX.len() - 1 - ID_LEN - 4;

/// A fresh random id.
pub(crate) fn random_id() -> String {
    let mut bits = crate::common::random::random_u64();
    (0..ID_LEN)
        .map(|_| {
            let digit = DIGITS[(bits & 31) as usize];
            bits >>= 5;
            char::from(digit)
        })
        .collect()
}

/// Whether `text` is an id that [`random_id`] could have made.
pub(crate) fn is_id(text: &str) -> bool {
    text.len() == ID_LEN && text.bytes().all(|b| DIGITS.contains(&b))
}

/// The two kinds of directories a process names with its id, which a sweep tells apart by
/// where the process recorded making them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `IsolatedDir`s: `isofix-<test>-<id><n>`, in any base.
    Isolated,
    /// Sockets' private directories: `u<id><n>`, in the state root.
    #[cfg_attr(not(unix), allow(dead_code))]
    Socket,
}

impl Kind {
    /// Whether `name` is that of a directory of this kind made by the process `id`.
    pub(crate) fn is_made_by(self, name: &str, id: &str) -> bool {
        match self {
            Kind::Isolated => is_made_by(name, id),
            Kind::Socket => is_socket_dir_made_by(name, id),
        }
    }
}

/// Every socket directory's name starts with this.
pub(crate) const SOCKET_PREFIX: &str = "u";

/// The longest name of a socket directory: the prefix, the id and a counter of up to 13
/// digits (all of a `u64`).
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) const SOCKET_NAME_MAX: usize = SOCKET_PREFIX.len() + ID_LEN + 13;

/// The next number of this process's counter.
pub(crate) fn next_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The name of directory number `n` of the process `id`, made for `test` (a slug of at
/// most [`TEST_NAME_MAX`] bytes, made of ASCII letters, digits, `-` and `_`). At most
/// [`NAME_MAX`] bytes.
pub(crate) fn dir_name(test: Option<&str>, id: &str, n: u64) -> String {
    let tail = id_and_number(id, n);
    let room = NAME_MAX - PREFIX.len() - 1 - tail.len();
    let test = test.map_or("", |test| {
        test.get(..test.len().min(room))
            .unwrap_or("")
            .trim_end_matches(['_', '-'])
    });
    if test.is_empty() {
        format!("{PREFIX}{tail}")
    } else {
        format!("{PREFIX}{test}-{tail}")
    }
}

/// The name of socket directory number `n` of the process `id`: `u<id><n>`, at most
/// [`SOCKET_NAME_MAX`] bytes.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn socket_dir_name(id: &str, n: u64) -> String {
    format!("{SOCKET_PREFIX}{}", id_and_number(id, n))
}

/// `<id><n>`, `n` in base 32.
fn id_and_number(id: &str, n: u64) -> String {
    let mut tail = id.to_owned();
    let mut digits = Vec::new();
    let mut rest = n;
    loop {
        digits.push(DIGITS[(rest % 32) as usize]);
        rest /= 32;
        if rest == 0 {
            break;
        }
    }
    tail.extend(digits.iter().rev().map(|&d| char::from(d)));
    tail
}

/// Whether `name` is that of a directory made by the process `id`.
pub(crate) fn is_made_by(name: &str, id: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    is_id_and_number(rest.rsplit_once('-').map_or(rest, |(_, tail)| tail), id)
}

/// Whether `name` is that of a socket directory made by the process `id`.
pub(crate) fn is_socket_dir_made_by(name: &str, id: &str) -> bool {
    name.strip_prefix(SOCKET_PREFIX)
        .is_some_and(|tail| is_id_and_number(tail, id))
}

/// Whether `tail` is `<id><n>`.
fn is_id_and_number(tail: &str, id: &str) -> bool {
    tail.strip_prefix(id)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| DIGITS.contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_say_who_made_them() {
        let id = random_id();
        assert!(is_id(&id), "{id}");
        let long = "a".repeat(TEST_NAME_MAX);
        for (test, n) in [(None, 0), (Some("t"), 31), (Some(long.as_str()), u64::MAX)] {
            let name = dir_name(test, &id, n);
            assert!(name.len() <= NAME_MAX, "{name} is {} bytes", name.len());
            assert!(is_made_by(&name, &id), "{name}");
            assert!(!is_made_by(&name, &random_id()), "{name}");
        }
        assert_eq!(
            dir_name(Some("t"), "0123456789ab", 33),
            "isofix-t-0123456789ab11"
        );
        assert_eq!(dir_name(None, "0123456789ab", 0), "isofix-0123456789ab0");
        assert_eq!(
            dir_name(Some(long.as_str()), &id, 1_000_000).len(),
            NAME_MAX,
            "a counter of 4 digits leaves the whole test name"
        );
    }

    #[test]
    fn only_our_names_match() {
        let id = "0123456789ab";
        assert!(is_made_by("isofix-x-y-0123456789ab7", id));
        for other in [
            "isofix-0123456789ab",
            "isofix-t-0123456789ab-",
            "isofix-t-0123456789abI",
            "isofix-t-1123456789ab0",
            "tmp-t-0123456789ab0",
            "isofix-t-0123456789ab0.link",
        ] {
            assert!(!is_made_by(other, id), "{other}");
        }
    }

    #[test]
    fn socket_dir_names_are_bounded_and_their_own_kind() {
        let id = "0123456789ab";
        assert_eq!(socket_dir_name(id, 33), "u0123456789ab11");
        assert_eq!(socket_dir_name(id, u64::MAX).len(), SOCKET_NAME_MAX);
        let name = socket_dir_name(id, 0);
        assert!(is_socket_dir_made_by(&name, id), "{name}");
        assert!(!is_made_by(&name, id), "{name} is no isolated directory");
        assert!(!is_socket_dir_made_by(&dir_name(None, id, 0), id));
        for other in [
            "u0123456789ab",
            "u1123456789ab0",
            "u0123456789ab0/",
            "v0123456789ab0",
        ] {
            assert!(!is_socket_dir_made_by(other, id), "{other}");
        }
    }

    #[test]
    fn ids_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| random_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
