//! `cargo isofix clean`: removes the isolated directories (with their Unix sockets'
//! directories) and the serial holder records that processes which died without unwinding
//! left behind, through the library's own sweeps.

use std::process::ExitCode;

use clap::Args;
use isofix::IsolatedDir;

#[derive(Args, Debug)]
#[command(
    after_help = "Only directories whose owner process is gone are removed: every process \
    that makes isolated directories holds a lock for its whole life, which the kernel drops \
    when it dies, and a directory is removed only if it is a real directory of yours named \
    by isofix for that dead process. Directories kept on purpose (keep, keep_if, \
    ISOFIX_KEEP) are never removed. The private directories of dead processes' Unix sockets \
    (EphemeralUnix, EphemeralUnixDatagram) are recorded in the same registry, and removed \
    and counted with them.\n\n\
    The registry of owners is found like the tests find it: run clean with the same TMPDIR \
    as the tests.\n\n\
    Serial groups' locks die with their holders; the holder records that dead processes \
    left in the lock directory (ISOFIX_LOCK_DIR, else the default one) are removed too \
    (a record file is stale when no live process holds its lock).\n\n\
    Exit status: 0 when everything found was removed (or, with --dry-run, listed); 2 when \
    something could not be removed or the registry could not be read."
)]
pub struct CleanArgs {
    /// List what would be removed, and remove nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: CleanArgs) -> std::io::Result<ExitCode> {
    if args.dry_run {
        let found = IsolatedDir::list_stale()?;
        for path in &found {
            println!("would remove {}", path.display());
        }
        let records = isofix::serial::stale_records(None)?;
        for path in &records {
            println!("would remove {}", path.display());
        }
        println!("{} (dry run).", count(found.len(), "would be removed"));
        if !records.is_empty() {
            println!(
                "{} stale holder record file(s) would be removed.",
                records.len()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut removed = 0;
    let mut failed = 0;
    for (path, result) in IsolatedDir::sweep_stale()? {
        match result {
            Ok(()) => {
                removed += 1;
                println!("removed {}", path.display());
            }
            Err(e) => {
                failed += 1;
                crate::style::error(&e.to_string());
            }
        }
    }
    let records = isofix::serial::remove_stale_records(None)?;
    for path in &records {
        println!("removed {}", path.display());
    }
    println!("{}.", count(removed, "removed"));
    if !records.is_empty() {
        println!("{} stale holder record file(s) removed.", records.len());
    }
    if failed > 0 {
        println!("{failed} could not be removed; a later sweep tries again.");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// "No stale isolated directory removed", "1 stale isolated directory removed", …
fn count(n: usize, what: &str) -> String {
    match n {
        0 => format!("No stale isolated directory {what}"),
        1 => format!("1 stale isolated directory {what}"),
        n => format!("{n} stale isolated directories {what}"),
    }
}
