//! `cargo isofix holders`: who holds or waits for which serial groups right now, read from
//! the records every `SerialGuard` keeps beside its locks.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use serde::Serialize;

use crate::style;

#[derive(Args, Debug)]
#[command(
    after_help = "Lists the holders and waiting requests of live processes only: a process \
    that is gone drops its locks and is left out. Pids are in the holder's own pid namespace. \
    GROUP is the group's lock file stem: a readable slug of its name and a hash of it.\n\n\
    Exit status: 0 when the lock directory was read (whether or not anything is held), \
    2 when it could not be."
)]
pub struct HoldersArgs {
    /// The lock directory to read.
    #[arg(
        long,
        value_name = "DIR",
        help = "The lock directory [default: $ISOFIX_LOCK_DIR, else /tmp/isofix-<uid>/locks]"
    )]
    lock_dir: Option<PathBuf>,
    /// Print a JSON array of holders instead of a table
    #[arg(long)]
    json: bool,
}

/// One holder or waiting request, as printed.
#[derive(Debug, Serialize)]
struct Row {
    pid: u32,
    /// `held` or `waiting`.
    state: &'static str,
    mode: String,
    /// Seconds since it started holding or waiting.
    age_secs: f64,
    group: String,
    test: Option<String>,
}

pub fn run(args: HoldersArgs) -> std::io::Result<ExitCode> {
    let now = SystemTime::now();
    let mut rows: Vec<Row> = isofix::serial::holders(args.lock_dir.as_deref())?
        .into_iter()
        .map(|h| Row {
            pid: h.pid(),
            state: if h.is_waiting() { "waiting" } else { "held" },
            mode: h.mode().to_owned(),
            age_secs: now
                .duration_since(h.since())
                .unwrap_or_default()
                .as_secs_f64(),
            group: h.group_file().to_owned(),
            test: h.test().map(str::to_owned),
        })
        .collect();
    // By group, holders before waiters, the longest first: who blocks whom reads top down.
    rows.sort_by(|a, b| {
        (&a.group, a.state, b.age_secs)
            .partial_cmp(&(&b.group, b.state, a.age_secs))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows are plain data")
        );
    } else if rows.is_empty() {
        println!("No serial group is held or waited for.");
    } else {
        print!("{}", table(&rows, style::stdout_colours()));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(rows: &[Row], colour: bool) -> String {
    let group_width = rows.iter().map(|r| r.group.len()).max().unwrap_or(0).max(5);
    let mut out = style::strong(
        &format!(
            "{:>8}  {:<7}  {:<11}  {:>8}  {:<group_width$}  TEST",
            "PID", "STATE", "MODE", "AGE", "GROUP"
        ),
        colour,
    );
    out.push('\n');
    for r in rows {
        let state = format!("{:<7}", r.state);
        let state = if r.state == "waiting" {
            style::bad(&state, colour)
        } else {
            state
        };
        out.push_str(&format!(
            "{:>8}  {state}  {:<11}  {:>8}  {:<group_width$}  {}\n",
            r.pid,
            r.mode,
            format!("{:.1} s", r.age_secs),
            r.group,
            r.test.as_deref().unwrap_or("-"),
        ));
    }
    out
}
