//! Where a run's tests come from: built now by cargo (whole, or binary by binary while the run
//! goes on, see `pipeline`) or unpacked from an archive; the engine starts meanwhile.

use crate::build;
use crate::cli::TestArgs;
use crate::config::{self, Config};
use crate::doctest;
use crate::env;
use crate::report::terminal;
use crate::run_dir::RunDir;
use crate::{archive, exit, pipeline};
use anyhow::Context;
use harness::Engine;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An engine as it started (or why it could not).
pub(super) type EngineStart = Result<Engine, harness::SandboxError>;

/// The tests and the engine, started; `Err` is the exit code, the message said.
pub(super) type Started = Result<(Source, Option<EngineStart>), i32>;

/// The run's tests, built now or unpacked from an archive, and the workspace's configuration.
pub(super) struct Tests {
    pub(super) built: build::Build,
    pub(super) config: Config,
    /// The doc tests an archive collected when it was made.
    pub(super) archived_doctests: Option<doctest::Collected>,
    /// An archive's unpacked files, kept for the run's length.
    pub(super) unpacked: Option<RunDir>,
}

/// Builds the tests (or unpacks the archive) while the engine starts; `Err` is the exit code,
/// the message said.
pub(super) fn prepare(
    args: &TestArgs,
    profile: &str,
    cancel: &harness::Cancel,
    start_engine: impl FnOnce() -> Option<EngineStart>,
) -> anyhow::Result<Started> {
    if let Some(path) = &args.archive_file {
        return from_archive(args, path, profile, cancel, start_engine);
    }
    env::prefetch_sysroot();
    // While cargo builds: the engine starts (its zygote, its network namespaces), and the
    // configuration is read once the workspace's root is known (a bad one is reported once the
    // build ends). Sandboxes themselves wait for the build's end: one made now would show the
    // workspace through an overlay made before its binaries existed.
    let (building, engine) = cargo_first(
        || build::start(&args.cargo, None, cancel, Box::new(|| {})),
        start_engine,
    );
    let building = building.context("building the tests")?;
    let mut config = None;
    let built = building.finish(|root| {
        config = Some(config::read_checked(root, profile));
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
        Err(e) => return build::failure_code(e, "building the tests").map(Err),
    };
    let config = config.context("the workspace's root was never known")?;
    let tests = Tests {
        built,
        config,
        archived_doctests: None,
        unpacked: None,
    };
    Ok(Ok((Source::Whole(tests), engine)))
}

/// Starts cargo, then the engine (on this thread, which outlives its sandboxes). Cargo's
/// build check is what the first test waits for, and the engine is ready long before it ends;
/// both starts fork this process, and started from two threads at once they slowed each
/// other: cargo's exec came a median 2.9 ms after `main`, 1.2–9 ms (six runs), against 1.8
/// ms, 1.2–3.8, one after the other.
fn cargo_first(
    start_cargo: impl FnOnce() -> anyhow::Result<build::Building>,
    start_engine: impl FnOnce() -> Option<EngineStart>,
) -> (anyhow::Result<build::Building>, Option<EngineStart>) {
    let building = start_cargo();
    let engine = start_engine();
    (building, engine)
}

/// [`prepare`] for `--archive-file`: nothing is built, cargo is not run.
fn from_archive(
    args: &TestArgs,
    path: &Path,
    profile: &str,
    cancel: &harness::Cancel,
    start_engine: impl FnOnce() -> Option<EngineStart>,
) -> anyhow::Result<Started> {
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
    let config = match config::read_checked(&unpacked.build.workspace_root, profile) {
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
    Ok(Ok((Source::Whole(tests), engine)))
}

/// Where the run's tests come from.
pub(super) enum Source {
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

/// Starts cargo (sharing the CPUs through `Slots`) and the engine, and reads the workspace's
/// configuration as soon as `cargo metadata` gives its root; `Err` is the exit code, said.
pub(super) fn start_building(
    args: &TestArgs,
    profile: &str,
    cancel: &harness::Cancel,
    cpus: usize,
    workers: usize,
    start_engine: impl FnOnce() -> Option<EngineStart>,
) -> anyhow::Result<Started> {
    env::prefetch_sysroot();
    // The user's own `--jobs` for cargo keeps cargo's own jobserver (cargo would warn that
    // it ignores one of the two).
    let slots = Arc::new(pipeline::Slots::new(cpus, 2 * workers)?);
    let shared = args.cargo.build_jobs.is_none().then(|| slots.client());
    let ended = slots.clone();
    let exited = Box::new(move || ended.build_ended());
    let (building, engine) = cargo_first(
        || build::start(&args.cargo, shared, cancel, exited),
        start_engine,
    );
    let mut building = building.context("building the tests")?;
    let packages = match building.packages() {
        Ok(packages) => packages,
        Err(e) => return build::failure_code(e, "building the tests").map(Err),
    };
    let config = match config::read_checked(&packages.workspace_root, profile) {
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
