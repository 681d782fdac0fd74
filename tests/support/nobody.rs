//! Playing another user in tests run as root: what a hostile user on a shared machine
//! could do to isofix's directories, and what its victim then sees.

#![allow(dead_code)] // Each test binary uses a different part.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
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

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Whether this test can play another user (root, with `setpriv`); prints why not.
pub fn can_play_another_user() -> bool {
    let root = is_root();
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !(root && setpriv) {
        println!(
            "skipped: playing uid {NOBODY} needs root and setpriv (root {root}, setpriv {setpriv})"
        );
    }
    root && setpriv
}

/// Squats `path` as root (this process) each way another user can — a directory of theirs
/// with mode `dir_mode`, then a symbolic link to `elsewhere` — and runs `victim` while each
/// squat is in place. Each squat is removed before the next, and before anything is
/// checked, so a failing check leaves nothing behind. Returns, with what `victim` gave,
/// the cause a refusal must name; `None` (said on stdout) if `path` exists already.
pub fn while_squatted<T>(
    path: &Path,
    dir_mode: u32,
    elsewhere: &Path,
    victim: impl Fn() -> T,
) -> Option<Vec<(&'static str, T)>> {
    if fs::symlink_metadata(path).is_ok() {
        println!("skipped: {} exists already", path.display());
        return None;
    }
    let mut outcomes = Vec::new();
    for cause in ["owned by uid 0", "symbolic link"] {
        if cause == "symbolic link" {
            symlink(elsewhere, path).unwrap();
        } else {
            fs::create_dir(path).unwrap();
            fs::set_permissions(path, fs::Permissions::from_mode(dir_mode)).unwrap();
        }
        let outcome = victim();
        match fs::symlink_metadata(path).unwrap().is_dir() {
            true => fs::remove_dir(path).unwrap(),
            false => fs::remove_file(path).unwrap(),
        }
        outcomes.push((cause, outcome));
    }
    Some(outcomes)
}

/// Asserts that `said`, a victim's `err <kind> <message>`, refuses `path` for `cause` with a
/// hint the victim can follow: move away by setting `var`, never remove what it cannot.
pub fn assert_refused(said: &str, path: &Path, cause: &str, var: &str) {
    assert!(said.starts_with("err PermissionDenied"), "{said}");
    for needle in [
        &path.display().to_string(),
        cause,
        "another user",
        &format!("set {var} to a private directory of yours"),
    ] {
        assert!(said.contains(needle), "{needle:?} not in {said}");
    }
    assert!(
        !said.contains("remove"),
        "a hint the victim cannot follow: {said}"
    );
}
