//! The one place every sandbox spec of a run is built: what all its sandboxes share (the base,
//! which the engine makes ahead), a test's, a listing's, with the settings' caps, network
//! mode, filesystem and I/O, and where `--keep-writes` keeps each sandbox's writes.

use crate::config::{FsMode, Isolation, Resolved};
use crate::env;
use crate::filter::TestFilter;
use crate::job::{libtest_args, BinaryContext, Job, RunsAs, Selection};
use harness::{Filesystem, Output, SandboxSpec, Stdin};
use std::path::{Path, PathBuf};

/// Per-test output kept (head and tail) beyond which the middle is dropped.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// The sandbox for a command under resolved settings: stdin `/dev/null`, output captured
/// (bounded), the test environment with its seed, and the network mode.
pub fn spec(
    settings: &Resolved,
    argv: Vec<String>,
    binary: &BinaryContext,
    host_env: &[(String, String)],
    seed: u64,
) -> SandboxSpec {
    let env = env::for_test(&binary.env, host_env, &settings.env, seed);
    let mut spec = SandboxSpec::new(argv, binary.env.cwd.clone(), env);
    apply(settings, &mut spec);
    workspace_filesystem(
        settings,
        &binary.env.workspace_root,
        &binary.env.target_dir,
        &binary.env.shown_at,
        &mut spec,
    );
    spec
}

/// The workspace stays reachable; under `fs = isolated` it is copy-on-write and the target's
/// `tmp` (CARGO_TARGET_TMPDIR) is each test's own scratch directory, and a run from an archive
/// shows its files at the paths they were built at too (`shown_at`).
pub fn workspace_filesystem(
    settings: &Resolved,
    root: &Path,
    target: &Path,
    shown_at: &[harness::ShownAt],
    spec: &mut SandboxSpec,
) {
    spec.reachable = vec![root.to_owned(), target.to_owned()];
    if settings.fs == FsMode::Isolated {
        spec.filesystem = Filesystem::Isolated {
            copy_on_write: vec![root.to_owned()],
            scratch: vec![target.join("tmp")],
            writable: settings.writable.clone(),
            keep_writes: None,
            shown_at: shown_at.to_vec(),
        };
    }
}

/// Puts the settings' caps, network mode and I/O choices on a spec.
pub fn apply(settings: &Resolved, spec: &mut SandboxSpec) {
    settings.apply_caps(spec);
    if !settings.env.inherit {
        spec.make_dirs.push(env::SANDBOX_HOME.into());
    }
    spec.stdin = Stdin::Null;
    spec.output = Output::Capture {
        limit_bytes: OUTPUT_LIMIT,
    };
}

/// What every sandbox of the run has in common with the workspace-wide settings (its command
/// aside): what the reports state as in force, and what the engine prepares ahead.
pub fn base(
    settings: &Resolved,
    root: &Path,
    target: &Path,
    shown_at: &[harness::ShownAt],
) -> SandboxSpec {
    // The working directory is part of a sandbox's shape only when it lies outside the paths
    // kept reachable; every test's lies in the workspace, and so does this one.
    let mut spec = SandboxSpec::new(Vec::new(), root.to_owned(), Vec::new());
    apply(settings, &mut spec);
    workspace_filesystem(settings, root, target, shown_at, &mut spec);
    spec
}

/// A job's sandbox: its binary told which tests to run (a doc test: nothing), output passed
/// through when asked for a test sandboxed alone (`pass_through`), writes kept under
/// `keep_writes` when asked.
pub fn for_job(
    job: &Job,
    filter: &TestFilter,
    host_env: &[(String, String)],
    seed: u64,
    pass_through: bool,
    keep_writes: Option<&Path>,
) -> SandboxSpec {
    let program = job.binary.binary.path.display().to_string();
    let argv = match job.binary.runs_as {
        RunsAs::Libtest => std::iter::once(program)
            .chain(libtest_args(job, filter))
            .collect(),
        RunsAs::DocTest { .. } => vec![program],
    };
    let mut spec = spec(&job.settings, argv, &job.binary, host_env, seed);
    if pass_through {
        spec.output = Output::Inherit;
    }
    if let (Some(base), Filesystem::Isolated { keep_writes, .. }) =
        (keep_writes, &mut spec.filesystem)
    {
        *keep_writes = Some(kept_writes_dir(base, job));
    }
    spec
}

/// A directory per sandbox under `--keep-writes DIR`: each test's own, a retry's of one test of
/// an unlisted binary, a group of tests after its first one; then the attempt.
fn kept_writes_dir(base: &Path, job: &Job) -> PathBuf {
    let safe = |s: &str| {
        s.replace(
            |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'),
            "_",
        )
    };
    let test = match (job.selection.listed(), &job.selection) {
        ([one], _) => safe(&one.name),
        (_, Selection::Unlisted { only: Some(name) }) => safe(name),
        ([first, ..], Selection::Listed { whole_binary, .. }) if !whole_binary => {
            format!("binary-{}", safe(&first.name))
        }
        _ => "binary".to_owned(),
    };
    base.join(safe(&job.binary.binary.id))
        .join(test)
        .join(job.attempt.to_string())
}

/// Whether a job's test writes straight to the runner's stdout and stderr (`--no-capture`,
/// a test sandboxed alone).
pub fn passes_through(job: &Job, no_capture: bool) -> bool {
    no_capture && job.settings.isolation == Isolation::Test
}
