//! Network namespaces made ahead of need. Creating one (and its `lo`) costs the better part of a
//! millisecond of kernel work under global locks; a background thread makes a few while tests
//! run, and each sandbox joins a fresh one with `setns` instead of creating it in `clone`. Each
//! namespace is used once: a sandbox still never shares a network with anything.
//!
//! Only for root runners without a user namespace: joining a namespace owned by the host's user
//! namespace needs CAP_SYS_ADMIN there, which a sandbox in its own user namespace lacks.
//!
//! Once the run says how many it will take ([`NetPool::expect`]), no more are made than that:
//! each one left over costs its making, and its teardown in a kernel worker after the run.
//! Until then (a test run's build) a few are made.

use std::os::fd::{FromRawFd, OwnedFd};
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

#[derive(Debug, Default)]
struct Shared {
    ready: Mutex<Ready>,
    wanted: Condvar,
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct Ready {
    made: Vec<OwnedFd>,
    /// How many will be taken from now on, when the run said so.
    uses: Option<usize>,
}

impl Ready {
    /// Whether the filler should make another.
    fn short(&self) -> bool {
        self.made.len() < self.uses.map_or(READY, |uses| uses.min(READY))
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

    /// A fresh namespace with `lo` up, when one is ready (the caller creates its own otherwise).
    pub fn take(&self) -> Option<OwnedFd> {
        let mut ready = self.shared.lock();
        ready.uses = ready.uses.map(|uses| uses.saturating_sub(1));
        let taken = ready.made.pop();
        drop(ready);
        self.shared.wanted.notify_one();
        taken
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
    }
}

fn fill(shared: &Shared) {
    let Ok(home) = open("/proc/thread-self/ns/net") else {
        return;
    };
    loop {
        {
            let ready = shared
                .wanted
                .wait_while(shared.lock(), |r| {
                    !r.short() && !shared.stop.load(Ordering::SeqCst)
                })
                .unwrap_or_else(|e| e.into_inner());
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            drop(ready);
        }
        match make(&home) {
            Ok(ns) => shared.lock().made.push(ns),
            // Sandboxes then create their own, as without a pool.
            Err(_) => return,
        }
    }
}

/// A new namespace with `lo` up; this thread returns to `home` afterwards.
fn make(home: &OwnedFd) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: unshare and setns change only this thread's network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let made = crate::init::net::loopback_up().and_then(|()| open("/proc/thread-self/ns/net"));
    // SAFETY: as above.
    if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    made.and_then(crate::runner::clone::high_fd)
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
