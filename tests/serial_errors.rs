//! Bad input and hostile surroundings give clear errors; long waits explain themselves.

mod serial_support;

use std::fs;
use std::io::ErrorKind;
use std::thread;
use std::time::Duration;

use isofix::{IsolatedDir, SerialGuard};
use serial_support::{child_role, spawn, unique, SAFETY};

#[test]
fn any_name_maps_to_a_file_inside_the_lock_dir() {
    let scratch = IsolatedDir::new().unwrap();
    let long = "x/".repeat(5_000);
    let names = [
        "with spaces",
        "with_spaces",
        "ünïcødé 🦀",
        "a/b/c",
        "..",
        "../../escape",
        "/etc/passwd",
        long.as_str(),
    ];
    let guards: Vec<_> = names
        .iter()
        .map(|name| {
            SerialGuard::group(*name)
                .lock_dir(scratch.path())
                .acquire()
                .unwrap_or_else(|e| panic!("{name:?}: {e}"))
        })
        .collect();
    // All names are held at once by this thread, each in its own file: had two names
    // shared one, another thread could not hold them both while we do... so check files.
    let entries: Vec<_> = fs::read_dir(scratch.path().join("v1"))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    let locks = entries
        .iter()
        .filter(|e| e.file_name().to_str().unwrap().ends_with(".lock"))
        .count();
    assert_eq!(locks, names.len());
    for e in &entries {
        assert!(e.file_name().len() < 100, "{:?}", e.file_name());
    }
    drop(guards);
    // Distinct names with the same readable slug exclude nobody else.
    let a = SerialGuard::group("with spaces")
        .lock_dir(scratch.path())
        .acquire()
        .unwrap();
    let dir = scratch.path().to_owned();
    let b = thread::spawn(move || {
        SerialGuard::group("with_spaces")
            .lock_dir(dir)
            .timeout(SAFETY)
            .acquire()
            .map(drop)
    });
    b.join().unwrap().unwrap();
    drop(a);
    assert!(!scratch.path().parent().unwrap().join("escape").exists());
}

#[test]
fn empty_names_and_zero_holders_are_refused() {
    let err = SerialGuard::lock("").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("empty"), "{err}");
    let err = SerialGuard::lock_all(Vec::<String>::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = SerialGuard::group(unique("zero"))
        .max_holders(0)
        .acquire()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_holders(0)"), "{err}");
}

fn refused(dir: &std::path::Path, why: &str) {
    let err = SerialGuard::group(unique("hostile"))
        .lock_dir(dir)
        .acquire()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(why), "{msg}");
    assert!(msg.contains("ISOFIX_LOCK_DIR"), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
}

#[cfg(unix)]
#[test]
fn hostile_lock_dirs_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = IsolatedDir::new().unwrap();
    let real = scratch.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    let link = scratch.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    refused(&link, "symbolic link");

    let open = scratch.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    refused(&open, "mode is 0777");

    let file = scratch.path().join("file");
    fs::write(&file, "").unwrap();
    refused(&file, "not a directory");
}

#[cfg(unix)]
#[test]
fn hostile_lock_dir_from_the_environment_is_refused() {
    child_role();
    use std::os::unix::fs::PermissionsExt;
    let scratch = IsolatedDir::new().unwrap();
    let open = scratch.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o757)).unwrap();
    let mut child = spawn(
        "hostile_lock_dir_from_the_environment_is_refused",
        &["try", &unique("env")],
        &[("ISOFIX_LOCK_DIR", open.to_str().unwrap())],
    );
    let said = child.read_marked();
    assert!(said.starts_with("err PermissionDenied"), "{said}");
    assert!(
        said.contains("ISOFIX_LOCK_DIR") && said.contains("757"),
        "{said}"
    );
    child.finish().assert_success();
}

#[test]
fn timeout_names_the_holders() {
    let group = unique("timeout");
    let _held = SerialGuard::lock(&group).unwrap();
    let g = group.clone();
    let err = thread::spawn(move || {
        SerialGuard::group(&g)
            .shared()
            .timeout(Duration::from_millis(100))
            .acquire()
            .unwrap_err()
    })
    .join()
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let msg = err.to_string();
    for needle in [
        format!("{group:?}"),
        format!("pid {}", std::process::id()),
        "timeout_names_the_holders".to_owned(),
        "exclusive".to_owned(),
        "timed out after".to_owned(),
    ] {
        assert!(msg.contains(&needle), "{needle} not in {msg}");
    }
}

#[test]
fn timeout_names_shared_holders_in_other_processes() {
    child_role();
    let group = unique("timeout-shared");
    let mut child = spawn(
        "timeout_names_shared_holders_in_other_processes",
        &["hold", &group, "max3"],
        &[],
    );
    let pid = child
        .read_marked()
        .strip_prefix("held ")
        .unwrap()
        .to_owned();
    let err = SerialGuard::group(&group)
        .timeout(Duration::from_millis(100))
        .acquire()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {pid}")), "{msg}");
    assert!(msg.contains("slot-1/3"), "{msg}");
    child.finish().assert_success();
    // The abandoned wait let go as soon as it got the group.
    let _now = SerialGuard::group(&group)
        .timeout(SAFETY)
        .acquire()
        .unwrap();
}

#[test]
fn long_wait_warns_once() {
    child_role();
    let group = unique("warn");
    let held = SerialGuard::lock(&group).unwrap();
    let mut child = spawn(
        "long_wait_warns_once",
        &["try", &group],
        &[("ISOFIX_WAIT_WARN_SECS", "0.05")],
    );
    // The child keeps waiting until we let go, which we do once it has warned.
    let mut warning = String::new();
    loop {
        warning.clear();
        assert!(child.read_stderr_line(&mut warning), "no warning");
        if warning.contains("has waited") {
            break;
        }
    }
    drop(held);
    assert_eq!(child.read_marked(), "ok");
    let rest = child.finish();
    rest.assert_success();
    assert!(
        !rest.stdout.contains("has waited") && !rest.stderr.contains("has waited"),
        "warned twice: {rest:?}"
    );
    for needle in [
        format!("{group:?}"),
        format!("pid {}", std::process::id()),
        "long_wait_warns_once".to_owned(),
        "ISOFIX_LOCK_TIMEOUT_SECS".to_owned(),
    ] {
        assert!(warning.contains(&needle), "{needle} not in {warning}");
    }
}

#[test]
fn bad_environment_settings_are_reported() {
    child_role();
    let group = unique("bad-env");
    let held = SerialGuard::lock(&group).unwrap();
    let mut child = spawn(
        "bad_environment_settings_are_reported",
        &["try", &group],
        &[("ISOFIX_LOCK_TIMEOUT_SECS", "soon")],
    );
    let said = child.read_marked();
    assert!(said.starts_with("err InvalidInput"), "{said}");
    assert!(said.contains("ISOFIX_LOCK_TIMEOUT_SECS"), "{said}");
    drop(held);
    child.finish().assert_success();
}

#[test]
fn released_holders_are_not_named() {
    let group = unique("released");
    // Two records (another thread's acquisition does not nest), both released.
    let limited = |g: String| move || SerialGuard::group(g).max_holders(2).acquire().unwrap();
    let one = limited(group.clone())();
    let two = thread::spawn(limited(group.clone())).join().unwrap();
    drop((one, two));
    let _held = SerialGuard::lock(&group).unwrap();
    let g = group.clone();
    let err = thread::spawn(move || {
        SerialGuard::group(&g)
            .timeout(Duration::from_millis(50))
            .acquire()
            .unwrap_err()
    })
    .join()
    .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("exclusive"), "{msg}");
    assert!(!msg.contains("slot-"), "a released holder is named: {msg}");
}

/// Starts a child playing `role` on `group` (held here), waits until it warns that it
/// waits, lets go, and returns what the child then says.
fn waits_then_gets(test: &str, group: &str, role: &[&str], envs: &[(&str, &str)]) -> String {
    let held = SerialGuard::lock(group).unwrap();
    let mut envs = envs.to_vec();
    envs.push(("ISOFIX_WAIT_WARN_SECS", "0"));
    let mut child = spawn(test, role, &envs);
    serial_support::until_waiting(&mut child);
    drop(held);
    let said = child.read_marked();
    child.finish().assert_success();
    said
}

#[test]
fn endless_timeouts_wait_instead_of_panicking() {
    child_role();
    let test = "endless_timeouts_wait_instead_of_panicking";
    let group = unique("endless");
    // `Duration::MAX` from the builder, and a huge number of seconds from the environment:
    // both mean "wait as long as it takes", not a deadline past the end of time.
    let said = waits_then_gets(test, &group, &["try-for", &group, "max"], &[]);
    assert_eq!(said, "ok");
    let said = waits_then_gets(
        test,
        &group,
        &["try", &group],
        &[("ISOFIX_LOCK_TIMEOUT_SECS", "1e19")],
    );
    assert_eq!(said, "ok");
    // A warning that would come after the end of time never comes; the timeout still does.
    let _held = SerialGuard::lock(&group).unwrap();
    let mut child = spawn(
        test,
        &["try-for", &group, "50"],
        &[("ISOFIX_WAIT_WARN_SECS", "1e19")],
    );
    let said = child.read_marked();
    assert!(said.starts_with("err TimedOut"), "{said}");
    child.finish().assert_success();
}

#[test]
fn timeouts_still_fire_when_stderr_is_gone() {
    child_role();
    let group = unique("no-stderr");
    let _held = SerialGuard::lock(&group).unwrap();
    let mut command = serial_support::command(
        "timeouts_still_fire_when_stderr_is_gone",
        &["try-for", &group, "50"],
    );
    // The warning, due at once, meets a closed pipe.
    command.env("ISOFIX_WAIT_WARN_SECS", "0");
    let mut child = command.spawn().unwrap();
    drop(child.stderr.take());
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    drop(child.stdin.take());
    child.wait().unwrap();
    assert!(
        out.contains("ISOFIX-CHILD: err TimedOut"),
        "the request did not time out: {out}"
    );
}

#[test]
fn a_stderr_that_does_not_drain_delays_no_timeout() {
    child_role();
    let group = unique("stuck-stderr");
    let mut child = spawn(
        "a_stderr_that_does_not_drain_delays_no_timeout",
        &["stuck-stderr", &group],
        &[("ISOFIX_WAIT_WARN_SECS", "0")],
    );
    // Its stderr is read only once it has answered.
    let said = child.read_marked();
    assert!(said.starts_with("err TimedOut"), "{said}");
    child.finish().assert_success();
}

#[test]
fn a_relative_lock_dir_from_the_environment_is_refused() {
    child_role();
    let group = unique("relative-env");
    let said = serial_support::said(
        "a_relative_lock_dir_from_the_environment_is_refused",
        &["try", &group],
        &[("ISOFIX_LOCK_DIR", "relative/locks")],
    );
    assert!(said.starts_with("err InvalidInput"), "{said}");
    for needle in ["ISOFIX_LOCK_DIR", "relative/locks", "relative = true"] {
        assert!(said.contains(needle), "{needle} not in {said}");
    }
}

#[test]
fn a_relative_lock_dir_of_the_builder_follows_the_working_directory() {
    child_role();
    let scratch = isofix::IsolatedDir::new().unwrap();
    let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();
    let group = unique("relative-builder");
    let mut command = serial_support::command(
        "a_relative_lock_dir_of_the_builder_follows_the_working_directory",
        &["relative-lock-dir", &group, b.to_str().unwrap()],
    );
    command.current_dir(&a);
    let mut child = serial_support::Child::spawn(&mut command);
    // Before, the second request took "locks" for the first directory, removed.
    assert_eq!(child.read_marked(), "ok");
    child.finish().assert_success();
    assert!(a.join("locks").is_dir() && b.join("locks").is_dir());
}

#[cfg(unix)]
#[test]
fn records_that_cannot_be_written_do_not_fail_the_lock() {
    child_role();
    let group = unique("unrecorded");
    let child = serial_support::command(
        "records_that_cannot_be_written_do_not_fail_the_lock",
        &["try", &group],
    );
    // No file may grow past 0 bytes (SIGXFSZ ignored, so writes fail with EFBIG): lock
    // files stay empty, record lines cannot be written.
    let mut limited = std::process::Command::new("sh");
    limited.args([
        "-c",
        "trap '' XFSZ; exec \"$@\"",
        "sh",
        "prlimit",
        "--fsize=0",
        "--",
    ]);
    let said = serial_support::wrapped(limited, &child).read_marked();
    assert_eq!(said, "ok");
}
