//! The crate's own proof under load: ports, isolated directories and a serial group used
//! together by many threads in this process and in several child processes at once, with
//! `isofix::stress` counting every failure. Any port taken twice, directory shared, or two
//! holders inside the group fails an iteration.
//!
//! The CI tier runs [`CI_ITERATIONS`] in all (about half a minute on 2 busy cores);
//! `ISOFIX_STRESS_LONG=1` runs the long tier of [`LONG_ITERATIONS`].

#[path = "support/child.rs"]
mod child;

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use isofix::stress::{Iteration, Stress};
use isofix::{EphemeralTcp, IsolatedDir, SerialGuard};

const CI_ITERATIONS: u64 = 8_000;
const LONG_ITERATIONS: u64 = 100_000;
/// Child processes, each with [`WORKERS`] threads, beside the parent's own.
const CHILDREN: u64 = 3;
const WORKERS: usize = 4;
/// A bound on waiting for the group, so that a bug fails instead of hanging.
const SAFETY: Duration = Duration::from_secs(60);

/// One iteration: a live port that must carry our bytes, a private directory that must
/// keep what we wrote, and the group, whose marker file must not already exist.
fn iteration(it: Iteration, group: &str, shared: &Path) -> io::Result<()> {
    let srv = EphemeralTcp::bind()?;
    let mut client = srv.connect()?;
    let (mut conn, _) = srv.accept()?;
    let sent = it.seed().to_le_bytes();
    client.write_all(&sent)?;
    let mut got = [0; 8];
    conn.read_exact(&mut got)?;
    if got != sent {
        return Err(other(format!(
            "port {}: read {got:?}, sent {sent:?}",
            srv.port()
        )));
    }

    let dir = IsolatedDir::new()?;
    let file = dir.join("data");
    fs::write(&file, sent)?;
    if fs::read(&file)? != sent {
        return Err(other(format!(
            "{} was changed by someone else",
            file.display()
        )));
    }
    dir.close()?;

    let _guard = SerialGuard::group(group).timeout(SAFETY).acquire()?;
    let marker = shared.join("inside");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .map_err(|e| other(format!("two holders of {group:?} at once: {e}")))?;
    fs::remove_file(&marker)
}

#[test]
fn ports_dirs_and_groups_hold_under_stress_across_threads_and_processes() {
    if child::role().as_deref() == Some("worker") {
        let mut args = std::env::args().skip_while(|a| a != "--").skip(1);
        let (group, shared, iterations) = (
            args.next().unwrap(),
            args.next().unwrap(),
            args.next().unwrap(),
        );
        let report = Stress::new()
            .iterations(iterations.parse().unwrap())
            .workers(WORKERS)
            .run(|it| iteration(it, &group, Path::new(&shared)));
        child::say(&format!("{} {}", report.runs(), report.failed()));
        report.assert_clean();
        return;
    }
    let total = if std::env::var_os("ISOFIX_STRESS_LONG").is_some() {
        LONG_ITERATIONS
    } else {
        CI_ITERATIONS
    };
    let per_process = total / (CHILDREN + 1);
    let shared = IsolatedDir::new().unwrap();
    let group = format!("isofix-test stress {}", uuid::Uuid::new_v4());
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            let mut command = child::command(
                "ports_dirs_and_groups_hold_under_stress_across_threads_and_processes",
                "worker",
            );
            command.args([
                "--",
                &group,
                shared.path().to_str().unwrap(),
                &per_process.to_string(),
            ]);
            child::Child::spawn(&mut command)
        })
        .collect();
    let report = Stress::new()
        .iterations(per_process)
        .workers(WORKERS)
        .run(|it| iteration(it, &group, shared.path()));
    println!("{report}");
    for mut c in children {
        let said = c.read_marked();
        let finished = c.finish();
        assert_eq!(
            said,
            format!("{per_process} 0"),
            "a child failed: {finished:?}"
        );
        finished.assert_success();
    }
    report.assert_clean();
}

/// `io::Error::other`, which is stable only since 1.74, above the MSRV.
fn other(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::Other, message)
}
