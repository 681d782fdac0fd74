//! The registry's slot files (see `registry.rs`): how they are named, opened, locked, and
//! what they hold.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::names::{self, Kind};
use crate::common::file_lock::{self, LockMode};
use crate::sys;

/// The suffix of a slot's file name, `<n>.lock`.
pub(crate) const SUFFIX: &str = ".lock";

/// The tag of the entry holding the owner's id.
const ID_TAG: u8 = b'i';
/// The tag of an entry naming a base directory.
const BASE_TAG: u8 = b'b';
/// The tag of an entry naming a base directory of socket directories.
const SOCKET_BASE_TAG: u8 = b's';
/// The tag of an entry naming a kept directory.
const KEPT_TAG: u8 = b'k';

/// The number of the slot named `name`, if it is a slot's name.
pub(crate) fn number(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The options slots are opened with: reading and writing (not appending, which on
/// Windows would not let the slot be emptied; see [`append`]).
pub(crate) fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    options
}

/// Appends `entries` to the slot `file`, which only its lock holder writes: after the end,
/// wherever earlier reads, writes or an emptying left the file's offset.
pub(crate) fn append(mut file: &File, entries: &[u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::End(0))?;
    file.write_all(entries)
}

/// Opens the slot at `path` and locks it if nobody holds it.
pub(crate) fn lock_if_free(path: &Path) -> Option<File> {
    let file = options().open(path).ok()?;
    match file_lock::try_lock(&file, LockMode::Exclusive) {
        Ok(true) => Some(file),
        _ => None,
    }
}

/// An entry of a slot: its tag and text, NUL-terminated (no path contains a NUL). A path
/// that cannot be stored (not Unicode, on Windows) gives no entry: a base is then not swept
/// after a crash, and a kept directory is in a base that is not.
fn entry(tag: u8, text: &Path) -> Vec<u8> {
    let Some(bytes) = sys::path_to_bytes(text) else {
        return Vec::new();
    };
    let mut entry = Vec::with_capacity(bytes.len() + 2);
    entry.push(tag);
    entry.extend_from_slice(&bytes);
    entry.push(0);
    entry
}

/// The entry of the owner's id.
pub(crate) fn id_entry(id: &str) -> Vec<u8> {
    entry(ID_TAG, Path::new(id))
}

/// The entry of a base directory of directories of `kind`.
pub(crate) fn base_entry(base: &Path, kind: Kind) -> Vec<u8> {
    match kind {
        Kind::Isolated => entry(BASE_TAG, base),
        Kind::Socket => entry(SOCKET_BASE_TAG, base),
    }
}

/// The entry of a kept directory's name.
pub(crate) fn kept_entry(name: &std::ffi::OsStr) -> Vec<u8> {
    entry(KEPT_TAG, Path::new(name))
}

/// What a slot's last owner recorded.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Recorded {
    pub(crate) id: Option<String>,
    /// Each base with the kind of directories made there.
    pub(crate) bases: Vec<(PathBuf, Kind)>,
    pub(crate) kept: Vec<OsString>,
}

/// Parses a slot's entries. An entry cut short by a crash (no NUL) was being written before
/// the `mkdir(2)` it announced, and is ignored; so are ids and bases that cannot be ours.
pub(crate) fn parse(bytes: &[u8]) -> Recorded {
    let mut recorded = Recorded::default();
    let mut entries = bytes.split(|&b| b == 0);
    // The last piece follows the last NUL: empty, or an entry cut short.
    entries.next_back();
    for entry in entries {
        let Some((&tag, text)) = entry.split_first() else {
            continue;
        };
        let Some(path) = sys::path_from_bytes(text.to_vec()) else {
            continue;
        };
        match tag {
            ID_TAG => {
                recorded.id = path
                    .to_str()
                    .filter(|id| names::is_id(id))
                    .map(str::to_owned);
            }
            BASE_TAG if path.is_absolute() => recorded.bases.push((path, Kind::Isolated)),
            SOCKET_BASE_TAG if path.is_absolute() => recorded.bases.push((path, Kind::Socket)),
            KEPT_TAG => recorded.kept.push(path.into_os_string()),
            _ => {}
        }
    }
    recorded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_back_and_cut_ones_are_ignored() {
        let id = names::random_id();
        let mut bytes = id_entry(&id);
        bytes.extend(base_entry(Path::new("/a"), Kind::Isolated));
        bytes.extend(base_entry(Path::new("/s"), Kind::Socket));
        bytes.extend(base_entry(Path::new("relative"), Kind::Isolated));
        bytes.extend(kept_entry(std::ffi::OsStr::new("name")));
        bytes.extend(b"b/cut");
        assert_eq!(
            parse(&bytes),
            Recorded {
                id: Some(id),
                bases: vec![
                    (PathBuf::from("/a"), Kind::Isolated),
                    (PathBuf::from("/s"), Kind::Socket)
                ],
                kept: vec![OsString::from("name")],
            }
        );
        assert_eq!(parse(b"inot-an-id\0").id, None);
    }

    #[test]
    fn slot_names() {
        assert_eq!(number("0.lock"), Some(0));
        assert_eq!(number("12.lock"), Some(12));
        for other in ["+1.lock", ".lock", "a.lock", "1.tmp", "99999999999.lock"] {
            assert_eq!(number(other), None, "{other}");
        }
    }
}
