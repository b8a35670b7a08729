//! Reads a network namespace's "no route" counters from `/proc/<pid>/net/snmp{,6}`.
//!
//! A sandbox's namespace has only `lo`, so every packet to another address fails route lookup
//! and bumps `Ip: OutNoRoutes` (IPv4) or `Ip6OutNoRoutes` (IPv6): a cheap, exact tell that the
//! command tried to reach the outside.

use crate::result::NetworkAttempts;
use std::path::Path;

/// `proc_net` is `/proc/self/net` or `/proc/<pid>/net`. Missing files read as zero (no IPv6).
pub fn read_no_route_counters(proc_net: &Path) -> NetworkAttempts {
    let v4 = std::fs::read_to_string(proc_net.join("snmp")).unwrap_or_default();
    let v6 = std::fs::read_to_string(proc_net.join("snmp6")).unwrap_or_default();
    NetworkAttempts {
        ipv4_no_route: parse_snmp(&v4, "Ip", "OutNoRoutes").unwrap_or(0),
        ipv6_no_route: parse_snmp6(&v6, "Ip6OutNoRoutes").unwrap_or(0),
    }
}

/// `/proc/net/snmp` holds pairs of lines: `Ip: Forwarding DefaultTTL ...` then `Ip: 1 64 ...`.
fn parse_snmp(text: &str, section: &str, field: &str) -> Option<u64> {
    let prefix = format!("{section}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let names = lines.next()?;
    let values = lines.next()?;
    let index = names.split_whitespace().position(|n| n == field)?;
    values.split_whitespace().nth(index)?.parse().ok()
}

/// `/proc/net/snmp6` holds one `Name value` pair per line.
fn parse_snmp6(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next()? == field).then(|| parts.next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats() {
        let snmp = "Ip: Forwarding DefaultTTL InReceives OutNoRoutes\nIp: 1 64 10 3\nIcmp: InMsgs\nIcmp: 0\n";
        assert_eq!(parse_snmp(snmp, "Ip", "OutNoRoutes"), Some(3));
        let snmp6 = "Ip6InReceives                   \t0\nIp6OutNoRoutes                  \t2\n";
        assert_eq!(parse_snmp6(snmp6, "Ip6OutNoRoutes"), Some(2));
        assert_eq!(parse_snmp6("", "Ip6OutNoRoutes"), None);
    }
}
