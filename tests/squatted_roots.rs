//! Per-user roots that another user made first: `/dev/shm/isofix-<uid>` (the registry of
//! isolated directories' owners) and `<temp dir>/isofix-<uid>` (the state root of Unix
//! sockets' directories, and of the registry when `TMPDIR` is set). The victim, played by
//! an unused uid of the test's own while root squats, is refused with a hint it can
//! follow, and told on stderr that crash cleanup is off; it never uses the squatted
//! directory, nor falls back to another registry beside it. The lock root's squats are in
//! `serial_hostile.rs`.
#![cfg(unix)]

#[path = "support/child.rs"]
mod child;
#[path = "support/nobody.rs"]
mod nobody;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use isofix::{EphemeralUnix, IsolatedDir};
use nobody::{can_play_another_user, setpriv_as, unused_uid, while_squatted};

/// Plays the victim when this binary is started as a child; does nothing in the test run.
/// Says how creating an isolated directory, listing stale ones (which reads the registry)
/// and binding a Unix socket went.
#[test]
fn child_role() {
    if child::role().is_none() {
        return;
    }
    let said = |what: &str, result: std::io::Result<()>| match result {
        Ok(()) => child::say(&format!("{what} ok")),
        Err(e) => child::say(&format!("{what} err {:?} {e}", e.kind())),
    };
    said("dir", IsolatedDir::new().map(drop));
    said("stale", IsolatedDir::list_stale().map(drop));
    if std::env::var_os("TMPDIR").is_some() {
        said("socket", EphemeralUnix::bind().map(drop));
    }
}

/// Runs the victim as [`unused_uid`], with `TMPDIR` set to `tmpdir` or unset; returns what it
/// said, one line per operation, and its stderr.
fn victim(tmpdir: Option<&Path>) -> (Vec<String>, String) {
    let mut command = child::command("child_role", "victim");
    command.env_remove("ISOFIX_TMPDIR");
    match tmpdir {
        Some(dir) => command.env("TMPDIR", dir),
        None => command.env_remove("TMPDIR"),
    };
    let out = child::wrapped(setpriv_as(unused_uid()), &command).finish();
    out.assert_success();
    (out.said().map(str::to_owned).collect(), out.stderr)
}

/// Asserts that the victim's outcome of `what` is a refusal of `root` for `cause`, with a
/// hint it can follow.
fn assert_refused(said: &str, what: &str, root: &Path, cause: &str) {
    let said = said.strip_prefix(what).unwrap_or(said).trim_start();
    nobody::assert_refused(said, root, cause, "TMPDIR");
}

/// Asserts that the victim said once on stderr that crash cleanup is off, and why.
fn assert_warned(stderr: &str, root: &Path) {
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("cannot record isolated directories"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&root.display().to_string()),
        "{}",
        warnings[0]
    );
}

/// Another user's `/dev/shm/isofix-<victim>`, a directory or a symbolic link: isolated
/// directories still work, the registry is refused, and nothing is recorded elsewhere.
#[cfg(target_os = "linux")]
#[test]
fn a_squatted_registry_root_is_refused_with_a_hint_the_victim_can_follow() {
    child_role();
    if !can_play_another_user() {
        return;
    }
    let root = PathBuf::from(format!("/dev/shm/isofix-{}", unused_uid()));
    let root = root.as_path();
    if !Path::new("/dev/shm").is_dir() {
        return println!("skipped: no /dev/shm on this machine");
    }
    let elsewhere = IsolatedDir::new().unwrap();
    let Some(outcomes) = while_squatted(root, 0o755, elsewhere.path(), || {
        let (said, stderr) = victim(None);
        let made_there = fs::read_dir(elsewhere.path()).unwrap().count();
        (said, stderr, made_there)
    }) else {
        return;
    };
    for (cause, (said, stderr, made_there)) in outcomes {
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(said[0], "dir ok", "isolated directories still work");
        assert_refused(&said[1], "stale", root, cause);
        assert_warned(&stderr, root);
        assert_eq!(made_there, 0, "nothing was made in the squatted place");
    }
}

/// Another user's `<TMPDIR>/isofix-<victim>`: sockets and the registry are refused, isolated
/// directories (made in `TMPDIR` itself) still work.
#[test]
fn a_squatted_state_root_is_refused_with_a_hint_the_victim_can_follow() {
    child_role();
    if !can_play_another_user() {
        return;
    }
    // A shared temp dir of the test's own, open to all like /tmp.
    let shared = IsolatedDir::new().unwrap();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let root = shared.path().join(format!("isofix-{}", unused_uid()));
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();

    let (said, stderr) = victim(Some(shared.path()));

    assert_eq!(said.len(), 3, "{said:?}");
    assert_eq!(said[0], "dir ok", "isolated directories still work");
    assert_refused(&said[1], "stale", &root, "owned by uid 0");
    assert_refused(&said[2], "socket", &root, "owned by uid 0");
    assert_warned(&stderr, &root);
}
