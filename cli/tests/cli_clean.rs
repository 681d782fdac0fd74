//! `cargo isofix clean` end to end: a child that made an isolated directory and was killed
//! with `SIGKILL` left it behind; `clean --dry-run` lists it, `clean` removes it, and a live
//! child's directory stays until that child is gone too. The private directory of a
//! killed child's Unix socket goes the same way.

#![cfg(unix)]

mod support;

use std::path::Path;

use support::{cli, play_role, private_dir, stdout, Child};

const TEST: &str = "removes_the_directories_of_killed_processes_only";

/// Runs `cargo isofix <args>` with `env`, which must succeed; returns its stdout.
fn clean(args: &[&str], env: &[(&str, &Path)]) -> String {
    let out = cli(args, env);
    assert!(out.status.success(), "{out:?}");
    stdout(&out)
}

#[test]
fn removes_the_directories_of_killed_processes_only() {
    if play_role() {
        return;
    }
    let root = private_dir("clean");
    let (tmp, base) = (root.join("tmp"), root.join("base"));
    for dir in [&tmp, &base] {
        std::fs::create_dir(dir).unwrap();
    }
    // The registry of owners lives under TMPDIR: the test's own.
    let locks = tmp.join("locks");
    let env = [
        ("TMPDIR", tmp.as_path()),
        ("ISOFIX_TMPDIR", base.as_path()),
        ("ISOFIX_LOCK_DIR", locks.as_path()),
    ];
    let clean = |args: &[&str]| clean(args, &env);

    // The live child first: a process's first isolated directory sweeps the dead ones'.
    let mut live = Child::spawn(TEST, "dir", &env);
    let live_dir = live.ready();
    let mut dead = Child::spawn(TEST, "dir", &env);
    let dead_dir = dead.ready();
    dead.kill();
    for dir in [&dead_dir, &live_dir] {
        assert!(Path::new(dir).is_dir(), "{dir}");
        assert!(dir.starts_with(base.to_str().unwrap()), "{dir}");
    }

    let listed = clean(&["clean", "--dry-run"]);
    assert!(
        listed.contains(&format!("would remove {dead_dir}\n")),
        "{listed}"
    );
    assert!(!listed.contains(&live_dir), "{listed}");
    assert!(
        listed.contains("1 stale isolated directory would be removed"),
        "{listed}"
    );
    assert!(Path::new(&dead_dir).is_dir(), "a dry run removes nothing");

    let removed = clean(&["clean"]);
    assert!(
        removed.contains(&format!("removed {dead_dir}\n")),
        "{removed}"
    );
    assert!(!removed.contains(&live_dir), "{removed}");
    assert!(!Path::new(&dead_dir).exists());
    assert!(
        Path::new(&live_dir).is_dir(),
        "a live process's directory stays"
    );
    assert!(
        clean(&["clean"]).contains("No stale isolated directory removed"),
        "nothing is left to remove"
    );

    live.kill();
    let removed = clean(&["clean"]);
    assert!(
        removed.contains(&format!("removed {live_dir}\n")),
        "{removed}"
    );
    assert!(!Path::new(&live_dir).exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn removes_the_socket_directories_of_killed_processes() {
    if play_role() {
        return;
    }
    let root = private_dir("clean-sockets");
    // The state root of sockets' directories, and the registry, live under TMPDIR.
    let tmp = root.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let locks = tmp.join("locks");
    let env = [
        ("TMPDIR", tmp.as_path()),
        ("ISOFIX_LOCK_DIR", locks.as_path()),
    ];
    let clean = |args: &[&str]| clean(args, &env);
    let mut dead = Child::spawn(
        "removes_the_socket_directories_of_killed_processes",
        "socket",
        &env,
    );
    let socket = dead.ready();
    dead.kill();
    let dir = Path::new(&socket).parent().unwrap().display().to_string();
    assert!(Path::new(&dir).is_dir(), "SIGKILL leaves {dir} behind");

    let listed = clean(&["clean", "--dry-run"]);
    assert!(
        listed.contains(&format!("would remove {dir}\n")),
        "{listed}"
    );
    let removed = clean(&["clean"]);
    assert!(removed.contains(&format!("removed {dir}\n")), "{removed}");
    assert!(!Path::new(&dir).exists());
    let _ = std::fs::remove_dir_all(&root);
}
