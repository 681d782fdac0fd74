//! `cargo isofix lint` end to end on the fixture crates: the flaky one's races are found
//! with their lines, the fixed one is clean.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixture-crates")
        .join(name)
}

fn lint(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-isofix"))
        .args(["isofix", "lint"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_flaky_fixture_is_found_and_the_fixed_one_is_clean() {
    let flaky = fixture("flaky");
    let out = lint(&[flaky.as_os_str(), "--json".as_ref()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(u64, &str)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["pattern"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            (28, "fixed-port"),
            (56, "fixed-temp-path"),
            (75, "fixed-temp-path")
        ]
    );

    let text = lint(&[flaky.as_os_str()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("src/lib.rs:28: FixedPort fixed port in \"127.0.0.1:47391\""),
        "{text}"
    );
    assert!(
        text.contains("fix: let srv = isofix::EphemeralTcp::bind()?;"),
        "{text}"
    );
    assert!(text.contains("1 files scanned, 3 findings"), "{text}");

    let fixed = lint(&[fixture("fixed").as_os_str()]);
    assert!(fixed.status.success(), "{fixed:?}");
    assert!(String::from_utf8_lossy(&fixed.stdout).contains("1 files scanned, 0 findings"));
}

#[test]
fn unparsable_files_are_reported_not_skipped() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-lint-broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.rs"), "fn (").unwrap();
    let out = lint(&[dir.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not scan"),
        "{out:?}"
    );
    let missing = lint(&[dir.join("missing").as_os_str()]);
    assert_eq!(missing.status.code(), Some(2));
}
