//! Sandbox cgroups on cgroup v1 (legacy and hybrid layouts) and v2, behind one interface:
//! [`RunGroup`] (one per runner process) and [`Group`] (one per sandbox).
//!
//! Why not the cgroups-rs crate (0.3.x): on v2 it writes `+controller` into `subtree_control` of
//! every ancestor from the hierarchy root down (cgroups this program did not create) and drops
//! those errors; it picks v1/v2 from `/sys/fs/cgroup` alone and so ignores hybrid layouts;
//! without an explicit list it creates directories in every v1 hierarchy and swallows v1 errors;
//! it lacks `pids.peak` and `memory.events`, and reads counters only in bulk. What we need is
//! mkdir/rmdir plus about ten known files under paths derived from our own cgroup, so it is
//! written here.
//!
//! Where cgroups go: always *under the runner's own cgroup* (per controller on v1), in a run
//! directory `cargo-sandbox.<pid>.<starttime>` owned by this process, with one child per sandbox.
//! The name identifies the owner exactly, so a run directory whose owner is gone (a runner
//! killed with SIGKILL) is recognised and removed at the next start.

mod blockio;
mod detect;
mod fs;
pub(crate) mod oom;
mod sweep;
mod v1;
mod v2;

use crate::error::SandboxError;
use crate::result::ResourceUsage;
use crate::spec::Limits;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use detect::detect;

/// Where sandboxes go when the user names their parent cgroups (`--cgroup-parent`, repeatable):
/// on cgroup v2 one directory; on v1 one directory per controller (memory, pids, cpuacct, and
/// cpu for quotas), each recognised by the hierarchy it lies in. Nothing is checked beyond
/// existence here: creating the run directory proves the permissions.
pub fn explicit_parents(parents: &[PathBuf]) -> Result<Layout, SandboxError> {
    let bad = |message: String| Err(SandboxError::NoCgroups(message));
    for parent in parents {
        if !parent.join("cgroup.procs").is_file() {
            return bad(format!(
                "--cgroup-parent {} is not a cgroup directory (no cgroup.procs in it)",
                parent.display()
            ));
        }
    }
    match detect::layout_of_parents(parents) {
        Some(layout) => Ok(layout),
        None => bad(format!(
            "--cgroup-parent {}: give one cgroup v2 directory, or on cgroup v1 one directory in each \
             of the memory, pids and cpuacct hierarchies (and cpu for --cpus)",
            parents.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Where this process's own cgroups are.
#[derive(Clone, Debug)]
pub enum Layout {
    /// One directory per controller hierarchy.
    V1(V1Dirs),
    /// The cgroup in the unified hierarchy that sandboxes go under: the process's own, or one
    /// the user delegated explicitly (`explicit`), which the runner never moves itself into.
    V2 { own: PathBuf, explicit: bool },
}

/// A cgroup's directory in each v1 hierarchy it has: this process's own (in [`Layout`]), or a
/// sandbox's. `cpu` is only needed for a CPU quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Dirs {
    pub memory: PathBuf,
    pub pids: PathBuf,
    pub cpuacct: PathBuf,
    pub cpu: Option<PathBuf>,
    /// IO accounting and caps, where mounted.
    pub blkio: Option<PathBuf>,
    /// The device allowlist, where mounted.
    pub devices: Option<PathBuf>,
}

impl Layout {
    pub fn version(&self) -> &'static str {
        match self {
            Layout::V1(_) => "v1",
            Layout::V2 { .. } => "v2",
        }
    }
}

/// The runner's directory (per controller on v1) holding all of its sandboxes' cgroups.
/// Dropping it removes everything below it.
#[derive(Debug)]
pub struct RunGroup {
    backend: Box<dyn RunCgroup>,
    next: AtomicU64,
    machine_has_swap: bool,
    /// Groups made ahead (by the janitor, off the critical path), taken by the next sandbox
    /// with the same caps.
    spares: std::sync::Mutex<Vec<Group>>,
}

/// Most groups kept made ahead.
const MAX_SPARES: usize = 4;

/// How a sandbox's init enters its cgroup without the runner moving it. A move by PID (a write
/// to `cgroup.procs`) takes a lock of the whole kernel, whose first use after a pause waits for
/// an RCU grace period: 7.5 ms here (`scripts/bench/cgroup-move.py`), on the way to a run's
/// first sandbox and to any sandbox after a slow test. Neither way below takes that lock.
#[derive(Debug)]
pub enum Entry {
    /// cgroup v2: the init is cloned straight into the directory this descriptor is open on
    /// (`CLONE_INTO_CGROUP`, Linux 5.7+; the caller moves it where the kernel is older).
    CloneInto(std::os::fd::RawFd),
    /// cgroup v1: the cloned child, single-threaded, writes `0` to each of these (`tasks` in
    /// every hierarchy) before anything else. The kernel takes no global lock for a thread
    /// that moves itself (6.18 here; a kernel that does still moves it, and the move waits).
    /// Dropped once the child is cloned: it has its own copies.
    MoveSelf(Vec<std::os::fd::OwnedFd>),
}

/// A runner's cgroup directory, that sandbox cgroups go under: one per hierarchy on v1 (see
/// `v1.rs`), one directory on v2 (`v2.rs`).
trait RunCgroup: std::fmt::Debug + Send + Sync {
    fn version(&self) -> &'static str;
    /// Whether this kernel can limit swap per cgroup.
    fn swap_limit_supported(&self) -> bool;
    /// Whether sandbox cgroups enforce the device allowlist.
    fn enforces_devices(&self) -> bool;
    /// Fails when a requested cap has no controller here.
    fn check_limits(&self, limits: &Limits) -> Result<(), SandboxError>;
    /// A sandbox's cgroup named `name`, with its caps applied.
    fn new_group(
        &self,
        name: &str,
        limits: &Limits,
    ) -> Result<Box<dyn SandboxCgroup>, SandboxError>;
    fn remove(&self);
}

/// One sandbox's cgroup, on either version.
trait SandboxCgroup: std::fmt::Debug + Send + Sync {
    /// Its directory in each hierarchy.
    fn dirs(&self) -> Vec<PathBuf>;
    /// How an init gets in without the runner moving it, for the one init it will hold;
    /// `None`: [`SandboxCgroup::add_process`].
    fn take_entry(&self) -> Option<Entry>;
    fn add_process(&self, pid: i32) -> Result<(), SandboxError>;
    fn usage(&self, machine_has_swap: bool) -> ResourceUsage;
    /// Where the memory controller's files are.
    fn memory_dir(&self) -> &Path;
    /// SIGKILLs everything in it.
    fn kill(&self);
    fn remove(&self) -> Result<(), SandboxError>;
}

impl RunGroup {
    /// Sweeps run directories left by dead runners, then creates this runner's own.
    pub fn create(layout: &Layout) -> Result<RunGroup, SandboxError> {
        let name = sweep::run_dir_name();
        let backend: Box<dyn RunCgroup> = match layout {
            Layout::V1(_) => Box::new(v1::RunDirs::create(layout, &name)?),
            Layout::V2 { own, explicit } => Box::new(v2::RunDir::create(own, &name, !explicit)?),
        };
        Ok(RunGroup {
            backend,
            next: AtomicU64::new(0),
            machine_has_swap: machine_has_swap(),
            spares: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn version(&self) -> &'static str {
        self.backend.version()
    }

    /// Whether sandboxes with these caps really run without swap: the machine has none, or a
    /// memory cap is set and the kernel can limit swap per cgroup (we then set it to zero).
    pub fn swap_disabled(&self, limits: &Limits) -> bool {
        !self.machine_has_swap
            || (limits.memory_bytes.is_some() && self.backend.swap_limit_supported())
    }

    /// Whether sandbox cgroups enforce the device allowlist.
    pub fn enforces_devices(&self) -> bool {
        self.backend.enforces_devices()
    }

    /// Fails when a requested cap has no controller here: a cap is never silently dropped.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        self.backend.check_limits(limits)
    }

    /// One sandbox's cgroup with its caps applied: a spare made ahead when there is one.
    pub fn new_group(&self, limits: &Limits) -> Result<Group, SandboxError> {
        let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = spares.iter().position(|g| g.limits == *limits) {
            return Ok(spares.swap_remove(i));
        }
        drop(spares);
        self.make_group(limits)
    }

    /// Makes a spare group for the next sandbox with these caps (failures are left to that
    /// sandbox, which then makes its own and reports why it could not).
    pub fn make_spare(&self, limits: &Limits) {
        let spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
        if spares.iter().filter(|g| g.limits == *limits).count() >= MAX_SPARES {
            return;
        }
        drop(spares);
        if let Ok(group) = self.make_group(limits) {
            let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
            // Spares for caps nobody asks for any more make room (the oldest goes).
            if spares.len() >= MAX_SPARES {
                spares.remove(0);
            }
            spares.push(group);
        }
    }

    fn make_group(&self, limits: &Limits) -> Result<Group, SandboxError> {
        let name = format!("s{}", self.next.fetch_add(1, Ordering::Relaxed));
        let backend = self.backend.new_group(&name, limits)?;
        Ok(Group {
            backend,
            limits: *limits,
            machine_has_swap: self.machine_has_swap,
            removed: false,
        })
    }
}

impl Drop for RunGroup {
    fn drop(&mut self) {
        self.spares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.backend.remove();
    }
}

/// One sandbox's cgroup. Dropping it removes it.
#[derive(Debug)]
pub struct Group {
    backend: Box<dyn SandboxCgroup>,
    limits: Limits,
    machine_has_swap: bool,
    removed: bool,
}

impl Group {
    /// The group's directory in each hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.backend.dirs()
    }

    /// How its init gets in by itself; `None`: the runner moves it ([`Group::add_process`]).
    pub fn take_entry(&self) -> Option<Entry> {
        self.backend.take_entry()
    }

    pub fn add_process(&self, pid: i32) -> Result<(), SandboxError> {
        self.backend.add_process(pid)
    }

    pub fn usage(&self) -> ResourceUsage {
        let mut usage = self.backend.usage(self.machine_has_swap);
        // Without `pids.peak` (older kernels) a refused fork still proves the cap was reached.
        if usage.pids_peak.is_none() && usage.forks_refused > 0 {
            usage.pids_peak = self.limits.pids;
        }
        usage
    }

    /// The names of the processes the OOM killer chose here (see [`crate::cgroup::oom`]).
    pub fn oom_victims(&self) -> Vec<String> {
        oom::victims(self.backend.memory_dir())
    }

    /// SIGKILLs everything in the group (`cgroup.kill` where the kernel has it).
    pub fn kill(&self) {
        self.backend.kill()
    }

    pub fn remove(mut self) -> Result<(), SandboxError> {
        self.removed = true;
        self.backend.remove()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.backend.remove();
        }
    }
}

/// Whether the machine has any swap; when it has none, "swap off" holds without a swap limit.
fn machine_has_swap() -> bool {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("SwapTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .is_some_and(|kb| kb > 0)
}
