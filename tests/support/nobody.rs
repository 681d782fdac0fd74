//! Playing another user in tests run as root: what a hostile user on a shared machine
//! could do to isofix's directories, and what its victim then sees.

#![allow(dead_code)] // Each test binary uses a different part.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

/// The other user.
pub const NOBODY: u32 = 65534;

/// `setpriv` arguments that run a command as uid and gid 65534.
pub const AS_NOBODY: [&str; 5] = ["--reuid", "65534", "--regid", "65534", "--clear-groups"];

/// A user id of this process's own, with no account and so no files: a victim whose
/// per-user directories no other test, nor another run of this one, touches.
pub fn unused_uid() -> u32 {
    2_000_000_000 + std::process::id()
}

/// `setpriv` running a command as `uid` (and as the group of the same number).
pub fn setpriv_as(uid: u32) -> Command {
    let id = uid.to_string();
    let mut setpriv = Command::new("setpriv");
    setpriv.args(["--reuid", &id, "--regid", &id, "--clear-groups"]);
    setpriv
}

/// Whether this test can play another user (root, with `setpriv`); prints why not.
pub fn can_play_another_user() -> bool {
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !(root && setpriv) {
        println!(
            "skipped: playing uid {NOBODY} needs root and setpriv (root {root}, setpriv {setpriv})"
        );
    }
    root && setpriv
}
