//! A lock directory removed (or removed and made again) while the process runs: the process
//! notices, and fails its next request there instead of starting a second lock space beside
//! the locks still held in the removed one. A lock file removed alone is opened afresh.

mod serial_support;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use isofix::{IsolatedDir, SerialGuard};
use serial_support::{child_role, spawn, unique, SAFETY};

fn take(group: &str, dir: &Path) -> std::io::Result<SerialGuard> {
    SerialGuard::group(group)
        .lock_dir(dir)
        .timeout(SAFETY)
        .acquire()
}

/// A child process of `test` holding `group` exclusively in `dir`, and the pid it said.
fn holder_in(test: &str, group: &str, dir: &Path) -> (serial_support::Child, u32) {
    let env = [("ISOFIX_LOCK_DIR", dir.to_str().unwrap())];
    let mut holder = spawn(test, &["hold", group, "ex"], &env);
    let said = holder.read_marked();
    let pid = said.strip_prefix("held ").and_then(|p| p.parse().ok());
    (
        holder,
        pid.unwrap_or_else(|| panic!("the child said {said:?}")),
    )
}

fn assert_refused(err: std::io::Error, dir: &Path, how: &str) {
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(how), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("cargo clean"), "{msg}");
}

#[test]
fn a_removed_lock_dir_fails_later_requests() {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("removed-dir");
    let held = take(&group, &dir).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    // Another group, and the held one from another thread: both would have started a new
    // lock space; the held group would then have had two holders.
    assert_refused(take(&unique("other"), &dir).unwrap_err(), &dir, "removed");
    let (g, d) = (group.clone(), dir.clone());
    let err = std::thread::spawn(move || take(&g, &d).map(drop))
        .join()
        .unwrap()
        .unwrap_err();
    assert_refused(err, &dir, "removed");
    assert!(!dir.exists(), "the lock directory was made again");
    drop(held);
}

#[test]
fn a_lock_dir_made_again_fails_later_requests() {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("replaced-dir");
    drop(take(&group, &dir).unwrap());
    fs::remove_dir_all(&dir).unwrap();
    // A fresh, private directory with the same layout at the same path.
    drop(take(&group, &scratch.path().join("fresh")).unwrap());
    fs::rename(scratch.path().join("fresh"), &dir).unwrap();
    // "removed" through the handle this process keeps, "replaced" once it opens the path
    // again (when other tests' lock directories pushed it out of its cache).
    let err = take(&group, &dir).unwrap_err();
    let how = match err.to_string().contains("replaced") {
        true => "replaced by another directory",
        false => "removed",
    };
    assert_refused(err, &dir, how);
}

/// A temp-file cleaner may delete a lock file that this process keeps open for its next
/// acquisition. Locking that orphan would exclude nobody who opens the name afresh.
#[test]
fn a_lock_file_removed_alone_is_opened_afresh() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("file-removed");
    // Three holders at once: three descriptors of the lock file stay open in this process
    // for the next acquisitions.
    let shared = |_| {
        SerialGuard::group(&group)
            .shared()
            .lock_dir(&dir)
            .acquire()
            .unwrap()
    };
    drop((0..3).map(shared).collect::<Vec<_>>());
    let lock_files: Vec<_> = fs::read_dir(dir.join("v1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
        .collect();
    assert_eq!(lock_files.len(), 1, "{lock_files:?}");
    fs::remove_file(&lock_files[0]).unwrap();
    let (holder, _) = holder_in("a_lock_file_removed_alone_is_opened_afresh", &group, &dir);
    // Before, this took the group at once on the deleted file, beside the child.
    let err = SerialGuard::group(&group)
        .lock_dir(&dir)
        .timeout(Duration::ZERO)
        .acquire()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    holder.finish().assert_success();
}

/// The same for the slot files of a limited group: a slot file removed alone while this
/// process kept it open must not let this process in beside the holder of the new one.
#[test]
fn a_slot_file_removed_alone_is_opened_afresh() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("slot-removed");
    let one = |timeout| {
        SerialGuard::group(&group)
            .max_holders(1)
            .lock_dir(&dir)
            .timeout(timeout)
            .acquire()
    };
    drop(one(SAFETY).unwrap());
    let slots: Vec<_> = fs::read_dir(dir.join("v1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slot0"))
        .collect();
    assert_eq!(slots.len(), 1, "{slots:?}");
    fs::remove_file(&slots[0]).unwrap();
    let env = [("ISOFIX_LOCK_DIR", dir.to_str().unwrap())];
    let mut holder = spawn(
        "a_slot_file_removed_alone_is_opened_afresh",
        &["hold", &group, "max1"],
        &env,
    );
    holder.read_marked();
    let err = one(Duration::ZERO).map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    holder.finish().assert_success();
}

#[test]
fn removal_between_two_processes_is_refused() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("removed-procs");
    // This process uses the directory, then another holds the group in it.
    drop(take(&group, &dir).unwrap());
    let (holder, _) = holder_in("removal_between_two_processes_is_refused", &group, &dir);
    let removed = std::process::Command::new("rm")
        .arg("-rf")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(removed.success());
    // Before, this process made the directory again and got the group at once, while
    // the child still held it.
    assert_refused(take(&group, &dir).unwrap_err(), &dir, "removed");
    holder.finish().assert_success();
}

/// A request already waiting in the lock directory when it is removed must not get the
/// group when the old holder lets go: a newcomer holds it in the new directory by then.
fn removal_under_a_waiter(test: &str, waiter: &[&str]) {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let env = [("ISOFIX_LOCK_DIR", dir.to_str().unwrap())];
    let group = unique("removed-under-waiter");
    let (first, _) = holder_in(test, &group, &dir);
    let mut role = waiter.to_vec();
    role.insert(1, &group);
    let warn_at_once = [env[0], ("ISOFIX_WAIT_WARN_SECS", "0")];
    let mut waiter = spawn(test, &role, &warn_at_once);
    serial_support::until_waiting(&mut waiter);
    fs::remove_dir_all(&dir).unwrap();
    // A process that starts after the removal cannot know: it takes the group afresh.
    let (newcomer, _) = holder_in(test, &group, &dir);
    first.finish().assert_success();
    let said = waiter.read_marked();
    assert!(
        said.starts_with("err NotFound") && said.contains("cargo clean"),
        "the waiter got the group the newcomer holds: {said}"
    );
    waiter.finish().assert_success();
    newcomer.finish().assert_success();
}

#[test]
fn removal_under_a_blocked_waiter_is_refused() {
    child_role();
    removal_under_a_waiter("removal_under_a_blocked_waiter_is_refused", &["try"]);
}

#[test]
fn removal_under_a_polling_waiter_is_refused() {
    child_role();
    let test = "removal_under_a_polling_waiter_is_refused";
    removal_under_a_waiter(test, &["try-for", "max"]);
}

#[test]
fn listing_holders_makes_nothing() {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    assert!(isofix::serial::holders(Some(&dir)).unwrap().is_empty());
    assert!(!dir.exists(), "listing made the lock directory");
    let group = unique("listed");
    let guard = take(&group, &dir).unwrap();
    let listed = isofix::serial::holders(Some(&dir)).unwrap();
    assert!(
        listed
            .iter()
            .any(|h| h.pid() == std::process::id() && !h.is_waiting()),
        "{listed:?}"
    );
    drop(guard);
}

/// A release leaves its record line as it was on Linux (one write less per acquisition):
/// the listing must still show only who holds a group now.
#[test]
fn released_holds_are_not_listed() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("released");
    let held_by = |pid: u32| {
        let listed = isofix::serial::holders(Some(&dir)).unwrap();
        listed
            .iter()
            .filter(|h| !h.is_waiting() && h.pid() == pid)
            .count()
    };
    let me = std::process::id();
    let guards: Vec<_> = (0..2)
        .map(|_| {
            SerialGuard::group(&group)
                .shared()
                .lock_dir(&dir)
                .acquire()
                .unwrap()
        })
        .collect();
    assert_eq!(held_by(me), 2);
    drop(guards);
    assert_eq!(held_by(me), 0, "released holds are listed");
    let (holder, pid) = holder_in("released_holds_are_not_listed", &group, &dir);
    assert_eq!((held_by(pid), held_by(me)), (1, 0));
    holder.finish().assert_success();
}

/// The holds of this process that the listing shows in `dir`.
fn listed_here(dir: &Path) -> usize {
    let listed = isofix::serial::holders(Some(dir)).unwrap();
    let me = std::process::id();
    listed
        .iter()
        .filter(|h| !h.is_waiting() && h.pid() == me)
        .count()
}

/// The line a released shared hold left must not count while another one is held.
#[test]
fn a_released_shared_hold_is_not_listed_beside_one_still_held() {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("shared-release");
    let shared = || {
        SerialGuard::group(&group)
            .shared()
            .lock_dir(&dir)
            .timeout(SAFETY)
            .acquire()
            .unwrap()
    };
    let (first, second) = (shared(), shared());
    assert_eq!(listed_here(&dir), 2);
    drop(first);
    assert_eq!(listed_here(&dir), 1, "a released shared hold is listed");
    drop(second);
    assert_eq!(listed_here(&dir), 0);
}

/// A group held again on another record line than its last hold is listed once.
#[test]
fn a_group_held_again_on_another_line_is_listed_once() {
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let (a, b) = (unique("line-a"), unique("line-b"));
    let held_a = take(&a, &dir).unwrap();
    let held_b = take(&b, &dir).unwrap();
    drop(held_a);
    drop(held_b);
    // `b`'s line is the first free one now, and `a`'s old line still names `a`.
    let again = take(&a, &dir).unwrap();
    assert_eq!(listed_here(&dir), 1, "a hold is listed twice");
    drop(again);
}

/// A request that waits for a slot holds the group's lock file shared meanwhile: the line
/// of its process's earlier hold must not name that process as a holder.
#[test]
fn a_timeout_for_a_slot_does_not_name_its_own_process() {
    child_role();
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let (group, other) = (unique("slot-wait"), unique("slot-other"));
    let one = |g: &str, timeout| {
        SerialGuard::group(g)
            .max_holders(1)
            .lock_dir(&dir)
            .timeout(timeout)
            .acquire()
    };
    let earlier = one(&group, SAFETY).unwrap();
    let between = take(&other, &dir).unwrap();
    drop(earlier);
    drop(between);
    let env = [("ISOFIX_LOCK_DIR", dir.to_str().unwrap())];
    let mut holder = spawn(
        "a_timeout_for_a_slot_does_not_name_its_own_process",
        &["hold", &group, "max1"],
        &env,
    );
    let said = holder.read_marked();
    let err = one(&group, Duration::from_millis(50)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    let msg = err.to_string();
    let pid = said.strip_prefix("held ").unwrap();
    assert!(msg.contains(&format!("pid {pid} (")), "{msg}");
    let me = format!("pid {} (", std::process::id());
    assert!(
        !msg.contains(&me),
        "names its own process as a holder: {msg}"
    );
    holder.finish().assert_success();
}

/// An age-based temp-file cleaner (systemd-tmpfiles, which cleans `/tmp` on many
/// distributions) leaves a lock directory in use alone. The same old files in a directory
/// nobody uses show that the cleaner would remove them.
#[test]
fn temp_file_cleaners_leave_a_lock_dir_in_use_alone() {
    if Command::new("systemd-tmpfiles")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: no systemd-tmpfiles here to play the temp-file cleaner");
        return;
    }
    let scratch = IsolatedDir::new().unwrap();
    let (used, unused) = (scratch.path().join("used"), scratch.path().join("unused"));
    let guard = take(&unique("cleaned"), &used).unwrap();
    fs::create_dir_all(unused.join("v1")).unwrap();
    fs::write(unused.join("v1").join("group.lock"), "").unwrap();
    let weeks_ago = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    let mut files = Vec::new();
    for dir in [&used, &unused] {
        for entry in fs::read_dir(dir.join("v1")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "lock") {
                fs::File::open(&path)
                    .unwrap()
                    .set_modified(weeks_ago)
                    .unwrap();
                files.push(path);
            }
        }
    }
    // Files older than a day by their modification time, in both directories.
    let config = scratch.path().join("clean.conf");
    let lines = format!(
        "e {} - - - m:1d\ne {} - - - m:1d\n",
        used.display(),
        unused.display()
    );
    fs::write(&config, lines).unwrap();
    let cleaned = Command::new("systemd-tmpfiles")
        .arg("--clean")
        .arg(&config)
        .output()
        .unwrap();
    assert!(cleaned.status.success(), "{cleaned:?}");
    let left: Vec<_> = files.iter().filter(|p| p.exists()).collect();
    let expected: Vec<_> = files.iter().filter(|p| p.starts_with(&used)).collect();
    assert!(!expected.is_empty());
    assert_eq!(
        left, expected,
        "the cleaner removed lock files in use, or none at all"
    );
    drop(guard);
}

/// A lock directory on an overlay whose layers lie on two filesystems: there `stat(2)`
/// reports another device than `/proc/locks` for the same file, as on btrfs subvolumes.
/// A hold must still be listed. Runs in a child in a mount namespace of its own, where it
/// may mount (skipped where user and mount namespaces cannot be made, or overlays not
/// mounted).
#[cfg(target_os = "linux")]
#[test]
fn holds_are_listed_on_an_overlay_across_filesystems() {
    const INSIDE: &str = "ISOFIX_TEST_OVERLAY_DIR";
    let test = "holds_are_listed_on_an_overlay_across_filesystems";
    if let Ok(dir) = std::env::var(INSIDE) {
        let dir = Path::new(&dir).join("locks");
        let _held = take(&unique("overlay"), &dir).unwrap();
        assert_eq!(listed_here(&dir), 1, "a live hold is not listed");
        return;
    }
    let scratch = IsolatedDir::new().unwrap();
    let at = |name: &str| {
        let path = scratch.path().join(name);
        fs::create_dir(&path).unwrap();
        path
    };
    let (lower, upper, work, merged) = (at("lower"), at("upper"), at("work"), at("merged"));
    // The lower layer on a tmpfs of its own: never the upper layer's filesystem.
    let script = "mount -t tmpfs none \"$1\" && mount -t overlay overlay \
                  -o \"lowerdir=$1,upperdir=$2,workdir=$3\" \"$4\" || exit 77; \
                  shift 4; exec \"$@\"";
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .args([&lower, &upper, &work, &merged])
        .env(INSIDE, &merged);
    again_inside(unshare, test, "user and mount namespace, and an overlay");
}

/// A process in a pid namespace of its own (a container sharing `/tmp`) sees no lock of
/// the processes outside in `/proc/locks`: their holds must still be listed, not taken for
/// released. Skipped where user and pid namespaces cannot be made.
#[cfg(target_os = "linux")]
#[test]
fn holds_outside_the_pid_namespace_are_listed() {
    const INSIDE: &str = "ISOFIX_TEST_LIST_DIR";
    let test = "holds_outside_the_pid_namespace_are_listed";
    if let Ok(dir) = std::env::var(INSIDE) {
        let listed = isofix::serial::holders(Some(Path::new(&dir))).unwrap();
        assert!(
            listed.iter().any(|h| !h.is_waiting()),
            "a live hold outside is not listed: {listed:?}"
        );
        return;
    }
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let _held = take(&unique("outside"), &dir).unwrap();
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--map-root-user", "--pid", "--fork", "--mount-proc"])
        .env(INSIDE, &dir);
    again_inside(unshare, test, "user and pid namespace");
}

/// Runs `test` again through `unshare` (whose arguments end with a command that execs the
/// rest), and fails if it fails there. Skipped, saying why, where the namespaces (`what`)
/// cannot be made: `unshare` failing, or the setup exiting 77.
#[cfg(target_os = "linux")]
fn again_inside(mut unshare: Command, test: &str, what: &str) {
    let output = unshare
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => return println!("skipped: unshare(1) cannot run: {e}"),
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => assert!(text.contains("1 passed"), "it did not run inside: {text}"),
        Some(77) => println!("skipped: no {what} of our own here: {text}"),
        Some(1) if text.starts_with("unshare:") => {
            println!("skipped: no {what} of our own here: {text}");
        }
        _ => panic!("{}: {text}", output.status),
    }
}

/// A holder in a pid namespace of its own (a container sharing `/tmp`) records the pid it
/// sees, which means another process here: its hold is still listed, under that pid.
/// Skipped where user and pid namespaces cannot be made.
#[cfg(target_os = "linux")]
#[test]
fn holds_inside_a_child_pid_namespace_are_listed() {
    child_role();
    let test = "holds_inside_a_child_pid_namespace_are_listed";
    if Command::new("unshare")
        .args(["--map-root-user", "--pid", "--fork", "true"])
        .status()
        .map_or(true, |s| !s.success())
    {
        println!("skipped: no user and pid namespace of our own here");
        return;
    }
    let scratch = IsolatedDir::new().unwrap();
    let dir = scratch.path().join("locks");
    let group = unique("inside");
    let inner = serial_support::command(test, &["hold", &group, "ex"]);
    let mut command = Command::new("unshare");
    command
        .args(["--map-root-user", "--pid", "--fork", "--mount-proc"])
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command.env("ISOFIX_LOCK_DIR", &dir);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut holder = serial_support::Child::spawn(&mut command);
    let said = holder.read_marked();
    let pid: u32 = said.strip_prefix("held ").unwrap().parse().unwrap();
    let listed = isofix::serial::holders(Some(&dir)).unwrap();
    assert!(
        listed.iter().any(|h| !h.is_waiting() && h.pid() == pid),
        "the hold of pid {pid} (in its namespace) is not listed: {listed:?}"
    );
    holder.finish().assert_success();
}

/// `/proc/locks` read while other files are locked and unlocked misses some of its
/// entries (it is read in pieces): a live hold must be listed all the same, every time,
/// and a released one never.
#[test]
fn holds_are_listed_while_other_locks_come_and_go() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let scratch = IsolatedDir::new().unwrap();
    let (dir, busy) = (scratch.path().join("locks"), scratch.path().join("busy"));
    let _held = take(&unique("listed-busy"), &dir).unwrap();
    // And a released hold must never be listed.
    drop(take(&unique("released-busy"), &dir).unwrap());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (busy, stop) = (&busy, &stop);
            s.spawn(move || {
                let groups: Vec<String> = (0..40).map(|i| format!("busy-{t}-{i}")).collect();
                while !stop.load(Ordering::Relaxed) {
                    let held: Vec<_> = groups.iter().map(|g| take(g, busy).unwrap()).collect();
                    drop(held);
                }
            });
        }
        let missed = (0..500).filter(|_| listed_here(&dir) != 1).count();
        stop.store(true, Ordering::Relaxed);
        assert_eq!(
            missed, 0,
            "some listings missed the live hold or showed the released one"
        );
    });
}
