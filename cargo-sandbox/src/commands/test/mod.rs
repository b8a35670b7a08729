//! `cargo sandbox test`, start to exit code. The steps, in the order they run:
//!
//! 1. the flags checked and the libtest-style selection read ([`run`]);
//! 2. the tests built by cargo, or unpacked from an archive, while the engine starts
//!    ([`source`]);
//! 3. what the configuration and the command line settle once for the whole run ([`settle`]);
//! 4. each binary listed (in a sandbox) and planned: as cargo links it, overlapping the build
//!    (`Runner::pipelined`, see `crate::pipeline`), or all at once after it ([`whole`]);
//! 5. the jobs run by the workers (`crate::schedule`), every event handed to the reporters
//!    ([`reporters`]), and the run's end: the history saved, the exit code ([`runner`]).
//!
//! `--list` prints the plan instead of running it ([`listing`]).

mod listing;
mod reporters;
mod runner;
mod settle;
mod source;
mod whole;

use crate::cli::TestArgs;
use crate::filter::{Partition, TestFilter};
use crate::report::terminal;
use crate::{exit, signals};
use anyhow::Context;
use harness::Engine;
use runner::Runner;
use source::Source;

pub fn run(args: TestArgs) -> anyhow::Result<i32> {
    if let Some(refusal) = args.refused.refusal() {
        say!("cargo-sandbox: error: {refusal}");
        return Ok(exit::USAGE);
    }
    let filter = match selection(&args) {
        Ok(filter) => filter,
        Err(code) => return Ok(code),
    };
    let profile = args.profile.clone().unwrap_or_else(|| "default".to_owned());
    // Signals cancel from here on: a runner stopped during the build still removes its engine.
    let cancel = signals::cancel_on_signals()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = workers(&args, &filter, cpus);
    // On this thread (cargo is started beside it): its inits die with the thread that started
    // them (`PR_SET_PDEATHSIG`). `--no-run` makes no sandbox, so it works where sandboxes
    // cannot be made.
    let start_engine = || {
        (!args.no_run).then(|| {
            Engine::new(harness::EngineOptions {
                prepare_ahead: true,
                ..args.limits.engine.options()
            })
        })
    };
    let started = if pipelined(&args, &filter) {
        source::start_building(&args, &profile, &cancel, cpus, workers, start_engine)?
    } else {
        source::prepare(&args, &profile, &cancel, start_engine)?
    };
    let (source, engine) = match started {
        Ok(started) => started,
        Err(code) => return Ok(code),
    };
    let Some(engine) = engine else {
        return built_only(&args, &source);
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
    let ending = match source {
        Source::Whole(tests) => run.whole(tests),
        Source::Building {
            building,
            packages,
            config,
            slots,
        } => run.pipelined(building, packages, config, &slots),
    }?;
    // No sandbox starts any more: the engine is removed while the run's end is written (or
    // first, where no thread can be started: the closure that owns it is dropped then).
    std::thread::scope(|scope| {
        let _ = std::thread::Builder::new().spawn_scoped(scope, move || drop(engine));
        ending.write()
    })
}

/// The user's test names and libtest's flags after `--`, with `--run-ignored`; `Err` is the
/// exit code, the message said.
fn selection(args: &TestArgs) -> Result<TestFilter, i32> {
    let mut filter = TestFilter::new(&args.filters, &args.libtest).map_err(|e| {
        say!("cargo-sandbox: error: {e:#}");
        exit::USAGE
    })?;
    if let Some(which) = args.run_ignored {
        filter.run_ignored(which);
    }
    Ok(filter)
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
        matches!(args.partition, Some(Partition::Slice { .. })),
    ];
    !serial.contains(&true)
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

/// `--no-run`: the build said what it built, and no sandbox was made.
fn built_only(args: &TestArgs, source: &Source) -> anyhow::Result<i32> {
    let Source::Whole(tests) = source else {
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
    Ok(0)
}
