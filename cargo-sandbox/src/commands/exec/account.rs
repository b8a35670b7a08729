//! `exec`'s account of one sandboxed command on stderr: how it ended, what it used, what the
//! sandbox caught (OOM kills, refused forks, leaked processes, network attempts, file changes)
//! and what was in force.

use crate::protections;
use harness::units::format_bytes;
use harness::SandboxResult;
use std::fmt::Write;
use std::time::Duration;

/// Whether anything happened that the user must hear about even without `--verbose`.
pub fn is_notable(r: &SandboxResult) -> bool {
    r.timed_out
        || r.usage.oom_kills > 0
        || r.usage.forks_refused > 0
        || r.leaked_total > 0
        || r.network_attempts.total() > 0
        || r.files_written_total > 0
}

pub fn render(r: &SandboxResult, timeout: Option<Duration>) -> String {
    let mut out = String::new();
    let p = "cargo-sandbox:";
    let ended = match (r.timed_out, r.exit.signal_name()) {
        (true, _) => format!(
            "timed out after {} and was killed",
            timeout
                .map(|t| format!("{t:?}"))
                .unwrap_or_else(|| "the deadline".into())
        ),
        (false, Some(signal)) => format!("killed by {signal}"),
        (false, None) => format!("exited with {}", r.exit.shell_code()),
    };
    let u = &r.usage;
    let _ = writeln!(
        out,
        "{p} {ended} after {:.1?}; cpu {:.1?} user + {:.1?} system; peak memory {}; peak pids {}",
        r.wall_time,
        Duration::from_micros(u.cpu_user_us),
        Duration::from_micros(u.cpu_system_us),
        u.memory_peak_bytes.map_or("unknown".into(), format_bytes),
        u.pids_peak.map_or("unknown".into(), |n| n.to_string()),
    );
    if u.oom_kills > 0 {
        let _ = writeln!(
            out,
            "{p} OOM: {} process(es) killed by the memory cap ({})",
            u.oom_kills,
            r.protections
                .limits
                .memory_bytes
                .map_or("none".into(), format_bytes)
        );
    }
    if u.forks_refused > 0 {
        let _ = writeln!(
            out,
            "{p} fork bomb contained: {} fork(s) refused by the pids cap ({})",
            u.forks_refused,
            r.protections
                .limits
                .pids
                .map_or("none".into(), |n| n.to_string())
        );
    }
    if r.leaked_total > 0 {
        let _ = writeln!(
            out,
            "{p} {} process(es) outlived the command and were killed:",
            r.leaked_total
        );
        const SHOWN: usize = 8;
        for leak in r.leaked_processes.iter().take(SHOWN) {
            let _ = writeln!(
                out,
                "{p}   pid {} {} [{}]",
                leak.pid, leak.comm, leak.cmdline
            );
        }
        let shown = r.leaked_processes.len().min(SHOWN);
        if r.leaked_total > shown {
            let _ = writeln!(out, "{p}   ... and {} more", r.leaked_total - shown);
        }
    }
    if r.network_attempts.total() > 0 {
        let _ = writeln!(
            out,
            "{p} network: {} packet(s) to unreachable addresses ({} IPv4, {} IPv6): the command \
             tried to reach outside the sandbox",
            r.network_attempts.total(),
            r.network_attempts.ipv4_no_route,
            r.network_attempts.ipv6_no_route
        );
    }
    if r.files_written_total > 0 {
        let _ = writeln!(
            out,
            "{p} {} change(s) to copy-on-write directories (the host never saw them):",
            r.files_written_total
        );
        for change in r.files_written.iter().take(8) {
            let _ = writeln!(
                out,
                "{p}   {:?} {} ({} bytes)",
                change.kind,
                change.path.display(),
                change.size
            );
        }
    }
    let _ = writeln!(
        out,
        "{p} in force: {}",
        protections::in_force(&r.protections)
    );
    out
}
