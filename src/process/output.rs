//! The captured output of a child: the tail of a log file, for errors and failing tests.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How much of the end of a log file is read for a tail.
const TAIL_BYTES: u64 = 8 * 1024;

/// The last `lines` lines of the file at `path` (from its last 8 KiB), lossily decoded;
/// empty if it cannot be read.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let mut bytes = Vec::new();
    let read = File::open(path).and_then(|mut file| {
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
        file.take(TAIL_BYTES).read_to_end(&mut bytes)
    });
    if read.is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `tail` of stdout and stderr as one block for a message, each under a heading; "(no
/// output)" when both are empty.
pub(crate) fn both_tails(stdout: &Path, stderr: &Path, lines: usize) -> String {
    let mut block = String::new();
    for (name, path) in [("stdout", stdout), ("stderr", stderr)] {
        let text = tail(path, lines);
        if !text.is_empty() {
            block.push_str(&format!(
                "\n--- {name} ({}), last lines:\n{text}",
                path.display()
            ));
        }
    }
    if block.is_empty() {
        block.push_str(" (no output)");
    }
    block
}
