//! The sweep: a process's first `IsolatedDir` removes the directories of processes that
//! died without unwinding, and never those of live ones.
//!
//! Each test gives its children a private `TMPDIR` as well as `ISOFIX_TMPDIR`, so that
//! they share a registry (under the system temp dir) with nobody else: no other test's
//! sweep can remove a directory before this test looks at it.

mod isolated_dir_support;

use std::ffi::OsStr;
use std::path::PathBuf;

use isofix::IsolatedDir;
use isolated_dir_support::{read_path, role, run_role, spawn, Child, Reported};

/// Runs a role when this binary is started as a child by one of the tests below; does
/// nothing in the test run itself.
#[test]
fn child_role() {
    if let Some(role) = role() {
        run_role(&role);
    }
}

/// A temp dir and registry of its own for a test's children.
struct World {
    scratch: IsolatedDir,
}

impl World {
    fn new() -> World {
        World {
            scratch: IsolatedDir::new().unwrap(),
        }
    }

    fn spawn(&self, role: &str) -> Child {
        let dir = self.scratch.path().as_os_str();
        let tmpdir = if cfg!(windows) { "TMP" } else { "TMPDIR" };
        let envs: [(&str, &OsStr); 2] = [("ISOFIX_TMPDIR", dir), (tmpdir, dir)];
        spawn(role, &envs)
    }

    /// Starts a child that creates a directory and holds it; returns both.
    fn hold(&self, role: &str) -> (Child, PathBuf) {
        let mut child = self.spawn(role);
        let path = read_path(&mut child);
        assert!(path.is_dir());
        (child, path)
    }

    /// Runs a child that creates (and so sweeps) and drops a directory.
    fn sweep(&self) {
        let out = self.spawn("create").finish();
        out.assert_success();
        assert!(!out.path().exists(), "{out:?}");
    }
}

#[test]
fn a_killed_process_directory_goes_with_the_next_process_and_a_live_one_stays() {
    let world = World::new();
    let (dead, dead_dir) = world.hold("hold");
    std::fs::write(dead_dir.join("file"), "x").unwrap();
    let (live, live_dir) = world.hold("hold");
    dead.kill();
    assert!(dead_dir.is_dir(), "SIGKILL must leave the directory behind");

    world.sweep();

    assert!(
        !dead_dir.exists(),
        "the dead process's directory was not swept"
    );
    assert!(live_dir.is_dir(), "a live process's directory was swept");
    live.finish().assert_success();
    assert!(!live_dir.exists());
}

#[test]
fn a_kept_directory_survives_its_process_and_the_sweep() {
    let world = World::new();
    let (child, kept) = world.hold("hold-kept");
    child.kill();
    world.sweep();
    assert!(kept.is_dir());
}

#[test]
fn concurrent_sweepers_remove_every_dead_directory() {
    let world = World::new();
    let held: Vec<(Child, PathBuf)> = (0..3).map(|_| world.hold("hold")).collect();
    let mut dead = Vec::new();
    for (child, path) in held {
        child.kill();
        dead.push(path);
    }
    let sweepers: Vec<Child> = (0..4).map(|_| world.spawn("create")).collect();
    for sweeper in sweepers {
        sweeper.finish().assert_success();
    }
    for path in dead {
        assert!(!path.exists(), "{} was not swept", path.display());
    }
}

/// The registry's slots: `<TMPDIR>/isofix-<uid>/dir-owners/<n>.lock`.
#[cfg(unix)]
fn slots(world: &World) -> Vec<std::fs::DirEntry> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let owners = world
        .scratch
        .join(format!("isofix-{uid}"))
        .join("dir-owners");
    std::fs::read_dir(&owners)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_str().unwrap().ends_with(".lock"))
        .collect()
}

/// How many of the registry's slots are not empty, that is, name directories for a sweep
/// to remove.
#[cfg(unix)]
fn slots_to_sweep(world: &World) -> usize {
    slots(world)
        .iter()
        .filter(|e| e.metadata().unwrap().len() > 0)
        .count()
}

#[cfg(unix)]
#[test]
fn processes_that_exit_normally_leave_nothing_to_sweep() {
    let world = World::new();
    let (child, _) = world.hold("hold");
    child.kill();
    assert_eq!(
        slots_to_sweep(&world),
        1,
        "the killed process's slot names its directory"
    );
    for _ in 0..3 {
        world.sweep();
    }
    assert_eq!(slots_to_sweep(&world), 0);
    assert_eq!(
        slots(&world).len(),
        1,
        "one process at a time reuses one slot"
    );
}

#[cfg(unix)]
#[test]
fn a_directory_leaked_by_a_normal_exit_is_swept_by_the_next_process() {
    let world = World::new();
    let out = world.spawn("leak").finish();
    out.assert_success();
    let leaked = out.path();
    assert!(leaked.join("file").exists(), "{out:?}");
    assert_eq!(slots_to_sweep(&world), 1, "{out:?}");

    world.sweep();

    assert!(!leaked.exists());
    assert_eq!(slots_to_sweep(&world), 0);
}

/// Without `TMPDIR`, the registry lives in memory (`/dev/shm`) on Linux, shared with every
/// other process of this user: a killed process's directory is still swept, and the live
/// processes around it keep theirs.
#[cfg(target_os = "linux")]
#[test]
fn without_tmpdir_the_registry_in_memory_sweeps_too() {
    if !std::path::Path::new("/dev/shm").is_dir() {
        eprintln!("skipped: no /dev/shm on this machine");
        return;
    }
    let scratch = IsolatedDir::new().unwrap();
    let spawn_here = |role: &str| {
        let mut command = isolated_dir_support::command(role, &[("ISOFIX_TMPDIR", scratch.path())]);
        command.env_remove("TMPDIR");
        Child::spawn(&mut command)
    };
    let mut dead = spawn_here("hold");
    let dead_dir = read_path(&mut dead);
    let mut live = spawn_here("hold");
    let live_dir = read_path(&mut live);
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let owners = PathBuf::from(format!("/dev/shm/isofix-{uid}/dir-owners"));
    let id = |dir: &std::path::Path| {
        let name = dir.file_name().unwrap().to_str().unwrap();
        name.rsplit('-').next().unwrap()[..12].to_owned()
    };
    let recorded = std::fs::read_dir(&owners)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .any(|bytes| String::from_utf8_lossy(&bytes).contains(&id(&dead_dir)));
    assert!(
        recorded,
        "no slot in {} names {}",
        owners.display(),
        dead_dir.display()
    );
    dead.kill();

    let sweeper = spawn_here("create").finish();
    sweeper.assert_success();

    assert!(
        !dead_dir.exists(),
        "the dead process's directory was not swept"
    );
    assert!(live_dir.is_dir(), "a live process's directory was swept");
    live.finish().assert_success();
}
