//! The typed events the runner emits, and the record of one test they carry. Every reporter
//! (terminal, JSON, JUnit, GitHub) consumes these; none re-derives an outcome. The record is
//! also the per-test entry of the JSON report, so `cargo sandbox report` reads back exactly what
//! the run saw.

use crate::outcome::{Outcome, Policies};
use harness::{CapturedOutput, Exit, FileWrite, LeakedProcess, SandboxResult, SandboxSpec};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A test's identity: its binary's id, then its name (the order every report lists them in).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TestId {
    pub binary_id: String,
    pub name: String,
}

impl std::fmt::Display for TestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.binary_id, self.name)
    }
}

/// Everything known about one finished (or skipped) test. Resource fields are `None` when the
/// test did not run or the kernel does not keep the figure; under `--isolation binary` they are
/// the whole binary's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    #[serde(flatten)]
    pub id: TestId,
    /// The binary's kind: lib, proc-macro, bin, test, bench, example, doctest (empty in
    /// reports from before it was recorded).
    #[serde(default)]
    pub kind: String,
    pub outcome: Outcome,
    /// Whether the outcome counts as a failure under the run's policies.
    pub failure: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub duration_ms: f64,
    pub memory_peak_bytes: Option<u64>,
    pub cpu_user_ms: Option<f64>,
    pub cpu_system_ms: Option<f64>,
    pub pids_peak: Option<u64>,
    pub forks_refused: u64,
    pub oom_kills: u64,
    /// Names of the processes the OOM killer chose (empty when unknown).
    pub oom_victims: Vec<String>,
    /// Peak swap use, where the machine has swap.
    pub memory_swap_peak_bytes: Option<u64>,
    /// Bytes read from and written to block devices (`None` without the blkio/io controller).
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    /// Times the CPU quota stopped the test, and for how long.
    pub cpu_throttled_count: u64,
    pub cpu_throttled_ms: f64,
    pub leaked_processes: Vec<LeakedProcess>,
    pub leaked_total: usize,
    /// Packets sent towards addresses the sandbox has no route to.
    pub network_attempts: u64,
    /// Changes to the copy-on-write workspace (the host tree never saw them).
    pub files_written: Vec<FileWrite>,
    pub files_written_total: usize,
    /// The policies `failure` was decided under.
    pub policies: Policies,
    /// Output (stdout and stderr interleaved), head and tail when long.
    pub output: Option<CapturedOutput>,
    /// The exact sandbox the test ran in: enough to rerun it.
    pub spec: Option<Arc<SandboxSpec>>,
    /// Why the sandbox could not run the test.
    pub error: Option<String>,
    /// The test's `SANDBOX_SEED` (of the attempt shown).
    pub seed: Option<u64>,
    /// Position in the run's execution order (`--shuffle` changes it, the seed fixes it).
    pub order: Option<usize>,
    /// Whether it ran beside the `-j` because its last run mostly waited (sleeping, on I/O)
    /// rather than computed; `--strict-jobs` turns that off.
    #[serde(default)]
    pub beside: bool,
    /// Whether its sandbox ran other tests too (`--isolation binary`): its duration and usage
    /// are that sandbox's, not its own, so the history does not take them as the test's.
    #[serde(default)]
    pub shared_sandbox: bool,
    /// How many times the test ran (`--repeat`, `--retries`), and how many of those passed.
    pub attempts: u32,
    pub passes: u32,
    /// Each attempt's outcome, in order, when there was more than one.
    pub attempt_outcomes: Vec<Outcome>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl TestRecord {
    /// A test that was not run (ignored, or the sandbox failed before it started).
    pub fn not_run(id: TestId, outcome: Outcome, failure: bool) -> TestRecord {
        TestRecord {
            id,
            kind: String::new(),
            outcome,
            failure,
            exit_code: None,
            signal: None,
            duration_ms: 0.0,
            memory_peak_bytes: None,
            cpu_user_ms: None,
            cpu_system_ms: None,
            pids_peak: None,
            forks_refused: 0,
            oom_kills: 0,
            oom_victims: Vec::new(),
            memory_swap_peak_bytes: None,
            io_read_bytes: None,
            io_write_bytes: None,
            cpu_throttled_count: 0,
            cpu_throttled_ms: 0.0,
            leaked_processes: Vec::new(),
            leaked_total: 0,
            network_attempts: 0,
            files_written: Vec::new(),
            files_written_total: 0,
            policies: Policies::default(),
            output: None,
            spec: None,
            error: None,
            seed: None,
            order: None,
            beside: false,
            shared_sandbox: false,
            attempts: 0,
            passes: 0,
            attempt_outcomes: Vec::new(),
        }
    }

    /// A test that ran in a sandbox.
    pub fn ran(
        id: TestId,
        outcome: Outcome,
        failure: bool,
        duration: Duration,
        result: &SandboxResult,
        spec: &Arc<SandboxSpec>,
    ) -> TestRecord {
        let u = &result.usage;
        TestRecord {
            exit_code: match result.exit {
                Exit::Code(code) => Some(code),
                Exit::Signal(_) => None,
            },
            signal: result.exit.signal_name(),
            duration_ms: ms(duration),
            memory_peak_bytes: u.memory_peak_bytes,
            cpu_user_ms: Some(u.cpu_user_us as f64 / 1000.0),
            cpu_system_ms: Some(u.cpu_system_us as f64 / 1000.0),
            pids_peak: u.pids_peak,
            forks_refused: u.forks_refused,
            oom_kills: u.oom_kills,
            oom_victims: result.oom_victims.clone(),
            memory_swap_peak_bytes: u.memory_swap_peak_bytes,
            io_read_bytes: u.io_read_bytes,
            io_write_bytes: u.io_write_bytes,
            cpu_throttled_count: u.cpu_throttled_count,
            cpu_throttled_ms: u.cpu_throttled_us as f64 / 1000.0,
            leaked_processes: result.leaked_processes.clone(),
            leaked_total: result.leaked_total,
            network_attempts: result.network_attempts.total(),
            files_written: result.files_written.clone(),
            files_written_total: result.files_written_total,
            output: result.output.clone(),
            spec: Some(spec.clone()),
            attempts: 1,
            passes: u32::from(!failure),
            ..TestRecord::not_run(id, outcome, failure)
        }
    }

    /// What the runner keeps of a finished test once the reporters have seen it: no spec, and
    /// output only when the test did not simply pass (summaries and annotations show it). The
    /// JSON report has the full record from the event; keeping every record whole would grow
    /// with the suite.
    pub fn slim(mut self) -> TestRecord {
        self.spec = None;
        if !self.failure && self.outcome == Outcome::Passed {
            self.output = None;
        }
        self
    }

    pub fn output_text(&self) -> String {
        self.output
            .as_ref()
            .map(CapturedOutput::text)
            .unwrap_or_default()
    }

    pub fn cpu_ms(&self) -> f64 {
        self.cpu_user_ms.unwrap_or(0.0) + self.cpu_system_ms.unwrap_or(0.0)
    }

    pub fn ran_in_sandbox(&self) -> bool {
        self.cpu_user_ms.is_some()
    }
}

#[derive(Debug)]
pub enum Event {
    RunStarted {
        tests: usize,
        binaries: usize,
        /// Binaries run whole without listing: their tests are counted as they report.
        unlisted_binaries: usize,
        ignored: usize,
        seed: u64,
        profile: String,
        /// Sandboxes run at once.
        jobs: usize,
    },
    TestStarted(TestId),
    TestFinished(Box<TestRecord>),
}
