//! A run once its engine is up: the workers and the reporters fed from one event channel, and
//! the run's end (the reporters' last word, the history saved, the exit code).

use super::reporters::Reporters;
use super::settle::Settled;
use crate::build;
use crate::cli::{NoTests, TestArgs};
use crate::config::Config;
use crate::event::{Event, TestRecord};
use crate::filter::TestFilter;
use crate::history::History;
use crate::plan::Planner;
use crate::report::{Fingerprint, FinishedRun, InBackground, Reporter};
use crate::run_dir::RunDir;
use crate::schedule::{self, Feed};
use crate::{exit, pipeline};
use harness::Engine;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a run shares once its engine is up.
pub(super) struct Runner<'a> {
    pub(super) args: &'a TestArgs,
    pub(super) filter: &'a TestFilter,
    pub(super) profile: &'a str,
    pub(super) cancel: &'a harness::Cancel,
    pub(super) engine: &'a Engine,
    pub(super) workers: usize,
}

impl Runner<'_> {
    pub(super) fn no_capture(&self) -> bool {
        self.args.no_capture || self.filter.nocapture
    }

    /// The feed the run's jobs go through: tests that mostly waited last run go beside the
    /// `-j` unless the run is strict about it, or shows output as it comes (one at a time).
    pub(super) fn feed<'s>(&self, settled: &'s Settled) -> Feed<'s> {
        Feed::new(
            settled.history.as_ref(),
            !self.args.strict_jobs && !self.no_capture(),
        )
    }

    pub(super) fn planner<'p>(&'p self, settled: &'p Settled) -> Planner<'p> {
        Planner {
            layers: self.layers(settled),
            filter: self.filter,
            filtersets: &settled.filtersets,
            partition: self.args.partition,
            listing_only: self.args.list || self.filter.list,
        }
    }

    /// Tests start as cargo builds their binaries (see `pipeline`).
    pub(super) fn pipelined(
        &self,
        mut building: build::Building,
        packages: build::Build,
        config: Config,
        slots: &pipeline::Slots,
    ) -> anyhow::Result<Ending> {
        let mut settled = match self.settle(config, &packages) {
            Ok(settled) => settled,
            Err(code) => {
                let _ = building.wait();
                return Ok(Ending::Exit(code));
            }
        };
        let planner = self.planner(&settled);
        let feed = self.feed(&settled);
        let workspace_root = packages.workspace_root.clone();
        let mut ended = None;
        let records = self.execute(&settled, &feed, Some(slots), Vec::new(), |events| {
            let pipeline = pipeline::Pipeline {
                engine: self.engine,
                cancel: self.cancel,
                planner: &planner,
                host_env: &settled.host_env,
                run_seed: settled.run_seed,
                base_spec: &settled.base_spec,
                slots,
                feed: &feed,
                events,
                cargo: &self.args.cargo,
                filter: self.filter,
                fingerprint: self.args.report_json.is_some(),
                workers: self.workers,
                no_tests: self.args.no_tests.unwrap_or(NoTests::Pass),
            };
            ended = Some(pipeline.feed(building, packages).0);
        })?;
        let (fingerprint, then) = match ended {
            Some(pipeline::Ended::Planned { fingerprint, .. }) => {
                // The doc tests' binaries were kept until the last test ran.
                let fingerprint = fingerprint.map(InBackground::finish).unwrap_or_default();
                (fingerprint, Then::Outcome)
            }
            Some(pipeline::Ended::Failed(e)) => (Fingerprint::default(), Then::BuildFailed(e)),
            // Reported as interrupted: the cancellation is what ended it.
            Some(pipeline::Ended::Cancelled) => (Fingerprint::default(), Then::Outcome),
            Some(pipeline::Ended::NoTests) => return Ok(Ending::Exit(exit::NO_TESTS)),
            None => anyhow::bail!("the plan of the run never ended"),
        };
        drop((planner, feed));
        Ok(self.finish(&mut settled, records, fingerprint, &workspace_root, then))
    }

    /// Runs what is fed to `feed` (by `plan`, on a thread of its own, given where events go;
    /// or before) and hands every event to the reporters; the records of every test. Events
    /// come to the reporters once the run's start is announced (`before` or from `plan`):
    /// until then, while cargo builds, its output alone is shown.
    pub(super) fn execute(
        &self,
        settled: &Settled,
        feed: &Feed,
        slots: Option<&pipeline::Slots>,
        before: Vec<Event>,
        plan: impl FnOnce(std::sync::mpsc::Sender<Event>) + Send,
    ) -> anyhow::Result<Collected> {
        let mut reporters = Reporters::new(self.args, self.no_capture());
        let (sender, receiver) = std::sync::mpsc::channel();
        let planner_events = sender.clone();
        let started = Instant::now();
        std::thread::scope(|scope| {
            // The workers own the sender: the loop below ends when the last job is done and
            // the plan is complete.
            scope.spawn(move || {
                let run = schedule::Run {
                    engine: self.engine,
                    cancel: self.cancel,
                    events: &sender,
                    host_env: &settled.host_env,
                    run_seed: settled.run_seed,
                    workers: self.workers,
                    keep_writes: self.args.limits.keep_writes.clone(),
                    filter: self.filter,
                    max_fail: self.args.max_fail(),
                    no_capture: self.no_capture(),
                    slots,
                };
                schedule::run_jobs(&run, feed)
            });
            scope.spawn(move || plan(planner_events));
            for event in before {
                reporters.event(event);
            }
            while let Ok(event) = receiver.try_recv().or_else(|_| {
                // Events come in bursts (a binary run whole reports all its tests at once):
                // the reporters write what they have when the burst ends.
                reporters.flush();
                receiver.recv()
            }) {
                reporters.event(event);
            }
        });
        Ok(Collected {
            reporters,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// The run's end, to be written once the engine is no longer needed (see [`Ending`]).
    /// `settled`'s history, which ordered the run, is taken to record the run into.
    pub(super) fn finish(
        &self,
        settled: &mut Settled,
        collected: Collected,
        fingerprint: Fingerprint,
        workspace_root: &Path,
        then: Then,
    ) -> Ending {
        let Collected {
            reporters,
            duration_ms,
        } = collected;
        let Reporters {
            reporters, records, ..
        } = reporters;
        Ending::Report(Box::new(Report {
            records,
            run: RunFacts {
                duration_ms,
                cancelled: self.cancel.is_cancelled(),
                protections: self.engine.protections(&settled.base_spec),
                workspace_root: workspace_root.to_owned(),
                seed: settled.run_seed,
                profile: self.profile.to_owned(),
                fingerprint,
            },
            reporters,
            history: History::path(&settled.target_dir),
            ordered_by: settled.history.take(),
            then,
            unpacked: None,
        }))
    }
}

/// A run's end once no sandbox is left to start. It owns all it needs, so the engine can be
/// removed (its cgroups, zygote and namespaces: about a millisecond) while it is written.
pub(super) enum Ending {
    /// Nothing more to say: exit with this code.
    Exit(i32),
    /// The reporters' last word and the history, then the exit code.
    Report(Box<Report>),
}

/// What a reported run's end writes (see [`Ending::write`]).
pub(super) struct Report {
    /// As they came in: put in report order once the engine's removal has started.
    records: Vec<TestRecord>,
    run: RunFacts,
    reporters: Vec<Box<dyn Reporter>>,
    /// Where the history is saved.
    history: PathBuf,
    /// The history as the run's start read it (none with `--shuffle`).
    ordered_by: Option<History>,
    then: Then,
    /// An archive's unpacked files, its target directory (and so the history) among them:
    /// removed once the end is written.
    unpacked: Option<RunDir>,
}

/// What a [`FinishedRun`] says besides its records.
struct RunFacts {
    duration_ms: f64,
    cancelled: bool,
    protections: harness::Protections,
    workspace_root: PathBuf,
    seed: u64,
    profile: String,
    fingerprint: Fingerprint,
}

impl RunFacts {
    fn with(self, records: Vec<TestRecord>) -> FinishedRun {
        FinishedRun {
            seed: self.seed,
            profile: self.profile,
            fingerprint: self.fingerprint,
            ..FinishedRun::new(
                records,
                self.duration_ms,
                self.cancelled,
                self.protections,
                self.workspace_root,
            )
        }
    }
}

/// How a reported run's exit code is decided.
pub(super) enum Then {
    /// By its tests: 130 when cancelled, 100 when any failed, else 0.
    Outcome,
    /// The build failed: said after the report, with cargo's code.
    BuildFailed(anyhow::Error),
}

impl Ending {
    /// Keeps an archive's unpacked files until the end is written.
    pub(super) fn keeping(mut self, unpacked: Option<RunDir>) -> Ending {
        if let Ending::Report(report) = &mut self {
            report.unpacked = unpacked;
        }
        self
    }

    /// Writes the run's end: the history (saved on a thread of its own) and every reporter's
    /// last word (its records, sorted meanwhile, and totals); the exit code.
    pub(super) fn write(self) -> anyhow::Result<i32> {
        let report = match self {
            Ending::Exit(code) => return Ok(code),
            Ending::Report(report) => report,
        };
        let Report {
            records,
            run,
            mut reporters,
            history,
            ordered_by,
            then,
            unpacked,
        } = *report;
        // As kept now: another run may have saved since this one started.
        let mut kept = match ordered_by {
            Some(read) => read.into_current(&history),
            None => History::load(&history),
        };
        kept.record(&records);
        let (run, saved, reported) = std::thread::scope(|scope| {
            let saving = std::thread::Builder::new().spawn_scoped(scope, || kept.save(&history));
            let run = run.with(records);
            let reported = reporters.iter_mut().try_for_each(|r| r.finish(&run));
            let saved = match saving {
                Ok(saving) => saving
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("saving them panicked"))),
                // No thread to spare: saved here.
                Err(_) => kept.save(&history),
            };
            (run, saved, reported)
        });
        drop(unpacked);
        if let Err(e) = saved {
            say!("cargo-sandbox: warning: the run's durations were not kept: {e:#}");
        }
        reported?;
        match then {
            Then::BuildFailed(e) => build::failure_code(e, "building the tests"),
            Then::Outcome if run.cancelled => Ok(exit::INTERRUPTED),
            Then::Outcome if run.failed() => Ok(exit::TESTS_FAILED),
            Then::Outcome => Ok(0),
        }
    }
}

/// What a run's events left: the reporters (with every record), and how long it took.
pub(super) struct Collected {
    reporters: Reporters,
    duration_ms: f64,
}
