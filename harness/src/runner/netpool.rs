//! Network namespaces made ahead of need. Creating one (and its `lo`) costs the better part of a
//! millisecond of kernel work under global locks, and tearing it down as much again in a kernel
//! worker; a background thread makes a few while tests run, and each sandbox joins one with
//! `setns` instead of creating it in `clone`.
//!
//! A sandbox never shares a network with anything running: a namespace serves one sandbox at a
//! time. Once that sandbox is gone (every process in it has exited) its namespace comes back
//! ([`PooledNet::give_back`]) and is used again only when nothing of the sandbox is left in it: no socket of
//! any kind, none closing or in TIME_WAIT, no fragment queue, no flow label, no interface but
//! `lo` (see [`is_empty`]). A sandbox that runs `--privileged` (it could reconfigure the
//! namespace) never gives it back. The "no route" counters a namespace keeps are the one thing
//! that carries over; [`PooledNet::baseline`] is subtracted from what its next sandbox reports.
//!
//! Only for root runners without a user namespace: joining a namespace owned by the host's user
//! namespace needs CAP_SYS_ADMIN there, which a sandbox in its own user namespace lacks.
//!
//! Once the run says how many it will take ([`NetPool::expect`]), no more are made than that:
//! each one left over costs its making, and its teardown in a kernel worker after the run.
//! Until then (a test run's build) a few are made.

use crate::result::NetworkAttempts;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// How many namespaces wait ready: enough for a burst of starts on a few cores.
const READY: usize = 4;

#[derive(Debug)]
pub struct NetPool {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A namespace from the pool, with `lo` up and nothing in it. Dropped, it is closed;
/// [`PooledNet::give_back`] returns it for another sandbox.
#[derive(Debug)]
pub struct PooledNet {
    /// `None` only once given back.
    fd: Option<OwnedFd>,
    /// Its "no route" counters when it was handed out: zero for a new one, what earlier
    /// sandboxes left for a recycled one.
    pub baseline: NetworkAttempts,
    shared: Arc<Shared>,
}

impl PooledNet {
    pub fn fd(&self) -> Option<&OwnedFd> {
        self.fd.as_ref()
    }

    /// Returns it to the pool, to be checked and used again. Only once every process of its
    /// sandbox has exited, and never after a privileged command (it may have reconfigured it).
    pub fn give_back(mut self) {
        let fd = self.fd.take();
        let mut ready = self.shared.lock();
        ready.out = ready.out.saturating_sub(1);
        if let Some(fd) = fd.filter(|_| !self.shared.stop.load(Ordering::SeqCst)) {
            ready.returned.push(fd);
        }
        drop(ready);
        self.shared.wanted.notify_one();
    }
}

impl Drop for PooledNet {
    fn drop(&mut self) {
        if self.fd.take().is_some() {
            let mut ready = self.shared.lock();
            ready.out = ready.out.saturating_sub(1);
            drop(ready);
            self.shared.wanted.notify_one();
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    ready: Mutex<Ready>,
    wanted: Condvar,
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct Ready {
    /// Ready: each with its counters, and whether it served a sandbox before.
    made: Vec<(OwnedFd, NetworkAttempts, bool)>,
    /// Given back, not checked yet.
    returned: Vec<OwnedFd>,
    /// Handed out and not yet given back or closed: most come back.
    out: usize,
    /// Takes that found none ready since the filler last made one.
    missed: usize,
    /// How many will be taken from now on, when the run said so.
    uses: Option<usize>,
    /// How many taken had served a sandbox before.
    reused: usize,
}

impl Ready {
    /// How many are kept in circulation at first: ready, handed out, or on their way back.
    fn wanted(&self) -> usize {
        self.uses.map_or(READY, |uses| uses.min(READY))
    }

    /// Whether the filler should make a new one. Most namespaces come back soon after the next
    /// is taken, so the circulation only grows when a take found none ready: making one for
    /// every take would leave the recycled ones nothing to do.
    fn short(&self) -> bool {
        let circulating = self.made.len() + self.returned.len() + self.out;
        let still_needed = self.uses.is_none_or(|uses| uses > self.made.len());
        still_needed && (circulating < self.wanted() || self.missed > 0)
    }

    /// Whether a checked namespace is still needed: not once as many are ready as will be
    /// taken (each one left over costs its teardown after the run).
    fn keeps(&self) -> bool {
        self.uses.is_none_or(|uses| self.made.len() < uses)
    }

    /// Whether the filler has work: a namespace to check, or one to make.
    fn has_work(&self) -> bool {
        !self.returned.is_empty() || self.short()
    }
}

impl NetPool {
    pub fn start() -> NetPool {
        let shared = Arc::new(Shared::default());
        let filler = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sandbox-netns".to_owned())
            .spawn(move || fill(&filler))
            .ok();
        NetPool { shared, thread }
    }

    /// A namespace with `lo` up and nothing in it, when one is ready (the caller creates its
    /// own otherwise).
    pub fn take(&self) -> Option<PooledNet> {
        let mut ready = self.shared.lock();
        // More takes than the run said: it no longer knows, so a few are kept again.
        ready.uses = ready.uses.and_then(|uses| uses.checked_sub(1));
        let taken = ready.made.pop();
        match taken {
            Some((_, _, reused)) => {
                ready.out += 1;
                ready.reused += usize::from(reused);
            }
            None => ready.missed += 1,
        }
        drop(ready);
        self.shared.wanted.notify_one();
        taken.map(|(fd, baseline, _)| PooledNet {
            fd: Some(fd),
            baseline,
            shared: self.shared.clone(),
        })
    }

    /// How many of the namespaces taken so far had served a sandbox before.
    pub fn reused(&self) -> usize {
        self.shared.lock().reused
    }

    /// How many namespaces will be taken from now on (`None`: not known; a few are kept ready).
    pub fn expect(&self, uses: Option<usize>) {
        self.shared.lock().uses = uses;
        self.shared.wanted.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for NetPool {
    fn drop(&mut self) {
        // Under the lock the filler checks it with, so the wake-up cannot fall between its
        // check and its wait.
        {
            let _ready = self.shared.lock();
            self.shared.stop.store(true, Ordering::SeqCst);
        }
        self.shared.wanted.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Namespaces given back after this are closed by their senders (see `give_back`).
        let mut ready = self.shared.lock();
        ready.made.clear();
        ready.returned.clear();
    }
}

fn fill(shared: &Shared) {
    let Ok(home) = open("/proc/thread-self/ns/net") else {
        return;
    };
    loop {
        let returned = {
            let mut ready = shared
                .wanted
                .wait_while(shared.lock(), |r| {
                    !r.has_work() && !shared.stop.load(Ordering::SeqCst)
                })
                .unwrap_or_else(|e| e.into_inner());
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            ready.returned.pop()
        };
        let ready_one = match returned {
            Some(fd) => match check(&home, &fd) {
                Ok(baseline) => baseline.map(|baseline| (fd, baseline, true)),
                Err(_) => return,
            },
            None => match make(&home) {
                Ok(fd) => {
                    let mut ready = shared.lock();
                    ready.missed = ready.missed.saturating_sub(1);
                    drop(ready);
                    Some((fd, NetworkAttempts::default(), false))
                }
                // Sandboxes then create their own, as without a pool.
                Err(_) => return,
            },
        };
        if let Some(net) = ready_one {
            let mut ready = shared.lock();
            if ready.keeps() {
                ready.made.push(net);
            }
        }
    }
}

/// A new namespace with `lo` up; this thread returns to `home` afterwards.
fn make(home: &OwnedFd) -> std::io::Result<OwnedFd> {
    // SAFETY: unshare and setns change only this thread's network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let made = crate::init::net::loopback_up().and_then(|()| open("/proc/thread-self/ns/net"));
    back_home(home)?;
    made.and_then(crate::runner::clone::high_fd)
}

/// Looks inside a namespace given back: its counters when it may serve again, `None` when
/// something of its last sandbox is left in it. This thread returns to `home` afterwards; the
/// error is its failure to, which ends the filler.
fn check(home: &OwnedFd, ns: &OwnedFd) -> std::io::Result<Option<NetworkAttempts>> {
    // SAFETY: setns changes only this thread's network namespace; a failure leaves it home.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Ok(None);
    }
    let net = std::path::Path::new("/proc/thread-self/net");
    let read = |name: &str| std::fs::read_to_string(net.join(name)).ok();
    let empty = is_empty(
        read("sockstat").as_deref(),
        read("sockstat6").as_deref(),
        read("ip6_flowlabel").as_deref(),
        read("dev").as_deref(),
    );
    let counters = empty.then(|| crate::netstat::read_no_route_counters(net));
    back_home(home)?;
    Ok(counters)
}

/// Whether a namespace holds nothing: every count in `sockstat` and `sockstat6` zero but the
/// memory figures and the host-wide ones (`orphan`, `alloc`), no flow label, no interface but
/// `lo`. A file that cannot be read counts as not empty, except `sockstat6` and
/// `ip6_flowlabel`, which a kernel without IPv6 lacks.
fn is_empty(
    sockstat: Option<&str>,
    sockstat6: Option<&str>,
    flowlabels: Option<&str>,
    dev: Option<&str>,
) -> bool {
    let counts_zero = |text: &str| {
        text.lines().all(|line| {
            let mut words = line.split_whitespace().skip(1);
            std::iter::from_fn(|| Some((words.next()?, words.next()?)))
                .filter(|(name, _)| !matches!(*name, "mem" | "memory" | "orphan" | "alloc"))
                .all(|(_, value)| value == "0")
        })
    };
    let (Some(sockstat), Some(dev)) = (sockstat, dev) else {
        return false;
    };
    // `dev`: two header lines, then one line per interface, `name: counters`.
    let only_lo = dev
        .lines()
        .skip(2)
        .all(|line| line.trim_start().starts_with("lo:"));
    counts_zero(sockstat)
        && sockstat6.is_none_or(counts_zero)
        && flowlabels.is_none_or(|text| text.lines().count() <= 1)
        && only_lo
}

fn back_home(home: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: setns changes only this thread's network namespace.
    if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn open(path: &str) -> std::io::Result<OwnedFd> {
    let path = std::ffi::CString::new(path)?;
    // SAFETY: plain open(2); the descriptor is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::is_empty;

    const SOCKSTAT: &str = "sockets: used 0\nTCP: inuse 0 orphan 3 tw 0 alloc 12 mem 393\n\
                            UDP: inuse 0 mem 7\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";
    const SOCKSTAT6: &str = "TCP6: inuse 0\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\n\
                             FRAG6: inuse 0 memory 0\n";
    const FLOWLABELS: &str =
        "Label S Owner  Users  Linger Expires  Dst                              Opt\n";
    const DEV: &str = "Inter-|   Receive                            |  Transmit\n \
                       face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
                       lo:       0       0    0    0    0     0          0         0        0\n";

    #[test]
    fn a_namespace_with_nothing_left_is_empty() {
        assert!(is_empty(
            Some(SOCKSTAT),
            Some(SOCKSTAT6),
            Some(FLOWLABELS),
            Some(DEV)
        ));
        // No IPv6 in this kernel.
        assert!(is_empty(Some(SOCKSTAT), None, None, Some(DEV)));
    }

    #[test]
    fn anything_left_keeps_a_namespace_from_serving_again() {
        let with = |from: &str, to: &str| SOCKSTAT.replace(from, to);
        for sockstat in [
            with("used 0", "used 1"),
            with("tw 0", "tw 2"),
            with("TCP: inuse 0", "TCP: inuse 1"),
            with("UDP: inuse 0", "UDP: inuse 1"),
            with("RAW: inuse 0", "RAW: inuse 1"),
            with("FRAG: inuse 0", "FRAG: inuse 1"),
        ] {
            assert!(!is_empty(
                Some(&sockstat),
                Some(SOCKSTAT6),
                Some(FLOWLABELS),
                Some(DEV)
            ));
        }
        let tcp6 = SOCKSTAT6.replace("TCP6: inuse 0", "TCP6: inuse 1");
        assert!(!is_empty(
            Some(SOCKSTAT),
            Some(&tcp6),
            Some(FLOWLABELS),
            Some(DEV)
        ));
        let label = format!("{FLOWLABELS}00001 S 1000 1 6 0 ::1 0\n");
        assert!(!is_empty(
            Some(SOCKSTAT),
            Some(SOCKSTAT6),
            Some(&label),
            Some(DEV)
        ));
        let dummy = format!("{DEV}  dummy0:       0       0    0    0    0     0          0\n");
        assert!(!is_empty(
            Some(SOCKSTAT),
            Some(SOCKSTAT6),
            Some(FLOWLABELS),
            Some(&dummy)
        ));
        // What cannot be read is not known to be empty.
        assert!(!is_empty(
            None,
            Some(SOCKSTAT6),
            Some(FLOWLABELS),
            Some(DEV)
        ));
        assert!(!is_empty(
            Some(SOCKSTAT),
            Some(SOCKSTAT6),
            Some(FLOWLABELS),
            None
        ));
    }
}
