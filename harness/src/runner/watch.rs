//! Watching one running sandbox until it is done: its deadline (SIGTERM, then SIGKILL once the
//! grace is over), a cancellation, the command's output and the init's report. It ends when
//! the init has reported and closed everything (the init then exits on its own, and the janitor
//! waits for that off the test's path), or when the init is gone.

use super::cancel::Cancel;
use super::capture::Capture;
use super::start::Watched;
use crate::cgroup::Group;
use crate::error::SandboxError;
use crate::protocol::InitReport;
use crate::result::{
    CapturedOutput, Exit, NetworkAttempts, Protections, ResourceUsage, SandboxResult,
};
use crate::spec::{Output, SandboxSpec};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long, after the init is gone, output pipes may take to close before we stop reading.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// After a read of less than [`SMALL_READ`] bytes, the output is not read again for this long.
/// A test writes line by line (libtest a line per test: a hundred for a binary run whole),
/// and waking up for each line cost the runner more CPU than the rest of a sandbox's watch.
/// Captured output is read by nobody before the command ends, and the pipe holds 64 KiB:
/// a writer that fills it meanwhile waits at most this long.
const OUTPUT_PAUSE: Duration = Duration::from_millis(1);

/// A read this large or larger is followed at once by the next.
const SMALL_READ: usize = 16 * 1024;

/// A command that has printed this much is read without pauses: it prints a lot, and each
/// pause would make it wait for a full pipe.
const CHATTY: u64 = 256 * 1024;

/// What the watch saw.
#[derive(Default)]
pub(super) struct Seen {
    report: Option<InitReport>,
    init_status: Option<WaitStatus>,
    timed_out: bool,
    cancelled: bool,
    /// Counters read from outside just before a forced kill, when the init could not report.
    network_at_kill: NetworkAttempts,
    output: Option<CapturedOutput>,
}

enum Phase {
    Running { deadline: Option<Instant> },
    Terminating { kill_at: Instant },
    Killed,
}

impl Phase {
    /// When the watch must act even if nothing is ready.
    fn wake_at(&self) -> Option<Instant> {
        match self {
            Phase::Running { deadline } => *deadline,
            Phase::Terminating { kill_at } => Some(*kill_at),
            Phase::Killed => None,
        }
    }
}

/// The init's report and the command's output, each read until its writer closes it.
struct Streams {
    report: Vec<u8>,
    report_open: bool,
    output_open: bool,
    /// When the output is read again after a small read (see [`OUTPUT_PAUSE`]).
    output_paused_until: Option<Instant>,
    output_bytes: u64,
    capture: Option<Capture>,
    buf: Vec<u8>,
}

impl Streams {
    fn new(w: &Watched, output: Output) -> Streams {
        Streams {
            report: Vec::new(),
            report_open: true,
            output_open: w.output.is_some(),
            output_paused_until: None,
            output_bytes: 0,
            capture: match output {
                Output::Capture { limit_bytes } => Some(Capture::new(limit_bytes)),
                _ => None,
            },
            buf: vec![0u8; 64 * 1024],
        }
    }

    fn closed(&self) -> bool {
        !self.report_open && !self.output_open
    }

    fn read_report(&mut self, w: &Watched) {
        match read_some(&w.report, &mut self.buf) {
            0 => self.report_open = false,
            n => self.report.extend_from_slice(&self.buf[..n]),
        }
    }

    fn read_output(&mut self, w: &Watched) {
        let Some(fd) = w.output.as_ref() else {
            return;
        };
        match read_some(fd, &mut self.buf) {
            0 => self.output_open = false,
            n => {
                if let Some(capture) = self.capture.as_mut() {
                    capture.push(&self.buf[..n]);
                }
                self.output_bytes += n as u64;
                self.output_paused_until = (n < SMALL_READ && self.output_bytes < CHATTY)
                    .then(|| Instant::now() + OUTPUT_PAUSE);
            }
        }
    }

    /// Whether the output is read now: not while paused after a small read, unless the init
    /// has begun its report (its command is gone: what is left comes at once).
    fn reads_output(&self, now: Instant) -> bool {
        self.output_open
            && (!self.report.is_empty()
                || !self.report_open
                || self.output_paused_until.is_none_or(|until| now >= until))
    }

    /// When a paused output is to be read again.
    fn output_wake_at(&self, now: Instant) -> Option<Instant> {
        (self.output_open && !self.reads_output(now))
            .then_some(self.output_paused_until)
            .flatten()
    }

    /// Hands what was read to `seen`.
    fn finish(self, seen: &mut Seen) {
        seen.report = serde_json::from_slice(&self.report).ok();
        seen.output = self.capture.map(Capture::finish);
    }
}

/// Which of the watched descriptors poll found ready.
struct Ready {
    exited: bool,
    report: bool,
    output: bool,
    cancelled: bool,
}

/// Watches `w` until it is done. Returns the init still to be waited for when it reported and
/// closed its streams before it exited.
pub(super) fn watch(
    w: Watched,
    spec: &SandboxSpec,
    group: Option<&Group>,
    cancel: Option<&Cancel>,
) -> Result<(Seen, Option<Watched>), SandboxError> {
    let mut seen = Seen::default();
    let mut streams = Streams::new(&w, spec.output);
    let mut phase = Phase::Running {
        deadline: spec.timeout.map(|t| Instant::now() + t),
    };
    let mut drain_until: Option<Instant> = None;
    loop {
        let exited = seen.init_status.is_some();
        if streams.closed() && exited {
            break;
        }
        // The init reported and closed its output: all that is left is its exit, which the
        // janitor waits for.
        if streams.closed() && matches!(phase, Phase::Running { .. }) {
            if let Ok(report @ InitReport::Finished { .. }) =
                serde_json::from_slice::<InitReport>(&streams.report)
            {
                seen.report = Some(report);
                seen.output = streams.capture.map(Capture::finish);
                return Ok((seen, Some(w)));
            }
        }
        let now = Instant::now();
        if drain_until.is_some_and(|d| now >= d) {
            break;
        }
        let wake_at = [phase.wake_at(), drain_until].into_iter().flatten().min();
        if wake_at.is_some_and(|at| now >= at) {
            phase = escalate(phase, now, &w, spec, group, &mut seen);
            continue;
        }
        let cancel = cancel.filter(|_| !seen.cancelled);
        let wake_at = [wake_at, streams.output_wake_at(now)]
            .into_iter()
            .flatten()
            .min();
        let ready = poll_ready(&w, &streams, cancel, exited, wake_at, now)?;
        if ready.report {
            streams.read_report(&w);
        }
        if ready.output {
            streams.read_output(&w);
        }
        if ready.cancelled {
            seen.cancelled = true;
            phase = kill_now(&w, group, &mut seen);
        }
        if ready.exited {
            if let Some(status) = reap(w.pid) {
                seen.init_status = Some(status);
                drain_until = Some(Instant::now() + DRAIN_LIMIT);
            }
        }
    }
    streams.finish(&mut seen);
    Ok((seen, None))
}

/// The deadline passed: SIGTERM first, SIGKILL once the grace is over too.
fn escalate(
    phase: Phase,
    now: Instant,
    w: &Watched,
    spec: &SandboxSpec,
    group: Option<&Group>,
    seen: &mut Seen,
) -> Phase {
    match phase {
        Phase::Running { .. } => {
            seen.timed_out = true;
            w.kill(Signal::SIGTERM);
            Phase::Terminating {
                kill_at: now + spec.grace,
            }
        }
        Phase::Terminating { .. } => kill_now(w, group, seen),
        Phase::Killed => Phase::Killed,
    }
}

/// Kills the init and everything in its cgroup, keeping the network counters it can no longer
/// report.
fn kill_now(w: &Watched, group: Option<&Group>, seen: &mut Seen) -> Phase {
    seen.network_at_kill = w.network_counters();
    w.kill(Signal::SIGKILL);
    if let Some(g) = group {
        g.kill();
    }
    Phase::Killed
}

/// Waits in poll for any of what is still open, or until `wake_at`.
fn poll_ready(
    w: &Watched,
    streams: &Streams,
    cancel: Option<&Cancel>,
    exited: bool,
    wake_at: Option<Instant>,
    now: Instant,
) -> Result<Ready, SandboxError> {
    let timeout = match wake_at {
        // Rounded up: poll counts whole milliseconds, and one woken early would spin.
        Some(at) => {
            let micros = at.saturating_duration_since(now).as_micros();
            PollTimeout::try_from(micros.div_ceil(1000).max(1) as i32).unwrap_or(PollTimeout::MAX)
        }
        None => PollTimeout::NONE,
    };
    // Only what is still open is polled: poll reports hang-ups whatever was asked, so a
    // finished descriptor left in the set would turn this loop into a spin.
    let watched: [Option<BorrowedFd>; 4] = [
        (!exited).then(|| w.pidfd.as_fd()),
        streams.report_open.then(|| w.report.as_fd()),
        w.output
            .as_ref()
            .filter(|_| streams.reads_output(now))
            .map(|o| o.as_fd()),
        cancel.map(|c| c.fd()),
    ];
    let mut fds: Vec<PollFd> = watched
        .iter()
        .flatten()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
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
    let [exited, report, output, cancelled] =
        watched.map(|fd| fd.is_some() && revents.next().unwrap_or(false));
    Ok(Ready {
        exited,
        report,
        output,
        cancelled,
    })
}

/// The init's exit status once it has exited.
fn reap(pid: i32) -> Option<WaitStatus> {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => None,
        Ok(status) => Some(status),
        // Not our child (a zygote's): the pidfd said it exited, the zygote reaps it.
        Err(nix::Error::ECHILD) => Some(WaitStatus::Exited(Pid::from_raw(pid), -1)),
        Err(_) => None,
    }
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

impl Seen {
    pub(super) fn into_result(
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
