//! Sandbox teardown off the critical path. Once an init has reported, everything in its sandbox
//! is dead and counted; what is left is the init's own exit — in which the kernel tears down its
//! namespaces (unmounting everything, waiting for RCU grace periods) — and the removal of its
//! cgroup, which must wait for that exit. Neither changes the result, so a runner hands them to
//! one background thread and starts the next sandbox at once.

use super::netpool::PooledNet;
use crate::cgroup::{Group, RunGroup};
use crate::spec::Limits;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

/// An init that has reported and is exiting.
pub struct Exiting {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub group: Option<Group>,
    /// Make a spare cgroup with these caps for the next sandbox, once this one is removed.
    pub refill: Option<(Arc<RunGroup>, Limits)>,
    /// The pooled network namespace it joined, to be given back once it has exited.
    pub netns: Option<PooledNet>,
}

/// How long an init may take to exit after reporting before it is killed.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Janitor {
    queue: Mutex<Option<Sender<Exiting>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Janitor {
    pub fn new() -> Janitor {
        let (tx, rx) = channel::<Exiting>();
        let thread = std::thread::Builder::new()
            .name("sandbox-janitor".to_owned())
            .spawn(move || rx.into_iter().for_each(finish))
            .ok();
        Janitor {
            queue: Mutex::new(thread.as_ref().map(|_| tx)),
            thread: Mutex::new(thread),
        }
    }

    /// Finishes `exiting` in the background (or here, when there is no janitor thread).
    pub fn hand_over(&self, exiting: Exiting) {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let exiting = match queue.as_ref() {
            Some(q) => match q.send(exiting) {
                Ok(()) => return,
                Err(returned) => returned.0,
            },
            None => exiting,
        };
        drop(queue);
        finish(exiting);
    }

    /// Waits until every handed-over sandbox is gone and its cgroup removed.
    pub fn drain(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

fn finish(exiting: Exiting) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let limit = PollTimeout::try_from(EXIT_LIMIT.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    let exited = || {
        let mut fds = [PollFd::new(exiting.pidfd.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, limit), Ok(n) if n > 0)
    };
    if !exited() {
        // SAFETY: pidfd_send_signal on our own child's pidfd.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                std::os::fd::AsRawFd::as_raw_fd(&exiting.pidfd),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }
    // Even SIGKILL waits for a process stuck in the kernel: then it is left, and its cgroup
    // with it (swept at the next start), rather than hanging the runner's exit.
    if !exited() {
        return;
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(exiting.pid), None);
    // Every process of the sandbox is gone with its init.
    if let Some(netns) = exiting.netns {
        netns.give_back();
    }
    // A failed removal is retried when the run directory is dropped, and swept at the next
    // start if even that fails.
    if let Some(group) = exiting.group {
        let _ = group.remove();
    }
    if let Some((run, limits)) = exiting.refill {
        run.make_spare(&limits);
    }
}
