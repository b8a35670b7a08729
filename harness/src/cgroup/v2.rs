//! cgroup v2: one directory per sandbox in the unified hierarchy.
//!
//! The run directory needs memory and pids (and cpu, for quotas) enabled in the runner's own
//! cgroup's `cgroup.subtree_control`. When they are not, we enable them, which the kernel only
//! allows when the runner's cgroup holds no processes of its own (the "no internal processes"
//! rule) or is the root; otherwise the error names the remedy.

use super::{blockio, fs, sweep};
use super::{Entry, RunCgroup, SandboxCgroup};
use crate::devices::DeviceProgram;
use crate::error::SandboxError;
use crate::result::ResourceUsage;
use crate::spec::Limits;
use std::os::fd::AsRawFd;
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
const SWAP_PEAK: &str = "memory.swap.peak";
const IO_MAX: &str = "io.max";
const IO_STAT: &str = "io.stat";
const KILL: &str = "cgroup.kill";
const PERIOD_US: u64 = 100_000;

#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    has_cpu: bool,
    /// `io` is delegated: IO is measured and `--io-write-bps` possible.
    has_io: bool,
    /// The device allowlist, attached to every sandbox's cgroup (root runners only).
    devices: Option<DeviceProgram>,
    /// Set when the runner had to move itself out of its own cgroup to delegate it.
    moved: Option<MovedRunner>,
}

/// The runner's own cgroup held the runner itself, so (no internal processes) the runner moved
/// into a leaf `<run dir>/runner` and enabled controllers in its own cgroup; both are undone on
/// removal, leaving the cgroup as it was found.
#[derive(Debug)]
struct MovedRunner {
    own: PathBuf,
    enabled_in_own: Vec<String>,
}

const RUNNER_LEAF: &str = "runner";

fn words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

impl RunDir {
    /// `may_move_self`: whether the runner may move itself out of `own` into a leaf when `own`
    /// holds it (true for the runner's own cgroup, false for an explicit parent).
    pub fn create(own: &Path, name: &str, may_move_self: bool) -> Result<RunDir, SandboxError> {
        let available = words(&own.join(CONTROLLERS));
        for needed in ["memory", "pids"] {
            if !available.iter().any(|c| c == needed) {
                return Err(SandboxError::MissingController {
                    controller: needed.to_owned(),
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
        let required: Vec<&str> = ["memory", "pids"]
            .into_iter()
            .chain(has_cpu.then_some("cpu"))
            .collect();
        // `io` only gives figures: used when it is already enabled for our cgroup's children,
        // or enabled along with the controllers we must enable anyway, never worth a change of
        // its own to a cgroup we did not create.
        let has_io = available.iter().any(|c| c == "io")
            && (missing_in(own, &["io"]).is_empty() || !missing_in(own, &required).is_empty());
        let wanted: Vec<&str> = required
            .iter()
            .copied()
            .chain(has_io.then_some("io"))
            .collect();
        sweep::sweep_stale(own);
        let dir = own.join(name);
        fs::mkdir(&dir)?;
        let mut run = RunDir {
            dir,
            has_cpu,
            has_io,
            // Loading needs CAP_SYS_ADMIN (or CAP_BPF); without it (no root) the sandbox runs
            // in a user namespace, where the kernel refuses device nodes anyway.
            devices: None,
            moved: None,
        };
        let missing = missing_in(own, &wanted);
        if !missing.is_empty() {
            match enable(own, &missing) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && may_move_self => {
                    run.move_runner_out(own, &missing)?
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    run.remove();
                    return Err(not_delegated(own, &missing));
                }
                Err(source) => {
                    run.remove();
                    return Err(SandboxError::Cgroup {
                        action: "enable controllers",
                        path: own.join(SUBTREE_CONTROL),
                        source,
                    });
                }
            }
        }
        run.devices = device_program(&run.dir);
        let here = missing_in(&run.dir, &wanted);
        if let Err(source) = enable(&run.dir, &here) {
            run.remove();
            return Err(SandboxError::Cgroup {
                action: "enable controllers",
                path: run.dir.join(SUBTREE_CONTROL),
                source,
            });
        }
        Ok(run)
    }

    /// Moves this process into `<run dir>/runner` so its own cgroup can delegate controllers.
    fn move_runner_out(&mut self, own: &Path, missing: &[String]) -> Result<(), SandboxError> {
        let leaf = self.dir.join(RUNNER_LEAF);
        let moved = fs::mkdir(&leaf)
            .and_then(|()| fs::write(&leaf.join("cgroup.procs"), &std::process::id().to_string()));
        if let Err(e) = moved {
            self.remove();
            return Err(e);
        }
        self.moved = Some(MovedRunner {
            own: own.to_owned(),
            enabled_in_own: Vec::new(),
        });
        match enable(own, missing) {
            Ok(()) => {
                if let Some(m) = self.moved.as_mut() {
                    m.enabled_in_own = missing.to_vec();
                }
                Ok(())
            }
            Err(_) => {
                self.remove();
                Err(not_delegated(own, missing))
            }
        }
    }
}

impl RunCgroup for RunDir {
    fn version(&self) -> &'static str {
        "v2"
    }

    /// Whether this kernel can limit swap per cgroup (`memory.swap.max` exists).
    fn swap_limit_supported(&self) -> bool {
        self.dir.join(SWAP_MAX).exists()
    }

    /// Whether sandboxes get the device allowlist (a BPF cgroup device program).
    fn enforces_devices(&self) -> bool {
        self.devices.is_some()
    }

    fn check_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        if limits.io_write_bps.is_some() && !self.has_io {
            return Err(SandboxError::MissingController {
                controller: "io".to_owned(),
                remedy: format!(
                    "cgroup v2 does not offer `io` under {}; enable it in the parent's \
                     cgroup.subtree_control (`echo +io > .../cgroup.subtree_control`) or drop \
                     --io-write-bps",
                    self.dir.display()
                ),
            });
        }
        if limits.cpu_millis.is_some() && !self.has_cpu {
            return Err(SandboxError::MissingController {
                controller: "cpu".to_owned(),
                remedy: format!(
                    "cgroup v2 does not offer `cpu` under {}; enable it in the parent's \
                     cgroup.subtree_control or drop --cpus",
                    self.dir.display()
                ),
            });
        }
        Ok(())
    }

    fn new_group(
        &self,
        name: &str,
        limits: &Limits,
    ) -> Result<Box<dyn SandboxCgroup>, SandboxError> {
        let mut group = Group {
            dir: self.dir.join(name),
            fd: None,
            figures: fs::Figures::default(),
        };
        fs::mkdir(&group.dir)?;
        group.fd = std::fs::File::open(&group.dir).ok();
        match group.apply(limits, self.devices.as_ref()) {
            Ok(()) => {
                group.figures =
                    fs::Figures::open(FIGURE_FILES.iter().map(|f| group.dir.join(f)).collect());
                Ok(Box::new(group))
            }
            Err(e) => {
                let _ = group.remove();
                Err(e)
            }
        }
    }

    /// Removes the run directory and, if the runner moved itself, moves it back and disables
    /// the controllers it enabled, in the order the kernel requires.
    fn remove(&self) {
        let Some(moved) = &self.moved else {
            let _ = fs::remove_tree(&self.dir);
            return;
        };
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.file_name() != RUNNER_LEAF {
                    let _ = fs::remove_tree(&entry.path());
                }
            }
        }
        let disable = |dir: &Path, controllers: &[String]| {
            let off: Vec<String> = controllers.iter().map(|c| format!("-{c}")).collect();
            let _ = std::fs::write(dir.join(SUBTREE_CONTROL), off.join(" "));
        };
        disable(&self.dir, &words(&self.dir.join(SUBTREE_CONTROL)));
        disable(&moved.own, &moved.enabled_in_own);
        let _ = fs::write(
            &moved.own.join("cgroup.procs"),
            &std::process::id().to_string(),
        );
        let _ = fs::remove_tree(&self.dir);
    }
}

/// The device allowlist program, when it can be loaded (needs CAP_SYS_ADMIN or CAP_BPF: root;
/// without root the sandbox's user namespace refuses device nodes anyway) and attached: tried
/// once on a probe cgroup, since an ancestor's exclusive program would refuse every attach.
fn device_program(run_dir: &Path) -> Option<DeviceProgram> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let program = DeviceProgram::load().ok()?;
    let probe = run_dir.join("device-probe");
    fs::mkdir(&probe).ok()?;
    let attached = std::fs::File::open(&probe)
        .and_then(|dir| program.attach(std::os::fd::AsRawFd::as_raw_fd(&dir)));
    let _ = fs::remove_dir(&probe);
    attached.ok().map(|()| program)
}

fn not_delegated(own: &Path, missing: &[String]) -> SandboxError {
    let me = std::process::id() as i32;
    let others = fs::procs(own).into_iter().filter(|&pid| pid != me).count();
    SandboxError::NotDelegated(format!(
        "enabling {} under {} needs that cgroup to hold no processes (cgroup v2's \
         no-internal-processes rule), but {others} process(es) other than cargo-sandbox are in \
         it. Give sandboxes an empty cgroup instead: `sudo mkdir /sys/fs/cgroup/sandbox` and \
         pass `--cgroup-parent /sys/fs/cgroup/sandbox` (or set CARGO_SANDBOX_CGROUP_PARENT), or \
         start cargo-sandbox alone in a delegated cgroup, e.g. \
         `systemd-run --scope -p Delegate=yes cargo-sandbox sandbox ...`",
        missing.join(" "),
        own.display()
    ))
}

fn missing_in(dir: &Path, controllers: &[&str]) -> Vec<String> {
    let enabled = words(&dir.join(SUBTREE_CONTROL));
    controllers
        .iter()
        .filter(|c| !enabled.iter().any(|e| e == *c))
        .map(|c| (*c).to_owned())
        .collect()
}

/// Enables `controllers` for `dir`'s children.
fn enable(dir: &Path, controllers: &[String]) -> std::io::Result<()> {
    if controllers.is_empty() {
        return Ok(());
    }
    let on: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    std::fs::write(dir.join(SUBTREE_CONTROL), on.join(" "))
}

#[derive(Debug)]
pub struct Group {
    dir: PathBuf,
    /// Opened once created: the target of `CLONE_INTO_CGROUP`.
    fd: Option<std::fs::File>,
    figures: fs::Figures,
}

/// Every file `usage` reads.
const FIGURE_FILES: [&str; 7] = [
    CPU_STAT,
    IO_STAT,
    SWAP_PEAK,
    MEMORY_PEAK,
    MEMORY_EVENTS,
    PIDS_PEAK,
    PIDS_EVENTS,
];

impl Group {
    fn apply(&self, limits: &Limits, devices: Option<&DeviceProgram>) -> Result<(), SandboxError> {
        if let Some(program) = devices {
            let fd =
                self.fd
                    .as_ref()
                    .map(AsRawFd::as_raw_fd)
                    .ok_or_else(|| SandboxError::Cgroup {
                        action: "open",
                        path: self.dir.clone(),
                        source: std::io::Error::from_raw_os_error(libc::EBADF),
                    })?;
            program.attach(fd).map_err(|source| SandboxError::Cgroup {
                action: "attach the device allowlist (BPF) to",
                path: self.dir.clone(),
                source,
            })?;
        }
        if let Some(bps) = limits.io_write_bps {
            for disk in blockio::disks() {
                fs::write(&self.dir.join(IO_MAX), &format!("{disk} wbps={bps}"))?;
            }
        }
        if let Some(bytes) = limits.memory_bytes {
            fs::write(&self.dir.join(MEMORY_MAX), &bytes.to_string())?;
            let swap = self.dir.join(SWAP_MAX);
            if swap.exists() {
                fs::write(&swap, "0")?;
            }
        }
        if let Some(max) = limits.pids {
            fs::write(&self.dir.join(PIDS_MAX), &max.to_string())?;
        }
        if let Some(millis) = limits.cpu_millis {
            let quota = u64::from(millis) * PERIOD_US / 1000;
            fs::write(&self.dir.join(CPU_MAX), &format!("{quota} {PERIOD_US}"))?;
        }
        Ok(())
    }
}

impl SandboxCgroup for Group {
    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn memory_dir(&self) -> &Path {
        &self.dir
    }

    fn take_entry(&self) -> Option<Entry> {
        self.fd.as_ref().map(|fd| Entry::CloneInto(fd.as_raw_fd()))
    }

    fn add_process(&self, pid: i32) -> Result<(), SandboxError> {
        fs::write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn usage(&self, machine_has_swap: bool) -> ResourceUsage {
        // Read once (each read makes the kernel gather the figures), every key from the text.
        let cpu_text = self
            .figures
            .text(&self.dir.join(CPU_STAT))
            .unwrap_or_default();
        let cpu = |key| fs::keyed(&cpu_text, key).unwrap_or(0);
        let figures = &self.figures;
        let io = figures
            .text(&self.dir.join(IO_STAT))
            .map(|text| blockio::v2_io_stat(&text));
        ResourceUsage {
            // `memory.swap.peak` exists from Linux 6.5.
            memory_swap_peak_bytes: machine_has_swap
                .then(|| figures.number(&self.dir.join(SWAP_PEAK)))
                .flatten(),
            io_read_bytes: io.map(|(read, _)| read),
            io_write_bytes: io.map(|(_, written)| written),
            cpu_user_us: cpu("user_usec"),
            cpu_system_us: cpu("system_usec"),
            memory_peak_bytes: figures.number(&self.dir.join(MEMORY_PEAK)),
            oom_kills: figures
                .keyed(&self.dir.join(MEMORY_EVENTS), "oom_kill")
                .unwrap_or(0),
            pids_peak: figures.number(&self.dir.join(PIDS_PEAK)),
            forks_refused: figures
                .keyed(&self.dir.join(PIDS_EVENTS), "max")
                .unwrap_or(0),
            cpu_throttled_count: cpu("nr_throttled"),
            cpu_throttled_us: cpu("throttled_usec"),
        }
    }

    fn kill(&self) {
        if fs::write(&self.dir.join(KILL), "1").is_err() {
            fs::kill_procs(&self.dir);
        }
    }

    fn remove(&self) -> Result<(), SandboxError> {
        fs::remove_dir(&self.dir)
    }
}
