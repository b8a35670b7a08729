//! The runner's side of a sandbox: create its cgroup, clone the init into new namespaces, hand it
//! its config, watch it (deadline, cancellation, output), then collect usage and clean up.

use crate::cancel::Cancel;
use crate::capture::Capture;
use crate::cgroup::{self, Group, RunGroup};
use crate::clone::{self, ChildFds, InitCommand};
use crate::error::SandboxError;
use crate::janitor::{Exiting, Janitor};
use crate::netpool::NetPool;
use crate::protocol::{InitConfig, InitReport, MountConfig, INIT_ARG};
use crate::result::{Exit, NetworkAttempts, Protections, ResourceUsage, SandboxResult};
use crate::spec::{Output, SandboxSpec, Stdin};
use crate::userns::RootMapping;
use crate::zygote::Zygote;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long, after the init is gone, output pipes may take to close before we stop reading.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// The binary to re-execute as the sandbox's init; it must call
    /// [`crate::init::run_if_requested`]. Default: this process's own executable.
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
    /// `None` when running degraded, without cgroups.
    cgroups: Option<Arc<RunGroup>>,
    /// Why cgroups are missing, when they are.
    degraded: Option<String>,
    /// Not root: every sandbox gets a user namespace mapping the runner's user to root.
    rootless: bool,
    /// Who root inside is on the host, when sandboxes get a user namespace.
    user_namespace: Option<RootMapping>,
    init: InitCommand,
    /// Finishes sandboxes whose init has reported (see [`crate::janitor`]).
    janitor: Janitor,
    /// Many sandboxes will run: cgroups are made ahead (and network namespaces, see `netns`).
    prepare_ahead: bool,
    /// Network namespaces made ahead (root runners without a user namespace, when asked).
    netns: Option<NetPool>,
    /// Starts inits without an exec each (root runners without a user namespace, when asked).
    zygote: Option<Zygote>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Every sandbox's cgroup is gone before the run directory is removed.
        self.janitor.drain();
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
            crate::userns::check_available()?;
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
        Ok(Engine {
            cgroups,
            degraded,
            rootless,
            user_namespace,
            init: InitCommand::new(path, argv),
            janitor: Janitor::new(),
            prepare_ahead: options.prepare_ahead,
            // Without a zygote every sandbox's init is started with clone and exec.
            zygote: (options.prepare_ahead && user_namespace.is_none())
                .then(|| Zygote::start(&exe).ok())
                .flatten(),
            netns: (options.prepare_ahead && user_namespace.is_none()).then(NetPool::start),
        })
    }

    /// `v1`, `v2`, or `none` when running degraded.
    pub fn cgroup_version(&self) -> &'static str {
        self.cgroups.as_deref().map_or("none", RunGroup::version)
    }

    /// Whether sandbox inits are started by a zygote (see [`crate::zygote`]) rather than each
    /// with clone and exec.
    pub fn has_zygote(&self) -> bool {
        self.zygote.is_some()
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
            self.cgroups
                .as_ref()
                .is_some_and(|c| c.swap_disabled(&spec.limits)),
            self.user_namespace,
            self.cgroups
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
        let group = match &self.cgroups {
            Some(cgroups) => {
                cgroups.check_limits(&spec.limits)?;
                Some(cgroups.new_group(&spec.limits)?)
            }
            None => None,
        };
        let started = Instant::now();
        let interactive = interactive(spec);
        let watched = self.start(spec, group.as_ref(), interactive)?;
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
            Some(w) => self.janitor.hand_over(Exiting {
                pid: w.pid,
                pidfd: w.pidfd,
                group,
                refill: self
                    .cgroups
                    .clone()
                    .filter(|_| self.prepare_ahead)
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
                    if self.user_namespace.is_some() && !self.rootless =>
                {
                    SandboxError::InitDiedInUserNamespace(status)
                }
                e => e,
            })?;
        result.oom_victims = oom_victims;
        Ok(result)
    }

    fn start(
        &self,
        spec: &SandboxSpec,
        group: Option<&Group>,
        interactive: bool,
    ) -> Result<Watched, SandboxError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |e: std::io::Error| SandboxError::io(what, e)
        };
        let (config_r, config_w) = pipe().map_err(io("creating the config pipe"))?;
        let (report_r, report_w) = pipe().map_err(io("creating the report pipe"))?;
        let output = match spec.output {
            Output::Capture { .. } => Some(pipe().map_err(io("creating the output pipe"))?),
            _ => None,
        };
        let stdin = match spec.stdin {
            Stdin::Null => Some(
                clone::high_fd(
                    File::open("/dev/null")
                        .map_err(io("opening /dev/null"))?
                        .into(),
                )
                .map_err(io("moving /dev/null"))?,
            ),
            Stdin::Inherit => None,
        };
        let out_w = output.as_ref().map(|(_, w)| w.as_raw_fd());
        let pooled_net = self
            .netns
            .as_ref()
            .filter(|_| spec.namespaces.net && spec.loopback)
            .and_then(NetPool::take);
        let fds = ChildFds {
            stdin: stdin.as_ref().map(|f| f.as_raw_fd()),
            stdout: match spec.output {
                Output::Inherit => None,
                Output::Stderr => Some(2),
                Output::Capture { .. } => out_w,
            },
            stderr: out_w,
            config: config_r.as_raw_fd(),
            report: report_w.as_raw_fd(),
            netns: pooled_net.as_ref().map(AsRawFd::as_raw_fd),
        };
        let user_ns = if self.user_namespace.is_some() {
            libc::CLONE_NEWUSER as u64
        } else {
            0
        };
        let into_cgroup = group.and_then(Group::clone_target);
        let mut ns_flags = namespace_flags(spec) | user_ns;
        if pooled_net.is_some() {
            ns_flags &= !(libc::CLONE_NEWNET as u64);
        }
        let from_zygote = self
            .zygote
            .as_ref()
            .and_then(|z| z.spawn(&fds, ns_flags, into_cgroup).ok())
            .map(|(pid, pidfd)| (pid, pidfd, into_cgroup.is_some()));
        let (pid, pidfd, placed) = match from_zygote {
            Some(started) => Ok(started),
            None => clone::spawn(&self.init, &fds, ns_flags, into_cgroup),
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EINVAL) | Some(libc::ENOSPC) | Some(libc::EUSERS) => {
                SandboxError::Namespaces(e)
            }
            _ => SandboxError::io("starting the sandbox init", e),
        })?;
        // The pooled namespace (if any) lives on in the child alone.
        let joined_pooled_net = pooled_net.is_some();
        drop((config_r, report_w, stdin, pooled_net));
        let output_r = output.map(|(r, w)| {
            drop(w);
            r
        });
        let watched = Watched {
            pid,
            pidfd,
            report: report_r,
            output: output_r,
        };

        // The init waits for its config: map its user and put it in its cgroup first.
        let prepared = match self.user_namespace {
            Some(to) => crate::userns::map_root(pid, to),
            None => Ok(()),
        }
        .and_then(|()| match group {
            Some(g) if !placed => g.add_process(pid),
            _ => Ok(()),
        });
        if let Err(e) = prepared {
            watched.kill(Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(e);
        }
        let config = InitConfig {
            argv: spec.argv.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            hostname: spec.namespaces.uts.then(|| spec.hostname.clone()),
            mounts: spec.namespaces.mount.then_some(MountConfig {
                tmp_size_bytes: spec.tmp_size_bytes,
                filesystem: spec.filesystem.clone(),
            }),
            // A pooled namespace comes with `lo` up.
            loopback: spec.namespaces.net && spec.loopback && !joined_pooled_net,
            make_dirs: spec.make_dirs.clone(),
            reachable: spec.reachable.clone(),
            new_cgroup_ns: spec.namespaces.cgroup,
            user_ns: self.user_namespace.is_some(),
            privileged: spec.privileged,
            foreground_tty: interactive,
            cpuset: spec.cpuset.clone(),
            cgroup_dirs: group.map(Group::dirs).unwrap_or_default(),
        };
        let encoded =
            serde_json::to_vec(&config).map_err(|e| SandboxError::BadSpec(e.to_string()))?;
        // The leading byte releases the cloned child to exec the init (see `clone`); a failed
        // write means the init died, and the watch below reports how.
        let mut config_w = File::from(config_w);
        let _ = config_w
            .write_all(b"\n")
            .and_then(|()| config_w.write_all(&encoded));
        Ok(watched)
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

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((clone::high_fd(r)?, clone::high_fd(w)?))
}

fn namespace_flags(spec: &SandboxSpec) -> u64 {
    let ns = &spec.namespaces;
    [
        (ns.pid, libc::CLONE_NEWPID),
        (ns.net, libc::CLONE_NEWNET),
        (ns.mount, libc::CLONE_NEWNS),
        (ns.uts, libc::CLONE_NEWUTS),
        (ns.ipc, libc::CLONE_NEWIPC),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .fold(0u64, |acc, (_, flag)| acc | flag as u64)
}

/// A started init and the pipes we read from it.
struct Watched {
    pid: i32,
    pidfd: OwnedFd,
    report: OwnedFd,
    output: Option<OwnedFd>,
}

impl Watched {
    fn kill(&self, signal: Signal) {
        // SAFETY: pidfd_send_signal on our own child's pidfd: no PID-reuse race.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }

    fn network_counters(&self) -> NetworkAttempts {
        crate::netstat::read_no_route_counters(
            &Path::new("/proc").join(self.pid.to_string()).join("net"),
        )
    }
}

/// What the watch saw.
struct Outcome {
    report: Option<InitReport>,
    init_status: Option<nix::sys::wait::WaitStatus>,
    timed_out: bool,
    cancelled: bool,
    /// Counters read from outside just before a forced kill, when the init could not report.
    network_at_kill: NetworkAttempts,
    output: Option<crate::capture::CapturedOutput>,
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
