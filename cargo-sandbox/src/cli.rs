//! Command-line types. Cargo runs us as `cargo-sandbox sandbox <ARGS>`; `main` drops the
//! `sandbox` word so `cargo-sandbox exec ...` works the same when run directly.

use clap::{Args, Parser, Subcommand};
use harness::units::{parse_bytes, parse_duration};
use harness::Limits;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "cargo sandbox",
    bin_name = "cargo sandbox",
    version,
    about = "Run commands and tests in fresh Linux sandboxes: their own PID, network, mount, UTS \
             and IPC namespaces, under cgroup caps, with leaks, OOMs, fork bombs and network \
             attempts reported."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one command in a sandbox and exit with its exit code.
    #[command(
        after_help = "Exit status: the command's own, 128+N when it was killed by signal N, \
                      124 when it timed out, 125 when cargo-sandbox itself failed (bad flags, \
                      no privileges, no cgroups), 126 when the command cannot be run, 127 when \
                      it was not found, 130 when interrupted."
    )]
    Exec(ExecArgs),

    /// Build the workspace's tests and run each test in its own sandbox.
    #[command(after_help = TEST_AFTER_HELP)]
    Test(Box<TestArgs>),

    /// Re-render a saved JSON report, or compare two.
    #[command(
        after_help = "Exit status: 0; with --fail-on-regression, 100 when the diff found a \
                            regression (a test that newly fails, or grew beyond the threshold); \
                            2 for bad flags or an unreadable report."
    )]
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report to show (from `--report-json`).
    #[arg(value_name = "REPORT", required_unless_present = "diff")]
    pub report: Option<PathBuf>,

    /// Compare two reports: outcome changes, and peak memory or CPU growth beyond --threshold.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with = "report")]
    pub diff: Option<Vec<PathBuf>>,

    /// Growth that counts as a regression (memory and CPU; growth under 1 MiB / 10 ms is noise).
    #[arg(long, default_value = "20%", value_parser = crate::report::diff::parse_threshold)]
    pub threshold: f64,

    /// Exit 100 when the diff finds a regression.
    #[arg(long, requires = "diff")]
    pub fail_on_regression: bool,

    /// Coloring: auto, always, never.
    #[arg(long, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
}

const TEST_AFTER_HELP: &str = "\
Tests are selected as `cargo test` selects them: FILTERs match test names by substring, and the \
libtest flags after `--` (--ignored, --include-ignored, --exact, --skip NAME) work as they do \
there. Doc tests are not run (they are compiled into rustdoc's own runner, not a test binary).

Cargo's own build profile is --cargo-profile (`--profile` is reserved for cargo-sandbox profiles).

Exit status: 0 all tests passed; 100 a test failed (or leaked / tried the network under a `fail` \
policy); 101 the build failed; 2 bad flags or configuration; 125 sandboxes are unavailable here \
(not root, no cgroups) or cargo-sandbox itself failed; 130 interrupted.";

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Print the result as JSON on stdout (the command's own output then goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Write the result as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json_file: Option<PathBuf>,

    /// Always print the resource summary (by default only when something notable happened).
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Never print the resource summary.
    #[arg(short, long)]
    pub quiet: bool,

    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub cargo: CargoArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Sandboxes to run at once [default: the number of CPUs].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,

    /// One sandbox per test, or one per test binary (faster; resources are then per binary).
    #[arg(long, value_enum, default_value_t = Isolation::Test)]
    pub isolation: Isolation,

    /// Whether a test that leaves processes behind fails.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = Policy::Pass)]
    pub leaks: Policy,

    /// Whether a test that tries to reach the network fails.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = Policy::Pass)]
    pub network_attempts: Policy,

    /// Write the run's report as JSON to this file (schema: report.schema.json).
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,

    /// Write JUnit XML to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,

    /// GitHub Actions annotations on stdout and a job summary in $GITHUB_STEP_SUMMARY
    /// [default: on when GITHUB_ACTIONS=true].
    #[arg(long)]
    pub github: bool,

    /// Run only tests whose name contains one of these.
    #[arg(value_name = "FILTER")]
    pub filters: Vec<String>,

    /// libtest flags: --ignored, --include-ignored, --exact, --skip NAME, and more filters.
    #[arg(last = true, value_name = "LIBTEST ARGS", allow_hyphen_values = true)]
    pub libtest: Vec<String>,
}

/// Cargo's selection and build flags, passed through to `cargo test --no-run`.
#[derive(Debug, Args, Clone, Default)]
pub struct CargoArgs {
    /// Package(s) to test.
    #[arg(
        short = 'p',
        long = "package",
        value_name = "SPEC",
        help_heading = "Cargo"
    )]
    pub packages: Vec<String>,
    /// Test all packages in the workspace.
    #[arg(long, help_heading = "Cargo")]
    pub workspace: bool,
    /// Exclude packages from the test.
    #[arg(long, value_name = "SPEC", help_heading = "Cargo")]
    pub exclude: Vec<String>,
    /// Test only this package's library.
    #[arg(long, help_heading = "Cargo")]
    pub lib: bool,
    /// Test all binaries.
    #[arg(long, help_heading = "Cargo")]
    pub bins: bool,
    /// Test only the specified binary.
    #[arg(long, value_name = "NAME", help_heading = "Cargo")]
    pub bin: Vec<String>,
    /// Test all integration tests.
    #[arg(long, help_heading = "Cargo")]
    pub tests: bool,
    /// Test only the specified integration test.
    #[arg(long, value_name = "NAME", help_heading = "Cargo")]
    pub test: Vec<String>,
    /// Test all examples.
    #[arg(long, help_heading = "Cargo")]
    pub examples: bool,
    /// Test only the specified example.
    #[arg(long, value_name = "NAME", help_heading = "Cargo")]
    pub example: Vec<String>,
    /// Test all targets (doc tests excepted).
    #[arg(long, help_heading = "Cargo")]
    pub all_targets: bool,
    /// Features to activate.
    #[arg(short = 'F', long, value_name = "FEATURES", help_heading = "Cargo")]
    pub features: Vec<String>,
    /// Activate all features.
    #[arg(long, help_heading = "Cargo")]
    pub all_features: bool,
    /// Do not activate the `default` feature.
    #[arg(long, help_heading = "Cargo")]
    pub no_default_features: bool,
    /// Build in release mode.
    #[arg(short = 'r', long, help_heading = "Cargo")]
    pub release: bool,
    /// Cargo's build profile (cargo's `--profile`).
    #[arg(long, value_name = "NAME", help_heading = "Cargo")]
    pub cargo_profile: Option<String>,
    /// Directory for all generated artifacts.
    #[arg(long, value_name = "DIR", help_heading = "Cargo")]
    pub target_dir: Option<PathBuf>,
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH", help_heading = "Cargo")]
    pub manifest_path: Option<PathBuf>,
    /// Require Cargo.lock to be up to date.
    #[arg(long, help_heading = "Cargo")]
    pub locked: bool,
    /// Run without accessing the network.
    #[arg(long, help_heading = "Cargo")]
    pub offline: bool,
    /// Both --locked and --offline.
    #[arg(long, help_heading = "Cargo")]
    pub frozen: bool,
    /// More output (also passed to cargo).
    #[arg(short = 'v', long, action = clap::ArgAction::Count, help_heading = "Cargo")]
    pub verbose: u8,
    /// Less output (also passed to cargo).
    #[arg(short = 'q', long, help_heading = "Cargo")]
    pub quiet: bool,
    /// Coloring: auto, always, never (also CARGO_TERM_COLOR; NO_COLOR turns it off).
    #[arg(long, value_name = "WHEN", help_heading = "Cargo")]
    pub color: Option<ColorChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    Test,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Caps and sandbox knobs shared by every subcommand that runs sandboxes.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Memory cap (e.g. 512M, 2G), swap included; `none` to lift it.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_cap_bytes)]
    pub memory: Cap<u64>,

    /// Cap on processes and threads; `none` to lift it.
    #[arg(long, value_name = "N", default_value = "1024", value_parser = parse_cap_count)]
    pub pids: Cap<u64>,

    /// CPU quota in CPUs (e.g. 1.5); unlimited by default.
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    pub cpus: Option<u32>,

    /// Kill the sandbox after this long (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Time between SIGTERM and SIGKILL at the timeout.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Create sandbox cgroups under this (empty, cgroup v2) cgroup instead of under the runner's
    /// own; for runners that share their cgroup with other processes.
    #[arg(long, value_name = "DIR", env = "CARGO_SANDBOX_CGROUP_PARENT")]
    pub cgroup_parent: Option<PathBuf>,

    /// Size of the private tmpfs on /tmp (and /dev/shm).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_bytes)]
    pub tmp_size: u64,
}

/// A cap that may be lifted with `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap<T> {
    Max(T),
    None,
}

impl<T: Copy> Cap<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Cap::Max(v) => Some(v),
            Cap::None => None,
        }
    }
}

fn parse_cap_bytes(text: &str) -> Result<Cap<u64>, String> {
    if text == "none" {
        return Ok(Cap::None);
    }
    let bytes = parse_bytes(text)?;
    if bytes < 4 << 20 {
        return Err(format!(
            "`{text}` is below the 4 MiB a sandbox needs to start"
        ));
    }
    Ok(Cap::Max(bytes))
}

fn parse_cap_count(text: &str) -> Result<Cap<u64>, String> {
    if text == "none" {
        return Ok(Cap::None);
    }
    match text.parse::<u64>() {
        Ok(n) if n >= 2 => Ok(Cap::Max(n)),
        _ => Err(format!(
            "`{text}` is not a process count of at least 2 (the init and the command)"
        )),
    }
}

fn parse_cpus(text: &str) -> Result<u32, String> {
    match text.parse::<f64>() {
        Ok(cpus) if (0.01..=4096.0).contains(&cpus) => Ok((cpus * 1000.0).round() as u32),
        _ => Err(format!("`{text}` is not a CPU count between 0.01 and 4096")),
    }
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory.value(),
            pids: self.pids.value(),
            cpu_millis: self.cpus,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn caps() {
        assert_eq!(parse_cap_bytes("64M"), Ok(Cap::Max(64 << 20)));
        assert_eq!(parse_cap_bytes("none"), Ok(Cap::None));
        assert!(parse_cap_bytes("1K").is_err());
        assert_eq!(parse_cap_count("32"), Ok(Cap::Max(32)));
        assert!(parse_cap_count("1").is_err());
        assert_eq!(parse_cpus("1.5"), Ok(1500));
        assert!(parse_cpus("0").is_err());
    }
}
