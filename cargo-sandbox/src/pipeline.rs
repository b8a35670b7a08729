//! Runs tests while cargo still builds. Cargo reports each test binary as soon as it is linked
//! (its `compiler-artifact` message); the binary is listed and its jobs go on the queue at once,
//! while cargo builds the rest. The tail of a build is often one crate linking on one core
//! while the others sit idle: tests fill them.
//!
//! The CPUs are shared through a GNU make jobserver that cargo joins (as it joins make's):
//! it holds one token fewer than the run's CPUs, cargo's own implicit token being the last.
//! Cargo and rustc take a token for each job beyond their first; each test and each listing
//! takes one while cargo builds, so the build and the tests together never run more than the
//! CPUs at once, and neither waits while a CPU is idle. Once cargo is done the tokens no
//! longer matter: tests run `-j` at once, as without the pipeline. A test the history knows
//! to mostly wait (see `schedule`) takes no token: it needs no CPU of its own.
//!
//! Sandboxes made during the build show the workspace through overlays whose lower layer is
//! the live directory: a binary linked after the overlay was mounted is there when it is run.
//! Overlayfs looks a name up in the lower layer the first time it is asked for and keeps the
//! answer, a "no such file" too: so a sandbox never asks for a path before it exists. Its init
//! looks up only the workspace, its target directory and `target/tmp` (made before the first
//! sandbox), and a test's binary is looked up only once cargo reported it.

use crate::build::{Build, Building, Linked, TestBinary};
use crate::config::Resolved;
use crate::doctest;
use crate::env;
use crate::event::Event;
use crate::job::{BinaryContext, RunsAs};
use crate::list;
use crate::plan::{Planned, Planner, Runs};
use crate::report::InBackground;
use crate::schedule::Feed;
use harness::{Cancel, Engine, SandboxSpec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// The CPUs the build and the tests share while cargo builds.
pub struct Slots {
    client: jobserver::Client,
    building: AtomicBool,
    /// Workers that may be waiting for a token when the build ends.
    waiters: usize,
}

impl Slots {
    /// `cpus` to share; `waiters`: how many threads may wait for a token at once.
    pub fn new(cpus: usize, waiters: usize) -> anyhow::Result<Slots> {
        let client = jobserver::Client::new(cpus.saturating_sub(1)).map_err(|e| {
            anyhow::anyhow!("creating the jobserver cargo shares the CPUs with: {e}")
        })?;
        Ok(Slots {
            client,
            building: AtomicBool::new(true),
            waiters,
        })
    }

    /// What cargo joins.
    pub fn client(&self) -> &jobserver::Client {
        &self.client
    }

    /// A CPU, while cargo builds (waiting for one); `None` once it is done.
    pub fn take(&self) -> Option<jobserver::Acquired> {
        if !self.building.load(Ordering::Acquire) {
            return None;
        }
        self.client.acquire().ok()
    }

    /// Cargo is done: whoever waits for a token gets one, and nobody asks again.
    pub fn build_ended(&self) {
        if self.building.swap(false, Ordering::AcqRel) {
            for _ in 0..self.waiters {
                let _ = self.client.release_raw();
            }
        }
    }
}

/// What planning while cargo builds needs.
pub struct Pipeline<'a> {
    pub engine: &'a Engine,
    pub cancel: &'a Cancel,
    pub planner: &'a Planner<'a>,
    pub host_env: &'a [(String, String)],
    pub run_seed: u64,
    pub base_spec: &'a SandboxSpec,
    pub slots: &'a Slots,
    pub feed: &'a Feed<'a>,
    pub events: Sender<Event>,
    pub cargo: &'a crate::cli::CargoArgs,
    pub filter: &'a crate::filter::TestFilter,
    /// Hash every test binary once built (`--report-json`'s fingerprint).
    pub fingerprint: bool,
    pub workers: usize,
    pub no_tests: crate::cli::NoTests,
}

/// How the plan ended.
pub enum Ended {
    /// Every binary built and planned (with the fingerprint of them all, when asked for).
    Planned {
        fingerprint: Option<InBackground>,
        /// The doc tests' binaries, kept for the run's length.
        _doctests: Option<doctest::Collected>,
    },
    /// The build or the doc tests' collection failed: what ran is reported, nothing else
    /// starts.
    Failed(anyhow::Error),
    /// Cancelled while cargo built.
    Cancelled,
    /// Nothing to run, and `--no-tests fail` (said): no run started.
    NoTests,
}

impl Pipeline<'_> {
    /// Plans each binary as cargo builds it, then the doc tests; the queue is closed and the
    /// run's start announced (with the plan's totals) when the plan is complete or cut short.
    pub fn feed(&self, mut building: Building, mut build: Build) -> (Ended, Planned) {
        let mut planned = Planned::default();
        let mut position = 0;
        self.engine.prepare(self.base_spec, None);
        let listed = Mutex::new(Planned::default());
        // Binaries are listed on up to `workers` threads: several are often linked at once
        // (all of those fresh at the start), and listing one at a time would starve the run.
        // Each starts with the first binary it could take (none when binaries run whole).
        let (to_list, receiver) = std::sync::mpsc::channel::<Listed>();
        let receiver = Mutex::new(receiver);
        let mut listers = 0;
        let built = std::thread::scope(|scope| {
            let mut list = |item: Listed| {
                if listers < self.workers.max(1) {
                    listers += 1;
                    scope.spawn(|| loop {
                        let next = receiver.lock().map(|r| r.recv());
                        let Ok(Ok((ctx, package, settings))) = next else {
                            return;
                        };
                        let part = self.list(&ctx, &package, &settings);
                        lock(&listed).add(part);
                    });
                }
                let _ = to_list.send(item);
            };
            // Integration tests wait for their package's binaries (see `Build::ready`); those
            // a build never links (their required features are off) for the build's end.
            let mut waiting: Vec<TestBinary> = Vec::new();
            let built = loop {
                match building.next(&mut build) {
                    Some(Ok(Linked::Test(binary))) => waiting.push(binary),
                    Some(Ok(Linked::Bin)) => {}
                    Some(Err(e)) => break Err(e),
                    None => break Ok(()),
                }
                let (ready, wait): (Vec<_>, Vec<_>) =
                    waiting.drain(..).partition(|b| build.ready(b));
                waiting = wait;
                for binary in ready {
                    planned.add(self.start_binary(binary, &build, &mut list));
                }
            };
            if built.is_ok() {
                for binary in waiting {
                    planned.add(self.start_binary(binary, &build, &mut list));
                }
            }
            // The listing threads end once every binary sent is listed.
            drop(to_list);
            built
        });
        planned.add(listed.into_inner().unwrap_or_else(|e| e.into_inner()));
        // Cargo is done (its reader thread said so as soon as it exited; again here for a
        // build that never started).
        self.slots.build_ended();
        let ended = self.after_build(built, &mut build, &mut planned, &mut position);
        if matches!(ended, Ended::Failed(_) | Ended::NoTests) {
            self.feed.stop();
        }
        if !matches!(ended, Ended::NoTests) {
            self.engine
                .prepare(self.base_spec, Some(self.feed.queued()));
            let started =
                planned.run_started(self.run_seed, self.planner.layers.profile, self.workers);
            let _ = self.events.send(started);
        }
        self.feed.close();
        (ended, planned)
    }

    /// Once cargo is done: the doc tests planned, or why the run ends (see [`Ended`]).
    fn after_build(
        &self,
        built: anyhow::Result<()>,
        build: &mut Build,
        planned: &mut Planned,
        position: &mut usize,
    ) -> Ended {
        match built {
            _ if self.cancel.is_cancelled() => Ended::Cancelled,
            Err(e) => Ended::Failed(e),
            Ok(()) => {
                build.sort_binaries();
                match self.doc_tests(build, position) {
                    Ok((mut doc, doctests)) => {
                        self.send_not_run(&doc);
                        self.feed.push(std::mem::take(&mut doc.jobs));
                        planned.add(doc);
                        if planned.no_tests_end_the_run(self.no_tests) {
                            Ended::NoTests
                        } else {
                            let fingerprint = self.fingerprint.then(|| self.fingerprint_of(build));
                            Ended::Planned {
                                fingerprint,
                                _doctests: doctests,
                            }
                        }
                    }
                    Err(e) => Ended::Failed(e),
                }
            }
        }
    }

    /// One binary, just built: a binary run whole is planned and queued at once; one to
    /// list goes to the listing threads.
    fn start_binary(
        &self,
        binary: TestBinary,
        build: &Build,
        to_list: &mut impl FnMut(Listed),
    ) -> Planned {
        if self.cancel.is_cancelled() {
            return Planned::default();
        }
        let ctx = Arc::new(context(binary, build, self.host_env));
        let package = &build.packages[&ctx.binary.package_id];
        match self.planner.runs_whole(&ctx, package) {
            Runs::Whole(settings) => self.queue(self.planner.unlisted(&ctx, settings)),
            Runs::Listed(settings) => {
                to_list((ctx, package.name.to_string(), settings));
                Planned::default()
            }
        }
    }

    /// Lists a binary (taking a CPU from the build while cargo builds) and queues its jobs.
    fn list(&self, ctx: &Arc<BinaryContext>, package: &str, settings: &Resolved) -> Planned {
        if self.cancel.is_cancelled() {
            return Planned::default();
        }
        let slot = self.slots.take();
        let listing = list::in_sandbox(self.engine, ctx, settings, self.host_env, self.run_seed);
        drop(slot);
        // `--partition slice` (positions in report order) is never pipelined.
        let mut position = 0;
        self.queue(self.planner.listed(ctx, package, listing, &mut position))
    }

    /// Reports what a part of the plan settled without a sandbox and queues its jobs.
    fn queue(&self, mut planned: Planned) -> Planned {
        self.send_not_run(&planned);
        self.feed.push(std::mem::take(&mut planned.jobs));
        planned
    }

    fn send_not_run(&self, planned: &Planned) {
        for record in &planned.not_run {
            let _ = self
                .events
                .send(Event::TestFinished(Box::new(record.clone())));
        }
    }

    /// The doc tests, compiled once the build is done (cargo's lock on the target directory
    /// would make `cargo test --doc` wait for it anyway).
    fn doc_tests(
        &self,
        build: &Build,
        position: &mut usize,
    ) -> anyhow::Result<(Planned, Option<doctest::Collected>)> {
        let Some(request) = self.cargo.doctest_request(build, self.filter) else {
            return Ok((Planned::default(), None));
        };
        let collected = doctest::collect(&request)?;
        let planned = self
            .planner
            .doc_tests(&collected, build, self.host_env, position);
        Ok((planned, Some(collected)))
    }

    fn fingerprint_of(&self, build: &Build) -> InBackground {
        let contexts: Vec<Arc<BinaryContext>> = build
            .binaries
            .iter()
            .map(|b| Arc::new(context(b.clone(), build, self.host_env)))
            .collect();
        InBackground::start(
            self.engine.cgroup_version(),
            contexts,
            build.target_dir.clone(),
        )
    }
}

/// A binary to list: its context, its package's name, its settings.
type Listed = (Arc<BinaryContext>, String, Resolved);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A libtest binary as the build knows it so far (what cargo reported before it).
fn context(binary: TestBinary, build: &Build, host_env: &[(String, String)]) -> BinaryContext {
    BinaryContext {
        env: env::for_binary(&binary, build, host_env),
        binary,
        runs_as: RunsAs::Libtest,
    }
}
