//! The engine: one sandbox per [`Engine::run`]: take an init started ahead or start one (cgroup,
//! clone into new namespaces, its set-up), hand it the command, watch it (see `watch`), then
//! collect usage and clean up.

use super::cancel::Cancel;
use super::clone::InitCommand;
use super::janitor::{Exiting, Janitor};
use super::netpool::{NetPool, PooledNet};
use super::start::{Released, Shape, Started, Starter, Watched};
use super::warm::WarmPool;
use super::watch::watch;
use super::zygote::Zygote;
use crate::cgroup::{self, Group, RunGroup};
use crate::error::SandboxError;
use crate::protocol::INIT_ARG;
use crate::result::{Protections, SandboxResult};
use crate::spec::{Limits, RootMapping, SandboxSpec, Stdin};
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

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
        // No sandbox starts any more: the zygotes and the network pool's filler are told to
        // end first, and end while the rest is torn down.
        let zygotes = [
            self.starter.zygote.as_ref(),
            self.starter
                .privileged_zygote
                .get()
                .and_then(Option::as_ref),
        ];
        zygotes.into_iter().flatten().for_each(Zygote::retire);
        if let Some(netns) = &self.starter.netns {
            netns.retire();
        }
        // Inits started ahead exit unused; every sandbox's cgroup is gone before the run
        // directory is removed.
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
        // Without a zygote every sandbox's init is started with clone and exec.
        let zygote = prepare_ahead
            .then(|| Zygote::start(&exe, true).ok())
            .flatten();
        let starter = Arc::new(Starter {
            cgroups,
            user_namespace,
            init: InitCommand::new(path, argv),
            janitor: Janitor::new(),
            zygote,
            privileged_zygote: std::sync::OnceLock::new(),
            zygote_exe: exe.clone(),
            netns: prepare_ahead.then(NetPool::start),
        });
        Ok(Engine {
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

    /// Whether sandbox inits are started by a zygote (see [`crate::runner::zygote`]) rather
    /// than each with clone and exec.
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

    /// How many sandboxes so far ran in an init started ahead of need (see
    /// [`crate::runner::warm`]).
    pub fn started_ahead(&self) -> usize {
        self.started_ahead
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many sandboxes so far joined a network namespace that had served an earlier one
    /// and was found empty (see [`crate::runner::netpool`]).
    pub fn reused_networks(&self) -> usize {
        self.starter.netns.as_ref().map_or(0, NetPool::reused)
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
        let shape = Shape::of(spec, self.starter.user_namespace.is_some());
        // A spare cgroup made while this one is torn down is for a sandbox still to come.
        let refill = self.prepare_ahead
            && self
                .warm
                .as_ref()
                .is_none_or(|pool| pool.expects_more(&shape));
        let Released {
            watched,
            group,
            net,
        } = self
            .start(shape, spec, interactive)?
            .release(spec, interactive)?;
        let seen = watch(watched, spec, group.as_ref(), cancel);
        if interactive {
            reclaim_terminal();
        }
        let (seen, still_exiting) = seen?;
        let usage = group.as_ref().map(Group::usage);
        let oom_victims = match (&group, usage) {
            (Some(group), Some(usage)) if usage.oom_kills > 0 => group.oom_victims(),
            _ => Vec::new(),
        };
        self.dispose(group, still_exiting, refill.then_some(spec.limits), net);
        let mut result = seen
            .into_result(&spec.argv[0], usage, self.protections(spec), started)
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

    /// An init for `shape` waiting for its command: one started ahead when there is one (never
    /// for a sandbox that takes the runner's terminal), else one started now.
    fn start(
        &self,
        shape: Shape,
        spec: &SandboxSpec,
        interactive: bool,
    ) -> Result<Started, SandboxError> {
        let ahead = self
            .warm
            .as_ref()
            .filter(|_| !interactive && shape.can_start_ahead())
            .and_then(|pool| pool.take(&shape));
        if let Some(started) = ahead {
            self.started_ahead
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(started);
        }
        let group = match &self.starter.cgroups {
            Some(cgroups) => Some(cgroups.new_group(&spec.limits)?),
            None => None,
        };
        self.starter.start(shape, group, false)
    }

    /// Removes a finished sandbox's cgroup and gives its network namespace back: at once when
    /// its init is gone, else by the janitor once it exits (which then makes a spare cgroup
    /// with `refill`'s limits, when given).
    fn dispose(
        &self,
        group: Option<Group>,
        still_exiting: Option<Watched>,
        refill: Option<Limits>,
        netns: Option<PooledNet>,
    ) {
        let Some(w) = still_exiting else {
            // A failed removal is retried when the run directory is dropped, and swept at the
            // next start if even that fails: it never hides the result.
            if let Some(group) = group {
                let _ = group.remove();
            }
            if let Some(netns) = netns {
                netns.give_back();
            }
            return;
        };
        self.starter.janitor.hand_over(Exiting {
            pid: w.pid,
            pidfd: w.pidfd,
            group,
            refill: self.starter.cgroups.clone().zip(refill),
            netns,
        });
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
