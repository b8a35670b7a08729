//! The handful of cgroupfs file operations the backends need, each failing with the path in the
//! error.

use crate::error::SandboxError;
use std::io::{self, ErrorKind};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn write(path: &Path, value: &str) -> Result<(), SandboxError> {
    std::fs::write(path, value).map_err(|source| SandboxError::Cgroup {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

pub fn mkdir(path: &Path) -> Result<(), SandboxError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(source) => Err(SandboxError::Cgroup {
            action: "mkdir",
            path: path.to_owned(),
            source,
        }),
    }
}

/// A file holding one number (`max` reads as `None`). Missing files read as `None`: the kernel
/// does not keep that figure.
pub fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` line from a flat-keyed file such as `memory.events` or `cpu.stat`.
pub fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next()? == key).then(|| parts.next()?.parse().ok())?
    })
}

pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// SIGKILLs every process listed in the cgroup. Only used on cgroups this program created, as a
/// backstop: the PID namespace's death normally takes everything with it.
pub fn kill_procs(dir: &Path) {
    let me = std::process::id() as i32;
    for pid in procs(dir).into_iter().filter(|&pid| pid != me) {
        // SAFETY: plain syscall; pid comes from our own cgroup's member list.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Removes a cgroup directory. Processes of a just-killed sandbox leave the cgroup a moment after
/// they die, so `EBUSY` is retried (killing whatever is still listed) for up to two seconds.
pub fn remove_dir(dir: &Path) -> Result<(), SandboxError> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if is_busy(&e) && start.elapsed() < Duration::from_secs(2) => {
                kill_procs(dir);
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(SandboxError::Cgroup {
                    action: "rmdir",
                    path: dir.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Removes a cgroup and all cgroups below it, deepest first.
pub fn remove_tree(dir: &Path) -> Result<(), SandboxError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&entry.path())?;
            }
        }
    }
    remove_dir(dir)
}

fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}
