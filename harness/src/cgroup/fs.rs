//! The handful of cgroupfs file operations the backends need, each failing with the path in the
//! error.

use crate::error::SandboxError;
use nix::sys::resource::{getrlimit, Resource};
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
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

/// A cgroup's figure files, opened when the cgroup is made. They are read after its sandbox
/// ends, on the critical path: through a descriptor held since, each read is one `pread` (cgroupfs
/// regenerates a file's text at offset 0) instead of a walk of the path, an open and a close.
/// Files the kernel does not have read as `None`: it does not keep that figure.
#[derive(Debug, Default)]
pub struct Figures(Vec<(PathBuf, File)>);

/// Descriptors all `Figures` hold now. They may take a quarter of the runner's soft limit on
/// open files; past that, a group's figures are read by path (slower, never wrong), so many
/// sandboxes at once (`-j 64`) never starve the runner of descriptors.
static HELD: AtomicUsize = AtomicUsize::new(0);

fn held_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| (soft / 4) as usize)
    })
}

impl Figures {
    pub fn open(paths: Vec<PathBuf>) -> Figures {
        let wanted = paths.len();
        if HELD.fetch_add(wanted, Ordering::Relaxed) + wanted > held_budget() {
            HELD.fetch_sub(wanted, Ordering::Relaxed);
            return Figures::default();
        }
        let figures = Figures(
            paths
                .into_iter()
                .filter_map(|path| File::open(&path).ok().map(|file| (path, file)))
                .collect(),
        );
        HELD.fetch_sub(wanted - figures.0.len(), Ordering::Relaxed);
        figures
    }

    /// The file's text now; by path when it was not opened ahead.
    pub fn text(&self, path: &Path) -> Option<String> {
        let Some((_, file)) = self.0.iter().find(|(held, _)| held == path) else {
            return std::fs::read_to_string(path).ok();
        };
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match file.read_at(&mut chunk, text.len() as u64) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        String::from_utf8(text).ok()
    }

    /// A file holding one number (`max` reads as `None`).
    pub fn number(&self, path: &Path) -> Option<u64> {
        self.text(path)?.trim().parse().ok()
    }

    /// A `key value` line from a flat-keyed file such as `memory.events`.
    pub fn keyed(&self, path: &Path, key: &str) -> Option<u64> {
        keyed(&self.text(path)?, key)
    }
}

/// The value of a `key value` line of a flat-keyed file's text (`cpu.stat`, `memory.events`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next()? == key).then(|| parts.next()?.parse().ok())?
    })
}

impl Drop for Figures {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0.len(), Ordering::Relaxed);
    }
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
