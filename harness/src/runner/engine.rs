//! The runner's side of a sandbox: create its cgroup, clone the init into new namespaces, hand it
//! its config, watch it (deadline, cancellation, output), then collect usage and clean up.

use crate::cgroup::{self, Group, RunGroup};
use crate::error::SandboxError;
use crate::protocol::{InitReport, INIT_ARG};
use crate::result::{Exit, NetworkAttempts, Protections, ResourceUsage, SandboxResult};
use crate::runner::cancel::Cancel;
use crate::runner::capture::Capture;
use crate::runner::clone::InitCommand;
use crate::runner::janitor::{Exiting, Janitor};
use crate::runner::netpool::NetPool;
use crate::runner::start::{Shape, Starter, Watched};
use crate::runner::warm::{KeepWarm, WarmPool};
use crate::runner::zygote::Zygote;
use crate::spec::RootMapping;
use crate::spec::{Output, SandboxSpec, Stdin};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long, after the init is gone, output pipes may take to close before we stop reading.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// The binary to re-execute as the sandbox's init; it must call
    /// [`crate::run_if_requested`]. Default: this process's own executable.
    pub init_exe: Option<PathBuf>,
    /// Create sandbox cgroups under these cgroups instead of under the runner's own (a runner
    /// that shares its cgroup, or runs without root, is given delegated ones): one directory on
    /// cgroup v2, one per controller (memory, pids, cpuacct, optionally cpu) on v1.
    pub cgroup_parents: Vec<PathBuf>,
    /// When no cgroup can be used, run without caps (and say so in every result) instead of
    /// failing.
    pub allow_degraded: bool,
    /// Give every sandbox a user namespace whose root is this host user (`--userns`). Implied,
    /// as the runner's own user, when the runner is not root.
    pub user_namespace: Option<RootMapping>,
    /// Many sandboxes will run (a test suite): prepare network namespaces ahead of need.
    pub prepare_ahead: bool,
}

/// Runs sandboxes. One per runner process: it owns the run's cgroup directory, which it sweeps
/// of dead runners' leftovers when created and removes when dropped. `run` may be called from
/// many threads at once; each calling thread must outlive the sandboxes it starts (the init dies
/// with the thread that cloned it, by `PR_SET_PDEATHSIG`).
#[derive(Debug)]
pub struct Engine {
    /// What starting an init needs: cgroups, the zygote, the pools.
    starter: Arc<Starter>,
    /// Inits started ahead of need (with a zygote only; see [`crate::runner::warm`]).
    warm: Option<WarmPool>,
    /// cgroup v1, while the run starts (see [`KeepWarm`]).
    keep_warm: Option<KeepWarm>,
    /// Why cgroups are missing, when they are.
    degraded: Option<String>,
    /// Not root: every sandbox gets a user namespace mapping the runner's user to root.
    rootless: bool,
    /// Many sandboxes will run: cgroups are made ahead (and network namespaces, see `netns`).
    prepare_ahead: bool,
    /// How many sandboxes ran in inits started ahead.
    started_ahead: std::sync::atomic::AtomicUsize,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Inits started ahead exit unused; every sandbox's cgroup is gone before the run
        // directory is removed.
        drop(self.keep_warm.take());
        drop(self.warm.take());
        self.starter.janitor.drain();
    }
}

impl std::fmt::Debug for InitCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitCommand")
    }
}

impl Engine {
    pub fn new(options: EngineOptions) -> Result<Engine, SandboxError> {
        let rootless = !nix::unistd::geteuid().is_root();
        let user_namespace = match options.user_namespace {
            Some(asked) if rootless && asked != RootMapping::runner() => {
                return Err(SandboxError::BadSpec(format!(
                    "without root, root in the sandbox can only be the runner's own user \
                     (uid {}), not uid {}: drop --userns or run as root",
                    RootMapping::runner().uid,
                    asked.uid
                )))
            }
            _ if rootless => Some(RootMapping::runner()),
            asked => asked,
        };
        if rootless {
            crate::runner::userns::check_available()?;
        }
        let cgroups = if options.cgroup_parents.is_empty() {
            cgroup::detect()
        } else {
            cgroup::explicit_parents(&options.cgroup_parents)
        }
        .and_then(|layout| RunGroup::create(&layout));
        let (cgroups, degraded) = match cgroups {
            Ok(cgroups) => (Some(Arc::new(cgroups)), None),
            Err(e) if options.allow_degraded => (None, Some(e.to_string())),
            Err(e) if rootless => return Err(SandboxError::RootlessCgroups(Box::new(e))),
            Err(e) => return Err(e),
        };
        let exe = options
            .init_exe
            .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
        let path = cstring(exe.as_os_str().as_encoded_bytes())?;
        let argv = vec![cstring(b"sandbox-init")?, cstring(INIT_ARG.as_bytes())?];
        let prepare_ahead = options.prepare_ahead && user_namespace.is_none();
        let starter = Arc::new(Starter {
            cgroups,
            user_namespace,
            init: InitCommand::new(path, argv),
            janitor: Janitor::new(),
            // Without a zygote every sandbox's init is started with clone and exec.
            zygote: prepare_ahead.then(|| Zygote::start(&exe).ok()).flatten(),
            netns: prepare_ahead.then(NetPool::start),
            placed_any: std::sync::atomic::AtomicBool::new(false),
        });
        let keep_warm = starter.zygote.as_ref().and_then(|zygote| {
            let dirs = starter.cgroups.as_ref()?.warm_up_dirs()?;
            Some(KeepWarm::start(starter.clone(), zygote.pid(), dirs))
        });
        Ok(Engine {
            keep_warm,
            warm: starter
                .zygote
                .is_some()
                .then(|| WarmPool::start(starter.clone())),
            starter,
            degraded,
            rootless,
            prepare_ahead: options.prepare_ahead,
            started_ahead: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// `v1`, `v2`, or `none` when running degraded.
    pub fn cgroup_version(&self) -> &'static str {
        self.starter
            .cgroups
            .as_deref()
            .map_or("none", RunGroup::version)
    }

    /// Whether sandbox inits are started by a zygote (see [`crate::runner::zygote`]) rather than each
    /// with clone and exec.
    pub fn has_zygote(&self) -> bool {
        self.starter.zygote.is_some()
    }

    /// Starts building sandboxes for specs like `spec` now, ahead of the first [`Engine::run`].
    /// Call it once the files the sandboxes will use exist (not while they are being built: a
    /// sandbox made ahead sees its copy-on-write directories as they were when it was made).
    /// `uses`: how many such sandboxes will run from now on, when known (no more are made;
    /// a later call says it again; the network namespaces made ahead count it as every
    /// sandbox still to start). Does nothing for an engine that does not prepare ahead.
    pub fn prepare(&self, spec: &SandboxSpec, uses: Option<usize>) {
        let shape = Shape::of(spec, self.starter.user_namespace.is_some());
        if let Some(netns) = self.starter.netns.as_ref().filter(|_| shape.loopback) {
            netns.expect(uses);
        }
        let supported = self
            .starter
            .cgroups
            .as_ref()
            .is_none_or(|c| c.check_limits(&spec.limits).is_ok());
        if let Some(pool) = self
            .warm
            .as_ref()
            .filter(|_| supported && shape.can_start_ahead())
        {
            pool.want(&shape, uses);
        }
    }

    /// How many sandboxes so far ran in an init started ahead of need (see [`crate::runner::warm`]).
    pub fn started_ahead(&self) -> usize {
        self.started_ahead
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether sandboxes get a user namespace (the runner is not root).
    pub fn rootless(&self) -> bool {
        self.rootless
    }

    /// The protections a sandbox of this spec runs under, as reports state them.
    pub fn protections(&self, spec: &SandboxSpec) -> Protections {
        Protections::new(
            spec,
            self.cgroup_version(),
            self.starter
                .cgroups
                .as_ref()
                .is_some_and(|c| c.swap_disabled(&spec.limits)),
            self.starter.user_namespace,
            self.starter
                .cgroups
                .as_deref()
                .is_some_and(RunGroup::enforces_devices),
            self.degraded.as_deref(),
        )
    }

    /// Runs one command in a fresh sandbox and reports what happened.
    pub fn run(
        &self,
        spec: &SandboxSpec,
        cancel: Option<&Cancel>,
    ) -> Result<SandboxResult, SandboxError> {
        if spec.argv.is_empty() {
            return Err(SandboxError::BadSpec("no command given".to_owned()));
        }
        if let Some(cgroups) = &self.starter.cgroups {
            cgroups.check_limits(&spec.limits)?;
        }
        let started = Instant::now();
        let interactive = interactive(spec);
        let user_ns = self.starter.user_namespace.is_some();
        let shape = Shape::of(spec, user_ns);
        // A sandbox that takes the runner's terminal is never started ahead.
        let warm = self
            .warm
            .as_ref()
            .filter(|_| !interactive && shape.can_start_ahead())
            .and_then(|pool| pool.take(&shape));
        // A spare cgroup made while this one is torn down is for a sandbox still to come.
        let refill = self.prepare_ahead
            && self
                .warm
                .as_ref()
                .is_none_or(|pool| pool.expects_more(&shape));
        let start = match warm {
            Some(start) => {
                self.started_ahead
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                start
            }
            None => {
                let group = match &self.starter.cgroups {
                    Some(cgroups) => Some(cgroups.new_group(&spec.limits)?),
                    None => None,
                };
                self.starter.start(shape, group, false)?
            }
        };
        let (watched, group) = start.release(spec, interactive)?;
        let outcome = watch(watched, spec, group.as_ref(), cancel);
        if interactive {
            reclaim_terminal();
        }
        let (outcome, still_exiting) = outcome?;
        let usage = group.as_ref().map(Group::usage);
        let oom_victims = match (&group, usage) {
            (Some(group), Some(usage)) if usage.oom_kills > 0 => group.oom_victims(),
            _ => Vec::new(),
        };
        let protections = self.protections(spec);
        match still_exiting {
            Some(w) => self.starter.janitor.hand_over(Exiting {
                pid: w.pid,
                pidfd: w.pidfd,
                group,
                refill: self
                    .starter
                    .cgroups
                    .clone()
                    .filter(|_| refill)
                    .map(|run| (run, spec.limits)),
            }),
            // A failed removal is retried when the run directory is dropped, and swept at the
            // next start if even that fails: it never hides the result.
            None => {
                if let Some(group) = group {
                    let _ = group.remove();
                }
            }
        }
        let mut result = outcome
            .into_result(&spec.argv[0], usage, protections, started)
            .map_err(|e| match e {
                // A root runner's --userns: the usual cause is a path the mapped user may not
                // read.
                SandboxError::InitDied(status)
                    if self.starter.user_namespace.is_some() && !self.rootless =>
                {
                    SandboxError::InitDiedInUserNamespace(status)
                }
                e => e,
            })?;
        result.oom_victims = oom_victims;
        Ok(result)
    }
}

/// Whether the command shares the runner's terminal (and so takes its foreground).
fn interactive(spec: &SandboxSpec) -> bool {
    // SAFETY: isatty has no preconditions.
    spec.stdin == Stdin::Inherit && unsafe { libc::isatty(0) } == 1
}

/// Gives the terminal's foreground back to the runner's process group once the command is gone.
fn reclaim_terminal() {
    // SAFETY: plain calls on fd 0 and this process's own process group; SIGTTOU is ignored only
    // around tcsetpgrp, as a background group must.
    unsafe {
        let previous = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::tcsetpgrp(0, libc::getpgrp());
        libc::signal(libc::SIGTTOU, previous);
    }
}

fn cstring(bytes: &[u8]) -> Result<CString, SandboxError> {
    CString::new(bytes).map_err(|_| SandboxError::BadSpec("a path contains a NUL byte".to_owned()))
}

/// What the watch saw.
struct Outcome {
    report: Option<InitReport>,
    init_status: Option<nix::sys::wait::WaitStatus>,
    timed_out: bool,
    cancelled: bool,
    /// Counters read from outside just before a forced kill, when the init could not report.
    network_at_kill: NetworkAttempts,
    output: Option<crate::result::CapturedOutput>,
}

enum Phase {
    Running { deadline: Option<Instant> },
    Terminating { kill_at: Instant },
    Killed,
}

fn watch(
    w: Watched,
    spec: &SandboxSpec,
    group: Option<&Group>,
    cancel: Option<&Cancel>,
) -> Result<(Outcome, Option<Watched>), SandboxError> {
    let mut phase = Phase::Running {
        deadline: spec.timeout.map(|t| Instant::now() + t),
    };
    let mut report_bytes = Vec::new();
    let mut capture = match spec.output {
        Output::Capture { limit_bytes } => Some(Capture::new(limit_bytes)),
        _ => None,
    };
    let mut outcome = Outcome {
        report: None,
        init_status: None,
        timed_out: false,
        cancelled: false,
        network_at_kill: NetworkAttempts::default(),
        output: None,
    };
    let mut report_open = true;
    let mut output_open = w.output.is_some();
    let mut drain_until: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];

    loop {
        let exited = outcome.init_status.is_some();
        if exited && !report_open && !output_open {
            break;
        }
        // The init reported and closed its output: all that is left is its exit, which the
        // janitor waits for.
        if !exited && !report_open && !output_open && matches!(phase, Phase::Running { .. }) {
            if let Ok(report @ InitReport::Finished { .. }) =
                serde_json::from_slice::<InitReport>(&report_bytes)
            {
                outcome.report = Some(report);
                outcome.output = capture.map(Capture::finish);
                return Ok((outcome, Some(w)));
            }
        }
        let now = Instant::now();
        if drain_until.is_some_and(|d| now >= d) {
            break;
        }
        let wake_at = match phase {
            Phase::Running { deadline } => deadline,
            Phase::Terminating { kill_at } => Some(kill_at),
            Phase::Killed => None,
        };
        let wake_at = [wake_at, drain_until].into_iter().flatten().min();
        if let Some(at) = wake_at.filter(|at| now >= *at) {
            let _ = at;
            phase = match phase {
                Phase::Running { .. } => {
                    outcome.timed_out = true;
                    w.kill(Signal::SIGTERM);
                    Phase::Terminating {
                        kill_at: now + spec.grace,
                    }
                }
                Phase::Terminating { .. } => {
                    outcome.network_at_kill = w.network_counters();
                    w.kill(Signal::SIGKILL);
                    if let Some(g) = group {
                        g.kill();
                    }
                    Phase::Killed
                }
                Phase::Killed => Phase::Killed,
            };
            continue;
        }
        let timeout = match wake_at {
            Some(at) => {
                PollTimeout::try_from(at.saturating_duration_since(now).as_millis().max(1) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };

        // Only what is still open is polled: poll reports hang-ups whatever was asked, so a
        // finished descriptor left in the set would turn this loop into a spin.
        let watch_cancel = cancel.filter(|_| !outcome.cancelled);
        let output = w.output.as_ref().filter(|_| output_open);
        let watched: [(bool, Option<std::os::fd::BorrowedFd>); 4] = [
            (!exited, Some(w.pidfd.as_fd())),
            (report_open, Some(w.report.as_fd())),
            (output.is_some(), output.map(|o| o.as_fd())),
            (watch_cancel.is_some(), watch_cancel.map(|c| c.fd())),
        ];
        let mut fds: Vec<PollFd> = watched
            .iter()
            .filter_map(|(on, fd)| fd.filter(|_| *on))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(SandboxError::io("waiting for the sandbox", e.into())),
        }
        let mut revents = fds.iter().map(|fd| {
            fd.revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        });
        let mut ready = [false; 4];
        for (slot, (on, fd)) in ready.iter_mut().zip(&watched) {
            if *on && fd.is_some() {
                *slot = revents.next().unwrap_or(false);
            }
        }
        let [pid_ready, report_ready, output_ready, cancel_ready] = ready;
        drop(fds);

        if report_ready {
            match read_some(&w.report, &mut buf) {
                0 => report_open = false,
                n => report_bytes.extend_from_slice(&buf[..n]),
            }
        }
        if output_ready {
            match (
                read_some(w.output.as_ref().expect("checked above"), &mut buf),
                capture.as_mut(),
            ) {
                (0, _) => output_open = false,
                (n, Some(c)) => c.push(&buf[..n]),
                (_, None) => {}
            }
        }
        if cancel_ready {
            outcome.cancelled = true;
            outcome.network_at_kill = w.network_counters();
            w.kill(Signal::SIGKILL);
            if let Some(g) = group {
                g.kill();
            }
            phase = Phase::Killed;
        }
        if pid_ready {
            let status = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(w.pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            let status = match status {
                Ok(nix::sys::wait::WaitStatus::StillAlive) => None,
                Ok(status) => Some(status),
                // Not our child (a zygote's): the pidfd said it exited, the zygote reaps it.
                Err(nix::Error::ECHILD) => Some(nix::sys::wait::WaitStatus::Exited(
                    nix::unistd::Pid::from_raw(w.pid),
                    -1,
                )),
                Err(_) => None,
            };
            if let Some(status) = status {
                outcome.init_status = Some(status);
                drain_until = Some(Instant::now() + DRAIN_LIMIT);
            }
        }
    }
    outcome.report = serde_json::from_slice(&report_bytes).ok();
    outcome.output = capture.map(Capture::finish);
    Ok((outcome, None))
}

/// One read; errors count as end of stream (the writer is gone either way).
fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut file = std::mem::ManuallyDrop::new(
        // SAFETY: borrowed for one read; ManuallyDrop keeps the descriptor open afterwards.
        unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd.as_raw_fd()) },
    );
    loop {
        match file.read(buf) {
            Ok(n) => return n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return 0,
        }
    }
}

impl Outcome {
    fn into_result(
        self,
        program: &str,
        usage: Option<ResourceUsage>,
        protections: Protections,
        started: Instant,
    ) -> Result<SandboxResult, SandboxError> {
        let base = |exit: Exit, wall_time: Duration| SandboxResult {
            exit,
            timed_out: self.timed_out,
            cancelled: self.cancelled,
            wall_time,
            usage: usage.unwrap_or_default(),
            oom_victims: Vec::new(),
            leaked_processes: Vec::new(),
            leaked_total: 0,
            files_written: Vec::new(),
            files_written_total: 0,
            network_attempts: self.network_at_kill,
            protections: protections.clone(),
            output: self.output.clone(),
        };
        match self.report {
            Some(InitReport::Finished {
                exit,
                wall_us,
                leaked,
                leaked_total,
                network,
                files_written,
                files_written_total,
                init_user_us,
                init_system_us,
                children,
            }) => Ok(SandboxResult {
                files_written,
                files_written_total,
                usage: match usage {
                    Some(usage) => ResourceUsage {
                        cpu_user_us: usage.cpu_user_us.saturating_sub(init_user_us),
                        cpu_system_us: usage.cpu_system_us.saturating_sub(init_system_us),
                        ..usage
                    },
                    // Without a cgroup, what the kernel kept for the reaped processes.
                    None => children,
                },
                leaked_processes: leaked,
                leaked_total,
                network_attempts: network,
                ..base(exit, Duration::from_micros(wall_us))
            }),
            Some(InitReport::SpawnFailed {
                not_found: true, ..
            }) => Err(SandboxError::CommandNotFound {
                program: program.to_owned(),
            }),
            Some(InitReport::SpawnFailed { message, .. }) => {
                Err(SandboxError::CommandNotExecutable {
                    program: program.to_owned(),
                    message,
                })
            }
            Some(InitReport::SetupFailed { stage, message }) => {
                Err(SandboxError::Init { stage, message })
            }
            None if self.timed_out || self.cancelled => {
                Ok(base(Exit::Signal(libc::SIGKILL), started.elapsed()))
            }
            None => Err(SandboxError::InitDied(format!("{:?}", self.init_status))),
        }
    }
}
