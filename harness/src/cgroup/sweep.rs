//! Names run directories after their owner, and removes those whose owner is gone.

use super::fs;
use std::path::Path;

const PREFIX: &str = "cargo-sandbox.";

/// `cargo-sandbox.<pid>.<start time>`: PID plus start time (clock ticks since boot) names one
/// process for the machine's lifetime, even when PIDs are reused. A process's second and later
/// engines add `.<n>`.
pub fn run_dir_name() -> String {
    static ENGINES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let pid = std::process::id() as i32;
    let name = format!("{PREFIX}{pid}.{}", start_time(pid).unwrap_or(0));
    match ENGINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => name,
        n => format!("{name}.{n}"),
    }
}

/// Removes run directories in `parent` whose owning process no longer exists.
pub fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if !owner_alive(owner) {
            let _ = fs::remove_tree(&entry.path());
        }
    }
}

fn owner_alive(owner: &str) -> bool {
    let mut parts = owner.split('.');
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return false;
    };
    match (pid.parse::<i32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid) == Some(start),
        _ => false,
    }
}

/// Field 22 of `/proc/<pid>/stat`, read after the last `)` since `comm` may hold anything.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_run_dir_is_alive_and_others_are_not() {
        let name = run_dir_name();
        let owner = name.strip_prefix(PREFIX).unwrap();
        assert!(owner_alive(owner));
        assert!(!owner_alive("999999999.1"));
        let pid = std::process::id();
        assert!(
            !owner_alive(&format!("{pid}.1")),
            "a reused pid with another start time"
        );
        assert!(!owner_alive("garbage"));
    }
}
