//! `cargo sandbox test`: build → list → schedule → sandbox → events → reporters.

use crate::build::{self, BuildFailed};
use crate::cli::TestArgs;
use crate::env;
use crate::event::{Event, TestId, TestRecord};
use crate::list::{self, Plan, TestFilter};
use crate::outcome::{classify, Outcome, Policies};
use crate::report::{github, json, junit, terminal, Reporter, RunSummary};
use crate::schedule::{self, BinaryContext, Job, RunSettings, SelectedTest};
use crate::{exit, signals};
use anyhow::Context;
use harness::{Engine, EngineOptions, Exit};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(args: TestArgs) -> anyhow::Result<i32> {
    let filter = match TestFilter::new(&args.filters, &args.libtest) {
        Ok(filter) => filter,
        Err(e) => {
            say!("cargo-sandbox: error: {e:#}");
            return Ok(exit::USAGE);
        }
    };
    let palette = terminal::Palette::new(args.cargo.color);
    let built = match build::build(&args.cargo) {
        Ok(built) => built,
        Err(e) => {
            if let Some(BuildFailed(code)) = e.downcast_ref::<BuildFailed>() {
                say!("cargo-sandbox: error: {e}");
                return Ok(*code);
            }
            return Err(e.context("building the tests"));
        }
    };
    let cancel = signals::cancel_on_signals()?;
    let engine = Engine::new(EngineOptions {
        init_exe: None,
        cgroup_parent: args.limits.cgroup_parent.clone(),
    })
    .context("cannot set up sandboxes")?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let settings = RunSettings {
        limits: args.limits.limits(),
        timeout: args.limits.timeout,
        grace: args.limits.grace,
        tmp_size_bytes: args.limits.tmp_size,
        isolation: args.isolation,
        policies: Policies {
            leaks: args.leaks,
            network: args.network_attempts,
        },
        jobs,
    };
    let started = Instant::now();

    let host_env: Vec<(String, String)> = std::env::vars().collect();
    let contexts: Vec<Arc<BinaryContext>> = built
        .binaries
        .iter()
        .map(|binary| {
            Arc::new(BinaryContext {
                binary: binary.clone(),
                env: env::for_binary(binary, &built, &host_env),
            })
        })
        .collect();

    // Listing runs each binary's code, so it happens in sandboxes too.
    let listings =
        schedule::parallel_map(&contexts, jobs, |ctx| list_binary(&engine, ctx, &settings));
    if cancel.is_cancelled() {
        say!("cargo-sandbox: interrupted while listing tests");
        return Ok(exit::INTERRUPTED);
    }
    let mut records: Vec<TestRecord> = Vec::new();
    let mut job_list = Vec::new();
    let mut ignored = Vec::new();
    let mut binaries_with_tests = 0;
    for (ctx, listing) in contexts.iter().zip(listings) {
        let tests = match listing {
            Ok(tests) => tests,
            Err(record) => {
                records.push(*record);
                continue;
            }
        };
        let selected = list::select(&tests, &filter);
        let runnable: Vec<SelectedTest> = selected
            .iter()
            .filter(|(_, _, plan)| *plan == Plan::Run)
            .map(|(name, ignored, _)| SelectedTest {
                name: name.clone(),
                ignored: *ignored,
            })
            .collect();
        for (name, _, _) in selected.iter().filter(|(_, _, plan)| *plan == Plan::Ignore) {
            let id = TestId {
                binary_id: ctx.binary.id.clone(),
                name: name.clone(),
            };
            ignored.push(TestRecord::not_run(id, Outcome::Ignored, false));
        }
        if runnable.is_empty() {
            continue;
        }
        binaries_with_tests += 1;
        match settings.isolation {
            crate::cli::Isolation::Test => job_list.extend(runnable.into_iter().map(|t| Job {
                binary: ctx.clone(),
                tests: vec![t],
                whole_binary: false,
            })),
            crate::cli::Isolation::Binary => {
                // No filter removed anything: libtest's own selection is the same.
                let whole_binary = selected.len() == tests.len();
                job_list.push(Job {
                    binary: ctx.clone(),
                    tests: runnable,
                    whole_binary,
                });
            }
        }
    }
    let to_run: usize = job_list.iter().map(|j| j.tests.len()).sum();

    let mut reporters: Vec<Box<dyn Reporter>> =
        vec![Box::new(terminal::Terminal::new(palette, args.cargo.quiet))];
    if let Some(path) = &args.report_json {
        reporters.push(Box::new(json::JsonReporter { path: path.clone() }));
    }
    if let Some(path) = &args.junit {
        reporters.push(Box::new(junit::JunitReporter { path: path.clone() }));
    }
    if args.github || std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        reporters.push(Box::new(github::GithubReporter::from_env()));
    }
    let mut emit = |event: &Event| reporters.iter_mut().for_each(|r| r.event(event));
    emit(&Event::RunStarted {
        tests: to_run,
        binaries: binaries_with_tests,
        ignored: ignored.len(),
    });
    for record in records.iter().chain(&ignored) {
        emit(&Event::TestFinished(Box::new(record.clone())));
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let (engine, settings, cancel) = (&engine, &settings, &cancel);
        // The worker owns the only sender: the loop below ends when the last job is done.
        scope.spawn(move || schedule::run_jobs(engine, job_list, settings, cancel, &sender));
        for event in receiver {
            emit(&event);
            if let Event::TestFinished(record) = event {
                records.push(*record);
            }
        }
    });
    records.extend(ignored);
    let cancelled = cancel.is_cancelled();
    let protections = engine.protections(&settings.spec(Vec::new(), ".".into(), Vec::new()));
    let run = RunSummary::new(
        records,
        started.elapsed().as_secs_f64() * 1000.0,
        cancelled,
        protections,
        built.workspace_root.clone(),
    );
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

/// Lists a binary's tests in a sandbox; a binary that cannot list is reported as a failed
/// pseudo-test named `<listing>`.
fn list_binary(
    engine: &Engine,
    ctx: &BinaryContext,
    settings: &RunSettings,
) -> Result<Vec<list::ListedTest>, Box<TestRecord>> {
    let mut listing_settings = settings.clone();
    listing_settings.timeout = Some(settings.timeout.unwrap_or(Duration::from_secs(60)));
    let run = |extra: &[&str]| -> Result<String, Box<TestRecord>> {
        let mut args = vec![
            "--list".to_owned(),
            "--format".to_owned(),
            "terse".to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let spec = schedule::spec_for(ctx, args, &listing_settings);
        let started = Instant::now();
        let id = TestId {
            binary_id: ctx.binary.id.clone(),
            name: "<listing>".to_owned(),
        };
        match engine.run(&spec, None) {
            Ok(result) if result.exit == Exit::Code(0) => {
                Ok(result.output.map(|o| o.text()).unwrap_or_default())
            }
            Ok(result) => {
                let outcome = classify(&result, true);
                Err(Box::new(TestRecord {
                    error: Some("listing the binary's tests failed".into()),
                    ..TestRecord::ran(id, outcome, true, started.elapsed(), &result, &spec)
                }))
            }
            Err(e) => Err(Box::new(TestRecord {
                spec: Some(spec.clone()),
                error: Some(e.to_string()),
                ..TestRecord::not_run(id, Outcome::SandboxError, true)
            })),
        }
    };
    let all = list::parse_terse(&run(&[])?);
    let ignored = list::parse_terse(&run(&["--ignored"])?);
    Ok(list::combine(all, &ignored))
}
