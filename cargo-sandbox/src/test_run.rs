//! `cargo sandbox test`: configure → build → list → schedule → sandbox → events → reporters.

use crate::build::BinaryKind;
use crate::build::{self, BuildFailed};
use crate::cli::{NoTests, OutputWhen, ShowProgress, StatusLevel, TestArgs};
use crate::config::{Config, Isolation, Layer, Resolved};
use crate::doctest;
use crate::env;
use crate::event::{Event, TestId, TestRecord};
use crate::filterset::{Filtersets, PackageGraph, TestQuery};
use crate::list::{self, Plan, TestFilter};
use crate::outcome::Outcome;
use crate::report::{github, json, junit, terminal, Fingerprint, Reporter, RunSummary};
use crate::run_dir::RunDir;
use crate::schedule::{self, BinaryContext, Job, RunsAs, SelectedTest, Selection};
use crate::{archive, exit, signals};
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
    let building = build::start(&args.cargo).context("building the tests")?;
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
    let no_capture = args.no_capture || filter.nocapture;
    let listing_only = args.list || filter.list;
    let profile = args.profile.clone().unwrap_or_else(|| "default".to_owned());
    let palette = terminal::Palette::new(args.cargo.color);
    // Signals cancel from here on: a runner stopped during the build still removes its engine.
    let cancel = signals::cancel_on_signals()?;
    let options = harness::EngineOptions {
        prepare_ahead: true,
        ..args.limits.engine.options()
    };
    // On this thread: its inits die with the thread that started them (`PR_SET_PDEATHSIG`).
    // `--no-run` makes no sandbox, so it works where sandboxes cannot be made.
    let start_engine = || (!args.no_run).then(|| Engine::new(options));
    let (tests, engine) = match prepare(&args, &profile, &cancel, start_engine)? {
        Ok(prepared) => prepared,
        Err(code) => return Ok(code),
    };
    let Tests {
        built,
        config,
        archived_doctests,
        unpacked: _unpacked,
    } = tests;
    let Some(engine) = engine else {
        say!(
            "{:>12} {} (--no-run: none run)",
            palette.green("Built"),
            match built.binaries.len() {
                1 => "1 test binary".to_owned(),
                n => format!("{n} test binaries"),
            }
        );
        return Ok(0);
    };
    // Filtersets (`-E`, and the configuration's `filter`s) resolve `package()` and `deps()`
    // against the workspace's packages.
    let graph = PackageGraph::new(built.packages.values().map(|p| {
        let deps = p.dependencies.iter().map(|d| d.name.clone()).collect();
        (p.name.to_string(), deps)
    }));
    let filtersets = match Filtersets::parse_all(&args.filtersets, &graph) {
        Ok(filtersets) => filtersets,
        Err(e) => {
            say!("{e}");
            return Ok(exit::USAGE);
        }
    };
    let mut config = config;
    if let Err(e) = config.compile_filters(&graph) {
        say!("cargo-sandbox: error: {e}");
        return Ok(exit::USAGE);
    }
    let config = config;
    let cli = args.layer();
    // Limits a test declares itself (sandbox-harness trials) sit above the profiles and below
    // the overrides and the command line.
    let resolve = |package: &str,
                   binary: &str,
                   test: &str,
                   declared: Option<&Layer>,
                   query: Option<&TestQuery>|
     -> Resolved {
        let mut layers = config.layers_for(&profile, package, binary, test, query);
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
        layers.push((&cli, "command line".to_owned()));
        Resolved::from_layers(layers).0
    };
    let engine = engine.context("cannot set up sandboxes")?;
    let base_settings = resolve("", "", "", None, None);
    let mut base_spec = base_spec(
        &base_settings,
        &built.workspace_root,
        &built.target_dir,
        &built.shown_at,
    );
    if no_capture && base_settings.isolation == Isolation::Test {
        // The sandboxes made ahead are for tests, whose output then passes through.
        base_spec.output = harness::Output::Inherit;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // `-j` first, then libtest's `--test-threads` after `--`; one at a time when output
    // passes through, so it is not interleaved.
    let workers = match (args.jobs, filter.test_threads) {
        (Some(jobs), _) => jobs.resolve(cpus),
        (None, Some(threads)) => threads,
        (None, None) if no_capture => 1,
        (None, None) => cpus,
    };
    let run_seed = args.seed.unwrap_or_else(random_seed);
    let started = Instant::now();

    let host_env: Vec<(String, String)> = std::env::vars().collect();
    let contexts: Vec<Arc<BinaryContext>> = built
        .binaries
        .iter()
        .map(|binary| {
            Arc::new(BinaryContext {
                binary: binary.clone(),
                env: env::for_binary(binary, &built, &host_env),
                runs_as: RunsAs::Libtest,
            })
        })
        .collect();
    let package_of = |ctx: &BinaryContext| built.packages[&ctx.binary.package_id].name.to_string();

    // The JSON report's fingerprint hashes every test binary: in the background, while the
    // tests run (one thread, so it takes little from them).
    let fingerprint = args.report_json.is_some().then(|| {
        let (cgroup_version, contexts) = (engine.cgroup_version(), contexts.clone());
        std::thread::spawn(move || Fingerprint::new(cgroup_version, &contexts, 1))
    });
    // Under `--isolation binary`, a binary whose tests all share its settings runs whole
    // without listing it first: libtest applies the filter, and the run's output names the
    // tests. Every other binary is listed; listing runs its code, so it happens in sandboxes too.
    let mut unlisted: Vec<(&Arc<BinaryContext>, Resolved)> = Vec::new();
    let mut listed: Vec<(&Arc<BinaryContext>, Resolved)> = Vec::new();
    for ctx in &contexts {
        let package = &built.packages[&ctx.binary.package_id];
        let settings = resolve(&package.name, &ctx.binary.id, "", None, None);
        let whole = !listing_only
            && settings.isolation == Isolation::Binary
            && settings.repeat == 1
            && args.partition.is_none()
            // A filterset may name tests, which only the listing tells.
            && filtersets.is_empty()
            && !config.has_test_overrides(&profile, &package.name, &ctx.binary.id)
            // sandbox-harness trials may declare limits of their own, which only the listing
            // tells.
            && !package.dependencies.iter().any(|d| d.name == "sandbox-harness");
        if whole {
            unlisted.push((ctx, settings));
        } else {
            listed.push((ctx, settings));
        }
    }
    // The sandboxes of tests without settings of their own are started now, before listing
    // (not during the build: one made then would show the workspace without its binaries):
    // one per listing and per unlisted binary, and when some are listed, an unknown number of
    // tests after them (said once known).
    let known_uses = listed.is_empty().then_some(unlisted.len());
    engine.prepare(&base_spec, known_uses);
    // Doc tests are compiled (outside any sandbox) while the other binaries are listed.
    // An archive's were collected when it was made.
    let doc_request = archived_doctests
        .is_none()
        .then(|| doctest_request(&args.cargo, &built, &filter))
        .flatten();
    let (listings, collected) = std::thread::scope(|scope| {
        let collecting = doc_request
            .as_ref()
            .map(|request| scope.spawn(|| doctest::collect(request)));
        let listings = schedule::parallel_map(&listed, workers, |(ctx, settings)| {
            list::in_sandbox(&engine, ctx, settings, &host_env, run_seed)
        });
        let collected = collecting.map(|c| {
            c.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("collecting doc tests panicked")))
        });
        (listings, collected)
    });
    if cancel.is_cancelled() {
        say!("cargo-sandbox: interrupted while listing tests");
        return Ok(exit::INTERRUPTED);
    }
    let collected = match collected.transpose() {
        Ok(collected) => collected.or(archived_doctests),
        Err(e) => return build_failure(e, "collecting the doc tests"),
    };
    let mut records: Vec<TestRecord> = Vec::new();
    let mut jobs = Vec::new();
    let mut ignored = Vec::new();
    let mut binaries_with_tests = 0;
    // Position of each selected test in report order, for `--partition slice`.
    let mut position = 0usize;
    for ((ctx, _), listing) in listed.iter().zip(listings) {
        let (listing, tests) = match listing {
            Ok(listing) => (listing.names(), listing.tests),
            Err(record) => {
                records.push(*record);
                continue;
            }
        };
        let package = package_of(ctx);
        let mut selected = list::select(&tests, &filter);
        selected
            .retain(|(name, _, _)| filtersets.matches(&ctx.binary.filter_query(&package, name)));
        let mut whole_binary = selected.len() == tests.len();
        if let Some(partition) = args.partition {
            let before = selected.len();
            selected.retain(|(name, _, _)| {
                position += 1;
                let mine = partition.includes(position - 1, &ctx.binary.id, name);
                if !mine {
                    let id = TestId {
                        binary_id: ctx.binary.id.clone(),
                        name: name.clone(),
                    };
                    ignored.push(TestRecord::not_run(id, Outcome::SkippedByPartition, false));
                }
                mine
            });
            whole_binary &= selected.len() == before;
        }
        let mut binary_groups: Vec<(Arc<Resolved>, Vec<SelectedTest>)> = Vec::new();
        for (name, is_ignored, plan) in &selected {
            if *plan == Plan::Ignore {
                let id = TestId {
                    binary_id: ctx.binary.id.clone(),
                    name: name.clone(),
                };
                ignored.push(TestRecord::not_run(id, Outcome::Ignored, false));
                continue;
            }
            let declared = tests
                .iter()
                .find(|t| &t.name == name)
                .and_then(|t| t.declared)
                .map(Layer::declared);
            let query = ctx.binary.filter_query(&package, name);
            let settings = resolve(
                &package,
                &ctx.binary.id,
                name,
                declared.as_ref(),
                Some(&query),
            );
            let test = SelectedTest {
                name: name.clone(),
                ignored: *is_ignored,
            };
            let job = |settings: Arc<Resolved>, tests: Vec<SelectedTest>, whole_binary: bool| Job {
                binary: (*ctx).clone(),
                selection: Selection::Listed {
                    tests,
                    whole_binary,
                    listing: listing.clone(),
                },
                settings,
                attempt: 0,
                retry: 0,
                order: 0,
            };
            match settings.isolation {
                Isolation::Test => jobs.push(job(Arc::new(settings), vec![test], false)),
                // Tests of one binary with the same settings share a sandbox.
                Isolation::Binary => {
                    match binary_groups.iter_mut().find(|(s, _)| **s == settings) {
                        Some((_, group)) => group.push(test),
                        None => binary_groups.push((Arc::new(settings), vec![test])),
                    }
                }
            }
        }
        let single_group = binary_groups.len() == 1;
        for (settings, tests) in binary_groups {
            jobs.push(Job {
                binary: (*ctx).clone(),
                selection: Selection::Listed {
                    tests,
                    whole_binary: whole_binary && single_group,
                    listing: listing.clone(),
                },
                settings,
                attempt: 0,
                retry: 0,
                order: 0,
            });
        }
        if selected.iter().any(|(_, _, plan)| *plan == Plan::Run) {
            binaries_with_tests += 1;
        }
    }
    // Doc tests rustdoc settled have no job to tell their kind.
    let mut doc_kinds = Vec::new();
    if let Some(collected) = &collected {
        // libtest's filters see rustdoc's names without the mode cargo shows after them.
        let selects = |binary: &build::TestBinary, package: &str, name: &str| {
            filter.matches(doctest::libtest_name(name))
                && filtersets.matches(&binary.filter_query(package, name))
        };
        let partition = args.partition.map(|p| (p, &mut position));
        let doc = doc_tests(collected, &built, &host_env, &selects, &resolve, partition);
        doc_kinds.extend(
            doc.settled
                .iter()
                .chain(&doc.ignored)
                .map(|r| (r.id.binary_id.clone(), BinaryKind::Doctest.word())),
        );
        binaries_with_tests += doc.libraries;
        jobs.extend(doc.jobs);
        records.extend(doc.settled);
        ignored.extend(doc.ignored);
    }
    let unlisted_binaries = unlisted.len();
    for (ctx, settings) in unlisted {
        jobs.push(Job {
            binary: ctx.clone(),
            selection: Selection::Unlisted { only: None },
            settings: Arc::new(settings),
            attempt: 0,
            retry: 0,
            order: 0,
        });
    }
    let to_run: usize = jobs.iter().map(|j| j.selection.listed().len()).sum();
    if to_run == 0 && unlisted_binaries == 0 {
        match args.no_tests.unwrap_or(NoTests::Pass) {
            NoTests::Pass => {}
            NoTests::Warn => say!("cargo-sandbox: warning: no tests to run"),
            NoTests::Fail => {
                say!("cargo-sandbox: error: no tests to run (--no-tests fail)");
                return Ok(exit::NO_TESTS);
            }
        }
    }
    // Repeats go on the queue up front, each attempt its own job; then the order is fixed.
    let mut queue: Vec<Job> = jobs
        .into_iter()
        .flat_map(|job| {
            (0..job.settings.repeat).map(move |attempt| Job {
                attempt,
                ..job.clone()
            })
        })
        .collect();
    if listing_only {
        print_listing(&queue, &records, &ignored);
        return Ok(0);
    }
    if !listed.is_empty() {
        engine.prepare(&base_spec, Some(queue.len()));
    }
    if args.shuffle {
        schedule::shuffle(&mut queue, run_seed);
    }
    for (order, job) in queue.iter_mut().enumerate() {
        job.order = order;
    }

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
    let mut emit = |event: &Event| reporters.iter_mut().for_each(|r| r.event(event));
    emit(&Event::RunStarted {
        // With the records known before any sandbox (doc tests rustdoc settled, binaries that
        // could not list), which count as run too.
        tests: to_run + records.len(),
        binaries: binaries_with_tests,
        unlisted_binaries,
        ignored: ignored
            .iter()
            .filter(|r| r.outcome == Outcome::Ignored)
            .count(),
        seed: run_seed,
        profile: profile.clone(),
        jobs: workers,
    });
    // Each record names its binary's kind (`doctest` for doc tests) in every report.
    let kinds: std::collections::HashMap<String, &'static str> = queue
        .iter()
        .map(|job| &job.binary.binary)
        .chain(contexts.iter().map(|ctx| &ctx.binary))
        .map(|binary| (binary.id.clone(), binary.kind.word()))
        .chain(doc_kinds)
        .collect();
    let kind_of = |id: &TestId| kinds.get(&id.binary_id).copied().unwrap_or_default();
    for record in records.iter_mut().chain(&mut ignored) {
        record.kind = kind_of(&record.id).to_owned();
        emit(&Event::TestFinished(Box::new(record.clone())));
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let keep_writes = args.limits.keep_writes.clone();
    std::thread::scope(|scope| {
        let (engine, cancel, host_env) = (&engine, &cancel, &host_env);
        // The worker owns the only sender: the loop below ends when the last job is done.
        scope.spawn(move || {
            let run = schedule::Run {
                engine,
                cancel,
                events: &sender,
                host_env,
                run_seed,
                workers,
                keep_writes,
                filter: &filter,
                max_fail: args.max_fail(),
                no_capture,
            };
            schedule::run_jobs(&run, queue)
        });
        loop {
            // Events come in bursts (a binary run whole reports all its tests at once): the
            // reporters write what they have when the burst ends.
            let event = match receiver.try_recv() {
                Ok(event) => event,
                Err(_) => {
                    reporters.iter_mut().for_each(|r| r.flush());
                    match receiver.recv() {
                        Ok(event) => event,
                        Err(_) => break,
                    }
                }
            };
            let mut event = event;
            if let Event::TestFinished(record) = &mut event {
                record.kind = kind_of(&record.id).to_owned();
            }
            reporters.iter_mut().for_each(|r| r.event(&event));
            if let Event::TestFinished(record) = event {
                // A passing test's output is kept only when it is shown at the end.
                records.push(if success_output.at_end() {
                    TestRecord {
                        spec: None,
                        ..*record
                    }
                } else {
                    record.slim()
                });
            }
        }
    });
    records.extend(ignored);
    let cancelled = cancel.is_cancelled();
    let run = RunSummary {
        seed: run_seed,
        profile,
        fingerprint: fingerprint.and_then(|f| f.join().ok()).unwrap_or_default(),
        ..RunSummary::new(
            records,
            started.elapsed().as_secs_f64() * 1000.0,
            cancelled,
            engine.protections(&base_spec),
            built.workspace_root.clone(),
        )
    };
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

/// `--list`: each binary's selected tests, in report order, nextest's way (`binary:` then its
/// tests indented); ignored ones marked; those settled without a sandbox (doc tests rustdoc
/// judged by compiling them) too.
fn print_listing(queue: &[Job], settled: &[TestRecord], ignored: &[TestRecord]) {
    let mut tests: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for job in queue.iter().filter(|j| j.attempt == 0) {
        for test in job.selection.listed() {
            tests
                .entry(&job.binary.binary.id)
                .or_default()
                .push(test.name.clone());
        }
    }
    for record in settled {
        tests
            .entry(&record.id.binary_id)
            .or_default()
            .push(record.id.name.clone());
    }
    for record in ignored.iter().filter(|r| r.outcome == Outcome::Ignored) {
        tests
            .entry(&record.id.binary_id)
            .or_default()
            .push(format!("{} (ignored)", record.id.name));
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

/// Settings for a package, binary and test, with what the test declares itself.
type Resolve<'a> = dyn Fn(&str, &str, &str, Option<&Layer>, Option<&TestQuery>) -> Resolved + 'a;

/// Whether the user's filters and filtersets select a test (of a binary, in a package).
type Selects<'a> = dyn Fn(&build::TestBinary, &str, &str) -> bool + 'a;

/// The doc tests as the run's jobs and records.
struct DocTests {
    jobs: Vec<Job>,
    /// Those rustdoc settled by compiling them.
    settled: Vec<TestRecord>,
    ignored: Vec<TestRecord>,
    /// Libraries with a doc test to run.
    libraries: usize,
}

/// Each selected doc test a job of its own (one sandbox per doc test, whatever the isolation),
/// under the settings of its package, `pkg::doctest/lib` and its name.
fn doc_tests(
    collected: &doctest::Collected,
    built: &build::Build,
    host_env: &[(String, String)],
    selects: &Selects,
    resolve: &Resolve,
    partition: Option<(list::Partition, &mut usize)>,
) -> DocTests {
    let mut doc = DocTests {
        jobs: Vec::new(),
        settled: Vec::new(),
        ignored: Vec::new(),
        libraries: 0,
    };
    let package_name = |id: &cargo_metadata::PackageId| {
        built
            .packages
            .get(id)
            .map(|p| p.name.to_string())
            .unwrap_or_default()
    };
    // `--partition`: the doc tests take their positions after the other binaries', in report
    // order (rustdoc reports them in the order they finish).
    let mut others = std::collections::BTreeSet::new();
    if let Some((partition, position)) = partition {
        let mut all: Vec<TestId> = collected
            .tests
            .iter()
            .map(|t| (&t.package_id, &t.lib_name, &t.name))
            .chain(
                collected
                    .settled
                    .iter()
                    .map(|t| (&t.package_id, &t.lib_name, &t.name)),
            )
            .map(|(package_id, lib, name)| TestId {
                binary_id: build::binary_id(&package_name(package_id), BinaryKind::Doctest, lib),
                name: name.clone(),
            })
            .collect();
        all.sort();
        for id in all {
            *position += 1;
            if !partition.includes(*position - 1, &id.binary_id, &id.name) {
                others.insert(id);
            }
        }
    }
    let mine = |binary: &build::TestBinary, name: &str| {
        !others.contains(&TestId {
            binary_id: binary.id.clone(),
            name: name.to_owned(),
        })
    };
    for id in &others {
        doc.ignored.push(TestRecord::not_run(
            id.clone(),
            Outcome::SkippedByPartition,
            false,
        ));
    }
    let mut libraries = std::collections::BTreeSet::new();
    for test in &collected.tests {
        let package = package_name(&test.package_id);
        let binary = build::TestBinary::doctest(
            &package,
            &test.package_id,
            &test.lib_name,
            test.binary.clone(),
        );
        if !selects(&binary, &package, &test.name) || !mine(&binary, &test.name) {
            continue;
        }
        let mut env = env::for_binary(&binary, built, host_env);
        env.vars.extend(test.env());
        let settings = Resolved {
            isolation: Isolation::Test,
            ..resolve(
                &package,
                &binary.id,
                &test.name,
                None,
                Some(&binary.filter_query(&package, &test.name)),
            )
        };
        libraries.insert(binary.id.clone());
        doc.jobs.push(Job {
            binary: Arc::new(BinaryContext {
                binary,
                env,
                runs_as: RunsAs::DocTest {
                    should_panic: test.should_panic,
                },
            }),
            selection: Selection::Listed {
                tests: vec![SelectedTest {
                    name: test.name.clone(),
                    ignored: false,
                }],
                whole_binary: true,
                listing: Arc::from([test.name.clone()]),
            },
            settings: Arc::new(settings),
            attempt: 0,
            retry: 0,
            order: 0,
        });
    }
    doc.libraries = libraries.len();
    for settled in &collected.settled {
        let package = package_name(&settled.package_id);
        // Settled without a binary to run.
        let binary = build::TestBinary::doctest(
            &package,
            &settled.package_id,
            &settled.lib_name,
            PathBuf::new(),
        );
        if !selects(&binary, &package, &settled.name) || !mine(&binary, &settled.name) {
            continue;
        }
        let id = TestId {
            binary_id: binary.id,
            name: settled.name.clone(),
        };
        match &settled.verdict {
            doctest::SettledVerdict::Ignored => {
                doc.ignored
                    .push(TestRecord::not_run(id, Outcome::Ignored, false));
            }
            doctest::SettledVerdict::Passed => {
                doc.settled
                    .push(TestRecord::not_run(id, Outcome::Passed, false));
            }
            doctest::SettledVerdict::Failed(output) => doc.settled.push(TestRecord {
                output: Some(harness::CapturedOutput {
                    head: output.clone(),
                    ..Default::default()
                }),
                ..TestRecord::not_run(id, Outcome::Failed, true)
            }),
        }
    }
    doc
}

/// What every sandbox of the run has in common with the workspace-wide settings (its command
/// aside): what the reports state as in force, and what the engine prepares ahead.
fn base_spec(
    settings: &Resolved,
    root: &Path,
    target: &Path,
    shown_at: &[harness::ShownAt],
) -> harness::SandboxSpec {
    // The working directory is part of a sandbox's shape only when it lies outside the paths
    // kept reachable; every test's lies in the workspace, and so does this one.
    let mut spec = harness::SandboxSpec::new(Vec::new(), root.to_owned(), Vec::new());
    schedule::apply(settings, &mut spec);
    schedule::workspace_filesystem(settings, root, target, shown_at, &mut spec);
    spec
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
            let test = schedule::spec(&settings, argv, &context, &[], 7);
            assert!(
                base_spec(&settings, root, target, &[]).starts_like(&test),
                "{fs:?}: a test needs a sandbox of another shape than the one made ahead"
            );
        }
    }
}
