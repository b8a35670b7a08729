//! cgroup v1: one directory per controller. memory, pids and cpuacct always; cpu for a quota;
//! blkio (IO accounting and `--io-write-bps`) and devices (the device allowlist) where the
//! hierarchy is mounted and the runner may create cgroups in it.

use super::{blockio, fs, sweep, Layout};
use super::{Entry, RunCgroup, SandboxCgroup};
use crate::error::SandboxError;
use crate::result::ResourceUsage;
use crate::spec::Limits;
use std::path::{Path, PathBuf};

const MEMORY_LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const MEMORY_PEAK: &str = "memory.max_usage_in_bytes";
const MEMSW_PEAK: &str = "memory.memsw.max_usage_in_bytes";
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
const IO_SERVICE_BYTES: &str = "blkio.throttle.io_service_bytes";
const IO_WRITE_BPS: &str = "blkio.throttle.write_bps_device";
const IO_READ_BPS: &str = "blkio.throttle.read_bps_device";
/// 1 TiB/s: a rule that never throttles, small enough that kernels before 6.0 (which multiply it
/// by elapsed jiffies in 64 bits) do not overflow.
const UNREACHABLE_BPS: u64 = 1 << 40;
const DEVICES_DENY: &str = "devices.deny";
const DEVICES_ALLOW: &str = "devices.allow";
const PERIOD_US: u64 = 100_000;
/// A v1 hierarchy's list of threads: "0" written to it moves the writing thread (see [`Entry`]).
const TASKS: &str = "tasks";

/// One cgroup's directory in each hierarchy it has.
type Dirs = super::V1Dirs;

impl Dirs {
    /// Each directory once: one hierarchy may carry several controllers (`cpu,cpuacct` is the
    /// usual v1 mount), and then they share a directory.
    fn iter(&self) -> impl Iterator<Item = &PathBuf> {
        let mut dirs: Vec<&PathBuf> = Vec::with_capacity(6);
        for dir in [Some(&self.memory), Some(&self.pids), Some(&self.cpuacct)]
            .into_iter()
            .chain([
                self.cpu.as_ref(),
                self.blkio.as_ref(),
                self.devices.as_ref(),
            ])
            .flatten()
        {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs.into_iter()
    }
}

#[derive(Debug)]
pub struct RunDirs(Dirs);

impl RunDirs {
    pub fn create(layout: &Layout, name: &str) -> Result<RunDirs, SandboxError> {
        let Layout::V1(own) = layout else {
            unreachable!("v1 run dirs from a v2 layout")
        };
        let mut made: Vec<PathBuf> = Vec::new();
        // A required controller's directory failing removes what was made; an optional one's
        // only goes without (IO not measured, the minimal /dev as device policy: reports say so).
        // A hierarchy carrying several controllers gets its directory once.
        let mut make = |own: &Path, required: bool| -> Result<Option<PathBuf>, SandboxError> {
            let dir = own.join(name);
            if made.contains(&dir) {
                return Ok(Some(dir));
            }
            sweep::sweep_stale(own);
            match fs::mkdir(&dir) {
                Ok(()) => {
                    made.push(dir.clone());
                    Ok(Some(dir))
                }
                Err(e) if required => {
                    made.iter().for_each(|d| drop(fs::remove_tree(d)));
                    Err(e)
                }
                Err(_) => Ok(None),
            }
        };
        let mut required = |own: &Path| -> Result<PathBuf, SandboxError> {
            make(own, true).map(|dir| dir.unwrap_or_default())
        };
        let memory = required(&own.memory)?;
        let pids = required(&own.pids)?;
        let cpuacct = required(&own.cpuacct)?;
        let cpu = own.cpu.as_deref().map(&mut required).transpose()?;
        let mut optional =
            |own: &Option<PathBuf>| own.as_deref().and_then(|d| make(d, false).ok().flatten());
        let blkio = optional(&own.blkio);
        // A runner without root cannot write a device allowlist.
        let devices = if nix::unistd::geteuid().is_root() {
            optional(&own.devices).filter(|dir| {
                let set = deny_all_but_allowlist(dir);
                if set.is_err() {
                    let _ = fs::remove_tree(dir);
                }
                set.is_ok()
            })
        } else {
            None
        };
        Ok(RunDirs(Dirs {
            memory,
            pids,
            cpuacct,
            cpu,
            blkio,
            devices,
        }))
    }
}

impl RunCgroup for RunDirs {
    fn version(&self) -> &'static str {
        "v1"
    }

    /// Swap accounting is on.
    fn swap_limit_supported(&self) -> bool {
        self.0.memory.join(MEMSW_LIMIT).exists()
    }

    /// Whether sandboxes get the device allowlist from the `devices` controller.
    fn enforces_devices(&self) -> bool {
        self.0.devices.is_some()
    }

    fn check_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        if limits.cpu_millis.is_some() && self.0.cpu.is_none() {
            return Err(SandboxError::MissingController {
                controller: "cpu".to_owned(),
                remedy: "no cgroup v1 `cpu` hierarchy is mounted; mount one \
                         (`mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu`) or drop --cpus"
                    .to_owned(),
            });
        }
        if limits.io_write_bps.is_some() && self.0.blkio.is_none() {
            return Err(SandboxError::MissingController {
                controller: "blkio".to_owned(),
                remedy: "no usable cgroup v1 `blkio` hierarchy (not mounted, or this user may \
                         not create cgroups in it); mount it (`mount -t cgroup -o blkio cgroup \
                         /sys/fs/cgroup/blkio`) or drop --io-write-bps"
                    .to_owned(),
            });
        }
        Ok(())
    }

    fn new_group(
        &self,
        name: &str,
        limits: &Limits,
    ) -> Result<Box<dyn SandboxCgroup>, SandboxError> {
        let run = &self.0;
        let wanted = |dir: &Option<PathBuf>| dir.as_ref().map(|d| d.join(name));
        let group = Group {
            own: Dirs {
                memory: run.memory.join(name),
                pids: run.pids.join(name),
                cpuacct: run.cpuacct.join(name),
                cpu: wanted(&run.cpu).filter(|_| limits.cpu_millis.is_some()),
                blkio: wanted(&run.blkio),
                devices: None,
            },
            devices: run.devices.clone(),
            figures: fs::Figures::default(),
            tasks: Default::default(),
        };
        // Whatever was made is removed again if a later step fails.
        let made = group
            .own
            .iter()
            .try_for_each(|dir| fs::mkdir(dir))
            .and_then(|()| group.apply(limits));
        if let Err(e) = made {
            group.remove().ok();
            return Err(e);
        }
        // Opened here, off a sandbox's start; a file that cannot be opened leaves the move to
        // the runner (`add_process`).
        let tasks = group
            .all_dirs()
            .map(|dir| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join(TASKS))
                    .map(std::os::fd::OwnedFd::from)
            })
            .collect::<std::io::Result<Vec<_>>>()
            .unwrap_or_default();
        Ok(Box::new(Group {
            figures: fs::Figures::open(group.figure_files()),
            tasks: tasks.into(),
            ..group
        }))
    }

    fn remove(&self) {
        for dir in self.0.iter() {
            let _ = fs::remove_tree(dir);
        }
    }
}

/// Sets the device allowlist on the run directory, which holds every sandbox of the run (see
/// [`Group`]).
fn deny_all_but_allowlist(dir: &Path) -> Result<(), SandboxError> {
    fs::write(&dir.join(DEVICES_DENY), "a")?;
    crate::devices::v1_allow_rules()
        .iter()
        .try_for_each(|rule| fs::write(&dir.join(DEVICES_ALLOW), rule))
}

#[derive(Debug)]
pub struct Group {
    /// This sandbox's own directories, made and removed with it.
    own: Dirs,
    /// The run directory in the devices hierarchy, which every sandbox of the run shares: the
    /// allowlist is the same for all and the controller counts nothing, so a directory per
    /// sandbox would only cost a mkdir and an rmdir each.
    devices: Option<PathBuf>,
    figures: fs::Figures,
    /// Its `tasks` file in every hierarchy, open for the init to move itself in (see [`Entry`]);
    /// empty when one could not be opened, and once taken.
    tasks: std::sync::Mutex<Vec<std::os::fd::OwnedFd>>,
}

impl Group {
    /// Every file `usage` reads.
    fn figure_files(&self) -> Vec<PathBuf> {
        let dirs = &self.own;
        let mut files = vec![
            dirs.memory.join(MEMORY_PEAK),
            dirs.memory.join(MEMSW_PEAK),
            dirs.memory.join(OOM_CONTROL),
            dirs.pids.join(PIDS_PEAK),
            dirs.pids.join(PIDS_EVENTS),
            dirs.cpuacct.join(CPU_TOTAL_NS),
            dirs.cpuacct.join(CPU_USER_NS),
            dirs.cpuacct.join(CPU_SYS_NS),
        ];
        files.extend(dirs.cpu.as_ref().map(|d| d.join(CPU_STAT)));
        files.extend(dirs.blkio.as_ref().map(|d| d.join(IO_SERVICE_BYTES)));
        files
    }

    fn apply(&self, limits: &Limits) -> Result<(), SandboxError> {
        let dirs = &self.own;
        if let Some(bytes) = limits.memory_bytes {
            fs::write(&dirs.memory.join(MEMORY_LIMIT), &bytes.to_string())?;
            // memsw = memory means "no swap on top": the cap is real memory.
            let memsw = dirs.memory.join(MEMSW_LIMIT);
            if memsw.exists() {
                fs::write(&memsw, &bytes.to_string())?;
            }
        }
        if let Some(max) = limits.pids {
            fs::write(&dirs.pids.join(PIDS_MAX), &max.to_string())?;
        }
        if let (Some(millis), Some(cpu)) = (limits.cpu_millis, &dirs.cpu) {
            fs::write(&cpu.join(CPU_PERIOD), &PERIOD_US.to_string())?;
            fs::write(
                &cpu.join(CPU_QUOTA),
                &(u64::from(millis) * PERIOD_US / 1000).to_string(),
            )?;
        }
        if let Some(blkio) = &dirs.blkio {
            // v1 counts only IO that passes a throttling rule: an unreachable rate where no cap
            // is asked turns the counters on at no cost.
            // A device that refuses a counting-only rule is not counted; one that refuses the
            // asked cap fails the sandbox.
            for disk in blockio::disks() {
                let _ = fs::write(
                    &blkio.join(IO_READ_BPS),
                    &format!("{disk} {UNREACHABLE_BPS}"),
                );
                match limits.io_write_bps {
                    Some(bps) => fs::write(&blkio.join(IO_WRITE_BPS), &format!("{disk} {bps}"))?,
                    None => {
                        let rule = format!("{disk} {UNREACHABLE_BPS}");
                        let _ = fs::write(&blkio.join(IO_WRITE_BPS), &rule);
                    }
                }
            }
        }
        Ok(())
    }

    /// Every directory the sandbox's processes belong in, its own and the shared one.
    fn all_dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.own.iter().chain(self.devices.as_ref())
    }

    /// `cpuacct.usage` is exact (scheduler runtime) but the user/system split files are
    /// tick-sampled (4 ms steps here): split the exact total by the sampled ratio.
    fn cpu_split_us(&self) -> (u64, u64) {
        let cpuacct = &self.own.cpuacct;
        let number = |file| self.figures.number(&cpuacct.join(file)).unwrap_or(0);
        let (total, user, system) = (
            number(CPU_TOTAL_NS),
            number(CPU_USER_NS),
            number(CPU_SYS_NS),
        );
        let user_share = if user + system == 0 {
            total
        } else {
            (u128::from(total) * u128::from(user) / u128::from(user + system)) as u64
        };
        (user_share / 1000, (total - user_share) / 1000)
    }
}

impl SandboxCgroup for Group {
    fn dirs(&self) -> Vec<PathBuf> {
        self.all_dirs().cloned().collect()
    }

    fn take_entry(&self) -> Option<Entry> {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        (!tasks.is_empty()).then_some(Entry::MoveSelf(tasks))
    }

    fn add_process(&self, pid: i32) -> Result<(), SandboxError> {
        let pid = pid.to_string();
        self.all_dirs()
            .try_for_each(|dir| fs::write(&dir.join("cgroup.procs"), &pid))
    }

    fn usage(&self, machine_has_swap: bool) -> ResourceUsage {
        let dirs = &self.own;
        let (cpu_user_us, cpu_system_us) = self.cpu_split_us();
        // Read once, every key taken from the one text.
        let cpu_text = dirs
            .cpu
            .as_ref()
            .and_then(|d| self.figures.text(&d.join(CPU_STAT)));
        let cpu_stat = |key| {
            cpu_text
                .as_deref()
                .and_then(|text| fs::keyed(text, key))
                .unwrap_or(0)
        };
        let io = dirs.blkio.as_ref().and_then(|d| {
            self.figures
                .text(&d.join(IO_SERVICE_BYTES))
                .map(|text| blockio::v1_service_bytes(&text))
        });
        let memory_peak_bytes = self.figures.number(&dirs.memory.join(MEMORY_PEAK));
        // v1 keeps only the peak of memory + swap together: less the memory peak, that is a
        // lower bound of the swap peak (exact when both peaked together, as under pressure).
        let memory_swap_peak_bytes = machine_has_swap
            .then(|| self.figures.number(&dirs.memory.join(MEMSW_PEAK)))
            .flatten()
            .map(|both| both.saturating_sub(memory_peak_bytes.unwrap_or(0)));
        ResourceUsage {
            cpu_user_us,
            cpu_system_us,
            memory_peak_bytes,
            memory_swap_peak_bytes,
            oom_kills: self
                .figures
                .keyed(&dirs.memory.join(OOM_CONTROL), "oom_kill")
                .unwrap_or(0),
            pids_peak: self.figures.number(&dirs.pids.join(PIDS_PEAK)),
            forks_refused: self
                .figures
                .keyed(&dirs.pids.join(PIDS_EVENTS), "max")
                .unwrap_or(0),
            cpu_throttled_count: cpu_stat("nr_throttled"),
            cpu_throttled_us: cpu_stat("throttled_time") / 1000,
            io_read_bytes: io.map(|(read, _)| read),
            io_write_bytes: io.map(|(_, written)| written),
        }
    }

    fn memory_dir(&self) -> &Path {
        &self.own.memory
    }

    fn kill(&self) {
        fs::kill_procs(&self.own.pids);
    }

    fn remove(&self) -> Result<(), SandboxError> {
        let mut first_error = None;
        for dir in self.own.iter() {
            if let Err(e) = fs::remove_dir(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hierarchy_carrying_two_controllers_is_one_directory() {
        // `cpu,cpuacct` mounted together, as most v1 distributions do.
        let shared = PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/run/s0");
        let dirs = Dirs {
            memory: PathBuf::from("/sys/fs/cgroup/memory/run/s0"),
            pids: PathBuf::from("/sys/fs/cgroup/pids/run/s0"),
            cpuacct: shared.clone(),
            cpu: Some(shared.clone()),
            blkio: None,
            devices: None,
        };
        let listed: Vec<&PathBuf> = dirs.iter().collect();
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert_eq!(listed.iter().filter(|d| ***d == shared).count(), 1);
    }
}
