//! `cargo isofix`: find a suite's flaky tests, tell why each flakes and how to fix it, and
//! prove the fix.

mod cargo;
mod catalogue;
mod classify;
mod clean;
mod groups;
mod holders;
mod lint;
mod results;
mod stress;
mod style;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Find flaky tests, name their root cause and the one-line isofix fix, and prove it.
#[derive(Parser, Debug)]
#[command(
    name = "cargo isofix",
    bin_name = "cargo isofix",
    version,
    after_help = "Exit status: 0 when all is well, 1 when a flake or a finding was found, \
                  2 when the command could not do its work.\n\
                  Guide: docs/diagnosing-flakes.md in the isofix repository."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the test suite again and again, and catalogue the tests that failed: flake
    /// rate, first failure, root cause and the isofix fix.
    Stress(stress::StressArgs),
    /// Scan test code for the patterns behind flaky parallel tests, each with the file and
    /// line, why it flakes and the one-line isofix change.
    Lint(lint::LintArgs),
    /// Write (or --check) nextest test groups in .config/nextest.toml that match the
    /// workspace's serial_group attributes.
    NextestGroups(groups::GroupsArgs),
    /// List who holds or waits for which serial groups right now: pid, state, mode, age,
    /// group and test.
    Holders(holders::HoldersArgs),
    /// Remove the isolated directories that crashed or killed test processes left behind;
    /// never anything of a live process.
    Clean(clean::CleanArgs),
    /// Run the flake demo: classic flaky patterns next to their isofix versions.
    Demo,
}

fn main() -> ExitCode {
    // As `cargo isofix ...`, cargo passes "isofix" as the first argument; run directly as
    // `cargo-isofix ...`, it does not.
    let mut args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "isofix") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Stress(args) => stress::run(args).map_err(std::io::Error::other),
        Command::Lint(args) => lint::run(args).map_err(std::io::Error::other),
        Command::NextestGroups(args) => groups::run(args).map_err(std::io::Error::other),
        Command::Holders(args) => holders::run(args),
        Command::Clean(args) => clean::run(args),
        Command::Demo => isofix_demo::run().map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        style::error(&e.to_string());
        ExitCode::from(2)
    })
}
