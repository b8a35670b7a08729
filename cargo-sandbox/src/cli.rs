//! Command-line types. Cargo runs us as `cargo-sandbox sandbox <ARGS>`; `main` drops the
//! `sandbox` word so `cargo-sandbox exec ...` works the same when run directly.

use crate::config::{
    Bandwidth, CpuList, Cpus, FileLeakPolicy, FsLayer, FsMode, FsTable, Grace, Isolation, Layer,
    Memory, NetworkMode, Pids, Policy, Size, Timeout,
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    /// Print the effective settings for a test (configuration, profile and flags resolved).
    Config(ConfigArgs),

    /// Show what this machine allows (root, user namespaces, cgroups, kernel features) and the
    /// commands that enable what is missing.
    Doctor(EngineArgs),

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

    /// Rerun one recorded test with exactly its recorded sandbox spec and say whether the
    /// outcome matched.
    #[command(
        after_help = "Exit status: 0 the outcome was reproduced; 100 it differed; 2 bad \
                            flags, unreadable report or unknown test; 125 sandboxes unavailable."
    )]
    Replay(ReplayArgs),

    /// Re-render a saved JSON report, or compare two.
    #[command(
        after_help = "Exit status: 0; with --fail-on-regression, 100 when the diff found a \
                            regression (a test that newly fails, or grew beyond the threshold); \
                            2 for bad flags or an unreadable report."
    )]
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The report (from `--report-json`).
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,

    /// The test: its name, or `BINARY_ID NAME` as the terminal shows it.
    #[arg(value_name = "TEST")]
    pub test: String,

    /// The test's binary id, when the name alone is ambiguous.
    #[arg(long, value_name = "ID")]
    pub binary: Option<String>,

    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Path to the workspace's Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// Configuration profile [default: default].
    #[arg(short = 'P', long, value_name = "NAME", env = "CARGO_SANDBOX_PROFILE")]
    pub profile: Option<String>,

    /// The test's package.
    #[arg(short = 'p', long, value_name = "NAME", default_value = "")]
    pub package: String,

    /// The test's binary id (e.g. `mycrate`, `mycrate::integration`).
    #[arg(long, value_name = "ID", default_value = "")]
    pub binary: String,

    /// The test's name.
    #[arg(value_name = "TEST", default_value = "")]
    pub test: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report to show (from `--report-json`).
    #[arg(value_name = "REPORT", required_unless_present_any = ["diff", "merge"])]
    pub report: Option<PathBuf>,

    /// Merge the reports of `--partition` shards into one (same schema; the same outcome digest
    /// as an unsharded run of the same tests). Needs -o.
    #[arg(long, num_args = 1.., value_name = "REPORT", conflicts_with_all = ["report", "diff"], requires = "output")]
    pub merge: Option<Vec<PathBuf>>,

    /// Where --merge writes the merged report.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,

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

    /// Configuration profile from .config/sandbox.toml [default: default].
    #[arg(short = 'P', long, value_name = "NAME", env = "CARGO_SANDBOX_PROFILE")]
    pub profile: Option<String>,

    /// One sandbox per test, or one per test binary (faster; resources are then per binary)
    /// [default: test].
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,

    /// Network inside the sandbox: none (no interface up), loopback (lo only), host (no network
    /// namespace) [default: loopback].
    #[arg(long, value_enum)]
    pub network: Option<NetworkMode>,

    /// Whether a test that leaves processes behind fails [default: pass].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub leaks: Option<Policy>,

    /// Whether a test that tries to reach the network fails [default: pass].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub network_attempts: Option<Policy>,

    /// What a test that changed files in the workspace gets: warn (its own outcome word, still
    /// passing), fail, or allow (listed in the report only) [default: warn].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub file_leaks: Option<FileLeakPolicy>,

    /// Whether a flaky test (mixed outcomes over repeats or retries) fails [default: pass].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub flaky: Option<Policy>,

    /// Rerun a failing test up to N times; a later pass makes it flaky [default: 0].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,

    /// Run every test N times, each in a fresh sandbox; mixed outcomes make it flaky [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,

    /// Pass a host variable to tests (NAME, `*` globs allowed), or set one (NAME=VALUE).
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Give tests the runner's whole environment instead of the hermetic one.
    #[arg(long)]
    pub inherit_env: bool,

    /// Seed for each test's SANDBOX_SEED and for --shuffle [default: random, printed].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Run tests in an order shuffled from the seed.
    #[arg(long)]
    pub shuffle: bool,

    /// Run one shard of the selected tests: `hash:K/N` (stable per test) or `slice:K/N`; the
    /// others are reported as skipped-by-partition. Merge shard reports with `report --merge`.
    #[arg(long, value_name = "KIND:K/N")]
    pub partition: Option<crate::list::Partition>,

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Where sandboxes get their cgroups, for every subcommand that runs sandboxes.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Create sandbox cgroups under this cgroup instead of the runner's own: one directory on
    /// cgroup v2 (for runners that share their cgroup, or run without root), one per controller
    /// on v1 (repeat the flag; `:`-separated in the variable).
    #[arg(
        long,
        value_name = "DIR",
        env = "CARGO_SANDBOX_CGROUP_PARENT",
        value_delimiter = ':'
    )]
    pub cgroup_parent: Vec<PathBuf>,

    /// When no cgroup can be used (e.g. without root and without delegation), run without caps
    /// instead of failing; every report then says which protections were not in force.
    #[arg(long)]
    pub allow_degraded: bool,

    /// Run as root on the host, yet give each sandbox a user namespace whose root is host user
    /// UID (and group GID): a file a test creates in a writable directory is owned by that user
    /// [default when given without a value: 65534:65534, nobody]. Without root this is always
    /// in force, as the runner's own user.
    #[arg(
        long,
        value_name = "UID[:GID]",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "65534:65534",
        env = "CARGO_SANDBOX_USERNS"
    )]
    pub userns: Option<harness::RootMapping>,
}

impl EngineArgs {
    pub fn options(&self) -> harness::EngineOptions {
        harness::EngineOptions {
            init_exe: sibling_init(),
            cgroup_parents: self.cgroup_parent.clone(),
            allow_degraded: self.allow_degraded,
            user_namespace: self.userns,
            prepare_ahead: false,
        }
    }
}

/// `cargo-sandbox-init` next to this binary, when it speaks this runner's protocol: a small
/// program starts faster than this one, and a sandbox's init starts once per test. Without it
/// this binary is its own init.
fn sibling_init() -> Option<PathBuf> {
    let path = std::env::current_exe()
        .ok()?
        .parent()?
        .join("cargo-sandbox-init");
    harness::init::speaks_our_protocol(&path).then_some(path)
}

/// Caps and sandbox knobs shared by every subcommand that runs sandboxes. Unset flags leave the
/// value to the configuration (for `test`) or the built-in default.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Memory cap (e.g. 512M, 2G), swap included; `none` lifts it [default: 4G].
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<Memory>,

    /// Cap on processes and threads; `none` lifts it [default: 1024].
    #[arg(long, value_name = "N")]
    pub pids: Option<Pids>,

    /// CPU quota in CPUs (e.g. 1.5) [default: none].
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<Cpus>,

    /// Pin the sandbox to these CPUs (e.g. 0, 0-1, 0,2), for reproducible timing.
    #[arg(long, value_name = "CPUS")]
    pub cpuset: Option<CpuList>,

    /// Cap on the bytes per second written to each block device (e.g. 10M); `none` lifts it
    /// [default: none].
    #[arg(long, value_name = "BYTES")]
    pub io_write_bps: Option<Bandwidth>,

    /// Kill the sandbox after this long (e.g. 30s, 2m); `none` for no limit [default: none].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Timeout>,

    /// Time between SIGTERM and SIGKILL at the timeout [default: 1s].
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<Grace>,

    /// Size of the private tmpfs on /tmp (and /dev/shm) [default: 256M].
    #[arg(long, value_name = "SIZE")]
    pub tmp_size: Option<Size>,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// isolated: the host read-only, the workspace (for `exec`, the current directory)
    /// copy-on-write with every change reported; host: no file isolation [default: isolated for
    /// `test`, host for `exec`].
    #[arg(long, value_enum, value_name = "MODE")]
    pub fs: Option<FsMode>,

    /// A host path that stays writable under `--fs isolated` (repeatable).
    #[arg(long, value_name = "PATH")]
    pub writable: Vec<PathBuf>,

    /// Keep each sandbox's copy-on-write changes under this directory for inspection (for
    /// `test`: DIR/<binary>/<test>/<attempt>/0/upper; a whole binary's sandbox is `binary`, a
    /// group of its tests `binary-<first test>`), instead of discarding them.
    #[arg(long, value_name = "DIR")]
    pub keep_writes: Option<PathBuf>,

    /// Give the command its full capabilities back (no reduced capability set, no
    /// no_new_privs, no seccomp deny-list); reports mark it.
    #[arg(long)]
    pub privileged: bool,
}

impl LimitArgs {
    /// These flags as a configuration layer.
    pub fn layer(&self) -> Layer {
        Layer {
            memory: self.memory,
            pids: self.pids,
            cpus: self.cpus,
            cpuset: self.cpuset.clone(),
            io_write_bps: self.io_write_bps,
            timeout: self.timeout,
            grace: self.grace,
            tmp_size: self.tmp_size,
            fs: (self.fs.is_some() || !self.writable.is_empty()).then(|| {
                FsLayer::Table(FsTable {
                    mode: self.fs,
                    writable: self.writable.clone(),
                })
            }),
            privileged: self.privileged.then_some(true),
            ..Layer::default()
        }
    }
}

impl TestArgs {
    /// The command-line flags as the top configuration layer.
    pub fn layer(&self) -> Layer {
        let mut env = crate::config::EnvLayer::default();
        for item in &self.env {
            match item.split_once('=') {
                Some((name, value)) => {
                    env.set.insert(name.to_owned(), value.to_owned());
                }
                None => env.pass.push(item.clone()),
            }
        }
        if self.inherit_env {
            env.inherit = Some(true);
        }
        let has_env = !env.pass.is_empty() || !env.set.is_empty() || env.inherit.is_some();
        Layer {
            network: self.network,
            leaks: self.leaks,
            network_attempts: self.network_attempts,
            flaky: self.flaky,
            file_leaks: self.file_leaks,
            isolation: self.isolation,
            retries: self.retries,
            repeat: self.repeat,
            env: has_env.then_some(env),
            ..self.limits.layer()
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
}
