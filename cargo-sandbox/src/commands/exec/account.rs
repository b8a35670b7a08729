//! `exec`'s account of one sandboxed command on stderr: how it ended, what it used, what the
//! sandbox caught (OOM kills, refused forks, leaked processes, network attempts, file changes)
//! and what was in force.

use crate::protections;
use harness::units::format_bytes;
use harness::SandboxResult;
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

/// The account, one `cargo-sandbox:` line each: how the command ended and what it used, then
/// only what happened (a cap that stopped something, leaks, network attempts, file changes),
/// and last the protections in force.
pub fn render(r: &SandboxResult, timeout: Option<Duration>) -> String {
    let mut lines = vec![ended(r, timeout)];
    lines.extend(caps_hit(r));
    lines.extend(leaks(r));
    lines.extend(network_attempts(r));
    lines.extend(file_changes(r));
    lines.push(format!(
        "in force: {}",
        protections::in_force(&r.protections)
    ));
    lines
        .iter()
        .map(|line| format!("cargo-sandbox: {line}\n"))
        .collect()
}

/// How the command ended, after how long, and what it used.
fn ended(r: &SandboxResult, timeout: Option<Duration>) -> String {
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
    format!(
        "{ended} after {:.1?}; cpu {:.1?} user + {:.1?} system; peak memory {}; peak pids {}",
        r.wall_time,
        Duration::from_micros(u.cpu_user_us),
        Duration::from_micros(u.cpu_system_us),
        u.memory_peak_bytes.map_or("unknown".into(), format_bytes),
        u.pids_peak.map_or("unknown".into(), |n| n.to_string()),
    )
}

/// The caps that stopped something: the memory cap's OOM kills, the pids cap's refused forks.
fn caps_hit(r: &SandboxResult) -> Vec<String> {
    let (u, limits) = (&r.usage, &r.protections.limits);
    let mut lines = Vec::new();
    if u.oom_kills > 0 {
        let cap = limits.memory_bytes.map_or("none".into(), format_bytes);
        lines.push(format!(
            "OOM: {} process(es) killed by the memory cap ({cap})",
            u.oom_kills
        ));
    }
    if u.forks_refused > 0 {
        let cap = limits.pids.map_or("none".into(), |n| n.to_string());
        lines.push(format!(
            "fork bomb contained: {} fork(s) refused by the pids cap ({cap})",
            u.forks_refused
        ));
    }
    lines
}

/// Processes that outlived the command, the first few by name.
fn leaks(r: &SandboxResult) -> Vec<String> {
    const SHOWN: usize = 8;
    if r.leaked_total == 0 {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "{} process(es) outlived the command and were killed:",
        r.leaked_total
    )];
    lines.extend(
        r.leaked_processes
            .iter()
            .take(SHOWN)
            .map(|leak| format!("  pid {} {} [{}]", leak.pid, leak.comm, leak.cmdline)),
    );
    let shown = r.leaked_processes.len().min(SHOWN);
    if r.leaked_total > shown {
        lines.push(format!("  ... and {} more", r.leaked_total - shown));
    }
    lines
}

fn network_attempts(r: &SandboxResult) -> Option<String> {
    let attempts = &r.network_attempts;
    (attempts.total() > 0).then(|| {
        format!(
            "network: {} packet(s) to unreachable addresses ({} IPv4, {} IPv6): the command \
             tried to reach outside the sandbox",
            attempts.total(),
            attempts.ipv4_no_route,
            attempts.ipv6_no_route
        )
    })
}

/// Changes the command made to its copy-on-write directories, the first few.
fn file_changes(r: &SandboxResult) -> Vec<String> {
    if r.files_written_total == 0 {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "{} change(s) to copy-on-write directories (the host never saw them):",
        r.files_written_total
    )];
    lines.extend(r.files_written.iter().take(8).map(|change| {
        format!(
            "  {:?} {} ({} bytes)",
            change.kind,
            change.path.display(),
            change.size
        )
    }));
    lines
}
