//! Who holds a TCP port, read from `/proc` (Linux): for errors about `EADDRINUSE`, the
//! message users search for.

use std::collections::HashMap;
use std::fs;

/// One socket on the port and the process that has it open.
struct Holder {
    pid: u32,
    command: String,
    listening: bool,
}

/// Lists the processes holding TCP port `port` on any address, e.g. `pid 4242
/// (redis-server, listening)`, reading the sockets from `/proc/net/tcp` and
/// `/proc/net/tcp6` and mapping their inodes to processes through `/proc/<pid>/fd`.
/// What cannot be read (other users' processes, a kernel without `/proc`) is left out;
/// `None` if nothing is found. Sockets that are only bound (a
/// [`ReservedPort`](crate::ReservedPort)'s, say) are not in those tables, so not listed.
pub(crate) fn describe_holders(port: u16) -> Option<String> {
    let sockets = sockets_on(port);
    if sockets.is_empty() {
        return None;
    }
    let list: Vec<String> = processes_with(&sockets)
        .iter()
        .map(|h| {
            let state = if h.listening {
                "listening"
            } else {
                "connected"
            };
            format!("pid {} ({}, {state})", h.pid, h.command)
        })
        .collect();
    if list.is_empty() {
        return None;
    }
    Some(format!("port {port} is held by {}", list.join(", ")))
}

/// Socket inodes on `port` (local side) and whether each listens.
fn sockets_on(port: u16) -> HashMap<u64, bool> {
    let mut found = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            let inode = inode.parse::<u64>().ok().filter(|&i| i != 0);
            if let (Some(p), Some(inode)) = (local_port, inode) {
                if p == port {
                    found.insert(inode, *state == "0A");
                }
            }
        }
    }
    found
}

/// The processes that have one of `sockets` open.
fn processes_with(sockets: &HashMap<u64, bool>) -> Vec<Holder> {
    let mut holders = Vec::new();
    for (pid, dir) in crate::sys::proc_pids() {
        let Ok(fds) = fs::read_dir(dir.join("fd")) else {
            continue;
        };
        let mut listening = None;
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            if let Some(&listens) = inode.and_then(|i| sockets.get(&i)) {
                listening = Some(listening.unwrap_or(false) || listens);
            }
        }
        if let Some(listening) = listening {
            let command = fs::read_to_string(dir.join("comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_else(|_| "?".to_owned());
            holders.push(Holder {
                pid,
                command,
                listening,
            });
        }
    }
    holders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_this_process_as_the_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = describe_holders(port).expect("the listener is found");
        assert!(
            text.contains(&format!("pid {} (", std::process::id())) && text.contains("listening"),
            "{text}"
        );
    }
}
