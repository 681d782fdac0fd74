//! `cargo isofix holders` end to end: real child processes hold and wait for groups in a
//! lock directory of the test's own, and the command lists them — and no longer lists a
//! child once it is killed.

#![cfg(unix)]

mod support;

use std::path::Path;

use serde_json::Value;
use support::{cli, play_role, private_dir, stdout, Child};

const TEST: &str = "lists_live_holders_and_waiters_and_forgets_killed_ones";

/// `holders --json` for `lock_dir`, as (pid, state, mode, group, test) rows.
fn rows(lock_dir: &Path) -> Vec<(u64, String, String, String, String)> {
    let out = cli(
        &[
            "holders",
            "--json",
            "--lock-dir",
            lock_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = |row: &Value, key: &str| row[key].as_str().unwrap_or("-").to_owned();
    json.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert!(row["age_secs"].as_f64().unwrap() >= 0.0, "{row}");
            (
                row["pid"].as_u64().unwrap(),
                text(row, "state"),
                text(row, "mode"),
                text(row, "group"),
                text(row, "test"),
            )
        })
        .collect()
}

/// Polls until the lock directory shows a waiting request of `pid`: a request blocked in
/// the kernel cannot say when it has recorded itself.
fn wait_until_waiting(lock_dir: &Path, pid: u64) {
    for _ in 0..12_000 {
        if rows(lock_dir)
            .iter()
            .any(|r| r.0 == pid && r.1 == "waiting")
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("pid {pid} never showed as waiting: {:?}", rows(lock_dir));
}

#[test]
fn lists_live_holders_and_waiters_and_forgets_killed_ones() {
    if play_role() {
        return;
    }
    let root = private_dir("holders");
    let locks = root.join("locks");
    std::fs::create_dir(&locks).unwrap();
    std::fs::set_permissions(&locks, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // TMPDIR too: `clean` below sweeps isolated directories of the registry under it.
    let env = [
        ("ISOFIX_LOCK_DIR", locks.as_path()),
        ("TMPDIR", root.as_path()),
    ];
    assert_eq!(rows(&locks), [], "an empty lock directory lists nothing");

    let mut holder = Child::spawn(TEST, "hold", &env);
    holder.ready();
    let pid = u64::from(holder.pid());
    let mut held = rows(&locks);
    held.sort();
    assert_eq!(held.len(), 2, "{held:?}");
    for ((p, state, mode, group, test), (want_mode, want_group)) in held
        .iter()
        .zip([("exclusive", "alpha-"), ("shared", "beta-")])
    {
        assert_eq!(
            (*p, state.as_str(), mode.as_str()),
            (pid, "held", want_mode)
        );
        assert!(group.starts_with(want_group), "{group}");
        assert!(test.contains(TEST), "{test}");
    }

    // The table, with the lock directory from the environment as the tests set it.
    let table = stdout(&cli(&["holders"], &env));
    let line = table
        .lines()
        .find(|l| l.contains("alpha-"))
        .unwrap_or_else(|| panic!("{table}"));
    for word in [&pid.to_string(), "held", "exclusive", TEST] {
        assert!(line.contains(word), "{word} in {table}");
    }

    let mut waiter = Child::spawn(TEST, "wait", &env);
    let waiter_pid = u64::from(waiter.pid());
    wait_until_waiting(&locks, waiter_pid);
    let waiting = rows(&locks);
    let row = waiting.iter().find(|r| r.0 == waiter_pid).unwrap();
    assert_eq!((row.1.as_str(), row.2.as_str()), ("waiting", "exclusive"));
    assert!(row.3.starts_with("alpha-"), "{waiting:?}");

    // Killed: its locks and its records are gone, and the waiter holds the group.
    holder.kill();
    waiter.ready();
    let after = rows(&locks);
    assert!(after.iter().all(|r| r.0 != pid), "{after:?}");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (after[0].0, after[0].1.as_str(), after[0].2.as_str()),
        (waiter_pid, "held", "exclusive")
    );

    waiter.kill();
    assert_eq!(rows(&locks), []);
    assert!(stdout(&cli(&["holders"], &env)).contains("No serial group is held"));

    // The killed processes' record files stay until a clean (or the next acquisition).
    let listed = stdout(&cli(&["clean", "--dry-run"], &env));
    assert!(
        listed.contains("2 stale holder record file(s) would be removed"),
        "{listed}"
    );
    let removed = stdout(&cli(&["clean"], &env));
    assert!(
        removed.contains("2 stale holder record file(s) removed"),
        "{removed}"
    );
    let again = stdout(&cli(&["clean"], &env));
    assert!(!again.contains("holder record"), "{again}");
    let _ = std::fs::remove_dir_all(&root);
}
