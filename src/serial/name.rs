//! Group name -> lock file stem.
//!
//! Any text names a group, so the name is never used as a path: the stem is a readable
//! slug (for people looking at the lock directory) followed by a 128-bit FNV-1a hash of
//! the whole name, scope included (for uniqueness). FNV-1a is fixed by its specification,
//! unlike std's `DefaultHasher`, so every copy of isofix agrees on the file. Two distinct
//! names share a file only if their 128-bit hashes collide, which for the few thousand
//! groups a test suite names has a probability far below 2^-100.

use std::io::{self, ErrorKind};

use crate::common::error::error;
use crate::common::test_name::slug_into;

/// Longest slug kept in a stem; the hash makes it unique, the slug only readable.
const SLUG_MAX: usize = 40;

/// FNV-1a, 128-bit variant (offset basis and prime from the FNV specification).
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

/// The stem of `group` under `scope`: `<slug>-<32 hex digits>`. A scoped name hashes as
/// `<scope>` NUL `<group>`, which no unscoped name (nor another scope's) can equal.
pub(crate) fn stem(scope: Option<&str>, group: &str) -> io::Result<String> {
    if group.is_empty() {
        return Err(error(
            ErrorKind::InvalidInput,
            "acquire serial group \"\": the group name is empty",
            "name the resource the tests share, e.g. SerialGuard::lock(\"database\")",
        ));
    }
    // Built in place, without the formatting machinery: this is on every acquisition's path.
    let mut stem = String::with_capacity(SLUG_MAX + 33);
    let hash = match scope {
        None => {
            slug_into(group, SLUG_MAX, &mut stem);
            fnv1a_128(group.as_bytes())
        }
        Some(scope) => {
            let full = format!("{scope}\0{group}");
            slug_into(&full, SLUG_MAX, &mut stem);
            fnv1a_128(full.as_bytes())
        }
    };
    if stem.is_empty() {
        stem.push_str("group");
    }
    // `-` and what `{:032x}` prints.
    let mut hex = [b'-'; 33];
    for (i, digit) in hex[1..].iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(hash >> ((31 - i) * 4)) as usize & 0xf];
    }
    stem.push_str(std::str::from_utf8(&hex).expect("ASCII"));
    Ok(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_specification_vectors() {
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }

    #[test]
    fn stems_are_safe_and_distinct() {
        let names = ["ws", "WS", "w s", "../..", "a/b", "ünï", "x"];
        let mut seen = std::collections::HashSet::new();
        for name in names {
            for scope in [None, Some("p"), Some("q")] {
                let stem = stem(scope, name).unwrap();
                assert!(
                    stem.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{stem}"
                );
                assert!(seen.insert(stem));
            }
        }
        assert_eq!(stem(None, "").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(stem(None, &"y".repeat(10_000)).unwrap().len() < 80);
        assert_eq!(
            stem(None, "a").unwrap(),
            format!("a-{:032x}", fnv1a_128(b"a")),
            "the stem is a compatibility promise"
        );
    }
}
