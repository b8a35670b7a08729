//! cgroup v2: one directory per sandbox in the unified hierarchy.
//!
//! The run directory needs memory and pids (and cpu, for quotas) enabled in the runner's own
//! cgroup's `cgroup.subtree_control`. When they are not, we enable them, which the kernel only
//! allows when the runner's cgroup holds no processes of its own (the "no internal processes"
//! rule) or is the root; otherwise the error names the remedy.

use super::{fs, machine_has_swap, sweep};
use crate::error::SandboxError;
use crate::result::ResourceUsage;
use crate::spec::Limits;
use std::path::{Path, PathBuf};

const CONTROLLERS: &str = "cgroup.controllers";
const SUBTREE_CONTROL: &str = "cgroup.subtree_control";
const MEMORY_MAX: &str = "memory.max";
const SWAP_MAX: &str = "memory.swap.max";
const MEMORY_PEAK: &str = "memory.peak";
const MEMORY_EVENTS: &str = "memory.events";
const PIDS_MAX: &str = "pids.max";
const PIDS_PEAK: &str = "pids.peak";
const PIDS_EVENTS: &str = "pids.events";
const CPU_MAX: &str = "cpu.max";
const CPU_STAT: &str = "cpu.stat";
const KILL: &str = "cgroup.kill";
const PERIOD_US: u64 = 100_000;

#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    has_cpu: bool,
}

fn words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

impl RunDir {
    pub fn create(own: &Path, name: &str) -> Result<RunDir, SandboxError> {
        let available = words(&own.join(CONTROLLERS));
        for needed in ["memory", "pids"] {
            if !available.iter().any(|c| c == needed) {
                return Err(SandboxError::MissingController {
                    controller: if needed == "memory" { "memory" } else { "pids" },
                    remedy: format!(
                        "cgroup v2 does not offer `{needed}` to {} (its parent has not delegated \
                         it). Enable it in the parent's cgroup.subtree_control, or run under a \
                         delegated cgroup: `systemd-run --scope -p Delegate=yes cargo sandbox ...`",
                        own.display()
                    ),
                });
            }
        }
        let has_cpu = available.iter().any(|c| c == "cpu");
        let wanted: Vec<&str> =
            ["memory", "pids"].into_iter().chain(has_cpu.then_some("cpu")).collect();
        enable(own, &wanted)?;
        sweep::sweep_stale(own);
        let dir = own.join(name);
        fs::mkdir(&dir)?;
        if let Err(e) = enable(&dir, &wanted) {
            let _ = fs::remove_dir(&dir);
            return Err(e);
        }
        Ok(RunDir { dir, has_cpu })
    }

    pub fn check_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        if limits.cpu_millis.is_some() && !self.has_cpu {
            return Err(SandboxError::MissingController {
                controller: "cpu",
                remedy: format!(
                    "cgroup v2 does not offer `cpu` under {}; enable it in the parent's \
                     cgroup.subtree_control or drop --cpus",
                    self.dir.display()
                ),
            });
        }
        Ok(())
    }

    pub fn new_group(&self, name: &str, limits: &Limits) -> Result<Group, SandboxError> {
        let group = Group { dir: self.dir.join(name), swap_disabled: !machine_has_swap() };
        fs::mkdir(&group.dir)?;
        match group.apply(limits) {
            Ok(swap_disabled) => Ok(Group { swap_disabled, ..group }),
            Err(e) => {
                let _ = group.remove();
                Err(e)
            }
        }
    }

    pub fn remove(&self) {
        let _ = fs::remove_tree(&self.dir);
    }
}

/// Makes sure `controllers` are enabled for `dir`'s children.
fn enable(dir: &Path, controllers: &[&str]) -> Result<(), SandboxError> {
    let enabled = words(&dir.join(SUBTREE_CONTROL));
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.iter().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let path = dir.join(SUBTREE_CONTROL);
    std::fs::write(&path, missing.join(" ")).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            SandboxError::MissingController {
                controller: "memory",
                remedy: format!(
                    "cannot enable {} for sandboxes under {} because that cgroup holds processes \
                     (cgroup v2's no-internal-processes rule). Start cargo-sandbox in a cgroup \
                     of its own, e.g. `systemd-run --scope -p Delegate=yes cargo sandbox ...`",
                    missing.join(" "),
                    dir.display()
                ),
            }
        } else {
            SandboxError::Cgroup { action: "enable controllers", path: path.clone(), source: e }
        }
    })
}

#[derive(Debug)]
pub struct Group {
    dir: PathBuf,
    pub swap_disabled: bool,
}

impl Group {
    /// Applies the caps; returns whether swap is off.
    fn apply(&self, limits: &Limits) -> Result<bool, SandboxError> {
        let mut swap_disabled = self.swap_disabled;
        if let Some(bytes) = limits.memory_bytes {
            fs::write(&self.dir.join(MEMORY_MAX), &bytes.to_string())?;
            let swap = self.dir.join(SWAP_MAX);
            if swap.exists() {
                fs::write(&swap, "0")?;
                swap_disabled = true;
            }
        }
        if let Some(max) = limits.pids {
            fs::write(&self.dir.join(PIDS_MAX), &max.to_string())?;
        }
        if let Some(millis) = limits.cpu_millis {
            let quota = u64::from(millis) * PERIOD_US / 1000;
            fs::write(&self.dir.join(CPU_MAX), &format!("{quota} {PERIOD_US}"))?;
        }
        Ok(swap_disabled)
    }

    pub fn add_process(&self, pid: i32) -> Result<(), SandboxError> {
        fs::write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    pub fn usage(&self) -> ResourceUsage {
        let cpu = self.dir.join(CPU_STAT);
        ResourceUsage {
            cpu_user_us: fs::read_keyed(&cpu, "user_usec").unwrap_or(0),
            cpu_system_us: fs::read_keyed(&cpu, "system_usec").unwrap_or(0),
            memory_peak_bytes: fs::read_u64(&self.dir.join(MEMORY_PEAK)),
            oom_kills: fs::read_keyed(&self.dir.join(MEMORY_EVENTS), "oom_kill").unwrap_or(0),
            pids_peak: fs::read_u64(&self.dir.join(PIDS_PEAK)),
            forks_refused: fs::read_keyed(&self.dir.join(PIDS_EVENTS), "max").unwrap_or(0),
        }
    }

    pub fn kill(&self) {
        if fs::write(&self.dir.join(KILL), "1").is_err() {
            fs::kill_procs(&self.dir);
        }
    }

    pub fn remove(&self) -> Result<(), SandboxError> {
        fs::remove_dir(&self.dir)
    }
}
