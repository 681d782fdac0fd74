//! Group name -> lock file name.
//!
//! Any text names a group, so the name is never used as a path: the file name is a readable
//! slug of it (for people looking at the lock directory) followed by a 128-bit FNV-1a hash
//! of the whole name (for uniqueness). FNV-1a is fixed by its specification, unlike std's
//! `DefaultHasher`, so processes built by different toolchains agree on the file. Two
//! distinct names share a file only if their 128-bit hashes collide, which for the few
//! thousand groups a test suite names has a probability far below 2^-100.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::records::Records;
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

/// FNV-1a, 64-bit, as a [`Hasher`] for the per-thread maps: their keys are short, local
/// and not chosen by an adversary, so SipHash's protection is not worth its cost here.
#[derive(Default)]
pub(crate) struct Fnv64(u64);

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let start = if self.0 == 0 { OFFSET } else { self.0 };
        self.0 = bytes
            .iter()
            .fold(start, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    }

    // Keys made of numbers are hashes already (see `GroupFiles::key`): one multiply mixes
    // them in, instead of one per byte.
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64 ^ (n >> 64) as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A map hashed with [`Fnv64`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv64>>;

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

/// Which file of a group, as a pool key: the lock, the gate, or slot `i` (`2 + i`).
pub(crate) type FileKey = (u128, usize);

/// The files of one group in one lock directory, with the paths used on every acquisition
/// computed once (see [`GroupFiles::get`]).
#[derive(Debug)]
pub(crate) struct GroupFiles {
    /// The group's name as the caller gave it.
    pub(crate) group: String,
    /// `<lock dir>/<stem>`; every file of the group is this plus an extension.
    stem: PathBuf,
    lock_dir: PathBuf,
    main: PathBuf,
    gate: PathBuf,
    /// FNV-1a 128 of the lock file's path: names this group in this directory inside the
    /// process (pools, nesting registry) without hashing paths each time.
    key: u128,
    /// `key` in hex, as holders' records name the group.
    key_hex: String,
    /// This process's record table in the lock directory.
    records: &'static Records,
}

/// Entries kept per thread before the cache starts over.
const CACHE_MAX: usize = 256;

thread_local! {
    static CACHE: RefCell<FastMap<String, Vec<Arc<GroupFiles>>>> =
        RefCell::new(HashMap::default());
}

impl GroupFiles {
    fn new(dir: &Path, group: &str) -> io::Result<Self> {
        let stem = dir.join(file_stem(group)?);
        let main = with_ext(&stem, ".lock");
        let key = fnv1a_128(main.as_os_str().as_encoded_bytes());
        Ok(Self {
            group: group.to_owned(),
            gate: with_ext(&stem, ".gate"),
            main,
            stem,
            lock_dir: dir.to_owned(),
            key,
            key_hex: format!("{key:032x}"),
            records: Records::for_dir(dir),
        })
    }

    /// The files of `group` in `dir`, from a per-thread cache.
    pub(crate) fn get(dir: &Path, group: &str) -> io::Result<Arc<Self>> {
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(found) = cache
                .get(group)
                // Compared as bytes: `Path`'s `==` parses both into components.
                .and_then(|list| {
                    list.iter()
                        .find(|f| f.lock_dir.as_os_str() == dir.as_os_str())
                })
            {
                return Ok(Arc::clone(found));
            }
            let made = Arc::new(Self::new(dir, group)?);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache
                .entry(group.to_owned())
                .or_default()
                .push(Arc::clone(&made));
            Ok(made)
        })
    }

    /// The lock proper: exclusive holders lock it exclusively, all others shared.
    pub(crate) fn main(&self) -> &Path {
        &self.main
    }

    /// The queue: every request that has to wait holds it while it waits, so that a waiting
    /// exclusive request keeps new shared holders out.
    pub(crate) fn gate(&self) -> &Path {
        &self.gate
    }

    /// Slot `i` of a group limited to N holders.
    pub(crate) fn slot(&self, i: usize) -> PathBuf {
        with_ext(&self.stem, &format!(".slot{i}"))
    }

    /// The lock directory.
    pub(crate) fn lock_dir(&self) -> &Path {
        &self.lock_dir
    }

    /// How holders' records name the group: its key in hex.
    pub(crate) fn key_hex(&self) -> &str {
        &self.key_hex
    }

    /// This process's record table for the group's lock directory.
    pub(crate) fn records(&self) -> &'static Records {
        self.records
    }

    pub(crate) fn main_key(&self) -> FileKey {
        (self.key, 0)
    }

    pub(crate) fn gate_key(&self) -> FileKey {
        (self.key, 1)
    }

    pub(crate) fn slot_key(&self, i: usize) -> FileKey {
        (self.key, 2 + i)
    }

    /// Names the group in this directory within the process.
    pub(crate) fn key(&self) -> u128 {
        self.key
    }
}

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut path = stem.as_os_str().to_owned();
    path.push(ext);
    PathBuf::from(path)
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
