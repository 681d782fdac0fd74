//! `cargo run -p isofix-suite-bench --release [-- ROUNDS]`: what a whole suite pays for
//! isofix, measured on a generated one.
//!
//! It writes three variants of the same 200-test crate under `target/suite-bench/`, each
//! test serving 10 requests over TCP, writing and reading back 5 files around a 10 ms
//! wait on a simulated slow dependency, and one test in ten using a resource that only one
//! test may use at a time:
//!
//! - racy: a fixed port and a fixed temp path, nothing serialized;
//! - isofix: `EphemeralTcp`, `IsolatedDir`, and `#[serial_group]` on the shared tests;
//! - hand-made: std `bind(0)`, a directory named by process id and test, and a nextest test
//!   group for the shared tests (so it is parallel-safe under nextest only).
//!
//! It builds them (in their own target directory), then runs each configuration once per
//! round, in an order that rotates and reverses from round to round, and prints the median
//! wall time of each, its ratio to the racy suite run serially, the median CPU time of the
//! run (less disturbed by other load on the machine than the wall time), and failure
//! counts. A benchmark, not a test: nothing asserts on its figures, and CI does not run it
//! (it takes minutes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// Tests in the suite.
const TESTS: usize = 200;
/// One test in this many uses the shared resource.
const SHARED_EVERY: usize = 10;
/// Rounds when none is given.
const DEFAULT_ROUNDS: usize = 7;
/// The racy variant's fixed port.
const RACY_PORT: u16 = 47_391;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Racy,
    Isofix,
    HandMade,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Racy => "racy",
            Variant::Isofix => "isofix",
            Variant::HandMade => "hand-made",
        }
    }
}

#[derive(Clone, Copy)]
enum Runner {
    /// The test binary run directly, as `cargo test` runs it, with this many threads
    /// (`None`: libtest's default, one per CPU).
    Libtest(Option<usize>),
    /// `cargo nextest run -j 2`, reusing the build (no cargo build step in the timing).
    Nextest,
}

struct Config {
    label: &'static str,
    variant: Variant,
    runner: Runner,
}

const CONFIGS: [Config; 5] = [
    Config {
        label: "racy, cargo test --test-threads=1",
        variant: Variant::Racy,
        runner: Runner::Libtest(Some(1)),
    },
    Config {
        label: "racy, cargo test (parallel)",
        variant: Variant::Racy,
        runner: Runner::Libtest(None),
    },
    Config {
        label: "isofix, cargo test",
        variant: Variant::Isofix,
        runner: Runner::Libtest(None),
    },
    Config {
        label: "isofix, cargo nextest run -j 2",
        variant: Variant::Isofix,
        runner: Runner::Nextest,
    },
    Config {
        label: "hand-made, cargo nextest run -j 2",
        variant: Variant::HandMade,
        runner: Runner::Nextest,
    },
];

/// A built variant: its directory and its test binary.
struct Built {
    dir: PathBuf,
    binary: PathBuf,
}

fn main() {
    let rounds = match std::env::args().nth(1) {
        None => DEFAULT_ROUNDS,
        Some(n) => n.parse().unwrap_or_else(|_| {
            eprintln!("usage: cargo run -p isofix-suite-bench --release [-- ROUNDS]");
            std::process::exit(2)
        }),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("the workspace root");
    let work = root.join("target").join("suite-bench");
    let target = work.join("target");
    std::fs::create_dir_all(&work).unwrap();

    eprintln!("generating and building the suites in {}", work.display());
    let built: Vec<(Variant, Built)> = [Variant::Racy, Variant::Isofix, Variant::HandMade]
        .into_iter()
        .map(|v| (v, build(v, &generate(v, &root, &work), &target)))
        .collect();
    let built_for = |v: Variant| &built.iter().find(|(b, _)| *b == v).unwrap().1;

    let load_before = load_average();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); CONFIGS.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); CONFIGS.len()];
    let mut failures = vec![0usize; CONFIGS.len()];
    for round in 0..rounds {
        // A rotating order, reversed every other round, so that each configuration runs
        // before and after each other one equally often.
        let mut order: Vec<usize> = (0..CONFIGS.len())
            .map(|k| (round / 2 + k) % CONFIGS.len())
            .collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let config = &CONFIGS[i];
            let cpu_before = children_cpu_seconds();
            let (seconds, failed) = run(config, built_for(config.variant), &target);
            let cpu_seconds = children_cpu_seconds() - cpu_before;
            eprintln!(
                "round {}/{rounds}: {:<36} {seconds:>6.2} s ({cpu_seconds:.2} s CPU), {failed} \
                 failed",
                round + 1,
                config.label
            );
            times[i].push(seconds);
            cpu[i].push(cpu_seconds);
            failures[i] += failed;
        }
    }
    let load_after = load_average();

    let medians: Vec<f64> = times.iter().map(|t| median(t.clone())).collect();
    let cpu_medians: Vec<f64> = cpu.iter().map(|t| median(t.clone())).collect();
    println!(
        "{TESTS} tests ({} sharing a resource), {rounds} alternated rounds, {} CPUs, \
         load average {load_before} before and {load_after} after",
        TESTS / SHARED_EVERY,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "  {:<36} {:>9} {:>15} {:>11} {:>18}",
        "configuration", "wall", "vs racy serial", "CPU", "failed (all runs)"
    );
    for (i, config) in CONFIGS.iter().enumerate() {
        println!(
            "  {:<36} {:>7.2} s {:>14.2}x {:>9.2} s {:>10} of {}",
            config.label,
            medians[i],
            medians[i] / medians[0],
            cpu_medians[i],
            failures[i],
            TESTS * rounds
        );
    }
    let per_round: Vec<f64> = times[3].iter().zip(&times[4]).map(|(a, b)| a / b).collect();
    println!(
        "  isofix / hand-made under nextest: wall {:.3}x (medians), {:.3}x (median of the \
         rounds' ratios); CPU {:.3}x (medians)",
        medians[3] / medians[4],
        median(per_round),
        cpu_medians[3] / cpu_medians[4]
    );
}

/// The user and system CPU time of this process's waited-for children, from
/// `/proc/self/stat` (fields 16 and 17, in clock ticks, taken as the usual 100 a second);
/// 0 where it cannot be read.
fn children_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // `rest` starts at field 3 (state): cutime is field 16, cstime field 17.
    (ticks(13) + ticks(14)) / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 1-minute load average, or `?` where `/proc/loadavg` cannot be read.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Writes the crate of `variant` under `work`; returns its directory.
fn generate(variant: Variant, root: &Path, work: &Path) -> PathBuf {
    let dir = work.join(variant.name());
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let dependency = match variant {
        Variant::Isofix => format!("isofix = {{ path = {:?} }}\n", root.display().to_string()),
        Variant::Racy | Variant::HandMade => String::new(),
    };
    write_if_changed(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"suite-{}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n# Not part of the isofix workspace it lies in.\n[workspace]\n\n\
             [dependencies]\n{dependency}",
            variant.name()
        ),
    );
    write_if_changed(&dir.join("src/lib.rs"), "");
    if variant == Variant::HandMade {
        std::fs::create_dir_all(dir.join(".config")).unwrap();
        write_if_changed(
            &dir.join(".config/nextest.toml"),
            "[test-groups]\nshared = { max-threads = 1 }\n\n\
             [[profile.default.overrides]]\nfilter = 'test(/^shared_/)'\ntest-group = 'shared'\n",
        );
    }
    let shared = work.join(format!("shared-{}", variant.name()));
    write_if_changed(&dir.join("tests/suite.rs"), &suite(variant, &shared, work));
    dir
}

/// Writes `text` to `path` unless it holds it already, so that cargo rebuilds nothing
/// on a second run.
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

/// The source of the test file of `variant`.
fn suite(variant: Variant, shared: &Path, work: &Path) -> String {
    let mut source = format!(
        "//! Generated by isofix-suite-bench: {TESTS} tests, the {} variant.\n\n{COMMON}\n\
         const SHARED: &str = {:?};\n",
        variant.name(),
        shared.display().to_string()
    );
    source.push_str(&match variant {
        Variant::Racy => RACY
            .replace("RACY_PORT", &RACY_PORT.to_string())
            .replace("RACY_DIR", &format!("{:?}", work.join("racy-data"))),
        Variant::Isofix => ISOFIX.to_owned(),
        Variant::HandMade => HAND_MADE.to_owned(),
    });
    for id in 0..TESTS {
        let shared = id % SHARED_EVERY == SHARED_EVERY - 1;
        let name = if shared {
            format!("shared_{id:03}")
        } else {
            format!("t_{id:03}")
        };
        source.push_str("\n#[test]\n");
        if shared && variant == Variant::Isofix {
            source.push_str("#[isofix::serial_group(\"isofix-suite-bench\")]\n");
        }
        source.push_str(&format!("fn {name}() {{\n"));
        if shared {
            source.push_str("    let _shared = Shared::take();\n");
        }
        source.push_str(&format!("    run({id}, {name:?});\n}}\n"));
    }
    source
}

/// What every variant's tests do; each variant supplies `run`, which sets up a listener
/// and a directory and calls `exercise`.
const COMMON: &str = r#"use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The server: one connection, an echo for each line.
fn serve(listener: TcpListener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else { return };
        drop(listener);
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if writer.write_all(format!("echo {line}").as_bytes()).is_err() {
                return;
            }
        }
    })
}

/// 10 requests to the test's server, then 5 files written and read back around a wait on
/// a slow dependency.
fn exercise(id: usize, listener: TcpListener, dir: &Path) {
    let addr = listener.local_addr().unwrap();
    let server = serve(listener);
    let stream = TcpStream::connect(addr).unwrap();
    // A bound on a wrong server's silence in the racy variant, not a timing check.
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for r in 0..10 {
        let request = format!("request {id} {r}\n");
        writer.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        assert_eq!(reply, format!("echo {request}"));
    }
    drop((reader, writer));
    server.join().unwrap();
    for f in 0..5 {
        std::fs::write(dir.join(format!("file{f}")), format!("test {id} file {f}")).unwrap();
    }
    // The simulated slow dependency.
    std::thread::sleep(Duration::from_millis(10));
    for f in 0..5 {
        let text = std::fs::read_to_string(dir.join(format!("file{f}"))).unwrap();
        assert_eq!(text, format!("test {id} file {f}"));
    }
}

/// The resource one test in ten uses, which only one test may use at a time: taking it
/// while another test holds it fails the test.
struct Shared(PathBuf);

impl Shared {
    fn take() -> Shared {
        let path = PathBuf::from(SHARED);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("another test is using the shared resource");
        Shared(path)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
"#;

const RACY: &str = r#"
fn run(id: usize, _name: &str) {
    let listener = TcpListener::bind(("127.0.0.1", RACY_PORT)).unwrap();
    let dir = Path::new(RACY_DIR);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    exercise(id, listener, dir);
}
"#;

const ISOFIX: &str = r#"
fn run(id: usize, _name: &str) {
    let tcp = isofix::EphemeralTcp::bind().unwrap();
    let dir = isofix::IsolatedDir::new().unwrap();
    exercise(id, tcp.into_listener(), dir.path());
}
"#;

const HAND_MADE: &str = r#"
/// A directory named by process and test, removed on drop.
struct HandDir(PathBuf);

impl Drop for HandDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(id: usize, name: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let path = std::env::temp_dir().join(format!("suite-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&path).unwrap();
    let dir = HandDir(path);
    exercise(id, listener, &dir.0);
}
"#;

/// A cargo command in `dir`, building into `target`.
fn cargo(dir: &Path, target: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUST_TEST_THREADS");
    command
}

fn check(output: Output, what: &str) -> Output {
    if !output.status.success() {
        panic!(
            "{what} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Builds the variant in `dir`: its test binary, and the metadata that lets nextest run
/// it without a cargo build step.
fn build(variant: Variant, dir: &Path, target: &Path) -> Built {
    eprintln!("building the {} suite", variant.name());
    let out = check(
        cargo(dir, target)
            .args(["test", "--no-run", "--message-format=json"])
            .stderr(Stdio::inherit())
            .output()
            .unwrap(),
        "cargo test --no-run",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let binary = stdout
        .lines()
        .filter(|l| l.contains("\"name\":\"suite\""))
        .find_map(|l| {
            let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = start + l[start..].find('"')?;
            Some(PathBuf::from(&l[start..end]))
        })
        .expect("the test binary's path in cargo's output");
    let binaries = check(
        cargo(dir, target)
            .args([
                "nextest",
                "list",
                "--list-type",
                "binaries-only",
                "--message-format",
                "json",
            ])
            .stderr(Stdio::inherit())
            .output()
            .unwrap(),
        "cargo nextest list",
    );
    std::fs::write(dir.join("binaries.json"), binaries.stdout).unwrap();
    let metadata = check(
        cargo(dir, target)
            .args(["metadata", "--format-version", "1"])
            .output()
            .unwrap(),
        "cargo metadata",
    );
    std::fs::write(dir.join("cargo-metadata.json"), metadata.stdout).unwrap();
    Built {
        dir: dir.to_owned(),
        binary,
    }
}

/// Runs `config` once; returns its wall time in seconds and how many tests failed.
fn run(config: &Config, built: &Built, target: &Path) -> (f64, usize) {
    let mut command = match config.runner {
        Runner::Libtest(threads) => {
            let mut command = Command::new(&built.binary);
            command
                .current_dir(&built.dir)
                .env_remove("RUST_TEST_THREADS");
            if let Some(threads) = threads {
                command.arg(format!("--test-threads={threads}"));
            }
            command
        }
        Runner::Nextest => {
            let mut command = cargo(&built.dir, target);
            command.args(["nextest", "run", "-j", "2", "--no-fail-fast"]);
            command
                .arg("--binaries-metadata")
                .arg(built.dir.join("binaries.json"));
            command
                .arg("--cargo-metadata")
                .arg(built.dir.join("cargo-metadata.json"));
            command
        }
    };
    command
        .env_remove("ISOFIX_TMPDIR")
        .env_remove("ISOFIX_KEEP");
    let start = Instant::now();
    let output = command.stdin(Stdio::null()).output().unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let failed = failed_count(&text);
    if failed == 0 && !output.status.success() {
        panic!("{} failed without failing tests:\n{text}", config.label);
    }
    (seconds, failed)
}

/// The failed-test count of libtest's `test result:` line or nextest's summary.
fn failed_count(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("test result:") || l.contains("tests run:"))
        .find_map(|l| {
            let words: Vec<&str> = l.split([' ', ';', ',']).filter(|w| !w.is_empty()).collect();
            let at = words.iter().position(|w| *w == "failed")?;
            words.get(at.checked_sub(1)?)?.parse().ok()
        })
        .unwrap_or(0)
}
