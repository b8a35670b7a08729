//! Starting a sandbox's init up to the point where it waits for its config: its pipes, its
//! cgroup, its namespaces (cloned by the zygote, or cloned and exec'd here), its user mapping and
//! its move into the cgroup. None of that depends on what the sandbox will run, only on its
//! [`Shape`], so [`crate::runner::warm`] can do it ahead of need; [`Started::release`] then
//! hands the init its config.

use crate::cgroup::{Entry, Group, RunGroup};
use crate::error::SandboxError;
use crate::protocol::{InitRun, InitSetup, MountConfig};
use crate::result::NetworkAttempts;
use crate::runner::clone::{self, ChildFds, InitCommand};
use crate::runner::janitor::{Exiting, Janitor};
use crate::runner::netpool::{NetPool, PooledNet};
use crate::runner::zygote::Zygote;
use crate::spec::RootMapping;
use crate::spec::{Filesystem, Limits, Output, SandboxSpec, Stdin};
use nix::sys::signal::Signal;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What starting an init needs; shared by the engine and the thread that starts inits ahead.
#[derive(Debug)]
pub struct Starter {
    /// Starts inits without an exec each (root runners without a user namespace, when asked).
    pub zygote: Option<Zygote>,
    /// Clones the inits of `--privileged` shapes, which the confined zygote must not: started
    /// when the first is made ahead (see [`Starter::zygote_for`]), when there is a `zygote`.
    pub privileged_zygote: std::sync::OnceLock<Option<Zygote>>,
    /// The init program, which a zygote runs as.
    pub zygote_exe: PathBuf,
    /// `None` when running degraded, without cgroups.
    pub cgroups: Option<Arc<RunGroup>>,
    /// Who root inside is on the host, when sandboxes get a user namespace.
    pub user_namespace: Option<RootMapping>,
    pub init: InitCommand,
    /// Network namespaces made ahead (root runners without a user namespace, when asked).
    pub netns: Option<NetPool>,
    /// Finishes sandboxes whose init has reported (see [`crate::runner::janitor`]).
    pub janitor: Janitor,
}

/// Everything a sandbox's start and set-up depend on: two started inits of one shape are
/// interchangeable until each is given its command. In a test run every test has the same.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// CLONE_NEW* flags (before a made-ahead network namespace replaces CLONE_NEWNET).
    pub ns_flags: u64,
    /// The network namespace gets `lo` up (a made-ahead one comes with it).
    pub loopback: bool,
    pub limits: Limits,
    pub stdin: Stdin,
    pub output: Output,
    /// Without `--privileged` the init confines itself while it is set up (see
    /// [`InitSetup::confine`]), so its command's start does not wait for it.
    pub privileged: bool,
    pub hostname: Option<String>,
    pub mounts: Option<MountConfig>,
    /// The spec's, with its working directory and program when they lie under `/tmp`.
    pub reachable: Vec<PathBuf>,
    /// The working directory, when it lies under none of `reachable` (see [`InitSetup::cwd`]);
    /// in a test run it lies in the workspace, so all tests share one shape.
    pub cwd: Option<PathBuf>,
    pub new_cgroup_ns: bool,
}

impl Shape {
    pub fn of(spec: &SandboxSpec, user_namespace: bool) -> Shape {
        let ns = &spec.namespaces;
        let ns_flags = [
            (ns.pid, libc::CLONE_NEWPID),
            (ns.net, libc::CLONE_NEWNET),
            (ns.mount, libc::CLONE_NEWNS),
            (ns.uts, libc::CLONE_NEWUTS),
            (ns.ipc, libc::CLONE_NEWIPC),
            (user_namespace, libc::CLONE_NEWUSER),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0u64, |acc, (_, flag)| acc | flag as u64);
        Shape {
            ns_flags,
            loopback: ns.net && spec.loopback,
            limits: spec.limits,
            stdin: spec.stdin,
            output: spec.output,
            privileged: spec.privileged,
            hostname: ns.uts.then(|| spec.hostname.clone()),
            mounts: ns.mount.then(|| MountConfig {
                tmp_size_bytes: spec.tmp_size_bytes,
                filesystem: spec.filesystem.clone(),
            }),
            reachable: reachable(spec),
            cwd: (!spec.reachable.iter().any(|r| spec.cwd.starts_with(r)))
                .then(|| spec.cwd.clone()),
            new_cgroup_ns: ns.cgroup,
        }
    }

    /// Whether sandboxes of this shape may be built before their command comes: not when the
    /// build leaves something on the host (`--keep-writes` puts each sandbox's upper layers in
    /// a directory of its own there).
    pub fn can_start_ahead(&self) -> bool {
        !matches!(
            &self.mounts,
            Some(MountConfig {
                filesystem: Filesystem::Isolated {
                    keep_writes: Some(_),
                    ..
                },
                ..
            })
        )
    }
}

impl SandboxSpec {
    /// Whether a sandbox made ahead for specs like this one can run `other`: both have the
    /// same [`Shape`]. What [`crate::Engine::prepare`] is given should start like the specs
    /// then run, or what it makes ahead goes unused.
    pub fn starts_like(&self, other: &SandboxSpec) -> bool {
        Shape::of(self, false) == Shape::of(other, false)
    }
}

/// The paths a sandbox keeps reachable under its private `/tmp`: the spec's, and its working
/// directory and program when they lie there and no path kept already holds them.
fn reachable(spec: &SandboxSpec) -> Vec<PathBuf> {
    let mut reachable = spec.reachable.clone();
    let program = spec
        .argv
        .first()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    for path in std::iter::once(&spec.cwd).chain(program.as_ref()) {
        let under_tmp = |p: &Path| p.starts_with("/tmp") && p != Path::new("/tmp");
        if under_tmp(path)
            && !reachable
                .iter()
                .any(|kept| under_tmp(kept) && path.starts_with(kept))
        {
            reachable.push(path.clone());
        }
    }
    reachable
}

/// A started init and the pipes we read from it.
pub struct Watched {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub report: OwnedFd,
    pub output: Option<OwnedFd>,
}

impl Watched {
    pub fn kill(&self, signal: Signal) {
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

    pub fn network_counters(&self) -> NetworkAttempts {
        crate::netstat::read_no_route_counters(
            &Path::new("/proc").join(self.pid.to_string()).join("net"),
        )
    }
}

/// An init in its namespaces and cgroup, waiting for its config.
pub struct Started {
    pub shape: Shape,
    pub group: Option<Group>,
    watched: Option<Watched>,
    config: Option<File>,
    /// The namespace it joined from the pool, to go back to it once the init is gone.
    net: Option<PooledNet>,
    /// Whose janitor finishes the init if it is never released.
    starter: Arc<Starter>,
}

impl Starter {
    /// Starts an init of `shape` in the cgroup `group` (made by the caller, so its errors are
    /// told apart from the start's). `ahead`: it may wait long for its command, so only the
    /// zygote may start it — a child cloned here dies with the thread that cloned it
    /// (`PR_SET_PDEATHSIG`), which for a start made ahead is the pool's filler thread.
    pub fn start(
        self: &Arc<Self>,
        shape: Shape,
        group: Option<Group>,
        ahead: bool,
    ) -> Result<Started, SandboxError> {
        let pipes = Pipes::open(&shape)?;
        let pooled_net = self
            .netns
            .as_ref()
            .filter(|_| shape.loopback)
            .and_then(NetPool::take);
        let fds = pipes.child_fds(&shape, pooled_net.as_ref().and_then(PooledNet::fd));
        let line = self.setup_line(&shape, group.as_ref(), pooled_net.is_some())?;
        let entry = group.as_ref().and_then(Group::take_entry);
        let mut ns_flags = shape.ns_flags;
        if pooled_net.is_some() {
            ns_flags &= !(libc::CLONE_NEWNET as u64);
        }
        let zygote = self.zygote_for(&shape, ahead);
        let (pid, pidfd, placed) =
            self.clone_init(zygote, &fds, ns_flags, entry.as_ref(), ahead)?;
        // The child has its own copies of the files it enters its cgroup by.
        drop(entry);
        // The child's ends live on in the child alone.
        let Pipes {
            config: (config_r, config_w),
            report: (report_r, report_w),
            output,
            stdin,
        } = pipes;
        drop((config_r, report_w, stdin));
        let watched = Watched {
            pid,
            pidfd,
            report: report_r,
            output: output.map(|(r, w)| {
                drop(w);
                r
            }),
        };
        if let Err(e) = self.place(pid, group.as_ref(), placed) {
            watched.kill(Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(e);
        }
        // The init builds its sandbox now and waits for its command; a failed write means it
        // died, and the watch reports how.
        let mut config = File::from(config_w);
        let _ = config.write_all(&line);
        Ok(Started {
            shape,
            group,
            watched: Some(watched),
            config: Some(config),
            net: pooled_net,
            starter: self.clone(),
        })
    }

    /// What the init builds before its command comes, as the line it reads first. `pooled_net`:
    /// it joins a namespace made ahead, which comes with `lo` up.
    fn setup_line(
        &self,
        shape: &Shape,
        group: Option<&Group>,
        pooled_net: bool,
    ) -> Result<Vec<u8>, SandboxError> {
        let setup = InitSetup {
            hostname: shape.hostname.clone(),
            mounts: shape.mounts.clone(),
            loopback: shape.loopback && !pooled_net,
            reachable: shape.reachable.clone(),
            cwd: shape.cwd.clone(),
            new_cgroup_ns: shape.new_cgroup_ns,
            user_ns: self.user_namespace.is_some(),
            cgroup_dirs: group.map(Group::dirs).unwrap_or_default(),
            confine: !shape.privileged,
        };
        // The leading byte releases a cloned child to exec the init (see `clone`).
        let mut line = b"\n".to_vec();
        serde_json::to_writer(&mut line, &setup)
            .map_err(|e| SandboxError::BadSpec(e.to_string()))?;
        line.push(b'\n');
        Ok(line)
    }

    /// The zygote that clones inits of `shape`: the confined one, or for a `--privileged` shape
    /// the one that is not, which a start made ahead starts the first time: the pool's filler
    /// lives as long as the engine, and a zygote dies with the thread that started it.
    fn zygote_for(&self, shape: &Shape, ahead: bool) -> Option<&Zygote> {
        let confined = self.zygote.as_ref()?;
        if !shape.privileged {
            return Some(confined);
        }
        let unconfined = if ahead {
            self.privileged_zygote
                .get_or_init(|| Zygote::start(&self.zygote_exe, false).ok())
        } else {
            self.privileged_zygote.get()?
        };
        unconfined.as_ref()
    }

    /// Clones the init: by `zygote` when there is one (see [`Starter::zygote_for`]), else here
    /// with clone and exec (never `ahead`, see [`Starter::start`]). Returns its pid, its pidfd,
    /// and whether it entered its cgroup by itself (see [`Entry`]).
    fn clone_init(
        &self,
        zygote: Option<&Zygote>,
        fds: &ChildFds,
        ns_flags: u64,
        entry: Option<&Entry>,
        ahead: bool,
    ) -> Result<(i32, OwnedFd, bool), SandboxError> {
        let from_zygote = zygote
            .and_then(|z| z.spawn(fds, ns_flags, entry).ok())
            .map(|(pid, pidfd)| (pid, pidfd, entry.is_some()));
        match from_zygote {
            Some(started) => Ok(started),
            None if ahead => Err(std::io::ErrorKind::Unsupported.into()),
            None => clone::spawn(&self.init, fds, ns_flags, entry),
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EINVAL) | Some(libc::ENOSPC) | Some(libc::EUSERS) => {
                SandboxError::Namespaces(e)
            }
            _ => SandboxError::io("starting the sandbox init", e),
        })
    }

    /// The init waits for its config: map its user and put it in its cgroup (unless it entered
    /// by itself) first.
    fn place(&self, pid: i32, group: Option<&Group>, placed: bool) -> Result<(), SandboxError> {
        match self.user_namespace {
            Some(to) => crate::runner::userns::map_root(pid, to),
            None => Ok(()),
        }
        .and_then(|()| match group {
            Some(g) if !placed => g.add_process(pid),
            _ => Ok(()),
        })
    }
}

/// The runner's and the init's ends of their pipes, before the clone.
struct Pipes {
    config: (OwnedFd, OwnedFd),
    report: (OwnedFd, OwnedFd),
    /// The command's stdout and stderr, when captured.
    output: Option<(OwnedFd, OwnedFd)>,
    /// `/dev/null`, for a command that reads nothing.
    stdin: Option<OwnedFd>,
}

impl Pipes {
    fn open(shape: &Shape) -> Result<Pipes, SandboxError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |e: std::io::Error| SandboxError::io(what, e)
        };
        Ok(Pipes {
            config: pipe().map_err(io("creating the config pipe"))?,
            report: pipe().map_err(io("creating the report pipe"))?,
            output: match shape.output {
                Output::Capture { .. } => Some(pipe().map_err(io("creating the output pipe"))?),
                _ => None,
            },
            stdin: match shape.stdin {
                Stdin::Null => Some(
                    clone::high_fd(
                        File::open("/dev/null")
                            .map_err(io("opening /dev/null"))?
                            .into(),
                    )
                    .map_err(io("moving /dev/null"))?,
                ),
                Stdin::Inherit => None,
            },
        })
    }

    /// The descriptors the init is started with; they stay open while `self` lives.
    fn child_fds(&self, shape: &Shape, netns: Option<&OwnedFd>) -> ChildFds {
        let out_w = self.output.as_ref().map(|(_, w)| w.as_raw_fd());
        ChildFds {
            stdin: self.stdin.as_ref().map(|f| f.as_raw_fd()),
            stdout: match shape.output {
                Output::Inherit => None,
                Output::Stderr => Some(2),
                Output::Capture { .. } => out_w,
            },
            stderr: out_w,
            config: self.config.0.as_raw_fd(),
            report: self.report.1.as_raw_fd(),
            netns: netns.map(AsRawFd::as_raw_fd),
        }
    }
}

impl Started {
    /// Whether its init still waits (one started ahead dies with the zygote, for one).
    pub fn alive(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        self.watched.as_ref().is_some_and(|w| {
            let mut fds = [PollFd::new(w.pidfd.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
        })
    }

    /// Hands the init its command, from `spec` (of this start's shape); from here on the
    /// sandbox runs.
    pub fn release(
        mut self,
        spec: &SandboxSpec,
        interactive: bool,
    ) -> Result<Released, SandboxError> {
        let command = InitRun {
            argv: spec.argv.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            make_dirs: spec.make_dirs.clone(),
            foreground_tty: interactive,
            cpuset: spec.cpuset.clone(),
        };
        let encoded =
            serde_json::to_vec(&command).map_err(|e| SandboxError::BadSpec(e.to_string()))?;
        // A failed write means the init died; the watch reports how.
        if let Some(mut pipe) = self.config.take() {
            let _ = pipe.write_all(&encoded);
        }
        let watched = self.watched.take().ok_or_else(|| {
            SandboxError::io(
                "starting the sandbox init",
                std::io::ErrorKind::Other.into(),
            )
        })?;
        Ok(Released {
            watched,
            group: self.group.take(),
            net: self.recycle(),
        })
    }
}

/// A sandbox whose command has been given: what to watch, its cgroup, and the network namespace
/// it joined from the pool when that may serve again once the sandbox is gone (see
/// [`Started::recycle`]).
pub struct Released {
    pub watched: Watched,
    pub group: Option<Group>,
    pub net: Option<PooledNet>,
}

impl Started {
    /// The pooled namespace, to go back once the init is gone; not for a privileged command,
    /// which may have reconfigured it.
    fn recycle(&mut self) -> Option<PooledNet> {
        self.net.take().filter(|_| !self.shape.privileged)
    }
}

impl Drop for Started {
    /// An init never given its config: closing the config pipe makes it exit, and the janitor
    /// removes its cgroup once it has.
    fn drop(&mut self) {
        drop(self.config.take());
        if let Some(watched) = self.watched.take() {
            let exiting = Exiting {
                pid: watched.pid,
                pidfd: watched.pidfd,
                group: self.group.take(),
                refill: None,
                netns: self.recycle(),
            };
            self.starter.janitor.hand_over(exiting);
        }
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((clone::high_fd(r)?, clone::high_fd(w)?))
}
