//! Command-line types. Cargo runs us as `cargo-sandbox sandbox <ARGS>`; `main` drops the
//! `sandbox` word so `cargo-sandbox exec ...` works the same when run directly.

pub use crate::build::{CargoArgs, ColorChoice};
use crate::config::{
    Bandwidth, CpuList, Cpus, FileLeakPolicy, FsLayer, FsMode, FsTable, Grace, Isolation, Layer,
    Memory, NetworkMode, Pids, Policy, Size, Timeout,
};
pub use crate::filter::RunIgnored;
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

    /// Build the tests and write them, with what they need at run time, into one archive that
    /// `test --archive-file` runs on other machines without cargo (sharded CI: one build, N
    /// shards).
    #[command(
        after_help = "Exit status: 0 written; cargo's own when the build failed; 2 for bad \
                      flags; 125 when the archive could not be written; 130 when interrupted \
                      (no partial archive is left)."
    )]
    Archive(ArchiveArgs),

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
pub struct ArchiveArgs {
    #[command(flatten)]
    pub cargo: CargoArgs,

    /// Where to write the archive (`.tar.zst`).
    #[arg(long, value_name = "PATH")]
    pub archive_file: PathBuf,

    /// zstd compression level, 1 (fast) to 19 (small).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,
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
there; nextest's -E filtersets narrow them further. Doc tests run as in `cargo test` (unless a \
target flag is given; only them with --doc), each in its own sandbox. Failures do not stop the \
run unless --fail-fast or --max-fail says so. docs/compat.md lists every flag of `cargo test` and \
`cargo nextest run` and what it does here.

Cargo's own build profile is --cargo-profile and its build jobs --build-jobs (`-P/--profile` and \
`-j` are cargo-sandbox's, as in nextest).

Exit status: 0 all tests passed; 100 a test failed (or leaked / tried the network under a `fail` \
policy); 101 the build failed; 2 bad flags or configuration; 4 no tests to run under \
--no-tests fail; 125 sandboxes are unavailable here (not root, no cgroups) or cargo-sandbox \
itself failed; 130 interrupted.";

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

    /// Run only tests whose name contains one of these.
    #[arg(value_name = "FILTER")]
    pub filters: Vec<String>,

    /// A nextest filterset (e.g. `test(parse) & package(core)`); several are or-ed, and a test
    /// must match them and the FILTERs.
    #[arg(
        short = 'E',
        long = "filterset",
        alias = "filter-expr",
        value_name = "EXPR",
        help_heading = "Test selection"
    )]
    pub filtersets: Vec<String>,

    /// Which tests to run by their `#[ignore]`: default (the others), only, all.
    #[arg(
        long,
        value_enum,
        value_name = "WHICH",
        help_heading = "Test selection"
    )]
    pub run_ignored: Option<RunIgnored>,

    /// Run one shard of the selected tests: `hash:K/N` (stable per test) or `slice:K/N`; the
    /// others are reported as skipped-by-partition. Merge shard reports with `report --merge`.
    #[arg(long, value_name = "KIND:K/N", help_heading = "Test selection")]
    pub partition: Option<crate::filter::Partition>,

    /// Build the tests, run none.
    #[arg(long, help_heading = "Running")]
    pub no_run: bool,

    /// List the tests the run would run (each binary listed in a sandbox), run none; also
    /// from an archive. libtest's `-- --list` does the same.
    #[arg(long, conflicts_with = "no_run", help_heading = "Running")]
    pub list: bool,

    /// Run the tests of an archive made by `cargo sandbox archive` instead of building them
    /// (cargo need not be installed).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "no_run",
        help_heading = "Archive"
    )]
    pub archive_file: Option<PathBuf>,

    /// The checkout the archive's tests run in: its sources and data files, and every path a
    /// test sees (CARGO_MANIFEST_DIR, cwd) [default: the current directory].
    #[arg(
        long,
        value_name = "DIR",
        requires = "archive_file",
        help_heading = "Archive"
    )]
    pub workspace_remap: Option<PathBuf>,

    /// Sandboxes to run at once: N, `num-cpus`, or -N for that many fewer than the CPUs
    /// [default: the number of CPUs; 1 with --no-capture].
    #[arg(
        short = 'j',
        long = "jobs",
        alias = "test-threads",
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Running"
    )]
    pub jobs: Option<TestThreads>,

    /// Never run more than -j sandboxes at once. Without it, a test whose last run mostly
    /// waited (sleeping, on I/O: under a tenth of its wall time on the CPU, at least 50 ms)
    /// runs beside the -j, on a worker of its own, and takes no CPU slot from cargo.
    #[arg(long, help_heading = "Running")]
    pub strict_jobs: bool,

    /// Stop starting tests after the first failure (running ones finish; the rest are
    /// reported as not run).
    #[arg(long, overrides_with = "no_fail_fast", help_heading = "Running")]
    pub fail_fast: bool,

    /// Run every test whatever fails (the default).
    #[arg(long, overrides_with = "fail_fast", help_heading = "Running")]
    pub no_fail_fast: bool,

    /// Stop starting tests after N failures: N, `N:wait`, or `all` (no limit).
    #[arg(
        long,
        value_name = "N",
        conflicts_with_all = ["fail_fast", "no_fail_fast"],
        help_heading = "Running"
    )]
    pub max_fail: Option<MaxFail>,

    /// Show each test's output as it runs (stdout and stderr pass through; with --isolation
    /// binary each binary's output is shown when it ends), one test at a time unless -j says.
    #[arg(long, alias = "nocapture", help_heading = "Running")]
    pub no_capture: bool,

    /// Configuration profile from .config/sandbox.toml [default: default].
    #[arg(
        short = 'P',
        long,
        value_name = "NAME",
        env = "CARGO_SANDBOX_PROFILE",
        help_heading = "Running"
    )]
    pub profile: Option<String>,

    /// Rerun a failing test up to N times; a later pass makes it flaky [default: 0].
    #[arg(long, value_name = "N", help_heading = "Running")]
    pub retries: Option<u32>,

    /// Run every test N times, each in a fresh sandbox; mixed outcomes make it flaky [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Running")]
    pub repeat: Option<u32>,

    /// Whether a flaky test (mixed outcomes over repeats or retries) fails [default: pass].
    #[arg(
        long,
        alias = "flaky-result",
        value_enum,
        value_name = "POLICY",
        help_heading = "Running"
    )]
    pub flaky: Option<Policy>,

    /// Seed for each test's SANDBOX_SEED and for --shuffle [default: random, printed].
    #[arg(long, value_name = "N", help_heading = "Running")]
    pub seed: Option<u64>,

    /// Run tests in an order shuffled from the seed (the whole order is fixed once every
    /// binary is built: the build and the run are not pipelined then).
    #[arg(long, help_heading = "Running")]
    pub shuffle: bool,

    /// Wait for the whole build before the first test runs. By default a binary's tests start
    /// as soon as cargo built it, sharing the CPUs with the rest of the build.
    #[arg(long, help_heading = "Running")]
    pub no_pipeline: bool,

    /// Seed the run's order from a JSON report of an earlier run (`--report-json`), e.g. the
    /// last CI run's artifact: its durations go over those kept under the target directory.
    /// Tests start longest first, those never seen first of all; --shuffle ignores both.
    #[arg(long, value_name = "REPORT", help_heading = "Running")]
    pub history_from: Vec<PathBuf>,

    /// Which tests get a line as they finish: none, fail, retry, slow, leak, pass, skip, all
    /// [default: skip; fail with -q].
    #[arg(long, value_enum, value_name = "LEVEL", help_heading = "Reporting")]
    pub status_level: Option<StatusLevel>,

    /// Which tests are listed again after the run, above the failures' output: none, fail,
    /// flaky, slow, leak, pass, skip, all [default: none].
    #[arg(long, value_enum, value_name = "LEVEL", help_heading = "Reporting")]
    pub final_status_level: Option<StatusLevel>,

    /// Write the run's report as JSON to this file (schema: report.schema.json).
    #[arg(long, value_name = "PATH", help_heading = "Reporting")]
    pub report_json: Option<PathBuf>,

    /// Write JUnit XML to this file.
    #[arg(long, value_name = "PATH", help_heading = "Reporting")]
    pub junit: Option<PathBuf>,

    /// GitHub Actions annotations on stdout and a job summary in $GITHUB_STEP_SUMMARY
    /// [default: on when GITHUB_ACTIONS=true].
    #[arg(long, help_heading = "Reporting")]
    pub github: bool,

    /// When a failing test's output is shown: never, immediate, final, immediate-final
    /// [default: final].
    #[arg(long, value_enum, value_name = "WHEN", help_heading = "Reporting")]
    pub failure_output: Option<OutputWhen>,

    /// When a passing test's output is shown: never, immediate, final, immediate-final
    /// [default: never; immediate with --no-capture].
    #[arg(long, value_enum, value_name = "WHEN", help_heading = "Reporting")]
    pub success_output: Option<OutputWhen>,

    /// The progress bar: auto, none, bar, counter, only (the bar and no per-test lines)
    /// [default: auto, a bar when stderr is a terminal].
    #[arg(long, value_enum, value_name = "HOW", help_heading = "Reporting")]
    pub show_progress: Option<ShowProgress>,

    /// No progress bar (as --show-progress none).
    #[arg(long, help_heading = "Reporting")]
    pub hide_progress_bar: bool,

    /// What a run that selects no test does: pass, warn (exit 0), fail (exit 4) [default: pass,
    /// as cargo test].
    #[arg(long, value_enum, value_name = "ACTION", help_heading = "Reporting")]
    pub no_tests: Option<NoTests>,

    /// nextest's flags that have nothing to change here (see docs/compat.md).
    #[command(flatten)]
    pub accepted: AcceptedFlags,

    /// nextest's flags that cannot apply, each refused with its alternative.
    #[command(flatten)]
    pub refused: RefusedFlags,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// One sandbox per test, or one per test binary (faster; resources are then per binary)
    /// [default: test].
    #[arg(long, value_enum, help_heading = "Isolation")]
    pub isolation: Option<Isolation>,

    /// Network inside the sandbox: none (no interface up), loopback (lo only), host (no network
    /// namespace) [default: loopback].
    #[arg(long, value_enum, help_heading = "Isolation")]
    pub network: Option<NetworkMode>,

    /// Whether a test that leaves processes behind fails [default: pass].
    #[arg(long, value_enum, value_name = "POLICY", help_heading = "Isolation")]
    pub leaks: Option<Policy>,

    /// Whether a test that tries to reach the network fails [default: pass].
    #[arg(long, value_enum, value_name = "POLICY", help_heading = "Isolation")]
    pub network_attempts: Option<Policy>,

    /// What a test that changed files in the workspace gets: warn (its own outcome word, still
    /// passing), fail, or allow (listed in the report only) [default: warn].
    #[arg(long, value_enum, value_name = "POLICY", help_heading = "Isolation")]
    pub file_leaks: Option<FileLeakPolicy>,

    /// Pass a host variable to tests (NAME, `*` globs allowed), or set one (NAME=VALUE).
    #[arg(long, value_name = "NAME[=VALUE]", help_heading = "Isolation")]
    pub env: Vec<String>,

    /// Give tests the runner's whole environment instead of the hermetic one.
    #[arg(long, help_heading = "Isolation")]
    pub inherit_env: bool,

    /// libtest flags: --ignored, --include-ignored, --exact, --skip NAME, --test-threads N,
    /// --nocapture, and more filters.
    #[arg(last = true, value_name = "LIBTEST ARGS", allow_hyphen_values = true)]
    pub libtest: Vec<String>,
}

/// `--failure-output` / `--success-output`, as nextest has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputWhen {
    Never,
    Immediate,
    Final,
    ImmediateFinal,
}

impl OutputWhen {
    pub fn immediate(self) -> bool {
        matches!(self, OutputWhen::Immediate | OutputWhen::ImmediateFinal)
    }

    pub fn at_end(self) -> bool {
        matches!(self, OutputWhen::Final | OutputWhen::ImmediateFinal)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowProgress {
    Auto,
    None,
    Bar,
    Counter,
    Only,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NoTests {
    Pass,
    Warn,
    Fail,
}

/// Accepted so that scripts written for nextest run; each has nothing to do here.
#[derive(Debug, Args, Clone, Default)]
pub struct AcceptedFlags {
    /// Output is never indented.
    #[arg(long, hide = true)]
    pub no_output_indent: bool,
    /// There is no input handler.
    #[arg(long, hide = true)]
    pub no_input_handler: bool,
    /// There is no pager.
    #[arg(long, hide = true)]
    pub no_pager: bool,
    /// There is no version to check.
    #[arg(long, hide = true)]
    pub override_version_check: bool,
    /// The bar shows one running test.
    #[arg(long, hide = true, value_name = "N")]
    pub max_progress_running: Option<String>,
}

/// nextest's flags that cannot apply: given, each is refused with the alternative (exit 2).
#[derive(Debug, Args, Clone, Default)]
pub struct RefusedFlags {
    #[arg(long, hide = true, value_name = "N")]
    stress_count: Option<String>,
    #[arg(long, hide = true, value_name = "D")]
    stress_duration: Option<String>,
    #[arg(long, hide = true, value_name = "CMD")]
    debugger: Option<String>,
    #[arg(long, hide = true, value_name = "CMD")]
    tracer: Option<String>,
    #[arg(short = 'R', long, hide = true, value_name = "RUN")]
    rerun: Option<String>,
    #[arg(long, hide = true, value_name = "FORMAT")]
    archive_format: Option<String>,
    #[arg(long, hide = true, value_name = "DIR")]
    extract_to: Option<String>,
    #[arg(long, hide = true)]
    extract_overwrite: bool,
    #[arg(long, hide = true)]
    persist_extract_tempdir: bool,
    #[arg(long, hide = true, value_name = "PATH")]
    cargo_metadata: Option<String>,
    #[arg(long, hide = true, value_name = "PATH")]
    binaries_metadata: Option<String>,
    #[arg(long, hide = true, value_name = "PATH")]
    target_dir_remap: Option<String>,
    #[arg(long, hide = true, value_name = "PATH")]
    build_dir_remap: Option<String>,
    #[arg(long, hide = true, value_name = "PLATFORM")]
    platform_filter: Option<String>,
    #[arg(long, hide = true)]
    ignore_default_filter: bool,
    #[arg(long, hide = true, value_name = "VERSION")]
    message_format_version: Option<String>,
    #[arg(long, hide = true, value_name = "PATH")]
    config_file: Option<String>,
    #[arg(long, hide = true, value_name = "PATH")]
    user_config_file: Option<String>,
    #[arg(long, hide = true, value_name = "TOOL:PATH")]
    tool_config_file: Option<String>,
    #[arg(long, hide = true)]
    unit_graph: bool,
}

impl RefusedFlags {
    /// The first refused flag given, and what to use instead.
    pub fn refusal(&self) -> Option<String> {
        use instead::*;
        // One row a flag, in the order they are checked: the first given is the one refused.
        #[rustfmt::skip]
        let given: [(bool, &str, &str); 20] = [
            (self.stress_count.is_some(),           "--stress-count",             REPEAT),
            (self.stress_duration.is_some(),        "--stress-duration",          REPEAT_FIXED),
            (self.debugger.is_some(),               "--debugger",                 DEBUGGER),
            (self.tracer.is_some(),                 "--tracer",                   TRACER),
            (self.rerun.is_some(),                  "--rerun",                    REPLAY),
            (self.archive_format.is_some(),         "--archive-format",           ARCHIVE),
            (self.extract_to.is_some(),             "--extract-to",               ARCHIVE),
            (self.extract_overwrite,                "--extract-overwrite",        ARCHIVE),
            (self.persist_extract_tempdir,          "--persist-extract-tempdir",  ARCHIVE),
            (self.cargo_metadata.is_some(),         "--cargo-metadata",           ARCHIVE),
            (self.binaries_metadata.is_some(),      "--binaries-metadata",        ARCHIVE),
            (self.target_dir_remap.is_some(),       "--target-dir-remap",         ARCHIVE),
            (self.build_dir_remap.is_some(),        "--build-dir-remap",          ARCHIVE),
            (self.platform_filter.is_some(),        "--platform-filter",          PLATFORM),
            (self.ignore_default_filter,            "--ignore-default-filter",    NO_DEFAULT_FILTER),
            (self.message_format_version.is_some(), "--message-format-version",   REPORT_JSON),
            (self.config_file.is_some(),            "--config-file",              CONFIG),
            (self.user_config_file.is_some(),       "--user-config-file",         CONFIG),
            (self.tool_config_file.is_some(),       "--tool-config-file",         CONFIG),
            (self.unit_graph,                       "--unit-graph",               UNIT_GRAPH),
        ];
        given
            .iter()
            .find(|(on, _, _)| *on)
            .map(|(_, flag, alternative)| format!("{flag} cannot apply here: {alternative}"))
    }
}

/// What to use instead of each refused flag, after "FLAG cannot apply here: ".
mod instead {
    pub const REPEAT: &str = "use --repeat N (each run in a fresh sandbox)";
    pub const REPEAT_FIXED: &str = "a run repeats a fixed number of times, so its report is \
                                    reproducible: use --repeat N";
    pub const DEBUGGER: &str = "run the test under a debugger in the same sandbox with `cargo \
                                sandbox exec [LIMITS] -- gdb --args BINARY --exact NAME`";
    pub const TRACER: &str = "run the test under a tracer in the same sandbox with `cargo sandbox \
                              exec [LIMITS] -- strace BINARY --exact NAME`";
    pub const REPLAY: &str = "rerun one recorded test exactly with `cargo sandbox replay REPORT \
                              TEST`, or failures with --retries N";
    pub const ARCHIVE: &str = "cargo-sandbox's archives are .tar.zst, unpacked into a private \
                               directory removed after the run: run one with --archive-file PATH \
                               [--workspace-remap DIR] (see docs/archives.md)";
    pub const PLATFORM: &str = "use -E 'platform(host)' or -E 'platform(target)'";
    pub const NO_DEFAULT_FILTER: &str = "cargo-sandbox has no default filter to ignore";
    pub const REPORT_JSON: &str = "machine-readable results are --report-json PATH";
    pub const CONFIG: &str =
        "the configuration is .config/sandbox.toml (or [workspace.metadata.sandbox])";
    pub const UNIT_GRAPH: &str = "it prints cargo's unit graph and builds nothing: run `cargo \
                                  test --unit-graph -Z unstable-options`";
}

/// `-j`/`--test-threads` as nextest takes it: a count, `num-cpus`, or a count below the CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestThreads {
    Count(usize),
    NumCpus,
    FewerThanCpus(usize),
}

impl std::str::FromStr for TestThreads {
    type Err = String;

    fn from_str(text: &str) -> Result<TestThreads, String> {
        let bad = || format!("`{text}` is not a number of jobs (examples: 4, num-cpus, -1)");
        match text {
            "num-cpus" => Ok(TestThreads::NumCpus),
            _ => match text.strip_prefix('-') {
                Some(fewer) => fewer
                    .parse()
                    .map(TestThreads::FewerThanCpus)
                    .map_err(|_| bad()),
                None => match text.parse() {
                    Ok(0) | Err(_) => Err(bad()),
                    Ok(n) => Ok(TestThreads::Count(n)),
                },
            },
        }
    }
}

impl TestThreads {
    /// The number of sandboxes at once, with `cpus` CPUs (at least one).
    pub fn resolve(self, cpus: usize) -> usize {
        match self {
            TestThreads::Count(n) => n,
            TestThreads::NumCpus => cpus,
            TestThreads::FewerThanCpus(n) => cpus.saturating_sub(n),
        }
        .max(1)
    }
}

/// `--max-fail`: failures after which no more tests start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxFail {
    Count(u32),
    All,
}

impl std::str::FromStr for MaxFail {
    type Err = String;

    fn from_str(text: &str) -> Result<MaxFail, String> {
        if text == "all" {
            return Ok(MaxFail::All);
        }
        let (count, mode) = text.split_once(':').unwrap_or((text, "wait"));
        match mode {
            "wait" => {}
            "immediate" => {
                return Err(
                    "`:immediate` is not available: running tests always finish, so \
                            each one's outcome and usage are whole (use `N` or `N:wait`)"
                        .to_owned(),
                )
            }
            other => return Err(format!("`{other}` is not a mode (wait)")),
        }
        match count.parse() {
            Ok(0) | Err(_) => Err(format!(
                "`{text}` is not a number of failures (examples: 1, 5, 5:wait, all)"
            )),
            Ok(n) => Ok(MaxFail::Count(n)),
        }
    }
}

/// nextest's status levels, most restrictive first: a test's line is shown when its level is
/// at or below the chosen one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum StatusLevel {
    None,
    Fail,
    #[value(alias = "flaky")]
    Retry,
    Slow,
    Leak,
    Pass,
    Skip,
    All,
}

impl TestArgs {
    /// The most failures the run tolerates before it stops starting tests.
    pub fn max_fail(&self) -> Option<u32> {
        match self.max_fail {
            Some(MaxFail::Count(n)) => Some(n),
            Some(MaxFail::All) => None,
            None => self.fail_fast.then_some(1),
        }
    }
}

/// Where sandboxes get their cgroups, for every subcommand that runs sandboxes.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Create sandbox cgroups under this cgroup instead of the runner's own: one directory on
    /// cgroup v2 (for runners that share their cgroup, or run without root), one per controller
    /// on v1 (repeat the flag; `:`-separated in the variable).
    #[arg(
        help_heading = "Isolation",
        long,
        value_name = "DIR",
        env = "CARGO_SANDBOX_CGROUP_PARENT",
        value_delimiter = ':'
    )]
    pub cgroup_parent: Vec<PathBuf>,

    /// When no cgroup can be used (e.g. without root and without delegation), run without caps
    /// instead of failing; every report then says which protections were not in force.
    #[arg(help_heading = "Isolation", long)]
    pub allow_degraded: bool,

    /// Run as root on the host, yet give each sandbox a user namespace whose root is host user
    /// UID (and group GID): a file a test creates in a writable directory is owned by that user
    /// [default when given without a value: 65534:65534, nobody]. Without root this is always
    /// in force, as the runner's own user.
    #[arg(help_heading = "Isolation", 
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
    #[arg(help_heading = "Limits", long, value_name = "SIZE")]
    pub memory: Option<Memory>,

    /// Cap on processes and threads; `none` lifts it [default: 1024].
    #[arg(help_heading = "Limits", long, value_name = "N")]
    pub pids: Option<Pids>,

    /// CPU quota in CPUs (e.g. 1.5) [default: none].
    #[arg(help_heading = "Limits", long, value_name = "CPUS")]
    pub cpus: Option<Cpus>,

    /// Pin the sandbox to these CPUs (e.g. 0, 0-1, 0,2), for reproducible timing.
    #[arg(help_heading = "Limits", long, value_name = "CPUS")]
    pub cpuset: Option<CpuList>,

    /// Cap on the bytes per second written to each block device (e.g. 10M); `none` lifts it
    /// [default: none].
    #[arg(help_heading = "Limits", long, value_name = "BYTES")]
    pub io_write_bps: Option<Bandwidth>,

    /// Kill the sandbox after this long (e.g. 30s, 2m); `none` for no limit [default: none].
    #[arg(help_heading = "Limits", long, value_name = "DURATION")]
    pub timeout: Option<Timeout>,

    /// Time between SIGTERM and SIGKILL at the timeout [default: 1s].
    #[arg(help_heading = "Limits", long, value_name = "DURATION")]
    pub grace: Option<Grace>,

    /// Size of the sandbox's private tmpfs: /tmp, /dev/shm, CARGO_TARGET_TMPDIR and its writes
    /// to copy-on-write directories share it [default: 256M].
    #[arg(help_heading = "Limits", long, value_name = "SIZE")]
    pub tmp_size: Option<Size>,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// isolated: the host read-only, the workspace (for `exec`, the current directory)
    /// copy-on-write with every change reported; host: no file isolation [default: isolated for
    /// `test`, host for `exec`].
    #[arg(help_heading = "Isolation", long, value_enum, value_name = "MODE")]
    pub fs: Option<FsMode>,

    /// A host path that stays writable under `--fs isolated` (repeatable).
    #[arg(help_heading = "Isolation", long, value_name = "PATH")]
    pub writable: Vec<PathBuf>,

    /// Keep each sandbox's copy-on-write changes under this directory for inspection (for
    /// `test`: DIR/<binary>/<test>/<attempt>/0/upper; a whole binary's sandbox is `binary`, a
    /// group of its tests `binary-<first test>`), instead of discarding them.
    #[arg(help_heading = "Isolation", long, value_name = "DIR")]
    pub keep_writes: Option<PathBuf>,

    /// Give the command its full capabilities back (no reduced capability set, no
    /// no_new_privs, no seccomp deny-list); reports mark it.
    #[arg(help_heading = "Isolation", long)]
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
