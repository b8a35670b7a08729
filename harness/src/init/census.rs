//! The leak census: which processes are still alive in the namespace after the command's main
//! process exited. Runs in PID 1, where `/proc` shows exactly the sandbox's processes.

use crate::protocol::MAX_LEAKS_LISTED;
use crate::result::LeakedProcess;
use std::time::Duration;

/// Processes that die on their own this soon after the main process are not leaks (e.g. a child
/// already sent SIGKILL): the census waits this long, in steps, for the list to settle. Nothing
/// is waited for when no process is left, which is the common case.
const SETTLE_STEPS: u32 = 5;
const SETTLE_STEP: Duration = Duration::from_millis(4);

/// Returns the listed leaks (at most [`MAX_LEAKS_LISTED`]) and how many there were in all.
pub fn take() -> (Vec<LeakedProcess>, usize) {
    let mut alive = living_pids();
    for _ in 0..SETTLE_STEPS {
        if alive.is_empty() {
            break;
        }
        std::thread::sleep(SETTLE_STEP);
        super::reap_exited();
        alive = living_pids();
    }
    let total = alive.len();
    let listed = alive
        .into_iter()
        .take(MAX_LEAKS_LISTED)
        .filter_map(describe)
        .collect();
    (listed, total)
}

/// PIDs other than ours whose process is not a zombie, in ascending order.
fn living_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != 1 && state(pid).is_some_and(|s| s != 'Z' && s != 'X'))
        .collect();
    pids.sort_unstable();
    pids
}

fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn describe(pid: i32) -> Option<LeakedProcess> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = cmdline
        .split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    Some(LeakedProcess {
        pid,
        comm: comm.trim_end().to_owned(),
        cmdline,
    })
}
