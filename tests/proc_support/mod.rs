//! Counts read from `/proc` (Linux): descriptors, threads and processes, for the proofs
//! that isofix leaks none of them. Run the counted work in a dedicated child process
//! (`tests/support/child.rs`), where tests running beside it cannot change the counts.

#![allow(dead_code)] // Each test binary uses a different part.

use std::fs;

/// Open descriptors of this process (entries of `/proc/self/fd`, less the one that lists
/// them).
pub fn fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

/// Threads of this process (entries of `/proc/self/task`).
pub fn threads() -> usize {
    fs::read_dir("/proc/self/task").unwrap().count()
}

/// `(pid, ppid, pgrp)` of every process in `/proc` (those that vanish while read are
/// left out).
pub fn processes() -> Vec<(u32, u32, u32)> {
    let mut all = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if let (Some(ppid), Some(pgrp)) = (fields.get(1), fields.get(2)) {
            all.push((pid, ppid.parse().unwrap(), pgrp.parse().unwrap()));
        }
    }
    all
}

/// The processes (zombies included) whose parent is this process.
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    processes()
        .into_iter()
        .filter(|&(_, ppid, _)| ppid == me)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// The live processes (not zombies) in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|&(pid, _, pgrp)| pgrp == pgid && !is_zombie(pid))
        .map(|(pid, _, _)| pid)
        .collect()
}

/// The live processes (not zombies) in any of the process groups `groups`, as
/// `(pid, ppid, pgrp)`.
pub fn alive_in_groups(groups: &[u32]) -> Vec<(u32, u32, u32)> {
    processes()
        .into_iter()
        .filter(|p| groups.contains(&p.2) && !is_zombie(p.0))
        .collect()
}

/// Whether `pid` is a zombie (dead, waiting to be reaped) or already gone.
pub fn is_zombie(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| matches!(&stat[i + 2..i + 3], "Z" | "X")),
        Err(_) => true,
    }
}
