//! Network namespaces made ahead of need. Creating one (and its `lo`) costs the better part of a
//! millisecond of kernel work under global locks, and tearing it down as much again in a kernel
//! worker; a background thread makes a few while tests run, and each sandbox joins one with
//! `setns` instead of creating it in `clone`.
//!
//! A sandbox never shares a network with anything running: a namespace serves one sandbox at a
//! time. Once that sandbox is gone (every process in it has exited) its namespace comes back
//! ([`PooledNet::give_back`]) and serves again only when it cannot be told from a new one:
//! no socket of any kind, none closing or in TIME_WAIT, no fragment queue, no flow label, the
//! interfaces a new one has here and no other, and every counter still zero — no packet went
//! through `lo`, no route lookup failed (see [`untouched`]). So a namespace is reused only after a sandbox that never
//! used the network, most tests; one that did gets a new one. A sandbox that runs
//! `--privileged` (it could reconfigure the namespace) never gives it back.
//!
//! Only for root runners without a user namespace: joining a namespace owned by the host's user
//! namespace needs CAP_SYS_ADMIN there, which a sandbox in its own user namespace lacks.
//!
//! Once the run says how many it will take ([`NetPool::expect`]), no more are made than that:
//! each one left over costs its making, and its teardown in a kernel worker after the run.
//! Until then (a test run's build) a few are made.

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

/// A namespace from the pool, as new: `lo` up, nothing in it, nothing counted. Dropped, it is
/// closed; [`PooledNet::give_back`] returns it for another sandbox.
#[derive(Debug)]
pub struct PooledNet {
    /// `None` only once given back.
    fd: Option<OwnedFd>,
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
    /// Ready: each with whether it served a sandbox before.
    made: Vec<(OwnedFd, bool)>,
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
            Some((_, reused)) => {
                ready.out += 1;
                ready.reused += usize::from(reused);
            }
            None => ready.missed += 1,
        }
        drop(ready);
        self.shared.wanted.notify_one();
        taken.map(|(fd, _)| PooledNet {
            fd: Some(fd),
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

    /// Tells the filler to stop, without waiting for it (see [`Drop`]).
    pub fn retire(&self) {
        // Under the lock the filler checks it with, so the wake-up cannot fall between its
        // check and its wait.
        {
            let _ready = self.shared.lock();
            self.shared.stop.store(true, Ordering::SeqCst);
        }
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
        self.retire();
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
    // The interfaces a new namespace comes with: `lo`, and the fallback tunnels (`sit0`,
    // `tunl0`, ...) of whichever tunnel modules the host has loaded.
    let mut fresh: Option<Vec<String>> = None;
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
            Some(fd) => match check(&home, &fd, fresh.as_deref()) {
                Ok(as_new) => as_new.then_some((fd, true)),
                Err(_) => return,
            },
            None => match make(&home) {
                Ok((fd, interfaces)) => {
                    fresh.get_or_insert(interfaces);
                    let mut ready = shared.lock();
                    ready.missed = ready.missed.saturating_sub(1);
                    drop(ready);
                    Some((fd, false))
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

/// A new namespace with `lo` up, and the names of the interfaces it came with; this thread
/// returns to `home` afterwards.
fn make(home: &OwnedFd) -> std::io::Result<(OwnedFd, Vec<String>)> {
    // SAFETY: unshare and setns change only this thread's network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let made = crate::init::net::loopback_up().and_then(|()| open("/proc/thread-self/ns/net"));
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap_or_default();
    back_home(home)?;
    let fd = made.and_then(crate::runner::clone::high_fd)?;
    Ok((
        fd,
        interfaces(&dev).map(|(name, _)| name.to_owned()).collect(),
    ))
}

/// Looks inside a namespace given back: whether it is as new (see [`untouched`]). This thread
/// returns to `home` afterwards; the error is its failure to, which ends the filler.
fn check(home: &OwnedFd, ns: &OwnedFd, fresh: Option<&[String]>) -> std::io::Result<bool> {
    // SAFETY: setns changes only this thread's network namespace; a failure leaves it home.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Ok(false);
    }
    let net = std::path::Path::new("/proc/thread-self/net");
    let read = |name: &str| std::fs::read_to_string(net.join(name)).ok();
    let as_new = untouched(
        &NetFiles {
            sockstat: read("sockstat"),
            sockstat6: read("sockstat6"),
            flowlabels: read("ip6_flowlabel"),
            dev: read("dev"),
            snmp: read("snmp"),
            snmp6: read("snmp6"),
        },
        fresh,
    );
    back_home(home)?;
    Ok(as_new)
}

/// What [`check`] reads of a namespace, from its `/proc/net`.
#[derive(Default)]
struct NetFiles {
    sockstat: Option<String>,
    /// This and the next two are missing where the kernel has no IPv6.
    sockstat6: Option<String>,
    flowlabels: Option<String>,
    snmp6: Option<String>,
    dev: Option<String>,
    snmp: Option<String>,
}

/// Whether a namespace cannot be told from a new one: every count in `sockstat` and
/// `sockstat6` zero (but the memory figures and the host-wide `orphan` and `alloc`), no flow
/// label, the interfaces a new namespace has (`fresh`) and no other, each with its counters
/// zero, every `snmp` counter zero (but the settings it lists beside them) and every `snmp6`
/// one. A file that cannot be read counts as touched, except the IPv6 ones.
fn untouched(files: &NetFiles, fresh: Option<&[String]>) -> bool {
    let (Some(sockstat), Some(dev), Some(snmp)) = (&files.sockstat, &files.dev, &files.snmp) else {
        return false;
    };
    let sockets_zero = |text: &str| {
        text.lines().all(|line| {
            let mut words = line.split_whitespace().skip(1);
            std::iter::from_fn(|| Some((words.next()?, words.next()?)))
                .filter(|(name, _)| !matches!(*name, "mem" | "memory" | "orphan" | "alloc"))
                .all(|(_, value)| value == "0")
        })
    };
    sockets_zero(sockstat)
        && files.sockstat6.as_deref().is_none_or(sockets_zero)
        && files
            .flowlabels
            .as_deref()
            .is_none_or(|t| t.lines().count() <= 1)
        && fresh.is_some_and(|fresh| interfaces_unused(dev, fresh))
        && snmp_zero(snmp)
        && files.snmp6.as_deref().is_none_or(|t| {
            t.lines()
                .all(|line| line.split_whitespace().nth(1).is_none_or(|v| v == "0"))
        })
}

/// Whether `dev` lists the interfaces `fresh` names, no more and no fewer, each with every
/// counter zero.
fn interfaces_unused(dev: &str, fresh: &[String]) -> bool {
    let mut names: Vec<&str> = Vec::new();
    for (name, counters) in interfaces(dev) {
        if !counters.split_whitespace().all(|c| c == "0") {
            return false;
        }
        names.push(name);
    }
    let mut expected: Vec<&str> = fresh.iter().map(String::as_str).collect();
    names.sort_unstable();
    expected.sort_unstable();
    names == expected
}

/// `dev`'s interfaces and their counters: two header lines, then `name: counters` each.
fn interfaces(dev: &str) -> impl Iterator<Item = (&str, &str)> {
    dev.lines().skip(2).filter_map(|line| {
        let (name, counters) = line.split_once(':')?;
        Some((name.trim(), counters))
    })
}

/// `snmp`: pairs of lines, `Ip: Forwarding DefaultTTL ...` then `Ip: 1 64 ...`; every value
/// zero but the settings.
fn snmp_zero(snmp: &str) -> bool {
    const SETTINGS: [&str; 6] = [
        "Forwarding",
        "DefaultTTL",
        "RtoAlgorithm",
        "RtoMin",
        "RtoMax",
        "MaxConn",
    ];
    let lines: Vec<&str> = snmp.lines().collect();
    lines.chunks(2).all(|pair| match pair {
        [names, values] => names
            .split_whitespace()
            .zip(values.split_whitespace())
            .skip(1)
            .all(|(name, value)| value == "0" || SETTINGS.contains(&name)),
        _ => false,
    })
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
    use super::{untouched, NetFiles};

    /// What a new namespace has here; a host with tunnel modules loaded has more.
    fn fresh() -> Vec<String> {
        vec!["lo".to_owned()]
    }

    const SOCKSTAT: &str = "sockets: used 0\nTCP: inuse 0 orphan 3 tw 0 alloc 12 mem 393\n\
                            UDP: inuse 0 mem 7\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";
    const SOCKSTAT6: &str = "TCP6: inuse 0\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\n\
                             FRAG6: inuse 0 memory 0\n";
    const FLOWLABELS: &str =
        "Label S Owner  Users  Linger Expires  Dst                              Opt\n";
    const DEV: &str = "Inter-|   Receive                            |  Transmit\n \
                       face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
                       lo:       0       0    0    0    0     0          0         0        0\n";
    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives OutRequests OutNoRoutes\nIp: 2 64 0 0 0\n\
                        Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens CurrEstab\nTcp: 1 200 120000 -1 0 0\n\
                        Udp: InDatagrams OutDatagrams\nUdp: 0 0\n";
    const SNMP6: &str =
        "Ip6InReceives                   \t0\nIp6OutNoRoutes                  \t0\n";

    fn new_one() -> NetFiles {
        NetFiles {
            sockstat: Some(SOCKSTAT.to_owned()),
            sockstat6: Some(SOCKSTAT6.to_owned()),
            flowlabels: Some(FLOWLABELS.to_owned()),
            dev: Some(DEV.to_owned()),
            snmp: Some(SNMP.to_owned()),
            snmp6: Some(SNMP6.to_owned()),
        }
    }

    #[test]
    fn a_namespace_nothing_used_is_as_new() {
        assert!(untouched(&new_one(), Some(&fresh())));
        let no_ipv6 = NetFiles {
            sockstat6: None,
            flowlabels: None,
            snmp6: None,
            ..new_one()
        };
        assert!(untouched(&no_ipv6, Some(&fresh())));
    }

    #[test]
    fn a_host_s_fallback_tunnels_are_part_of_a_new_namespace() {
        let with_tunnel = NetFiles {
            dev: Some(format!(
                "{DEV}  sit0:       0       0    0    0    0     0\n"
            )),
            ..new_one()
        };
        let tunnels = vec!["sit0".to_owned(), "lo".to_owned()];
        assert!(untouched(&with_tunnel, Some(&tunnels)));
        // ...but a namespace without the host's tunnel is not one this host makes.
        assert!(!untouched(&new_one(), Some(&tunnels)));
        // Nothing made yet to compare with: not known to be as new.
        assert!(!untouched(&new_one(), None));
    }

    #[test]
    fn anything_left_or_counted_keeps_a_namespace_from_serving_again() {
        let changed = |edit: fn(&mut NetFiles)| {
            let mut files = new_one();
            edit(&mut files);
            untouched(&files, Some(&fresh()))
        };
        type Edit = fn(&mut NetFiles);
        let cases: [(&str, Edit); 12] = [
            ("a socket", |f| {
                f.sockstat = Some(SOCKSTAT.replace("used 0", "used 1"))
            }),
            ("TIME_WAIT", |f| {
                f.sockstat = Some(SOCKSTAT.replace("tw 0", "tw 2"))
            }),
            ("UDP in use", |f| {
                f.sockstat = Some(SOCKSTAT.replace("UDP: inuse 0", "UDP: inuse 1"))
            }),
            ("a fragment", |f| {
                f.sockstat = Some(SOCKSTAT.replace("FRAG: inuse 0", "FRAG: inuse 1"))
            }),
            ("TCP6", |f| {
                f.sockstat6 = Some(SOCKSTAT6.replace("TCP6: inuse 0", "TCP6: inuse 1"))
            }),
            ("a flow label", |f| {
                f.flowlabels = Some(format!("{FLOWLABELS}00001 S 1000 1 6 0 ::1 0\n"))
            }),
            ("another interface", |f| {
                f.dev = Some(format!(
                    "{DEV}  dummy0:       0       0    0    0    0     0\n"
                ))
            }),
            ("packets on lo", |f| {
                f.dev = Some(DEV.replacen("lo:       0       0", "lo:      84       1", 1))
            }),
            ("a failed route", |f| {
                f.snmp = Some(SNMP.replace("Ip: 2 64 0 0 0", "Ip: 2 64 0 1 1"))
            }),
            ("a TCP open", |f| {
                f.snmp = Some(SNMP.replace("Tcp: 1 200 120000 -1 0 0", "Tcp: 1 200 120000 -1 1 0"))
            }),
            ("an IPv6 no route", |f| {
                f.snmp6 = Some(
                    SNMP6.replace("Routes                  \t0", "Routes                  \t3"),
                )
            }),
            ("unreadable", |f| f.sockstat = None),
        ];
        for (what, edit) in cases {
            assert!(!changed(edit), "{what}: the namespace must not serve again");
        }
        assert!(!changed(|f| f.dev = None));
        assert!(!changed(|f| f.snmp = None));
    }
}
