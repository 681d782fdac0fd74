//! Group name -> lock file name.
//!
//! Any text names a group, so the name is never used as a path: the file name is a readable
//! slug of it (for people looking at the lock directory) followed by a 128-bit FNV-1a hash
//! of the whole name (for uniqueness). FNV-1a is fixed by its specification, unlike std's
//! `DefaultHasher`, so processes built by different toolchains agree on the file. Two
//! distinct names share a file only if their 128-bit hashes collide, which for the few
//! thousand groups a test suite names has a probability far below 2^-100.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use crate::common::error::error;
use crate::common::test_name::slug;

/// Longest slug kept in a file name; the hash makes it unique, the slug only readable.
const SLUG_MAX: usize = 40;

/// FNV-1a, 128-bit variant (offset basis and prime from the FNV specification).
pub(crate) fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

/// The file stem of `group` inside a lock directory: `<slug>-<32 hex digits>`.
pub(crate) fn file_stem(group: &str) -> io::Result<String> {
    if group.is_empty() {
        return Err(error(
            ErrorKind::InvalidInput,
            "acquire serial group \"\": the group name is empty",
            "name the resource the tests share, e.g. SerialGuard::lock(\"database\")",
        ));
    }
    let mut stem = slug(group, SLUG_MAX);
    if stem.is_empty() {
        stem.push_str("group");
    }
    Ok(format!("{stem}-{:032x}", fnv1a_128(group.as_bytes())))
}

/// The files of one group in one lock directory.
#[derive(Clone, Debug)]
pub(crate) struct GroupFiles {
    /// The group's name as the caller gave it.
    pub(crate) group: String,
    /// `<lock dir>/<stem>`; every file of the group is this plus an extension.
    stem: PathBuf,
}

impl GroupFiles {
    pub(crate) fn new(dir: &Path, group: &str) -> io::Result<Self> {
        Ok(Self {
            group: group.to_owned(),
            stem: dir.join(file_stem(group)?),
        })
    }

    fn with_ext(&self, ext: &str) -> PathBuf {
        let mut path = self.stem.clone().into_os_string();
        path.push(ext);
        PathBuf::from(path)
    }

    /// The lock proper: exclusive holders lock it exclusively, all others shared.
    pub(crate) fn main(&self) -> PathBuf {
        self.with_ext(".lock")
    }

    /// The queue: every request that has to wait holds it while it waits, so that a waiting
    /// exclusive request keeps new shared holders out.
    pub(crate) fn gate(&self) -> PathBuf {
        self.with_ext(".gate")
    }

    /// Slot `i` of a group limited to N holders.
    pub(crate) fn slot(&self, i: usize) -> PathBuf {
        self.with_ext(&format!(".slot{i}"))
    }

    /// Where shared and limited holders leave their diagnostic records.
    pub(crate) fn holders(&self) -> PathBuf {
        self.with_ext(".holders")
    }
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
        let names = ["ws", "WS", "w s", "../..", "a/b", "ünï", "", "x"];
        let mut seen = std::collections::HashSet::new();
        for name in names.iter().filter(|n| !n.is_empty()) {
            let stem = file_stem(name).unwrap();
            assert!(
                stem.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{stem}"
            );
            assert!(seen.insert(stem));
        }
        assert_eq!(file_stem("").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(file_stem(&"y".repeat(10_000)).unwrap().len() < 80);
    }
}
