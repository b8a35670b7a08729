//! What the workspace's configuration and the command line settle once, before any binary is
//! planned: filtersets, the spec every sandbox shares, the seed, the history.

use super::runner::Runner;
use crate::build;
use crate::config::{Config, Isolation, Layer};
use crate::exit;
use crate::filterset::{Filtersets, PackageGraph};
use crate::history::History;
use crate::plan;
use crate::sandbox_spec;
use crate::schedule;
use std::path::{Path, PathBuf};

/// What the workspace's configuration and the command line settle before any binary is
/// planned.
pub(super) struct Settled {
    pub(super) config: Config,
    pub(super) filtersets: Filtersets,
    pub(super) cli: Layer,
    pub(super) base_spec: harness::SandboxSpec,
    pub(super) host_env: Vec<(String, String)>,
    pub(super) run_seed: u64,
    /// Orders the run (none with `--shuffle`).
    pub(super) history: Option<History>,
    pub(super) target_dir: PathBuf,
}

impl Runner<'_> {
    /// Filtersets and the configuration's filters resolved against the workspace's packages,
    /// the spec every sandbox shares, the seed and the history; `Err` is the exit code, said.
    pub(super) fn settle(&self, mut config: Config, built: &build::Build) -> Result<Settled, i32> {
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
            filtersets,
            cli: self.args.layer(),
            base_spec: harness::SandboxSpec::new(Vec::new(), PathBuf::new(), Vec::new()),
            host_env: crate::env::host_env(),
            run_seed: self.args.seed.unwrap_or_else(random_seed),
            history,
            target_dir: built.target_dir.clone(),
        };
        let base_settings = self.layers(&settled).resolve("", "", "", None, None);
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

    /// Where each test's settings come from, the run's profile chosen.
    pub(super) fn layers<'p>(&'p self, settled: &'p Settled) -> plan::Layers<'p> {
        plan::Layers {
            config: &settled.config,
            profile: self.profile,
            cli: &settled.cli,
        }
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
    use crate::config::Resolved;
    use crate::env::BinaryEnv;
    use crate::job::{BinaryContext, RunsAs};

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
