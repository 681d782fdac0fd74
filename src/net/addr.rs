//! Addresses shared by the TCP and UDP guards: where they bind, what a client dials, and
//! the hint that goes with a failed bind.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::sys;

/// `ip:0`: the kernel picks the port while binding, so nobody else can take it first.
pub(crate) fn any_port(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, 0)
}

/// The address a client should dial to reach a socket bound to `addr`. The unspecified
/// address (`0.0.0.0`, `::`) means "every interface" to `bind(2)` but is no portable
/// destination (Windows refuses it), so it becomes the loopback address of its family.
pub(crate) fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// `scheme://host:port` for [`connectable`]`(addr)`, IPv6 hosts in brackets (RFC 3986).
/// A trailing `://` on `scheme` is tolerated, so `url("http")` and `url("http://")` agree.
pub(crate) fn url(scheme: &str, addr: SocketAddr) -> String {
    let scheme = scheme.strip_suffix("://").unwrap_or(scheme);
    // `SocketAddr`'s `Display` already brackets IPv6 hosts: `[::1]:8080`.
    format!("{scheme}://{}", connectable(addr))
}

/// What to do about `err`, raised while creating or binding a socket for `ip`.
pub(crate) fn bind_hint(ip: IpAddr, err: &io::Error) -> String {
    let unavailable =
        err.kind() == ErrorKind::AddrNotAvailable || sys::is_address_family_unsupported(err);
    match ip {
        IpAddr::V6(v6) if unavailable && v6.is_loopback() => {
            "IPv6 loopback ::1 is not available here; use bind() for IPv4 127.0.0.1".to_owned()
        }
        IpAddr::V6(_) if sys::is_address_family_unsupported(err) => {
            "IPv6 is not available on this host; use bind() for IPv4 127.0.0.1".to_owned()
        }
        _ if unavailable => format!(
            "{ip} is not an address of this host; use bind() for 127.0.0.1, bind_v6() for ::1, \
             or an address of one of this host's interfaces"
        ),
        _ => match err.kind() {
            ErrorKind::AddrInUse => "no ephemeral port is free (the kernel's port range is \
                                     exhausted); drop sockets you no longer need"
                .to_owned(),
            ErrorKind::PermissionDenied => "the OS refused to open or bind a socket here \
                                            (sandbox, seccomp or firewall policy?)"
                .to_owned(),
            _ => "bind() uses 127.0.0.1 and bind_v6() uses ::1, which every host with \
                  networking has"
                .to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_brackets_ipv6_and_tolerates_separator() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(url("http", v4), "http://127.0.0.1:8080");
        assert_eq!(url("ws://", v4), "ws://127.0.0.1:8080");
        assert_eq!(url("http", v6), "http://[::1]:8080");
    }

    #[test]
    fn unspecified_becomes_loopback_of_its_family() {
        let any4: SocketAddr = "0.0.0.0:7".parse().unwrap();
        let any6: SocketAddr = "[::]:7".parse().unwrap();
        let other: SocketAddr = "10.1.2.3:7".parse().unwrap();
        assert_eq!(connectable(any4), "127.0.0.1:7".parse().unwrap());
        assert_eq!(connectable(any6), "[::1]:7".parse().unwrap());
        assert_eq!(connectable(other), other);
        assert_eq!(url("http", any6), "http://[::1]:7");
    }

    #[test]
    fn hints_match_the_failure() {
        let not_here = io::Error::from(ErrorKind::AddrNotAvailable);
        let v6_hint = bind_hint(Ipv6Addr::LOCALHOST.into(), &not_here);
        assert!(
            v6_hint.contains("IPv6 loopback ::1 is not available"),
            "{v6_hint}"
        );
        assert!(v6_hint.contains("bind()"), "{v6_hint}");

        let foreign: IpAddr = "192.0.2.1".parse().unwrap();
        let hint = bind_hint(foreign, &not_here);
        assert!(
            hint.contains("192.0.2.1 is not an address of this host"),
            "{hint}"
        );

        let in_use = bind_hint(
            Ipv4Addr::LOCALHOST.into(),
            &io::Error::from(ErrorKind::AddrInUse),
        );
        assert!(in_use.contains("ephemeral port"), "{in_use}");
    }
}
