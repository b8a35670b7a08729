//! `cargo sandbox test`: build → list → schedule → sandbox → events → reporters.

use crate::build::{self, BuildFailed};
use crate::cli::TestArgs;
use crate::env;
use crate::event::{Event, TestId, TestRecord};
use crate::list::{self, Plan, TestFilter};
use crate::outcome::{classify, Outcome, Policies};
use crate::report::{self, json, terminal};
use crate::schedule::{self, BinaryContext, Job, RunSettings, SelectedTest};
use crate::{exit, signals, summary};
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
            ignored.push(TestRecord {
                id: TestId {
                    binary_id: ctx.binary.id.clone(),
                    name: name.clone(),
                },
                outcome: Outcome::Ignored,
                failure: false,
                duration: Duration::ZERO,
                sandbox: None,
                spec: None,
                error: None,
            });
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

    let mut reporter = terminal::Terminal::new(palette, args.cargo.quiet);
    reporter.event(&Event::RunStarted {
        tests: to_run,
        binaries: binaries_with_tests,
        ignored: ignored.len(),
    });
    for record in records.iter().chain(&ignored) {
        reporter.event(&Event::TestFinished(Box::new(record.clone())));
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let (engine, settings, cancel) = (&engine, &settings, &cancel);
        // The worker owns the only sender: the loop below ends when the last job is done.
        scope.spawn(move || schedule::run_jobs(engine, job_list, settings, cancel, &sender));
        for event in receiver {
            reporter.event(&event);
            if let Event::TestFinished(record) = event {
                records.push(*record);
            }
        }
    });
    records.extend(ignored);
    let cancelled = cancel.is_cancelled();
    let records = report::sorted(records);
    let elapsed = started.elapsed();

    let protections = records
        .iter()
        .find_map(|r| r.sandbox.as_ref().map(|s| s.protections.clone()));
    let protections_text = protections
        .as_ref()
        .map(summary::protections)
        .unwrap_or_else(|| "no test ran".into());
    reporter.finish(&records, elapsed, cancelled, &protections_text);

    if let Some(path) = &args.report_json {
        let info = json::RunInfo {
            cgroup_version: engine.cgroup_version(),
            protections: serde_json::to_value(&protections)?,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            cancelled,
        };
        json::write(path, &json::document(&records, &info))?;
    }
    Ok(if cancelled {
        exit::INTERRUPTED
    } else if records.iter().any(|r| r.failure) {
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
        let failed = |outcome: Outcome, sandbox, error| {
            Box::new(TestRecord {
                id: TestId {
                    binary_id: ctx.binary.id.clone(),
                    name: "<listing>".to_owned(),
                },
                outcome,
                failure: true,
                duration: started.elapsed(),
                sandbox,
                spec: Some(spec.clone()),
                error,
            })
        };
        match engine.run(&spec, None) {
            Ok(result) if result.exit == Exit::Code(0) => {
                Ok(result.output.map(|o| o.text()).unwrap_or_default())
            }
            Ok(result) => {
                let outcome = classify(&result, true);
                Err(failed(
                    outcome,
                    Some(result),
                    Some("listing the binary's tests failed".into()),
                ))
            }
            Err(e) => Err(failed(Outcome::SandboxError, None, Some(e.to_string()))),
        }
    };
    let all = list::parse_terse(&run(&[])?);
    let ignored = list::parse_terse(&run(&["--ignored"])?);
    Ok(list::combine(all, &ignored))
}
