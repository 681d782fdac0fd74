//! `cargo isofix stress`: runs a suite again and again and catalogues its flaky tests.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::catalogue::Catalogue;
use crate::results::{self, TestResult};
use crate::{cargo, style};

/// The nextest profile this tool adds through a tool config file (nextest's
/// `--tool-config-file`), so the user's own `.config/nextest.toml` is read but untouched.
const PROFILE: &str = "isofix-stress";

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    cargo isofix stress --runs 50\n  \
    cargo isofix stress --for 10m --load --markdown flakes.md\n  \
    cargo isofix stress --runner cargo -- --workspace -- --test-threads=16\n\n\
    Exit status: 0 when every run passed, 1 when a test failed in some run, 2 when the \
    suite could not be run.")]
pub struct StressArgs {
    /// Run the whole suite this many times [default: 20]
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    runs: Option<u64>,
    /// Run the suite again and again for this long, e.g. 90s, 10m, 2h
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration, id = "duration")]
    duration: Option<Duration>,
    /// The test runner [default: nextest when installed, else cargo test]
    #[arg(long, value_enum, value_name = "RUNNER")]
    runner: Option<Runner>,
    /// Keep every CPU busy with spinning threads while the suite runs: races show sooner
    #[arg(long)]
    load: bool,
    /// The Cargo.toml of the suite [default: the one cargo finds from here]
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Also write the catalogue as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the catalogue as Markdown to FILE (e.g. $GITHUB_STEP_SUMMARY)
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Arguments passed on to `cargo nextest run` or `cargo test`
    #[arg(last = true, value_name = "RUNNER ARGS")]
    runner_args: Vec<OsString>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Runner {
    /// cargo nextest run, read through its JUnit report
    Nextest,
    /// cargo test, read from its human output
    Cargo,
}

/// Reads `90s`, `10m`, `2h` or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 10m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

pub fn run(args: StressArgs) -> Result<ExitCode, String> {
    let runner = args.runner.unwrap_or_else(|| {
        if cargo::has_subcommand("nextest") {
            Runner::Nextest
        } else {
            Runner::Cargo
        }
    });
    let meta = cargo::metadata(args.manifest_path.as_deref())?;
    let target = meta.target_directory;
    let work = target.join("cargo-isofix");
    fs::create_dir_all(&work).map_err(|e| format!("create {}: {e}", work.display()))?;
    let runner_name = match runner {
        Runner::Nextest => "cargo nextest run",
        Runner::Cargo => "cargo test",
    };
    let mut catalogue = Catalogue::new(runner_name);
    let started = Instant::now();
    let planned = args.runs.unwrap_or(20);
    let _load = args.load.then(Load::start);
    let mut run = 0u64;
    loop {
        let more = match args.duration {
            Some(d) => run == 0 || started.elapsed() < d,
            None => run < planned,
        };
        if !more {
            break;
        }
        run += 1;
        let results = match runner {
            Runner::Nextest => run_nextest(
                &args,
                &[&meta.workspace_root.join("target"), &target],
                &work,
            )?,
            Runner::Cargo => run_cargo(&args, &work)?,
        };
        let failed: Vec<&str> = results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.name.as_str())
            .collect();
        eprintln!(
            "run {run}{}: {} tests, {} failed{}{}",
            if args.duration.is_none() {
                format!("/{planned}")
            } else {
                String::new()
            },
            results.len(),
            failed.len(),
            if failed.is_empty() { "" } else { ": " },
            failed.join(", ")
        );
        catalogue.add_run(&results);
    }
    print!("{}", catalogue.to_text(style::stdout_colours()));
    if let Some(path) = &args.json {
        fs::write(path, catalogue.to_json())
            .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        fs::write(path, catalogue.to_markdown())
            .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(if catalogue.flaky().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One `cargo nextest run` with this tool's profile, read from its JUnit report, which
/// nextest keeps in its store: `target/nextest` under the workspace root by default, or
/// under the target directory.
fn run_nextest(
    args: &StressArgs,
    targets: &[&Path],
    work: &Path,
) -> Result<Vec<TestResult>, String> {
    // Names of this process's own, so that two stress runs on one workspace do not mix.
    let pid = std::process::id();
    let config = work.join(format!("nextest-{pid}.toml"));
    // Lower priority than the user's config: their settings win, ours fill the gaps.
    let body = format!(
        "[profile.{PROFILE}]\nfail-fast = false\nretries = 0\n\
         slow-timeout = {{ period = \"60s\", terminate-after = 5 }}\n\n\
         [profile.{PROFILE}.junit]\npath = \"junit-{pid}.xml\"\nstore-success-output = false\n\
         store-failure-output = true\n"
    );
    fs::write(&config, body).map_err(|e| format!("write {}: {e}", config.display()))?;
    let junits: Vec<PathBuf> = targets
        .iter()
        .map(|t| {
            t.join("nextest")
                .join(PROFILE)
                .join(format!("junit-{pid}.xml"))
        })
        .collect();
    for junit in &junits {
        let _ = fs::remove_file(junit);
    }
    let mut command = Command::new(cargo::cargo());
    command
        .args([
            "nextest",
            "run",
            "--no-fail-fast",
            "--profile",
            PROFILE,
            "--tool-config-file",
        ])
        .arg(format!("cargo-isofix:{}", config.display()));
    let log = run_logged(command, args, work);
    let _ = fs::remove_file(&config);
    let log = log?;
    let xml = junits.iter().find_map(|j| fs::read_to_string(j).ok());
    for junit in &junits {
        let _ = fs::remove_file(junit);
    }
    match xml {
        Some(xml) => results::from_junit(&xml),
        None => Err(format!(
            "nextest wrote no JUnit report (looked for {}); its output:\n{}",
            junits
                .iter()
                .map(|j| j.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            tail(&log)
        )),
    }
}

/// One `cargo test --no-fail-fast`, read from its output.
fn run_cargo(args: &StressArgs, work: &Path) -> Result<Vec<TestResult>, String> {
    let mut command = Command::new(cargo::cargo());
    command.args(["test", "--no-fail-fast"]);
    let log = run_logged(command, args, work)?;
    let results = results::from_libtest(&log);
    if results.is_empty() && !log.contains("running 0 tests") {
        return Err(format!(
            "cargo test ran no test; its output:\n{}",
            tail(&log)
        ));
    }
    Ok(results)
}

/// Runs `command` with the manifest path and runner args, stdout and stderr into one log
/// file (so `cargo test`'s "Running" lines stay beside the tests they name); returns it.
fn run_logged(mut command: Command, args: &StressArgs, work: &Path) -> Result<String, String> {
    if let Some(path) = &args.manifest_path {
        command.arg("--manifest-path").arg(path);
    }
    command
        .args(&args.runner_args)
        .env("CARGO_TERM_COLOR", "never");
    let log_path = work.join(format!("run-{}.log", std::process::id()));
    let log = File::create(&log_path).map_err(|e| format!("create {}: {e}", log_path.display()))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    command.stdout(log).stderr(err);
    let status = command.status();
    let log = fs::read(&log_path);
    let _ = fs::remove_file(&log_path);
    status.map_err(|e| format!("run {:?}: {e}", command.get_program()))?;
    log.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| format!("read {}: {e}", log_path.display()))
}

/// The last lines of a runner's output, for an error message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One spinning thread per CPU until dropped.
struct Load {
    stop: &'static AtomicBool,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start() -> Load {
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        eprintln!("load: {cpus} spinning threads");
        let threads = (0..cpus)
            .map(|_| {
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_documented() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10 minutes")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("m").is_err());
    }
}
