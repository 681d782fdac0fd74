//! `cargo isofix nextest-groups` end to end on a copy of the `groups-bench` fixture crate:
//! `--check` fails before, the write makes the group, `--check` passes after, and nextest
//! itself puts the four grouped tests in the group.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A fresh copy of the fixture whose isofix dependency points at this checkout.
fn copy_fixture(name: &str) -> PathBuf {
    let from = repo().join("tests/fixture-crates/groups-bench");
    let to = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(to.join("src")).unwrap();
    for file in ["src/lib.rs", "Cargo.lock"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    let manifest = std::fs::read_to_string(from.join("Cargo.toml")).unwrap();
    let manifest = manifest.replace(
        "path = \"../../..\"",
        &format!("path = {:?}", repo().to_str().unwrap()),
    );
    std::fs::write(to.join("Cargo.toml"), manifest).unwrap();
    to
}

fn groups(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-isofix"))
        .args(["isofix", "nextest-groups"])
        .args(args)
        .current_dir(dir)
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-target"),
        )
        .output()
        .unwrap()
}

#[test]
fn writes_and_checks_the_test_group_that_nextest_then_uses() {
    let dir = copy_fixture("cli-nextest-groups-write");
    assert_eq!(groups(&dir, &["--check"]).status.code(), Some(1));
    let written = groups(&dir, &[]);
    assert!(written.status.success(), "{written:?}");
    assert!(String::from_utf8_lossy(&written.stdout)
        .contains("4 tests in nextest test groups, 0 not mapped"));
    let config = std::fs::read_to_string(dir.join(".config/nextest.toml")).unwrap();
    assert!(
        config.contains("isofix-isofix-groups-bench = { max-threads = 1 }"),
        "{config}"
    );
    for n in 1..=4 {
        assert!(
            config.contains(&format!("test(=tests::grouped_{n})")),
            "{config}"
        );
    }
    assert!(!config.contains("ungrouped"), "{config}");
    let checked = groups(&dir, &["--check"]);
    assert!(checked.status.success(), "{checked:?}");

    let nextest = Command::new(env!("CARGO"))
        .args(["nextest", "show-config", "test-groups"])
        .current_dir(&dir)
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-target"),
        )
        .output()
        .unwrap();
    if !nextest.status.success()
        && String::from_utf8_lossy(&nextest.stderr).contains("no such command")
    {
        println!("SKIPPED the nextest half: cargo-nextest is not installed (CI installs it)");
        return;
    }
    let shown = String::from_utf8_lossy(&nextest.stdout);
    assert!(nextest.status.success(), "{nextest:?}");
    assert!(
        shown.contains("group: isofix-isofix-groups-bench (max threads = 1)"),
        "{shown}"
    );
    for n in 1..=4 {
        assert!(shown.contains(&format!("tests::grouped_{n}")), "{shown}");
    }
}

#[test]
fn tests_that_cannot_be_mapped_are_listed_with_why() {
    let dir = copy_fixture("cli-nextest-groups-unmapped");
    let lib = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib)
        .unwrap()
        .replacen(
            "#[isofix::serial_group(\"isofix-groups-bench\")]\n    fn grouped_1",
            "#[isofix::serial_group(\"isofix-groups-bench\", \"other\")]\n    fn grouped_1",
            1,
        )
        .replacen(
            "#[isofix::serial_group(\"isofix-groups-bench\")]\n    fn grouped_2",
            "#[isofix::serial_group(\"isofix-groups-bench\", shared)]\n    fn grouped_2",
            1,
        );
    std::fs::write(&lib, source).unwrap();
    let out = groups(&dir, &[]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tests::grouped_1") && stderr.contains("at most one test group"),
        "{stderr}"
    );
    assert!(
        stderr.contains("tests::grouped_2") && stderr.contains("no shared mode"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("2 tests in nextest test groups, 2 not mapped"));
}
