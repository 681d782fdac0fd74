//! `IsolatedDir`: naming, privacy, uniqueness, removal, `close`, `keep`, bad bases and
//! `ISOFIX_TMPDIR`. Keeping policies are in `isolated_dir_keep.rs`, the sweep after
//! crashes in `isolated_dir_sweep.rs`.

mod isolated_dir_support;

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use isofix::IsolatedDir;
use isolated_dir_support::{assert_default_keep_policy, role, run_role, spawn, spawn_in, Reported};

/// Runs a role when this binary is started as a child by one of the tests below; does
/// nothing in the test run itself.
#[test]
fn child_role() {
    if let Some(role) = role() {
        run_role(&role);
    }
}

/// The running test's name, as libtest and nextest give it.
fn this_test() -> String {
    std::env::var("NEXTEST_TEST_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| std::thread::current().name().map(str::to_owned))
        .unwrap()
}

/// Splits `isofix-<test>-<id><n>` or `isofix-<id><n>` into the test part and `<id><n>`.
fn name_parts(path: &Path) -> (Option<String>, String) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let rest = name.strip_prefix("isofix-").expect(name);
    let (test, tail) = match rest.rsplit_once('-') {
        Some((test, tail)) => (Some(test.to_owned()), tail.to_owned()),
        None => (None, rest.to_owned()),
    };
    assert!(tail.len() > 12, "{name}");
    assert!(
        tail.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
        "{name}"
    );
    (test, tail)
}

/// The base that `IsolatedDir::new` uses in this process.
fn default_base() -> PathBuf {
    let base = std::env::var_os("ISOFIX_TMPDIR")
        .filter(|v| !v.is_empty())
        .map_or_else(std::env::temp_dir, PathBuf::from);
    // `std::path::absolute` is above the MSRV (1.79).
    if base.is_absolute() {
        base
    } else {
        std::env::current_dir().unwrap().join(base)
    }
}

#[test]
fn named_after_its_test() {
    let dir = IsolatedDir::new().unwrap();
    let (test, _) = name_parts(dir.path());
    assert_eq!(test.as_deref(), Some(this_test().as_str()));
    assert!(dir.path().is_absolute());
    assert_eq!(dir.path().parent(), Some(default_base().as_path()));
    assert!(fs::symlink_metadata(dir.path()).unwrap().is_dir());
}

#[test]
fn a_long_test_name_is_cut_to_keep_socket_paths_short_but_recognisable() {
    let dir = IsolatedDir::new().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    assert!(name.len() <= 57, "{name} is {} bytes", name.len());
    let (test, _) = name_parts(dir.path());
    let test = test.unwrap();
    assert!(test.len() >= 30 && test.len() <= 33, "{test}");
    assert!(this_test().starts_with(&test), "{test}");
}

/// rstest runs each case as `<function>::case_<n>`; the directory keeps the function's
/// name, cut, in front of the case's.
#[rstest::rstest]
#[case::first(1)]
fn an_rstest_case_keeps_its_function_name_in_front(#[case] _n: u32) {
    let dir = IsolatedDir::new().unwrap();
    let (test, _) = name_parts(dir.path());
    let test = test.unwrap();
    assert!(test.starts_with("an_rstest_case_keeps"), "{test}");
    assert!(test.ends_with("_case_1_first"), "{test}");
}

/// Makes a directory on a thread the test spawns with `thread`, and checks its name has no
/// test part under `cargo test` — such a thread knows nothing of its test, and its own name
/// is not one — while nextest still knows the test through `NEXTEST_TEST_NAME`.
fn assert_no_test_name_on_a_spawned_thread(thread: std::thread::Builder) {
    let path = thread
        .spawn(|| IsolatedDir::new().unwrap().path().to_owned())
        .unwrap()
        .join()
        .unwrap();
    let (test, _) = name_parts(&path);
    if std::env::var_os("NEXTEST_TEST_NAME").is_some() {
        assert!(this_test().starts_with(&test.unwrap()));
    } else {
        assert_eq!(test, None);
    }
}

#[test]
fn no_test_name_on_an_unnamed_thread_under_cargo_test() {
    assert_no_test_name_on_a_spawned_thread(std::thread::Builder::new());
}

#[test]
fn no_test_name_on_a_runtime_worker_thread_under_cargo_test() {
    let worker = std::thread::Builder::new().name("tokio-runtime-worker".to_owned());
    assert_no_test_name_on_a_spawned_thread(worker);
}

/// The documented bound: with `/tmp` as the base, a 40-byte file name inside an isolated
/// directory is a valid Unix socket path on macOS (104 bytes with the NUL) and Linux (108).
#[cfg(unix)]
#[test]
fn a_socket_with_a_40_byte_name_binds_inside_a_directory_under_tmp() {
    use std::os::unix::net::UnixListener;
    let dir = IsolatedDir::new_in("/tmp").unwrap();
    let name_len = dir.path().file_name().unwrap().len();
    assert!(name_len <= 57, "{}", dir.path().display());
    let socket = dir.join("s".repeat(40));
    let _listener = UnixListener::bind(&socket).unwrap();
    // The longest directory name the bound allows, filled in by a longer socket name.
    let longest = dir.join("l".repeat(40 + 57 - name_len));
    assert_eq!(longest.as_os_str().len(), 103);
    let _listener = UnixListener::bind(&longest).unwrap();
}

#[cfg(unix)]
#[test]
fn private_to_its_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = IsolatedDir::new().unwrap();
    let meta = fs::symlink_metadata(dir.path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    // SAFETY: geteuid has no preconditions.
    assert_eq!(meta.uid(), unsafe { libc::geteuid() });
}

#[test]
fn a_thousand_directories_alive_at_once_are_all_distinct() {
    assert_default_keep_policy();
    let dirs: Vec<IsolatedDir> = (0..1000).map(|_| IsolatedDir::new().unwrap()).collect();
    let paths: HashSet<PathBuf> = dirs.iter().map(|d| d.path().to_owned()).collect();
    assert_eq!(paths.len(), dirs.len());
    assert!(paths.iter().all(|p| p.is_dir()));
    drop(dirs);
    assert!(paths.iter().all(|p| !p.exists()));
}

#[test]
fn a_name_taken_by_something_else_is_skipped_and_left_alone() {
    let scratch = IsolatedDir::new().unwrap();
    let out = spawn("squat", &[("ISOFIX_TMPDIR", scratch.path())]).finish();
    out.assert_success();
    // The child made its first directory (number 0), put directories of its own on the
    // next two names (1 and 2), then made another isolated directory.
    let [first, squat_1, squat_2, second] = <[PathBuf; 4]>::try_from(out.paths()).unwrap();
    let tail = |p: &Path| name_parts(p).1;
    let id = &tail(&first)[..12];
    for (path, n) in [
        (&first, "0"),
        (&squat_1, "1"),
        (&squat_2, "2"),
        (&second, "3"),
    ] {
        assert_eq!(tail(path), format!("{id}{n}"), "{out:?}");
    }
    assert!(!first.exists() && !second.exists(), "{out:?}");
    for squatter in [&squat_1, &squat_2] {
        assert_eq!(fs::read_to_string(squatter.join("mine")).unwrap(), "x");
    }
}

#[test]
fn dropping_removes_the_directory_and_everything_in_it() {
    assert_default_keep_policy();
    let dir = IsolatedDir::new().unwrap();
    let path = dir.path().to_owned();
    fs::create_dir_all(dir.join("a/b/c")).unwrap();
    fs::write(dir.join("a/b/c/file"), "x").unwrap();
    fs::write(dir.join("top"), "y").unwrap();
    drop(dir);
    assert!(!path.exists());
}

#[cfg(unix)]
#[test]
fn links_inside_are_removed_not_followed() {
    assert_default_keep_policy();
    let outside = IsolatedDir::new().unwrap();
    fs::write(outside.join("precious"), "x").unwrap();
    let dir = IsolatedDir::new().unwrap();
    let path = dir.path().to_owned();
    std::os::unix::fs::symlink(outside.path(), dir.join("to-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("precious"), dir.join("to-file")).unwrap();
    drop(dir);
    assert!(!path.exists());
    assert_eq!(fs::read_to_string(outside.join("precious")).unwrap(), "x");
}

#[cfg(unix)]
#[test]
fn read_only_contents_are_removed_too() {
    use std::os::unix::fs::PermissionsExt;
    assert_default_keep_policy();
    // As root, permission bits block nothing and this passes trivially; as any other
    // user, it needs the permissions fixed before removal.
    let dir = IsolatedDir::new().unwrap();
    let path = dir.path().to_owned();
    let locked = dir.join("locked");
    fs::create_dir(&locked).unwrap();
    fs::write(locked.join("file"), "x").unwrap();
    fs::create_dir(locked.join("sealed")).unwrap();
    fs::set_permissions(locked.join("file"), fs::Permissions::from_mode(0o400)).unwrap();
    fs::set_permissions(locked.join("sealed"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
    drop(dir);
    assert!(!path.exists());
}

#[cfg(windows)]
#[test]
fn read_only_contents_are_removed_too() {
    assert_default_keep_policy();
    let dir = IsolatedDir::new().unwrap();
    let path = dir.path().to_owned();
    fs::write(dir.join("file"), "x").unwrap();
    let mut perms = fs::metadata(dir.join("file")).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(dir.join("file"), perms).unwrap();
    drop(dir);
    assert!(!path.exists());
}

#[test]
fn removed_when_its_test_panics() {
    assert_default_keep_policy();
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let dir = IsolatedDir::new().unwrap();
        fs::write(dir.join("file"), "x").unwrap();
        tx.send(dir.path().to_owned()).unwrap();
        panic!("the test fails on purpose");
    })
    .join();
    assert!(outcome.is_err());
    let path = rx.recv().unwrap();
    assert!(!path.exists(), "{} survived the panic", path.display());
}

#[test]
fn close_removes_the_directory() {
    let dir = IsolatedDir::new().unwrap();
    let path = dir.path().to_owned();
    fs::write(dir.join("file"), "x").unwrap();
    dir.close().unwrap();
    assert!(!path.exists());
}

#[test]
fn close_reports_a_directory_that_is_already_gone() {
    let dir = IsolatedDir::new().unwrap();
    let path = dir.path().to_owned();
    fs::remove_dir(&path).unwrap();
    let err = dir.close().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

// Fails as root too: no permission bits are involved.
#[test]
fn close_reports_a_directory_it_cannot_remove_and_leaves_what_replaced_it() {
    let dir = IsolatedDir::new().unwrap();
    let path = dir.path().to_owned();
    fs::remove_dir(&path).unwrap();
    fs::write(&path, "not a directory").unwrap();
    let err = dir.close().unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("hint:"), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "not a directory");
    fs::remove_file(&path).unwrap();
}

#[test]
fn a_failed_removal_on_drop_is_reported_on_stderr_without_panicking() {
    let base = IsolatedDir::new().unwrap();
    let out = spawn("drop-fails", &[("ISOFIX_TMPDIR", base.path())]).finish();
    out.assert_success();
    let path = out.path();
    assert!(
        out.stderr.contains(&format!(
            "cannot remove isolated directory {}",
            path.display()
        )),
        "{out:?}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "not a directory");
}

#[test]
fn keep_hands_the_directory_over() {
    assert_default_keep_policy();
    let dir = IsolatedDir::new().unwrap();
    fs::write(dir.join("file"), "x").unwrap();
    let path = dir.keep();
    assert_eq!(fs::read_to_string(path.join("file")).unwrap(), "x");
    fs::remove_dir_all(&path).unwrap();
}

#[test]
fn keep_if_keeps_only_when_asked() {
    assert_default_keep_policy();
    let mut kept = IsolatedDir::new().unwrap();
    let mut removed = IsolatedDir::new().unwrap();
    kept.keep_if(true);
    kept.keep_if(false);
    removed.keep_if(false);
    let (kept_path, removed_path) = (kept.path().to_owned(), removed.path().to_owned());
    drop((kept, removed));
    assert!(kept_path.is_dir());
    assert!(!removed_path.exists());
    fs::remove_dir(&kept_path).unwrap();
}

#[test]
fn as_ref_and_join_point_into_the_directory() {
    let dir = IsolatedDir::new().unwrap();
    let as_ref: &Path = dir.as_ref();
    assert_eq!(as_ref, dir.path());
    assert_eq!(dir.join("x"), dir.path().join("x"));
}

fn assert_names(err: &std::io::Error, path: &Path, hint: &str) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(hint), "{msg}");
}

#[test]
fn a_missing_base_is_an_error_naming_it() {
    let scratch = IsolatedDir::new().unwrap();
    let missing = scratch.join("missing");
    let err = IsolatedDir::new_in(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_names(&err, &missing, "existing directory");
}

#[test]
fn a_file_as_base_is_an_error_naming_it() {
    let scratch = IsolatedDir::new().unwrap();
    let file = scratch.join("file");
    fs::write(&file, "x").unwrap();
    let err = IsolatedDir::new_in(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADirectory);
    assert_names(&err, &file, "existing directory");
}

#[cfg(unix)]
#[test]
fn an_unwritable_base_is_an_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: root may create entries in any directory, whatever its mode");
        return;
    }
    let scratch = IsolatedDir::new().unwrap();
    let locked = scratch.join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
    let err = IsolatedDir::new_in(&locked).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_names(&err, &locked, "existing directory");
}

#[test]
fn a_relative_base_gives_an_absolute_path() {
    let scratch = IsolatedDir::new().unwrap();
    fs::create_dir(scratch.join("sub")).unwrap();
    let out = spawn_in("create", &[("ISOFIX_TMPDIR", "sub")], Some(scratch.path())).finish();
    out.assert_success();
    assert_eq!(out.path().parent(), Some(scratch.join("sub").as_path()));
}

#[test]
fn isofix_tmpdir_chooses_the_base() {
    let scratch = IsolatedDir::new().unwrap();
    let out = spawn("create", &[("ISOFIX_TMPDIR", scratch.path())]).finish();
    out.assert_success();
    assert_eq!(out.path().parent(), Some(scratch.path()));
    assert!(!out.path().exists());
}

#[test]
fn an_empty_isofix_tmpdir_means_the_system_temp_dir() {
    let scratch = IsolatedDir::new().unwrap();
    let tmpdir = if cfg!(windows) { "TMP" } else { "TMPDIR" };
    let envs = [("ISOFIX_TMPDIR", Path::new("")), (tmpdir, scratch.path())];
    let out = spawn("create", &envs).finish();
    out.assert_success();
    assert_eq!(out.path().parent(), Some(scratch.path()));
}

#[test]
fn a_bad_isofix_tmpdir_is_an_error_naming_it_and_the_variable() {
    let scratch = IsolatedDir::new().unwrap();
    let missing = scratch.join("missing");
    let out = spawn("error", &[("ISOFIX_TMPDIR", &missing)]).finish();
    out.assert_success();
    let err = out.error();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("ISOFIX_TMPDIR"), "{err}");
}
