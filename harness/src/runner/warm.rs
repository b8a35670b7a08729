//! Sandboxes started ahead of need. Everything before an init reads its config — its cgroup with
//! the caps, the clone into fresh namespaces and into the cgroup — depends only on the sandbox's
//! [`Shape`]. A background thread keeps a few inits of each shape last asked for waiting; a test
//! takes one and only hands it its command. Each is used once, so a test still gets namespaces and
//! a cgroup nobody used before.
//!
//! Only with a zygote (root runners without a user namespace that run many sandboxes): its
//! inits are the zygote's children, so they do not die with the thread that asked for them.
//!
//! A waiting sandbox has its mounts already: its copy-on-write directories are overlays whose
//! lower layer is the live host directory. Overlayfs shows a file added to a lower layer later
//! unless the sandbox looked its name up before (it keeps a "no such file"): a runner that
//! asks for sandboxes while the files they will run are still being made (cargo-sandbox's
//! pipelined build) makes sure the paths an init looks up exist first. Shapes that leave state
//! on the host are never made ahead.

use crate::runner::start::{Shape, Started, Starter};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many inits of one shape wait ready: enough for a burst of starts on a few cores.
const READY: usize = 4;

/// How long a shape whose start failed waits before it is tried again (a transient shortage:
/// descriptors, PIDs, memory).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How many shapes are kept ready: a run alternates between a few (listing, tests, tests with
/// caps of their own); the least recently asked for beyond these is dropped.
const SHAPES: usize = 3;

/// The longest a sandbox waits for the one the filler is making before it makes its own (the
/// filler's start is stuck: its own would most likely be too, and then it reports why).
const WAIT_FOR_FILLER_AT_MOST: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct WarmPool {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wanted: Condvar,
    /// Signalled each time the filler ends a start, made or failed.
    made: Condvar,
    starter: Arc<Starter>,
}

#[derive(Default)]
struct State {
    /// The shapes last asked for, the most recent last: what the filler makes.
    wanted: Vec<Shape>,
    /// Shapes whose start failed, and when: not tried again for [`RETRY_AFTER`] (the sandboxes
    /// that ask for them meanwhile start their own, and report why if they cannot either).
    failed: Vec<(Shape, Instant)>,
    /// Shapes whose uses still to come were announced ([`WarmPool::want`]), and how many:
    /// no more of those are made than will be taken (each one left over costs a sandbox made
    /// and torn down for nothing, the teardown at the run's end).
    expected: Vec<(Shape, usize)>,
    ready: Vec<Started>,
    /// The shape the filler is starting an init of right now.
    making: Option<Shape>,
    /// The shape a sandbox waits for the filler to make (one sandbox at a time): it takes that
    /// init rather than make a second one beside it, which would cost a whole start and one
    /// more teardown at the run's end.
    claimed: Option<Shape>,
    stop: bool,
}

impl State {
    fn want(&mut self, shape: &Shape) {
        // Every test of a run asks for the same: nothing to copy then.
        if self.wanted.last() == Some(shape) {
            return;
        }
        self.wanted.retain(|w| w != shape);
        self.wanted.push(shape.clone());
        if self.wanted.len() > SHAPES {
            self.wanted.remove(0);
        }
    }

    /// The shape to make next: the most recently asked for that is short of ready inits.
    fn next(&self) -> Option<Shape> {
        self.wanted
            .iter()
            .rev()
            .find(|w| {
                let claimed = usize::from(self.claimed.as_ref() == Some(*w));
                !self
                    .failed
                    .iter()
                    .any(|(f, at)| f == *w && at.elapsed() < RETRY_AFTER)
                    && self.ready.iter().filter(|r| r.shape == **w).count()
                        < self.wanted_ready(w) + claimed
            })
            .cloned()
    }

    /// Whether the filler is making an init of `shape`, or, idle, would make one next for a
    /// sandbox that waits for it; nobody else waiting.
    fn coming(&mut self, shape: &Shape) -> bool {
        if self.stop || self.claimed.is_some() {
            return false;
        }
        match &self.making {
            Some(making) => making == shape,
            None => {
                self.claimed = Some(shape.clone());
                let next = self.next();
                self.claimed = None;
                next.as_ref() == Some(shape)
            }
        }
    }

    /// How many inits of `shape` should wait ready.
    fn wanted_ready(&self, shape: &Shape) -> usize {
        self.expected
            .iter()
            .find(|(s, _)| s == shape)
            .map_or(READY, |(_, uses)| (*uses).min(READY))
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("wanted", &self.wanted)
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl WarmPool {
    pub fn start(starter: Arc<Starter>) -> WarmPool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wanted: Condvar::new(),
            made: Condvar::new(),
            starter,
        });
        let filler = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sandbox-warm".to_owned())
            .spawn(move || fill(&filler))
            .ok();
        WarmPool { shared, thread }
    }

    /// Asks the filler for inits of `shape` before any is taken (the first sandboxes of a run
    /// then find them ready); `uses`: how many will be taken from now on, when known.
    pub fn want(&self, shape: &Shape, uses: Option<usize>) {
        let mut state = self.shared.lock();
        state.want(shape);
        state.expected.retain(|(s, _)| s != shape);
        if let Some(uses) = uses {
            state.expected.push((shape.clone(), uses));
        }
        drop(state);
        self.shared.wanted.notify_one();
    }

    /// Whether sandboxes of `shape` are still to be taken (when nobody said how many: yes).
    pub fn expects_more(&self, shape: &Shape) -> bool {
        self.shared
            .lock()
            .expected
            .iter()
            .find(|(s, _)| s == shape)
            .is_none_or(|(_, uses)| *uses > 0)
    }

    /// A waiting init of `shape`, when one is ready or the filler is making one nobody else
    /// waits for; either way the filler makes the next ones of this shape.
    pub fn take(&self, shape: &Shape) -> Option<Started> {
        let mut state = self.shared.lock();
        state.want(shape);
        if let Some((_, uses)) = state.expected.iter_mut().find(|(s, _)| s == shape) {
            *uses = uses.saturating_sub(1);
        }
        // Inits that died waiting go (to the janitor, outside the lock).
        let mut dead = Vec::new();
        let mut taken = None;
        let deadline = Instant::now() + WAIT_FOR_FILLER_AT_MOST;
        loop {
            while let Some(i) = state.ready.iter().position(|s| s.shape == *shape) {
                let started = state.ready.remove(i);
                if started.alive() {
                    taken = Some(started);
                    break;
                }
                dead.push(started);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if taken.is_some() || left.is_zero() || !state.coming(shape) {
                break;
            }
            // The one the filler makes is further along than any this sandbox could start now.
            state.claimed = Some(shape.clone());
            self.shared.wanted.notify_one();
            state = self
                .shared
                .made
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            state.claimed = None;
        }
        drop(state);
        self.shared.wanted.notify_one();
        drop(dead);
        taken
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for WarmPool {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wanted.notify_one();
        self.shared.made.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Unused inits exit when their config pipe closes; the janitor removes their cgroups.
        let unused = std::mem::take(&mut self.shared.lock().ready);
        drop(unused);
    }
}

fn fill(shared: &Shared) {
    loop {
        let shape = {
            // Woken when asked; after a failure, also when it may be tried again.
            let (mut state, _) = shared
                .wanted
                .wait_timeout_while(shared.lock(), RETRY_AFTER, |s| {
                    !s.stop && s.next().is_none()
                })
                .unwrap_or_else(|e| e.into_inner());
            if state.stop {
                return;
            }
            let Some(shape) = state.next() else {
                continue;
            };
            state.making = Some(shape.clone());
            shape
        };
        let started = match &shared.starter.cgroups {
            Some(cgroups) => cgroups.new_group(&shape.limits).map(Some),
            None => Ok(None),
        }
        .and_then(|group| shared.starter.start(shape.clone(), group, true));
        let mut state = shared.lock();
        state.making = None;
        state.failed.retain(|(f, _)| *f != shape);
        match started {
            Ok(started) => state.ready.push(started),
            Err(_) => state.failed.push((shape, Instant::now())),
        }
        shared.made.notify_all();
        // Inits of shapes nobody asks for any more go.
        let (kept, stale): (Vec<Started>, Vec<Started>) = std::mem::take(&mut state.ready)
            .into_iter()
            .partition(|r| state.wanted.contains(&r.shape));
        state.ready = kept;
        drop(state);
        drop(stale);
    }
}
