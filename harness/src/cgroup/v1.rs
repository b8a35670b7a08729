//! cgroup v1: one directory per controller (memory, pids, cpuacct; cpu only for a quota).

use super::{fs, sweep, Layout};
use crate::error::SandboxError;
use crate::result::ResourceUsage;
use crate::spec::Limits;
use std::path::{Path, PathBuf};

const MEMORY_LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const MEMORY_PEAK: &str = "memory.max_usage_in_bytes";
const OOM_CONTROL: &str = "memory.oom_control";
const PIDS_MAX: &str = "pids.max";
const PIDS_PEAK: &str = "pids.peak";
const PIDS_EVENTS: &str = "pids.events";
const CPU_QUOTA: &str = "cpu.cfs_quota_us";
const CPU_PERIOD: &str = "cpu.cfs_period_us";
const CPU_STAT: &str = "cpu.stat";
const CPU_TOTAL_NS: &str = "cpuacct.usage";
const CPU_USER_NS: &str = "cpuacct.usage_user";
const CPU_SYS_NS: &str = "cpuacct.usage_sys";
const PERIOD_US: u64 = 100_000;

#[derive(Debug)]
pub struct RunDirs {
    memory: PathBuf,
    pids: PathBuf,
    cpuacct: PathBuf,
    cpu: Option<PathBuf>,
}

impl RunDirs {
    pub fn create(layout: &Layout, name: &str) -> Result<RunDirs, SandboxError> {
        let Layout::V1 {
            memory,
            pids,
            cpuacct,
            cpu,
        } = layout
        else {
            unreachable!("v1 run dirs from a v2 layout")
        };
        let mut made = Vec::new();
        let mut make = |own: &Path| -> Result<PathBuf, SandboxError> {
            sweep::sweep_stale(own);
            let dir = own.join(name);
            if let Err(e) = fs::mkdir(&dir) {
                made.iter().for_each(|d: &PathBuf| drop(fs::remove_tree(d)));
                return Err(e);
            }
            made.push(dir.clone());
            Ok(dir)
        };
        let memory = make(memory)?;
        let pids = make(pids)?;
        let cpuacct = make(cpuacct)?;
        let cpu = cpu.as_deref().map(&mut make).transpose()?;
        Ok(RunDirs {
            memory,
            pids,
            cpuacct,
            cpu,
        })
    }

    /// Whether this kernel can limit swap per cgroup (swap accounting on).
    pub fn swap_limit_supported(&self) -> bool {
        self.memory.join(MEMSW_LIMIT).exists()
    }

    pub fn check_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        if limits.cpu_millis.is_some() && self.cpu.is_none() {
            return Err(SandboxError::MissingController {
                controller: "cpu".to_owned(),
                remedy: "no cgroup v1 `cpu` hierarchy is mounted; mount one \
                         (`mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu`) or drop --cpus"
                    .to_owned(),
            });
        }
        Ok(())
    }

    pub fn new_group(&self, name: &str, limits: &Limits) -> Result<Group, SandboxError> {
        let mut group = Group {
            memory: self.memory.join(name),
            pids: self.pids.join(name),
            cpuacct: self.cpuacct.join(name),
            cpu: None,
        };
        // The group removes whatever was made if a later step fails (Drop in the caller).
        for dir in [&group.memory, &group.pids, &group.cpuacct] {
            if let Err(e) = fs::mkdir(dir) {
                group.remove().ok();
                return Err(e);
            }
        }
        let applied = group.apply(self, limits, name);
        if let Err(e) = applied {
            group.remove().ok();
            return Err(e);
        }
        Ok(group)
    }

    pub fn remove(&self) {
        for dir in controller_dirs(&self.memory, &self.pids, &self.cpuacct, &self.cpu) {
            let _ = fs::remove_tree(dir);
        }
    }
}

#[derive(Debug)]
pub struct Group {
    memory: PathBuf,
    pids: PathBuf,
    cpuacct: PathBuf,
    cpu: Option<PathBuf>,
}

impl Group {
    fn apply(&mut self, run: &RunDirs, limits: &Limits, name: &str) -> Result<(), SandboxError> {
        if let Some(bytes) = limits.memory_bytes {
            fs::write(&self.memory.join(MEMORY_LIMIT), &bytes.to_string())?;
            // memsw = memory means "no swap on top": the cap is real memory.
            let memsw = self.memory.join(MEMSW_LIMIT);
            if memsw.exists() {
                fs::write(&memsw, &bytes.to_string())?;
            }
        }
        if let Some(max) = limits.pids {
            fs::write(&self.pids.join(PIDS_MAX), &max.to_string())?;
        }
        if let Some(millis) = limits.cpu_millis {
            let cpu_run = run
                .cpu
                .as_ref()
                .ok_or_else(|| SandboxError::MissingController {
                    controller: "cpu".to_owned(),
                    remedy: "no cgroup v1 `cpu` hierarchy is mounted".to_owned(),
                })?;
            let dir = cpu_run.join(name);
            fs::mkdir(&dir)?;
            self.cpu = Some(dir.clone());
            fs::write(&dir.join(CPU_PERIOD), &PERIOD_US.to_string())?;
            fs::write(
                &dir.join(CPU_QUOTA),
                &(u64::from(millis) * PERIOD_US / 1000).to_string(),
            )?;
        }
        Ok(())
    }

    pub fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        controller_dirs(&self.memory, &self.pids, &self.cpuacct, &self.cpu)
    }

    pub fn add_process(&self, pid: i32) -> Result<(), SandboxError> {
        let pid = pid.to_string();
        self.dirs()
            .try_for_each(|dir| fs::write(&dir.join("cgroup.procs"), &pid))
    }

    pub fn usage(&self) -> ResourceUsage {
        let (cpu_user_us, cpu_system_us) = self.cpu_split_us();
        ResourceUsage {
            cpu_user_us,
            cpu_system_us,
            memory_peak_bytes: fs::read_u64(&self.memory.join(MEMORY_PEAK)),
            oom_kills: fs::read_keyed(&self.memory.join(OOM_CONTROL), "oom_kill").unwrap_or(0),
            pids_peak: fs::read_u64(&self.pids.join(PIDS_PEAK)),
            forks_refused: fs::read_keyed(&self.pids.join(PIDS_EVENTS), "max").unwrap_or(0),
            cpu_throttled_count: self
                .cpu
                .as_ref()
                .and_then(|d| fs::read_keyed(&d.join(CPU_STAT), "nr_throttled"))
                .unwrap_or(0),
            cpu_throttled_us: self
                .cpu
                .as_ref()
                .and_then(|d| fs::read_keyed(&d.join(CPU_STAT), "throttled_time"))
                .unwrap_or(0)
                / 1000,
        }
    }

    /// `cpuacct.usage` is exact (scheduler runtime) but the user/system split files are
    /// tick-sampled (4 ms steps here): split the exact total by the sampled ratio.
    fn cpu_split_us(&self) -> (u64, u64) {
        let total = fs::read_u64(&self.cpuacct.join(CPU_TOTAL_NS)).unwrap_or(0);
        let user = fs::read_u64(&self.cpuacct.join(CPU_USER_NS)).unwrap_or(0);
        let system = fs::read_u64(&self.cpuacct.join(CPU_SYS_NS)).unwrap_or(0);
        let user_share = if user + system == 0 {
            total
        } else {
            (u128::from(total) * u128::from(user) / u128::from(user + system)) as u64
        };
        (user_share / 1000, (total - user_share) / 1000)
    }

    pub fn kill(&self) {
        fs::kill_procs(&self.pids);
    }

    pub fn remove(&self) -> Result<(), SandboxError> {
        let mut first_error = None;
        for dir in self.dirs() {
            if let Err(e) = fs::remove_dir(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The directories of one cgroup across its controllers (cpu only when it has one).
fn controller_dirs<'a>(
    memory: &'a PathBuf,
    pids: &'a PathBuf,
    cpuacct: &'a PathBuf,
    cpu: &'a Option<PathBuf>,
) -> impl Iterator<Item = &'a PathBuf> {
    [Some(memory), Some(pids), Some(cpuacct), cpu.as_ref()]
        .into_iter()
        .flatten()
}
