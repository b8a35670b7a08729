//! Cargo's own flags, as `cargo sandbox test` and `archive` take them (each command's clap
//! arguments flatten them), as the build passes them on to cargo, and the doc tests they ask
//! for.

use super::Build;
use crate::doctest;
use crate::filter::TestFilter;
use clap::Args;
use std::path::PathBuf;

/// Cargo's selection and build flags, passed through to `cargo test --no-run`.
#[derive(Debug, Args, Clone, Default, PartialEq)]
pub struct CargoArgs {
    /// Package(s) to test.
    #[arg(
        short = 'p',
        long = "package",
        value_name = "SPEC",
        help_heading = "Package selection"
    )]
    pub packages: Vec<String>,
    /// Test all packages in the workspace.
    #[arg(long, alias = "all", help_heading = "Package selection")]
    pub workspace: bool,
    /// Exclude packages from the test.
    #[arg(long, value_name = "SPEC", help_heading = "Package selection")]
    pub exclude: Vec<String>,
    /// Test only this package's library.
    #[arg(long, help_heading = "Target selection")]
    pub lib: bool,
    /// Test all binaries.
    #[arg(long, help_heading = "Target selection")]
    pub bins: bool,
    /// Test only the specified binary.
    #[arg(long, value_name = "NAME", help_heading = "Target selection")]
    pub bin: Vec<String>,
    /// Test all integration tests.
    #[arg(long, help_heading = "Target selection")]
    pub tests: bool,
    /// Test only the specified integration test.
    #[arg(long, value_name = "NAME", help_heading = "Target selection")]
    pub test: Vec<String>,
    /// Test all examples.
    #[arg(long, help_heading = "Target selection")]
    pub examples: bool,
    /// Test only the specified example.
    #[arg(long, value_name = "NAME", help_heading = "Target selection")]
    pub example: Vec<String>,
    /// Test all benches.
    #[arg(long, help_heading = "Target selection")]
    pub benches: bool,
    /// Test only the specified bench target.
    #[arg(long, value_name = "NAME", help_heading = "Target selection")]
    pub bench: Vec<String>,
    /// Test all targets (doc tests excepted, as in cargo).
    #[arg(long, help_heading = "Target selection")]
    pub all_targets: bool,
    /// Run only the libraries' doc tests (each in its own sandbox).
    #[arg(long, help_heading = "Target selection")]
    pub doc: bool,
    /// Features to activate.
    #[arg(
        short = 'F',
        long,
        value_name = "FEATURES",
        help_heading = "Feature selection"
    )]
    pub features: Vec<String>,
    /// Activate all features.
    #[arg(long, help_heading = "Feature selection")]
    pub all_features: bool,
    /// Do not activate the `default` feature.
    #[arg(long, help_heading = "Feature selection")]
    pub no_default_features: bool,
    /// Build in release mode.
    #[arg(short = 'r', long, help_heading = "Build")]
    pub release: bool,
    /// Cargo's build profile (cargo's `--profile`; `-P/--profile` is cargo-sandbox's).
    #[arg(long, value_name = "NAME", help_heading = "Build")]
    pub cargo_profile: Option<String>,
    /// Build for the target triple.
    #[arg(long, value_name = "TRIPLE", help_heading = "Build")]
    pub target: Vec<String>,
    /// Directory for all generated artifacts.
    #[arg(long, value_name = "DIR", help_heading = "Build")]
    pub target_dir: Option<PathBuf>,
    /// Parallel build jobs (cargo's `-j`; `-j` here is sandboxes at once, as in nextest).
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Build"
    )]
    pub build_jobs: Option<String>,
    /// Cargo's build timings report (html, json).
    #[arg(
        long,
        value_name = "FMTS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        help_heading = "Build"
    )]
    pub timings: Option<String>,
    /// Cargo's build message format: human, short, json, json-diagnostic-short,
    /// json-diagnostic-rendered-ansi, json-render-diagnostics (JSON messages go to stdout).
    #[arg(
        long,
        alias = "cargo-message-format",
        value_name = "FMT",
        value_parser = parse_message_format,
        help_heading = "Build"
    )]
    pub message_format: Vec<String>,
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH", help_heading = "Build")]
    pub manifest_path: Option<PathBuf>,
    /// Require Cargo.lock to be up to date.
    #[arg(long, help_heading = "Build")]
    pub locked: bool,
    /// Run without accessing the network.
    #[arg(long, help_heading = "Build")]
    pub offline: bool,
    /// Both --locked and --offline.
    #[arg(long, help_heading = "Build")]
    pub frozen: bool,
    /// Ignore `rust-version` in the packages.
    #[arg(long, help_heading = "Build")]
    pub ignore_rust_version: bool,
    /// Report future-incompatibility warnings of the dependencies.
    #[arg(long, help_heading = "Build")]
    pub future_incompat_report: bool,
    /// Override a cargo configuration value (passed to cargo).
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Build")]
    pub config: Vec<String>,
    /// Unstable (nightly-only) cargo flags (passed to cargo).
    #[arg(short = 'Z', value_name = "FLAG", help_heading = "Build")]
    pub unstable: Vec<String>,
    /// Quiet cargo only (nextest's spelling).
    #[arg(long, help_heading = "Build")]
    pub cargo_quiet: bool,
    /// Verbose cargo only (nextest's spelling).
    #[arg(long, action = clap::ArgAction::Count, help_heading = "Build")]
    pub cargo_verbose: u8,
    /// More output (also passed to cargo).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output: failing tests only (also passed to cargo).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Coloring: auto, always, never (also CARGO_TERM_COLOR; NO_COLOR turns it off).
    #[arg(long, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
}

impl CargoArgs {
    /// Whether a flag shapes what is built or selected (not only how cargo talks): a run from
    /// an archive takes none, its build was made with them.
    pub fn shapes_the_build(&self) -> bool {
        let talk_only = CargoArgs {
            color: self.color,
            quiet: self.quiet,
            cargo_quiet: self.cargo_quiet,
            verbose: self.verbose,
            cargo_verbose: self.cargo_verbose,
            ..CargoArgs::default()
        };
        *self != talk_only
    }

    /// Whether a target selection flag was given (which leaves doc tests out, as in cargo).
    pub fn selects_targets(&self) -> bool {
        self.lib
            || self.bins
            || !self.bin.is_empty()
            || self.tests
            || !self.test.is_empty()
            || self.examples
            || !self.example.is_empty()
            || self.benches
            || !self.bench.is_empty()
            || self.all_targets
    }

    /// Whether and how doc tests are collected: as `cargo test` runs them, with `--doc` or
    /// without any target selected; those of the libraries whose other tests were built.
    pub fn doctest_request<'a>(
        &'a self,
        built: &'a Build,
        filter: &'a TestFilter,
    ) -> Option<doctest::Request<'a>> {
        if !self.doc && self.selects_targets() {
            return None;
        }
        let selected = (!self.doc).then(|| {
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
            cargo: self,
            packages: &built.packages,
            selected,
            filter,
            target_dir: &built.target_dir,
            show_build: self.doc,
        })
    }
}

/// cargo's `--message-format` values (comma-separated, as cargo takes them); nextest's test
/// output formats are not build formats, and have their own flag here.
fn parse_message_format(text: &str) -> Result<String, String> {
    for word in text.split(',') {
        match word {
            "human"
            | "short"
            | "json"
            | "json-diagnostic-short"
            | "json-diagnostic-rendered-ansi"
            | "json-render-diagnostics" => {}
            "libtest-json" | "libtest-json-plus" => {
                return Err(format!(
                    "`{word}` is a format of test results, not of the build: use \
                     --report-json PATH for machine-readable results"
                ))
            }
            other => return Err(format!("`{other}` is not one of cargo's message formats")),
        }
    }
    Ok(text.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}
