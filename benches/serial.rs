//! `cargo bench --bench serial`: what a `SerialGuard` costs next to a raw `flock` and to
//! `serial_test`, uncontended and when handing the lock between two processes.
//!
//! Handoffs use three locks in rotation between this process and a copy of itself: each
//! side holds one, takes the next (waiting until the other side lets go of it) and then
//! lets go of the one it held, so every step is a real handoff through the kernel.

// The raw baseline is std's `File::lock` (1.89). Benchmarks are built by isofix's own
// developers with a current toolchain, never by users, so the library's MSRV does not bind them.
#![allow(clippy::incompatible_msrv)]

mod support;

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use isofix::SerialGuard;
use serial_test::{file_serial, serial};
use support::{median, per_op, time, verdict};

const ROLE_VAR: &str = "ISOFIX_BENCH_ROLE";
const UNCONTENDED: u32 = 20_000;
const SERIAL_TEST_ROUNDS: u32 = 5_000;
const STEPS: u32 = 2_000;
const SHARED_ROUNDS: u32 = 5_000;
const ROUNDS: usize = 5;

#[file_serial(isofix_bench)]
fn with_file_serial() {
    black_box(());
}

#[serial(isofix_bench)]
fn with_serial() {
    black_box(());
}

/// One side of the rotation over three locks.
trait Rotation {
    type Held;
    fn take(&mut self, i: usize) -> Self::Held;
}

struct RawFlock(Vec<File>);

impl Rotation for RawFlock {
    type Held = usize;
    fn take(&mut self, i: usize) -> usize {
        self.0[i].lock().unwrap();
        i
    }
}

struct RawHeld<'a>(&'a File);
impl Drop for RawHeld<'_> {
    fn drop(&mut self) {
        self.0.unlock().unwrap();
    }
}

struct Guards {
    names: Vec<String>,
    shared: bool,
}

impl Rotation for Guards {
    type Held = SerialGuard;
    fn take(&mut self, i: usize) -> SerialGuard {
        let b = SerialGuard::group(self.names[i].as_str());
        if self.shared { b.shared() } else { b }.acquire().unwrap()
    }
}

/// Starting on lock `first` (already held), `steps` times: take the next lock, let go of
/// the current one.
fn rotate_from<R: Rotation>(
    r: &mut R,
    first: usize,
    current: &mut R::Held,
    steps: u32,
    release: &impl Fn(&mut R, R::Held),
) {
    let mut at = first;
    for _ in 0..steps {
        at = (at + 1) % 3;
        let next = r.take(at);
        let old = std::mem::replace(current, next);
        release(r, old);
    }
}

fn release_raw(r: &mut RawFlock, i: usize) {
    r.0[i].unlock().unwrap();
}

fn release_guard(_: &mut Guards, g: SerialGuard) {
    drop(g);
}

fn open_three(dir: &Path) -> Vec<File> {
    (0..3)
        .map(|i| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(format!("raw{i}")))
                .unwrap()
        })
        .collect()
}

/// The child's side: hold lock 1, say so, rotate, exit.
fn child(role: &str) {
    let args: Vec<&str> = role.split('\x1f').collect();
    let steps: u32 = args[2].parse().unwrap();
    let ready = || {
        println!("ready");
        std::io::stdout().flush().unwrap();
        let mut go = [0u8; 1];
        std::io::stdin().read_exact(&mut go).unwrap();
    };
    match args[0] {
        "raw" => {
            let mut r = RawFlock(open_three(Path::new(args[1])));
            let mut cur = r.take(1);
            ready();
            rotate_from(&mut r, 1, &mut cur, steps, &release_raw);
            release_raw(&mut r, cur);
        }
        "guard" | "guard-exclusive" => {
            let names = args[1].split('\x1e').map(str::to_owned).collect();
            let mut r = Guards {
                names,
                shared: false,
            };
            let mut cur = r.take(1);
            ready();
            rotate_from(&mut r, 1, &mut cur, steps, &release_guard);
            drop(cur);
        }
        other => panic!("unknown role {other}"),
    }
}

/// Runs the parent's side against a child playing `kind`; nanoseconds per step.
fn handoff<R: Rotation>(
    kind: &str,
    arg: &str,
    r: &mut R,
    release: impl Fn(&mut R, R::Held),
) -> f64 {
    let mut current = r.take(0);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE_VAR, format!("{kind}\x1f{arg}\x1f{STEPS}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let mut stdin = child.stdin.take().unwrap();
    let start = Instant::now();
    stdin.write_all(b"g").unwrap();
    rotate_from(r, 0, &mut current, STEPS, &release);
    release(r, current);
    assert!(child.wait().unwrap().success());
    // Both sides take STEPS steps, interleaved: 2 * STEPS handoffs.
    per_op(start.elapsed(), 2 * STEPS)
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_VAR) {
        return child(&role);
    }
    // Cargo passes `--bench`; nothing else is expected.
    let tmp = std::env::temp_dir().join(format!("isofix-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let dir: PathBuf = tmp.clone();

    // Each figure is the median of ROUNDS runs, the contenders interleaved, so that noise
    // from other processes on the machine hits them alike.
    let raw_file = open_three(&dir).remove(0);
    let group = "isofix-bench-uncontended".to_owned();
    let rot: Vec<String> = (0..3).map(|i| format!("isofix-bench-rot{i}")).collect();
    let sx: Vec<String> = (0..3).map(|i| format!("isofix-bench-sx{i}")).collect();
    let mut m: [Vec<f64>; 8] = Default::default();
    for _ in 0..ROUNDS {
        m[0].push(time(UNCONTENDED, || {
            raw_file.lock().unwrap();
            drop(RawHeld(&raw_file));
        }));
        m[1].push(time(UNCONTENDED, || {
            drop(SerialGuard::lock(&group).unwrap())
        }));
        m[2].push(time(SHARED_ROUNDS, || {
            drop(SerialGuard::shared(&group).unwrap())
        }));
        m[3].push(time(SERIAL_TEST_ROUNDS, with_file_serial));
        m[4].push(time(UNCONTENDED, with_serial));
        let mut r = RawFlock(open_three(&dir));
        m[5].push(handoff("raw", dir.to_str().unwrap(), &mut r, release_raw));
        let mut g = Guards {
            names: rot.clone(),
            shared: false,
        };
        m[6].push(handoff("guard", &rot.join("\x1e"), &mut g, release_guard));
        let mut g = Guards {
            names: sx.clone(),
            shared: true,
        };
        m[7].push(handoff(
            "guard-exclusive",
            &sx.join("\x1e"),
            &mut g,
            release_guard,
        ));
    }
    let [raw, guard, shared, file_serial, in_process, raw_handoff, guard_handoff, shared_handoff] =
        m.map(median);
    println!("uncontended acquire + release, per operation (median of {ROUNDS} runs):");
    println!("  raw flock (pre-opened file)     {raw:>10.0} ns");
    println!("  SerialGuard::lock               {guard:>10.0} ns");
    println!("  SerialGuard::shared             {shared:>10.0} ns");
    println!("  serial_test #[file_serial]      {file_serial:>10.0} ns");
    println!("  serial_test #[serial] (in-proc) {in_process:>10.0} ns");
    println!("two-process handoff (3-lock rotation), per handoff:");
    println!("  raw flock                       {raw_handoff:>10.0} ns");
    println!("  SerialGuard exclusive           {guard_handoff:>10.0} ns");
    println!("  SerialGuard shared <-> excl.    {shared_handoff:>10.0} ns");

    let r1 = guard / raw;
    let r2 = file_serial / guard;
    let r3 = guard_handoff / raw_handoff;
    // Descriptors kept after 10,000 distinct groups: the documented bound is 24 (4 lock
    // directories, 6 each), whatever the number of groups.
    let fds = || std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let many = dir.join("many");
    let before = fds();
    for i in 0..10_000 {
        let guard = SerialGuard::group(format!("isofix-bench-many {i}"))
            .lock_dir(&many)
            .acquire()
            .unwrap();
        drop(guard);
    }
    let after = fds();
    println!("descriptors around 10,000 distinct groups: {before} -> {after}");

    println!("targets:");
    println!("  uncontended lock / raw flock:              {r1:.2}x  (reported)");
    println!(
        "  uncontended lock >= 3x faster than file_serial: {r2:.1}x  {}",
        verdict(r2 >= 3.0)
    );
    println!(
        "  handoff within 1.5x raw flock:             {r3:.2}x  {}",
        verdict(r3 <= 1.5)
    );
    println!(
        "  shared -> exclusive handoff < 1 ms:        {:.3} ms  {}",
        shared_handoff / 1e6,
        verdict(shared_handoff < 1e6)
    );
    println!(
        "  descriptors after 10,000 groups <= start + 24: +{}  {}",
        after.saturating_sub(before),
        verdict(after <= before + 24)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
