//! Hostile lock directories: a directory swapped by another user after it was checked,
//! planted entries among the holder records, a squatted default location. Nothing isofix
//! creates, opens or deletes may end up outside the lock directory.
#![cfg(unix)]

mod serial_support;

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use isofix::{IsolatedDir, SerialGuard};
use serial_support::nobody::{self, can_play_another_user, while_squatted, NOBODY};
use serial_support::{child_role, spawn, unique, SAFETY};

/// Runs `script` with `sh` as uid 65534.
fn as_nobody(script: &str) {
    let status = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
}

/// A directory in the shared temp dir that uid 65534 owns, removed at the end.
struct TheirDir(PathBuf);

impl TheirDir {
    fn new() -> TheirDir {
        let path = std::env::temp_dir().join(format!("isofix-hostile-{}", uuid::Uuid::new_v4()));
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        // `std::os::unix::fs::chown` is above the MSRV (1.73).
        let owner = format!("{NOBODY}:{NOBODY}");
        let chowned = std::process::Command::new("chown")
            .arg(owner)
            .arg(&path)
            .status();
        assert!(chowned.unwrap().success(), "chown {}", path.display());
        TheirDir(path)
    }
}

impl Drop for TheirDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `<scratch>/locks` and its `v1/`, private; and the path of `v1/holders`, not made.
fn private_layout(scratch: &IsolatedDir) -> (PathBuf, PathBuf) {
    let locks = scratch.path().join("locks");
    fs::create_dir_all(locks.join("v1")).unwrap();
    for dir in [&locks, &locks.join("v1")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let holders = locks.join("v1").join("holders");
    (locks, holders)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_lock_dir_swapped_by_another_user_is_not_followed() {
    child_role();
    if !can_play_another_user() {
        return;
    }
    // The lock directory is ours, its parent another user's: they can swap it.
    let theirs = TheirDir::new();
    let locks = theirs.0.join("locks");
    let group = unique("swapped");
    drop(
        SerialGuard::group(&group)
            .lock_dir(&locks)
            .acquire()
            .unwrap(),
    );
    // A directory only root may write to, which the swap points at.
    let scratch = IsolatedDir::new().unwrap();
    let victim = scratch.path().join("root-only");
    fs::create_dir(&victim).unwrap();
    as_nobody(&format!(
        "mv '{0}/locks' '{0}/old' && ln -s '{1}' '{0}/locks'",
        theirs.0.display(),
        victim.display()
    ));
    // This process goes on through the handle it checked, in the directory now at `old`;
    // or, had it reopened the path, it would refuse the link.
    match SerialGuard::group(&group).lock_dir(&locks).acquire() {
        Ok(guard) => drop(guard),
        Err(err) => assert!(err.to_string().contains("symbolic link"), "{err}"),
    }
    // A process that never used it refuses the symbolic link.
    let mut child = spawn(
        "a_lock_dir_swapped_by_another_user_is_not_followed",
        &["try", &group],
        &[("ISOFIX_LOCK_DIR", locks.to_str().unwrap())],
    );
    let said = child.read_marked();
    assert!(said.starts_with("err PermissionDenied"), "{said}");
    assert!(said.contains("symbolic link"), "{said}");
    child.finish().assert_success();
    assert!(
        entries(&victim).is_empty(),
        "created through the swap: {:?}",
        entries(&victim)
    );
}

#[test]
fn a_holders_dir_swapped_for_a_symlink_is_refused() {
    let scratch = IsolatedDir::new().unwrap();
    let (locks, holders) = private_layout(&scratch);
    let victim = scratch.path().join("victim");
    fs::create_dir(&victim).unwrap();
    symlink(&victim, holders).unwrap();
    let err = SerialGuard::group(unique("holders-link"))
        .lock_dir(&locks)
        .timeout(SAFETY)
        .acquire()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&locks.display().to_string()), "{msg}");
    assert!(msg.starts_with("isofix: "), "{msg}");
    assert!(msg.contains("is a symbolic link"), "{msg}");
    assert!(entries(&victim).is_empty(), "{:?}", entries(&victim));
}

#[test]
fn a_holders_dir_open_to_others_is_refused_with_a_full_message() {
    let scratch = IsolatedDir::new().unwrap();
    let (locks, holders) = private_layout(&scratch);
    fs::create_dir(&holders).unwrap();
    fs::set_permissions(&holders, fs::Permissions::from_mode(0o755)).unwrap();
    let group = unique("holders-open");
    let err = SerialGuard::group(&group)
        .lock_dir(&locks)
        .timeout(SAFETY)
        .acquire()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let msg = err.to_string();
    assert!(msg.starts_with("isofix: "), "{msg}");
    let path = holders.display().to_string();
    for needle in [path.as_str(), "0755", "chmod 700"] {
        assert!(msg.contains(needle), "{needle} not in {msg}");
    }
}

#[test]
fn a_lock_file_planted_as_a_symlink_is_named_as_such() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let locks = scratch.path().join("locks");
    let group = unique("planted");
    drop(
        SerialGuard::group(&group)
            .lock_dir(&locks)
            .acquire()
            .unwrap(),
    );
    let victim = scratch.path().join("victim");
    fs::write(&victim, "keep").unwrap();
    let lock = entries(&locks.join("v1"))
        .into_iter()
        .find(|n| n.ends_with(".lock"))
        .unwrap();
    fs::remove_file(locks.join("v1").join(&lock)).unwrap();
    symlink(&victim, locks.join("v1").join(&lock)).unwrap();
    // A fresh process, which has no open file of the group to reuse.
    let said = serial_support::said(
        "a_lock_file_planted_as_a_symlink_is_named_as_such",
        &["try", &group],
        &[("ISOFIX_LOCK_DIR", locks.to_str().unwrap())],
    );
    assert!(said.starts_with("err "), "{said}");
    assert!(said.contains("is a symbolic link"), "{said}");
    assert!(!said.contains("writable"), "{said}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
}

#[test]
fn the_sweep_removes_only_stale_record_files_of_this_user() {
    let scratch = IsolatedDir::new().unwrap();
    let (locks, holders) = private_layout(&scratch);
    fs::create_dir(&holders).unwrap();
    fs::set_permissions(&holders, fs::Permissions::from_mode(0o700)).unwrap();
    let outside = scratch.path().join("precious");
    fs::write(&outside, "keep").unwrap();
    // A dead process's file has lines; an empty new one may be one that its process has
    // just created and is about to lock.
    let stale = "5-0000000000000005-0.rec";
    fs::write(holders.join(stale), "- pid=5\n").unwrap();
    fs::write(holders.join("7-0000000000000007-0.rec"), "").unwrap();
    fs::write(holders.join("notes.txt"), "").unwrap();
    fs::write(holders.join("1-0000000000000001-0"), "").unwrap();
    symlink(&outside, holders.join("2-0000000000000002-0.rec")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(holders.join("3-0000000000000003-0.rec"))
        .status()
        .unwrap();
    assert!(fifo.success());
    fs::create_dir(holders.join("4-0000000000000004-0.rec")).unwrap();
    let mut kept = vec![
        "1-0000000000000001-0",
        "2-0000000000000002-0.rec",
        "3-0000000000000003-0.rec",
        "4-0000000000000004-0.rec",
        "7-0000000000000007-0.rec",
        "notes.txt",
    ];
    let theirs = "6-0000000000000006-0.rec";
    fs::write(holders.join(theirs), "").unwrap();
    if std::os::unix::fs::chown(holders.join(theirs), Some(NOBODY), None).is_ok() {
        kept.push(theirs);
    } else {
        println!("not checked: a record file of another user (changing owners needs root)");
        fs::remove_file(holders.join(theirs)).unwrap();
    }
    let guard = SerialGuard::group(unique("sweep"))
        .lock_dir(&locks)
        .timeout(SAFETY)
        .acquire()
        .unwrap();
    let left = entries(&holders);
    let ours = format!("{}-", std::process::id());
    let mut others: Vec<&str> = left
        .iter()
        .map(String::as_str)
        .filter(|n| !n.starts_with(&ours))
        .collect();
    others.sort();
    kept.sort();
    assert_eq!(others, kept, "{left:?}");
    assert!(
        !left.iter().any(|n| n == stale),
        "the stale record is still there"
    );
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    drop(guard);
}

#[test]
fn refusals_name_the_mode_with_its_special_bits() {
    let scratch = IsolatedDir::new().unwrap();
    let sticky = scratch.path().join("sticky");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    let err = SerialGuard::group(unique("sticky"))
        .lock_dir(&sticky)
        .acquire()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("mode is 1777"), "{err}");
    assert!(err.to_string().contains("chmod 700"), "{err}");
}

/// The default location is the same whatever `TMPDIR` or `XDG_RUNTIME_DIR` say.
#[test]
fn the_default_lock_dir_ignores_the_environment() {
    child_role();
    let test = "the_default_lock_dir_ignores_the_environment";
    let group = unique("default-dir");
    let scratch = IsolatedDir::new().unwrap();
    let other = scratch.path().to_str().unwrap();
    let mut command = serial_support::command(test, &["hold", &group, "ex"]);
    command.env_remove("ISOFIX_LOCK_DIR").env("TMPDIR", other);
    let mut holder = serial_support::Child::spawn(&mut command);
    assert!(holder.read_marked().starts_with("held"));
    let mut command = serial_support::command(test, &["try-for", &group, "0"]);
    command
        .env_remove("ISOFIX_LOCK_DIR")
        .env_remove("TMPDIR")
        .env("XDG_RUNTIME_DIR", other);
    let mut prober = serial_support::Child::spawn(&mut command);
    let said = prober.read_marked();
    assert!(said.starts_with("err TimedOut"), "{said}");
    prober.finish().assert_success();
    holder.finish().assert_success();
}

#[test]
fn a_peer_stuck_holding_a_lock_in_holders_does_not_stall_acquisition() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let locks = scratch.path().join("locks");
    // This process makes the layout, holders/ included.
    drop(
        SerialGuard::group(unique("stuck-peer"))
            .lock_dir(&locks)
            .acquire()
            .unwrap(),
    );
    // A peer (another copy of isofix, a tool) stops while holding a lock file of
    // holders/ exclusively: here, the one record creation used to wait for.
    let mut peer = Command::new("flock")
        .arg(locks.join("v1/holders/sweep.lock"))
        .args(["sh", "-c", "echo locked; cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("flock(1) of util-linux");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(peer.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    // A fresh process takes a free group with a timeout: it must neither wait for the
    // peer nor pass its timeout (the child reports "hung" after a minute).
    let group = unique("free");
    let mut child = spawn(
        "a_peer_stuck_holding_a_lock_in_holders_does_not_stall_acquisition",
        &["try-for", &group, "500"],
        &[("ISOFIX_LOCK_DIR", locks.to_str().unwrap())],
    );
    let said = child.read_marked();
    drop(peer.stdin.take());
    peer.wait().unwrap();
    assert_eq!(said, "ok");
    child.finish().assert_success();
}

/// The default root `/tmp/isofix-65534` made by another user (root here), closed (0700)
/// or as a symbolic link: uid 65534 gets a hint it can follow.
#[test]
fn a_squatted_default_root_gets_a_hint_the_victim_can_follow() {
    child_role();
    if !can_play_another_user() {
        return;
    }
    let test = "a_squatted_default_root_gets_a_hint_the_victim_can_follow";
    let root = Path::new("/tmp/isofix-65534");
    let elsewhere = IsolatedDir::new().unwrap();
    let Some(outcomes) = while_squatted(root, 0o700, elsewhere.path(), || {
        let mut child = serial_support::command(test, &["try", &unique("squatted")]);
        child.env_remove("ISOFIX_LOCK_DIR");
        let mut setpriv = Command::new("setpriv");
        setpriv.args(serial_support::AS_NOBODY);
        serial_support::wrapped(setpriv, &child).read_marked()
    }) else {
        return;
    };
    for (cause, said) in outcomes {
        nobody::assert_refused(&said, root, cause, "ISOFIX_LOCK_DIR");
    }
}
