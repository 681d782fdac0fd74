//! Who holds a TCP port, read from `/proc` (Linux): for errors about `EADDRINUSE`, the
//! message users search for.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A TCP socket of `/proc/net/tcp{,6}`: its local address and whether it listens.
struct Socket {
    ip: IpAddr,
    listening: bool,
}

/// A process that has some of the sockets open.
struct Holder {
    pid: u32,
    command: String,
    /// The inodes of the sockets it has open.
    sockets: Vec<u64>,
}

impl Holder {
    /// `pid 4242 (redis-server)`.
    fn name(&self) -> String {
        format!("pid {} ({})", self.pid, self.command)
    }
}

/// Lists the processes holding TCP port `port` on any address, e.g. `pid 4242
/// (redis-server, listening)`, reading the sockets from `/proc/net/tcp` and
/// `/proc/net/tcp6` and mapping their inodes to processes through `/proc/<pid>/fd`.
/// What cannot be read (other users' processes, a kernel without `/proc`) is left out;
/// `None` if nothing is found. Sockets that are only bound (a
/// [`ReservedPort`](crate::ReservedPort)'s, say) are not in those tables, so not listed.
pub(crate) fn describe_holders(port: u16) -> Option<String> {
    let sockets = sockets_on(port);
    let list: Vec<String> = processes_with(&sockets)
        .iter()
        .map(|h| {
            let listening = h.sockets.iter().any(|i| sockets[i].listening);
            let state = if listening { "listening" } else { "connected" };
            format!("pid {} ({}, {state})", h.pid, h.command)
        })
        .collect();
    if list.is_empty() {
        return None;
    }
    Some(format!("port {port} is held by {}", list.join(", ")))
}

/// The processes listening where a connection to `addr` may land, when every one of those
/// listening sockets is held by processes that can be named and none of them is in the
/// process group `pgid`: then someone else answers `addr`. `None` when a process of the
/// group holds one of them, when some holder cannot be read (another user's process), or
/// when none is found.
pub(crate) fn foreign_listeners(addr: SocketAddr, pgid: u32) -> Option<String> {
    let sockets: HashMap<u64, Socket> = sockets_on(addr.port())
        .into_iter()
        .filter(|(_, s)| s.listening && reaches(s.ip, addr.ip()))
        .collect();
    let holders = processes_with(&sockets);
    let in_group = |h: &Holder| {
        let dir = std::path::Path::new("/proc").join(h.pid.to_string());
        matches!(crate::sys::proc_state_and_group(&dir), Some((_, g)) if g == pgid)
    };
    let unknown = |i: &u64| !holders.iter().any(|h| h.sockets.contains(i));
    if holders.is_empty() || holders.iter().any(in_group) || sockets.keys().any(unknown) {
        return None;
    }
    let names: Vec<String> = holders.iter().map(Holder::name).collect();
    Some(names.join(", "))
}

/// Whether a listener bound to `local` may accept a connection to `target`: the same
/// address, the unspecified address of its family, `[::]` for IPv4 (dual-stack), or the
/// IPv4-mapped form of an IPv4 target.
fn reaches(local: IpAddr, target: IpAddr) -> bool {
    local == target
        || (local.is_unspecified() && (local.is_ipv6() || target.is_ipv4()))
        || matches!((local, target), (IpAddr::V6(l), IpAddr::V4(t)) if l.to_ipv4_mapped() == Some(t))
}

/// Socket inodes on `port` (local side), with their local address and whether they listen.
fn sockets_on(port: u16) -> HashMap<u64, Socket> {
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
            let Some((ip, local_port)) = local.split_once(':') else {
                continue;
            };
            let local_port = u16::from_str_radix(local_port, 16).ok();
            let inode = inode.parse::<u64>().ok().filter(|&i| i != 0);
            if let (Some(p), Some(inode), Some(ip)) = (local_port, inode, parse_ip(ip)) {
                if p == port {
                    let listening = *state == "0A";
                    found.insert(inode, Socket { ip, listening });
                }
            }
        }
    }
    found
}

/// An address as `/proc/net/tcp{,6}` writes it: the bytes of the address in network
/// order, printed as 32-bit words in the machine's byte order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| {
        let digits = hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(digits, 16).ok()?.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// The processes that have one of `sockets` open.
fn processes_with(sockets: &HashMap<u64, Socket>) -> Vec<Holder> {
    let mut holders = Vec::new();
    if sockets.is_empty() {
        return holders;
    }
    for (pid, dir) in crate::sys::proc_pids() {
        let Ok(fds) = fs::read_dir(dir.join("fd")) else {
            continue;
        };
        let mut held = Vec::new();
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            if let Some(inode) = inode.filter(|i| sockets.contains_key(i)) {
                held.push(inode);
            }
        }
        if !held.is_empty() {
            let command = fs::read_to_string(dir.join("comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_else(|_| "?".to_owned());
            holders.push(Holder {
                pid,
                command,
                sockets: held,
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

    #[test]
    fn reads_addresses_as_proc_writes_them() {
        let v4 = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(
            parse_ip(&format!("{v4:08X}")),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        let one = u32::from_ne_bytes([0, 0, 0, 1]);
        let v6 = format!("{:08X}{:08X}{:08X}{one:08X}", 0, 0, 0);
        assert_eq!(parse_ip(&v6), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn names_a_listener_outside_the_group() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let me = format!("pid {} (", std::process::id());
        // Nobody is in group 0; this process's own group holds the listener.
        let text = foreign_listeners(addr, 0).expect("this process is named");
        assert!(text.starts_with(&me), "{text}");
        let own_group = crate::sys::proc_state_and_group("/proc/self".as_ref())
            .unwrap()
            .1;
        assert_eq!(foreign_listeners(addr, own_group), None);
    }
}
