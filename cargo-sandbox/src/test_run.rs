//! `cargo sandbox test`: configure → build → list → plan → schedule → sandbox → events →
//! reporters; with the build and the run overlapping unless they cannot (see `pipeline`).

use crate::build::{self, BuildFailed};
use crate::cli::{NoTests, OutputWhen, ShowProgress, StatusLevel, TestArgs};
use crate::config::{Config, Isolation, Layer, Resolved};
use crate::doctest;
use crate::env;
use crate::event::{Event, TestRecord};
use crate::filter::TestFilter;
use crate::filterset::{Filtersets, PackageGraph, TestQuery};
use crate::history::History;
use crate::job::{BinaryContext, Job, RunsAs};
use crate::list;
use crate::outcome::Outcome;
use crate::plan::{self, Planned, Planner, Runs};
use crate::report::{github, json, junit, terminal, Fingerprint, FinishedRun, Reporter};
use crate::run_dir::RunDir;
use crate::sandbox_spec;
use crate::schedule::{self, Feed};
use crate::{archive, exit, pipeline, signals};
use anyhow::Context;
use harness::Engine;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The workspace's root directory, found without building.
fn workspace_root(manifest_path: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut cmd = std::process::Command::new(build::cargo());
    cmd.args(["locate-project", "--workspace", "--message-format", "plain"]);
    if let Some(path) = manifest_path {
        cmd.arg("--manifest-path").arg(path);
    }
    let out = cmd.output().context("running `cargo locate-project`")?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let manifest = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(manifest.parent().map(Path::to_owned).unwrap_or_default())
}

/// Loads the configuration and checks the profile; `Err` carries the exit code after the message.
pub fn load_config(manifest_path: Option<&Path>, profile: &str) -> Result<Config, i32> {
    workspace_root(manifest_path)
        .map_err(|e| e.to_string())
        .and_then(|root| read_config(&root, profile))
        .map_err(|message| {
            say!("cargo-sandbox: error: {message}");
            exit::USAGE
        })
}

/// The configuration of the workspace at `root`, its profile checked; `Err` is the message.
fn read_config(root: &Path, profile: &str) -> Result<Config, String> {
    let config = Config::load(root).map_err(|e| e.to_string())?;
    config.check_profile(profile).map_err(|e| e.to_string())?;
    Ok(config)
}

/// An engine as it started (or why it could not).
type EngineStart = Result<Engine, harness::SandboxError>;

/// The run's tests, built now or unpacked from an archive, and the workspace's configuration.
struct Tests {
    built: build::Build,
    config: Config,
    /// The doc tests an archive collected when it was made.
    archived_doctests: Option<doctest::Collected>,
    /// An archive's unpacked files, kept for the run's length.
    unpacked: Option<RunDir>,
}

/// Builds the tests (or unpacks the archive) while the engine starts; `Err` is the exit code,
/// the message said.
fn prepare(
    args: &TestArgs,
    profile: &str,
    cancel: &harness::Cancel,
    start_engine: impl FnOnce() -> Option<EngineStart>,
) -> anyhow::Result<Result<(Tests, Option<EngineStart>), i32>> {
    if let Some(path) = &args.archive_file {
        return from_archive(args, path, profile, cancel, start_engine);
    }
    env::prefetch_sysroot();
    // While cargo builds: the engine starts (its zygote, its network namespaces, and on
    // cgroup v1 the kernel kept ready for the first sandboxes' moves: the first move after a
    // pause waits for an RCU grace period), and the configuration is read once the workspace's
    // root is known (a bad one is reported once the build ends). Sandboxes themselves wait for
    // the build's end: one made now would show the workspace through an overlay made before
    // its binaries existed.
    let building =
        build::start(&args.cargo, None, cancel, Box::new(|| {})).context("building the tests")?;
    let engine = start_engine();
    let mut config = None;
    let built = building.finish(|root| {
        config = Some(read_config(root, profile));
    });
    if cancel.is_cancelled() {
        say!("cargo-sandbox: interrupted while building");
        return Ok(Err(exit::INTERRUPTED));
    }
    let config = match config {
        Some(Ok(config)) => Some(config),
        Some(Err(message)) => {
            say!("cargo-sandbox: error: {message}");
            return Ok(Err(exit::USAGE));
        }
        None => None,
    };
    let built = match built {
        Ok(built) => built,
        Err(e) => return build_failure(e, "building the tests").map(Err),
    };
    let config = config.context("the workspace's root was never known")?;
    let tests = Tests {
        built,
        config,
        archived_doctests: None,
        unpacked: None,
    };
    Ok(Ok((tests, engine)))
}

/// [`prepare`] for `--archive-file`: nothing is built, cargo is not run.
fn from_archive(
    args: &TestArgs,
    path: &Path,
    profile: &str,
    cancel: &harness::Cancel,
    start_engine: impl FnOnce() -> Option<EngineStart>,
) -> anyhow::Result<Result<(Tests, Option<EngineStart>), i32>> {
    if args.cargo.shapes_the_build() {
        say!(
            "cargo-sandbox: error: --archive-file runs the tests the archive holds, built and \
             selected by the flags given to `cargo sandbox archive`: drop cargo's package, \
             target and build flags here, and select tests with -E, --partition or test names"
        );
        return Ok(Err(exit::USAGE));
    }
    let started = std::time::Instant::now();
    let engine = start_engine();
    let workspace = args
        .workspace_remap
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let unpacked = match archive::open(path, &workspace, cancel) {
        Ok(Some(unpacked)) => unpacked,
        Ok(None) => {
            say!("cargo-sandbox: interrupted while unpacking the archive");
            return Ok(Err(exit::INTERRUPTED));
        }
        Err(e) => {
            return match e.downcast_ref::<archive::BadArchive>() {
                Some(bad) => {
                    say!("cargo-sandbox: error: {bad}");
                    Ok(Err(exit::USAGE))
                }
                None => Err(e.context(format!("unpacking {}", path.display()))),
            }
        }
    };
    let config = match read_config(&unpacked.build.workspace_root, profile) {
        Ok(config) => config,
        Err(message) => {
            say!("cargo-sandbox: error: {message}");
            return Ok(Err(exit::USAGE));
        }
    };
    say!(
        "{:>12} {} ({}, fingerprint {}) in {:.2}s",
        terminal::Palette::new(args.cargo.color).green("Unpacked"),
        path.display(),
        match unpacked.build.binaries.len() {
            1 => "1 test binary".to_owned(),
            n => format!("{n} test binaries"),
        },
        &unpacked.fingerprint[..12],
        started.elapsed().as_secs_f64()
    );
    let tests = Tests {
        built: unpacked.build,
        config,
        archived_doctests: unpacked.doctests,
        unpacked: Some(unpacked.dir),
    };
    Ok(Ok((tests, engine)))
}

/// Whether the build and the run overlap (see `pipeline`): not for what needs every binary
/// before the first test (a listing, a seeded shuffle, slices in report order), nor for what
/// builds nothing.
fn pipelined(args: &TestArgs, filter: &TestFilter) -> bool {
    let serial = [
        args.no_pipeline,
        args.no_run,
        args.archive_file.is_some(),
        args.list || filter.list,
        args.shuffle,
        matches!(args.partition, Some(crate::filter::Partition::Slice { .. })),
    ];
    !serial.contains(&true)
}

/// The run's start as the terminal announces it.
pub fn run_started(planned: &Planned, seed: u64, profile: &str, jobs: usize) -> Event {
    Event::RunStarted {
        tests: planned.counted(),
        binaries: planned.binaries_with_tests,
        unlisted_binaries: planned.unlisted_binaries,
        ignored: planned.ignored(),
        seed,
        profile: profile.to_owned(),
        jobs,
    }
}

/// `--no-tests`: whether a plan with nothing to run ends the run here (it said why).
pub fn no_tests(policy: NoTests, planned: &Planned) -> bool {
    if planned.tests > 0 || planned.unlisted_binaries > 0 {
        return false;
    }
    match policy {
        NoTests::Pass => false,
        NoTests::Warn => {
            say!("cargo-sandbox: warning: no tests to run");
            false
        }
        NoTests::Fail => {
            say!("cargo-sandbox: error: no tests to run (--no-tests fail)");
            true
        }
    }
}

/// Where the run's tests come from.
enum Source {
    /// Built (or unpacked) whole before the first test.
    Whole(Tests),
    /// Being built: binaries come as cargo links them.
    Building {
        building: build::Building,
        packages: build::Build,
        config: Config,
        slots: Arc<pipeline::Slots>,
    },
}

pub fn run(args: TestArgs) -> anyhow::Result<i32> {
    if let Some(refusal) = args.refused.refusal() {
        say!("cargo-sandbox: error: {refusal}");
        return Ok(exit::USAGE);
    }
    let mut filter = match TestFilter::new(&args.filters, &args.libtest) {
        Ok(filter) => filter,
        Err(e) => {
            say!("cargo-sandbox: error: {e:#}");
            return Ok(exit::USAGE);
        }
    };
    if let Some(which) = args.run_ignored {
        filter.run_ignored(which);
    }
    let profile = args.profile.clone().unwrap_or_else(|| "default".to_owned());
    // Signals cancel from here on: a runner stopped during the build still removes its engine.
    let cancel = signals::cancel_on_signals()?;
    let options = harness::EngineOptions {
        prepare_ahead: true,
        ..args.limits.engine.options()
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = workers(&args, &filter, cpus);
    // On this thread: its inits die with the thread that started them (`PR_SET_PDEATHSIG`).
    // `--no-run` makes no sandbox, so it works where sandboxes cannot be made.
    let start_engine = || (!args.no_run).then(|| Engine::new(options));
    let (source, engine) = if pipelined(&args, &filter) {
        match start_building(&args, &profile, &cancel, cpus, workers, start_engine)? {
            Ok(started) => started,
            Err(code) => return Ok(code),
        }
    } else {
        match prepare(&args, &profile, &cancel, start_engine)? {
            Ok((tests, engine)) => (Source::Whole(tests), engine),
            Err(code) => return Ok(code),
        }
    };
    let Some(engine) = engine else {
        let Source::Whole(tests) = &source else {
            anyhow::bail!("--no-run builds before it reports");
        };
        say!(
            "{:>12} {} (--no-run: none run)",
            terminal::Palette::new(args.cargo.color).green("Built"),
            match tests.built.binaries.len() {
                1 => "1 test binary".to_owned(),
                n => format!("{n} test binaries"),
            }
        );
        return Ok(0);
    };
    let engine = engine.context("cannot set up sandboxes")?;
    let run = Runner {
        args: &args,
        filter: &filter,
        profile: &profile,
        cancel: &cancel,
        engine: &engine,
        workers,
    };
    match source {
        Source::Whole(tests) => run.whole(tests),
        Source::Building {
            building,
            packages,
            config,
            slots,
        } => run.pipelined(building, packages, config, &slots),
    }
}

/// `-j` first, then libtest's `--test-threads` after `--`; one at a time when output passes
/// through, so it is not interleaved.
fn workers(args: &TestArgs, filter: &TestFilter, cpus: usize) -> usize {
    match (args.jobs, filter.test_threads) {
        (Some(jobs), _) => jobs.resolve(cpus),
        (None, Some(threads)) => threads,
        (None, None) if args.no_capture || filter.nocapture => 1,
        (None, None) => cpus,
    }
}

/// Starts cargo (sharing the CPUs through `Slots`) and the engine, and reads the workspace's
/// configuration as soon as `cargo metadata` gives its root; `Err` is the exit code, said.
fn start_building(
    args: &TestArgs,
    profile: &str,
    cancel: &harness::Cancel,
    cpus: usize,
    workers: usize,
    start_engine: impl FnOnce() -> Option<EngineStart>,
) -> anyhow::Result<Result<(Source, Option<EngineStart>), i32>> {
    env::prefetch_sysroot();
    // The user's own `--jobs` for cargo keeps cargo's own jobserver (cargo would warn that
    // it ignores one of the two).
    let slots = Arc::new(pipeline::Slots::new(cpus, 2 * workers)?);
    let shared = args.cargo.build_jobs.is_none().then(|| slots.client());
    let ended = slots.clone();
    let exited = Box::new(move || ended.build_ended());
    let mut building =
        build::start(&args.cargo, shared, cancel, exited).context("building the tests")?;
    let engine = start_engine();
    let packages = match building.packages() {
        Ok(packages) => packages,
        Err(e) => return build_failure(e, "building the tests").map(Err),
    };
    let config = match read_config(&packages.workspace_root, profile) {
        Ok(config) => config,
        Err(message) => {
            // Reported once the build ends: cargo is not stopped halfway.
            let _ = building.wait();
            say!("cargo-sandbox: error: {message}");
            return Ok(Err(exit::USAGE));
        }
    };
    let source = Source::Building {
        building,
        packages,
        config,
        slots,
    };
    Ok(Ok((source, engine)))
}

/// What a run shares once its engine is up.
struct Runner<'a> {
    args: &'a TestArgs,
    filter: &'a TestFilter,
    profile: &'a str,
    cancel: &'a harness::Cancel,
    engine: &'a Engine,
    workers: usize,
}

/// What the workspace's configuration and the command line settle before any binary is
/// planned.
struct Settled {
    config: Config,
    profile: String,
    filtersets: Filtersets,
    cli: Layer,
    base_spec: harness::SandboxSpec,
    host_env: Vec<(String, String)>,
    run_seed: u64,
    /// Orders the run (none with `--shuffle`).
    history: Option<History>,
    target_dir: PathBuf,
}

impl plan::Resolve for Settled {
    /// Limits a test declares itself (sandbox-harness trials) sit above the profiles and below
    /// the overrides and the command line.
    fn resolve(
        &self,
        package: &str,
        binary: &str,
        test: &str,
        declared: Option<&Layer>,
        query: Option<&TestQuery>,
    ) -> Resolved {
        let mut layers = self
            .config
            .layers_for(&self.profile, package, binary, test, query);
        if let Some(declared) = declared {
            let first_override = layers
                .iter()
                .position(|(_, origin)| origin.contains(".overrides["))
                .unwrap_or(layers.len());
            layers.insert(
                first_override,
                (declared, "declared by the test".to_owned()),
            );
        }
        layers.push((&self.cli, "command line".to_owned()));
        Resolved::from_layers(layers).0
    }
}

impl Runner<'_> {
    /// Filtersets and the configuration's filters resolved against the workspace's packages,
    /// the spec every sandbox shares, the seed and the history; `Err` is the exit code, said.
    fn settle(&self, mut config: Config, built: &build::Build) -> Result<Settled, i32> {
        // Filtersets (`-E`, and the configuration's `filter`s) resolve `package()` and `deps()`
        // against the workspace's packages.
        let graph = PackageGraph::new(built.packages.values().map(|p| {
            let deps = p.dependencies.iter().map(|d| d.name.clone()).collect();
            (p.name.to_string(), deps)
        }));
        let filtersets = Filtersets::parse_all(&self.args.filtersets, &graph).map_err(|e| {
            say!("{e}");
            exit::USAGE
        })?;
        config.compile_filters(&graph).map_err(|e| {
            say!("cargo-sandbox: error: {e}");
            exit::USAGE
        })?;
        let history = self.history(&built.target_dir)?;
        // Every test's private CARGO_TARGET_TMPDIR is mounted there: it must exist before the
        // first sandbox is made. A sandbox made while cargo builds (see `pipeline`) that looked
        // for it in a target directory not made yet would never see the directory appear.
        let _ = std::fs::create_dir_all(built.target_dir.join("tmp"));
        let mut settled = Settled {
            config,
            profile: self.profile.to_owned(),
            filtersets,
            cli: self.args.layer(),
            base_spec: harness::SandboxSpec::new(Vec::new(), PathBuf::new(), Vec::new()),
            host_env: std::env::vars().collect(),
            run_seed: self.args.seed.unwrap_or_else(random_seed),
            history,
            target_dir: built.target_dir.clone(),
        };
        let base_settings = plan::Resolve::resolve(&settled, "", "", "", None, None);
        settled.base_spec = sandbox_spec::base(
            &base_settings,
            &built.workspace_root,
            &built.target_dir,
            &built.shown_at,
        );
        if self.no_capture() && base_settings.isolation == Isolation::Test {
            // The sandboxes made ahead are for tests, whose output then passes through.
            settled.base_spec.output = harness::Output::Inherit;
        }
        Ok(settled)
    }

    fn no_capture(&self) -> bool {
        self.args.no_capture || self.filter.nocapture
    }

    /// The durations the run is ordered by: none with `--shuffle` (the seed orders it).
    fn history(&self, target_dir: &Path) -> Result<Option<History>, i32> {
        if self.args.shuffle {
            return Ok(None);
        }
        let mut history = History::load(&History::path(target_dir));
        for report in &self.args.history_from {
            if let Err(e) = history.seed_from_report(report) {
                say!("cargo-sandbox: error: --history-from: {e:#}");
                return Err(exit::USAGE);
            }
        }
        Ok(Some(history))
    }

    fn planner<'p>(&'p self, settled: &'p Settled) -> Planner<'p> {
        Planner {
            config: &settled.config,
            profile: self.profile,
            filter: self.filter,
            filtersets: &settled.filtersets,
            partition: self.args.partition,
            resolve: settled,
            listing_only: self.args.list || self.filter.list,
        }
    }

    /// Every binary built before the first test: listed all at once (beside the doc tests'
    /// collection), planned in report order.
    fn whole(&self, tests: Tests) -> anyhow::Result<i32> {
        let Tests {
            built,
            config,
            archived_doctests,
            unpacked: _unpacked,
        } = tests;
        let settled = match self.settle(config, &built) {
            Ok(settled) => settled,
            Err(code) => return Ok(code),
        };
        let host_env = &settled.host_env;
        let contexts: Vec<Arc<BinaryContext>> = built
            .binaries
            .iter()
            .map(|binary| {
                Arc::new(BinaryContext {
                    binary: binary.clone(),
                    env: env::for_binary(binary, &built, host_env),
                    runs_as: RunsAs::Libtest,
                })
            })
            .collect();
        // The JSON report's fingerprint hashes every test binary: in the background, while the
        // tests run (one thread, so it takes little from them).
        let fingerprint = self.args.report_json.is_some().then(|| {
            let (cgroup_version, contexts) = (self.engine.cgroup_version(), contexts.clone());
            std::thread::spawn(move || Fingerprint::new(cgroup_version, &contexts, 1))
        });
        // The doc tests' binaries are kept until the last test ran.
        let (mut planned, _doctests) =
            match self.plan_whole(&settled, &built, &contexts, archived_doctests) {
                Ok(planned) => planned,
                Err(code) => return code,
            };
        let mut jobs = std::mem::take(&mut planned.jobs);
        if self.args.shuffle {
            schedule::shuffle(&mut jobs, settled.run_seed);
        }
        let feed = Feed::new(settled.history.as_ref());
        feed.push(jobs);
        feed.close();
        let started = run_started(&planned, settled.run_seed, self.profile, self.workers);
        // Those settled without a sandbox first (doc tests rustdoc judged, binaries that could
        // not list), then those skipped.
        let (skipped, settled_now): (Vec<_>, Vec<_>) = planned
            .not_run
            .into_iter()
            .partition(|r| matches!(r.outcome, Outcome::Ignored | Outcome::SkippedByPartition));
        let before = std::iter::once(started)
            .chain(
                settled_now
                    .into_iter()
                    .chain(skipped)
                    .map(|r| Event::TestFinished(Box::new(r))),
            )
            .collect();
        let records = self.execute(&settled, &feed, None, before, |_| {});
        let fingerprint = fingerprint.and_then(|f| f.join().ok()).unwrap_or_default();
        self.finish(&settled, records?, fingerprint, &built.workspace_root)
    }

    /// Every binary listed at once (the doc tests collected beside them, and returned: their
    /// binaries live as long as that), then planned in report order. `Err` ends the run here
    /// with that result: `--list` printed, nothing to run, a cancellation, a doc test build
    /// that failed.
    fn plan_whole(
        &self,
        settled: &Settled,
        built: &build::Build,
        contexts: &[Arc<BinaryContext>],
        archived_doctests: Option<doctest::Collected>,
    ) -> Result<(Planned, Option<doctest::Collected>), anyhow::Result<i32>> {
        let planner = self.planner(settled);
        let mut unlisted = Planned::default();
        let mut listed = Vec::new();
        for ctx in contexts {
            match planner.runs_whole(ctx, &built.packages[&ctx.binary.package_id]) {
                Runs::Whole(settings) => unlisted.add(planner.unlisted(ctx, settings)),
                Runs::Listed(settings) => listed.push((ctx, settings)),
            }
        }
        // The sandboxes of tests without settings of their own are started now, before
        // listing: one per listing and per unlisted binary, and when some are listed, an
        // unknown number of tests after them (said once known).
        let known_uses = listed.is_empty().then_some(unlisted.jobs.len());
        self.engine.prepare(&settled.base_spec, known_uses);
        // Doc tests are compiled (outside any sandbox) while the other binaries are listed.
        // An archive's were collected when it was made.
        let doc_request = archived_doctests
            .is_none()
            .then(|| doctest_request(&self.args.cargo, built, self.filter))
            .flatten();
        let (listings, collected) = std::thread::scope(|scope| {
            let collecting = doc_request
                .as_ref()
                .map(|request| scope.spawn(|| doctest::collect(request)));
            let listings = schedule::parallel_map(&listed, self.workers, |(ctx, settings)| {
                list::in_sandbox(
                    self.engine,
                    ctx,
                    settings,
                    &settled.host_env,
                    settled.run_seed,
                )
            });
            let collected = collecting.map(|c| {
                c.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("collecting doc tests panicked")))
            });
            (listings, collected)
        });
        if self.cancel.is_cancelled() {
            say!("cargo-sandbox: interrupted while listing tests");
            return Err(Ok(exit::INTERRUPTED));
        }
        let collected = match collected.transpose() {
            Ok(collected) => collected.or(archived_doctests),
            Err(e) => return Err(build_failure(e, "collecting the doc tests")),
        };
        // Position of each selected test in report order, for `--partition slice`.
        let mut position = 0usize;
        let mut planned = Planned::default();
        for ((ctx, _), listing) in listed.iter().zip(listings) {
            let package = &built.packages[&ctx.binary.package_id].name;
            planned.add(planner.listed(ctx, package, listing, &mut position));
        }
        if let Some(collected) = &collected {
            planned.add(planner.doc_tests(collected, built, &settled.host_env, &mut position));
        }
        // Binaries run whole come last, as they always did.
        planned.add(unlisted);
        if no_tests(self.args.no_tests.unwrap_or(NoTests::Pass), &planned) {
            return Err(Ok(exit::NO_TESTS));
        }
        if self.args.list || self.filter.list {
            print_listing(&planned.jobs, &planned.not_run);
            return Err(Ok(0));
        }
        if !listed.is_empty() {
            self.engine
                .prepare(&settled.base_spec, Some(planned.jobs.len()));
        }
        Ok((planned, collected))
    }

    /// Tests start as cargo builds their binaries (see `pipeline`).
    fn pipelined(
        &self,
        mut building: build::Building,
        packages: build::Build,
        config: Config,
        slots: &pipeline::Slots,
    ) -> anyhow::Result<i32> {
        let settled = match self.settle(config, &packages) {
            Ok(settled) => settled,
            Err(code) => {
                let _ = building.wait();
                return Ok(code);
            }
        };
        let planner = self.planner(&settled);
        let feed = Feed::new(settled.history.as_ref());
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
        match ended {
            Some(pipeline::Ended::Planned { fingerprint, .. }) => {
                // The doc tests' binaries were kept until the last test ran.
                let fingerprint = fingerprint.and_then(|f| f.join().ok()).unwrap_or_default();
                self.finish(&settled, records, fingerprint, &workspace_root)
            }
            Some(pipeline::Ended::Failed(e)) => {
                self.finish(&settled, records, Fingerprint::default(), &workspace_root)?;
                build_failure(e, "building the tests")
            }
            Some(pipeline::Ended::Cancelled) => {
                self.finish(&settled, records, Fingerprint::default(), &workspace_root)?;
                Ok(exit::INTERRUPTED)
            }
            Some(pipeline::Ended::NoTests) => Ok(exit::NO_TESTS),
            None => anyhow::bail!("the plan of the run never ended"),
        }
    }

    /// Runs what is fed to `feed` (by `plan`, on a thread of its own, given where events go;
    /// or before) and hands every event to the reporters; the records of every test. Events
    /// come to the reporters once the run's start is announced (`before` or from `plan`):
    /// until then, while cargo builds, its output alone is shown.
    fn execute(
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

    /// The run's summary to every reporter, the history saved; the exit code.
    fn finish(
        &self,
        settled: &Settled,
        collected: Collected,
        fingerprint: Fingerprint,
        workspace_root: &Path,
    ) -> anyhow::Result<i32> {
        let Collected {
            reporters,
            duration_ms,
        } = collected;
        let Reporters {
            mut reporters,
            records,
            ..
        } = reporters;
        let cancelled = self.cancel.is_cancelled();
        let run = FinishedRun {
            seed: settled.run_seed,
            profile: self.profile.to_owned(),
            fingerprint,
            ..FinishedRun::new(
                records,
                duration_ms,
                cancelled,
                self.engine.protections(&settled.base_spec),
                workspace_root.to_owned(),
            )
        };
        // Reloaded: another run may have saved since this one started.
        let path = History::path(&settled.target_dir);
        let mut history = History::load(&path);
        history.record(&run.records);
        if let Err(e) = history.save(&path) {
            say!("cargo-sandbox: warning: the run's durations were not kept: {e:#}");
        }
        for reporter in &mut reporters {
            reporter.finish(&run)?;
        }
        Ok(if cancelled {
            exit::INTERRUPTED
        } else if run.failed() {
            exit::TESTS_FAILED
        } else {
            0
        })
    }
}

/// What a run's events left: the reporters (with every record), and how long it took.
struct Collected {
    reporters: Reporters,
    duration_ms: f64,
}

/// The run's reporters, and the records they were given. Until the run's start is announced
/// (a pipelined run's tests finish while cargo still prints), the terminal's events wait,
/// without their sandbox specs; the other reporters take each one at once (the JSON report
/// spills records to a file: holding them would grow with the suite).
struct Reporters {
    reporters: Vec<Box<dyn Reporter>>,
    records: Vec<TestRecord>,
    success_output: OutputWhen,
    /// Events held for the reporters that wait for the run's start.
    held: Option<Vec<Event>>,
}

impl Reporters {
    fn new(args: &TestArgs, no_capture: bool) -> Reporters {
        let palette = terminal::Palette::new(args.cargo.color);
        let quiet = args.cargo.quiet;
        let progress = if args.hide_progress_bar {
            ShowProgress::None
        } else {
            args.show_progress.unwrap_or(ShowProgress::Auto)
        };
        let success_output = args.success_output.unwrap_or(if no_capture {
            OutputWhen::Immediate
        } else {
            OutputWhen::Never
        });
        let terminal = terminal::Options {
            quiet,
            status_level: args.status_level.unwrap_or(match (quiet, progress) {
                (_, ShowProgress::Only) => StatusLevel::None,
                (true, _) => StatusLevel::Fail,
                (false, _) => StatusLevel::Skip,
            }),
            final_status_level: args.final_status_level.unwrap_or(StatusLevel::None),
            success_output,
            failure_output: args.failure_output.unwrap_or(OutputWhen::Final),
            // Output passed through would be torn by a bar redrawn under it.
            progress: !no_capture && !matches!(progress, ShowProgress::None),
        };
        let mut reporters: Vec<Box<dyn Reporter>> =
            vec![Box::new(terminal::Terminal::new(palette, terminal))];
        if let Some(path) = &args.report_json {
            reporters.push(Box::new(json::JsonReporter::new(path.clone())));
        }
        if let Some(path) = &args.junit {
            reporters.push(Box::new(junit::JunitReporter { path: path.clone() }));
        }
        if args.github || std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
            reporters.push(Box::new(github::GithubReporter::from_env()));
        }
        Reporters {
            reporters,
            records: Vec::new(),
            success_output,
            held: Some(Vec::new()),
        }
    }

    fn event(&mut self, event: Event) {
        let Some(held) = &mut self.held else {
            self.give(event, |_| true);
            return;
        };
        if !matches!(event, Event::RunStarted { .. }) {
            if let Event::TestFinished(record) = &event {
                held.push(Event::TestFinished(Box::new(TestRecord {
                    spec: None,
                    ..(**record).clone()
                })));
            }
            self.give(event, |r| !r.waits_for_the_start());
            return;
        }
        let held = self.held.take().unwrap_or_default();
        self.reporters.iter_mut().for_each(|r| r.event(&event));
        for event in held {
            for reporter in self
                .reporters
                .iter_mut()
                .filter(|r| r.waits_for_the_start())
            {
                reporter.event(&event);
            }
        }
    }

    /// Hands `event` to the reporters `to` chooses, and keeps its record.
    fn give(&mut self, event: Event, to: impl Fn(&dyn Reporter) -> bool) {
        for reporter in self.reporters.iter_mut() {
            if to(reporter.as_ref()) {
                reporter.event(&event);
            }
        }
        if let Event::TestFinished(record) = event {
            // A passing test's output is kept only when it is shown at the end.
            self.records.push(if self.success_output.at_end() {
                TestRecord {
                    spec: None,
                    ..*record
                }
            } else {
                record.slim()
            });
        }
    }

    fn flush(&mut self) {
        let holding = self.held.is_some();
        self.reporters
            .iter_mut()
            .filter(|r| !(holding && r.waits_for_the_start()))
            .for_each(|r| r.flush());
    }
}

/// `--list`: each binary's selected tests, in report order, nextest's way (`binary:` then its
/// tests indented); ignored ones marked; those settled without a sandbox (doc tests rustdoc
/// judged by compiling them) too.
fn print_listing(jobs: &[Job], not_run: &[TestRecord]) {
    let mut tests: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for job in jobs.iter().filter(|j| j.attempt == 0) {
        for test in job.selection.listed() {
            tests
                .entry(&job.binary.binary.id)
                .or_default()
                .push(test.name.clone());
        }
    }
    for record in not_run {
        let name = match record.outcome {
            Outcome::SkippedByPartition => continue,
            Outcome::Ignored => format!("{} (ignored)", record.id.name),
            _ => record.id.name.clone(),
        };
        tests.entry(&record.id.binary_id).or_default().push(name);
    }
    let mut out = String::new();
    for (binary, mut names) in tests {
        names.sort();
        out.push_str(binary);
        out.push_str(":\n");
        for name in names {
            out.push_str("    ");
            out.push_str(&name);
            out.push('\n');
        }
    }
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(out.as_bytes());
}

/// A build that failed ends the run with cargo's exit code (cargo said why); anything else
/// that went wrong while `doing` is cargo-sandbox's own failure.
pub fn build_failure(e: anyhow::Error, doing: &str) -> anyhow::Result<i32> {
    match e.downcast_ref::<BuildFailed>() {
        Some(BuildFailed(code)) => {
            say!("cargo-sandbox: error: {doing}: {e}");
            Ok(*code)
        }
        None => Err(e.context(doing.to_owned())),
    }
}

/// Whether and how doc tests are collected: as `cargo test` runs them, with `--doc` or
/// without any target selected; those of the libraries whose other tests were built.
pub fn doctest_request<'a>(
    cargo: &'a crate::cli::CargoArgs,
    built: &'a build::Build,
    filter: &'a TestFilter,
) -> Option<doctest::Request<'a>> {
    if !cargo.doc && cargo.selects_targets() {
        return None;
    }
    let selected = (!cargo.doc).then(|| {
        let mut ids: Vec<_> = built
            .binaries
            .iter()
            .map(|b| b.package_id.clone())
            .filter(|id| built.packages.get(id).is_some_and(doctest::has_doctests))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    });
    if selected.as_ref().is_some_and(Vec::is_empty) {
        return None;
    }
    Some(doctest::Request {
        cargo,
        packages: &built.packages,
        selected,
        filter,
        target_dir: &built.target_dir,
        show_build: cargo.doc,
    })
}

/// A seed when none was given: different every run, printed so the run can be reproduced.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    schedule::splitmix64(nanos ^ u64::from(std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{BinaryKind, TestBinary};
    use crate::env::BinaryEnv;

    #[test]
    fn tests_run_in_the_sandboxes_made_ahead_for_the_base_spec() {
        let (root, target) = (Path::new("/w"), Path::new("/w/target"));
        let context = BinaryContext {
            binary: TestBinary {
                id: "a".to_owned(),
                package_id: cargo_metadata::PackageId {
                    repr: "path+file:///w/crates/a#0.1.0".to_owned(),
                },
                target_name: "a".to_owned(),
                kind: BinaryKind::Lib,
                path: target.join("debug/deps/a-0123"),
            },
            env: BinaryEnv {
                vars: vec![("CARGO_PKG_NAME".to_owned(), "a".to_owned())],
                cwd: root.join("crates/a"),
                workspace_root: root.to_owned(),
                target_dir: target.to_owned(),
                shown_at: Vec::new(),
            },
            runs_as: RunsAs::Libtest,
        };
        for fs in [crate::config::FsMode::Isolated, crate::config::FsMode::Host] {
            let settings = Resolved {
                fs,
                ..Resolved::default()
            };
            let argv = vec![context.binary.path.display().to_string(), "--exact".into()];
            let test = sandbox_spec::spec(&settings, argv, &context, &[], 7);
            assert!(
                sandbox_spec::base(&settings, root, target, &[]).starts_like(&test),
                "{fs:?}: a test needs a sandbox of another shape than the one made ahead"
            );
        }
    }
}
