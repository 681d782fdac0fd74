//! `cargo isofix stress` end to end, on the fixture crates under `tests/fixture-crates`:
//! `flaky` has three real races between pairs of tests, `fixed` the same tests with their
//! isofix fixes. The catalogue must name each flaky test with its class, and find the
//! fixed crate clean.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixture-crates")
        .join(name)
        .join("Cargo.toml")
}

/// Runs `cargo isofix stress` on fixture `crate_name`; returns its output and catalogue.
fn stress(crate_name: &str, runner: &str, runs: &str, runner_args: &[&str]) -> (Output, Value) {
    let out_dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-stress-{crate_name}-{runner}"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let json = out_dir.join("catalogue.json");
    let markdown = out_dir.join("catalogue.md");
    let _ = std::fs::remove_file(&json);
    // The fixtures' shared files go here, not into the system temp dir, where they would
    // outlive the suite.
    let tmp = out_dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-isofix"))
        .args([
            "isofix",
            "stress",
            "--runs",
            runs,
            "--runner",
            runner,
            "--manifest-path",
        ])
        .arg(fixture(crate_name))
        .arg("--json")
        .arg(&json)
        .arg("--markdown")
        .arg(&markdown)
        .arg("--")
        .args(runner_args)
        .env("TMPDIR", &tmp)
        // The fixtures build once into a target directory of their own, shared by runners.
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-target"),
        )
        .output()
        .unwrap();
    let catalogue =
        std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no catalogue ({e}): {output:?}"));
    assert!(std::fs::read_to_string(&markdown)
        .unwrap()
        .starts_with("# Flaky tests"));
    (output, serde_json::from_str(&catalogue).unwrap())
}

/// The class each flaky test of the fixture must get.
const FLAKY: [(&str, &str); 6] = [
    ("tests::fixed_port_server_a", "port-collision"),
    ("tests::fixed_port_server_b", "port-collision"),
    ("tests::shared_temp_dir_a", "filesystem-race"),
    ("tests::shared_temp_dir_b", "filesystem-race"),
    ("tests::shared_file_writer_a", "filesystem-race"),
    ("tests::shared_file_writer_b", "filesystem-race"),
];

fn assert_catalogues_the_races(runner: &str, runner_args: &[&str]) {
    let (output, catalogue) = stress("flaky", runner, "3", runner_args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a flake must fail the command: {output:?}"
    );
    for (test, class) in FLAKY {
        let row = catalogue["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["test"] == test)
            .unwrap_or_else(|| panic!("{test} missing from {catalogue:#}"));
        assert!(
            row["failures"].as_u64().unwrap() >= 1,
            "{test} never failed: {stdout}"
        );
        assert_eq!(row["class"], class, "{test}: {row:#}");
        assert!(
            stdout.contains(test),
            "{test} not in the text catalogue: {stdout}"
        );
    }
    assert!(
        stdout.contains("class: port collision") && stdout.contains("EphemeralTcp::bind()"),
        "{stdout}"
    );
    assert!(
        stdout.contains("class: filesystem race") && stdout.contains("IsolatedDir::new()"),
        "{stdout}"
    );
}

fn assert_fixed_is_clean(runner: &str, runner_args: &[&str]) {
    let (output, catalogue) = stress("fixed", runner, "2", runner_args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        catalogue["tests"].as_array().unwrap().len(),
        6,
        "{catalogue:#}"
    );
    assert!(
        stdout.contains("0 failures in 2 runs of each of 6 tests: a test flaking more often than 78 % of its runs would have shown with 95 % probability"),
        "{stdout}"
    );
}

fn has_nextest() -> bool {
    let found = Command::new(env!("CARGO"))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("SKIPPED: cargo-nextest is not installed (CI installs it)");
    }
    found
}

#[test]
fn cargo_runner_catalogues_each_race_and_finds_the_fixes_clean() {
    let args = ["--", "--test-threads=6"];
    assert_catalogues_the_races("cargo", &args);
    assert_fixed_is_clean("cargo", &args);
}

#[test]
fn nextest_runner_catalogues_each_race_and_finds_the_fixes_clean() {
    if !has_nextest() {
        return;
    }
    let args = ["--test-threads", "6"];
    assert_catalogues_the_races("nextest", &args);
    assert_fixed_is_clean("nextest", &args);
}

#[test]
fn help_reads_well_and_bad_arguments_are_refused() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cargo-isofix"))
            .args(args)
            .output()
            .unwrap()
    };
    let help = run(&["isofix", "stress", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    for part in [
        "--runs <N>",
        "--for <DURATION>",
        "--runner <RUNNER>",
        "--load",
        "nextest",
        "Exit status",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
    let bad = run(&["stress", "--for", "10 minutes"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown unit"));
    let both = run(&["stress", "--runs", "3", "--for", "1m"]);
    assert_eq!(both.status.code(), Some(2));
}
