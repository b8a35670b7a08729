//! Runs the selected tests: a pool of `-j` worker threads takes jobs from one queue and runs each
//! in a fresh sandbox, emitting events. Cancellation (Ctrl-C) stops the queue and kills what runs.

use crate::build::TestBinary;
use crate::cli::Isolation;
use crate::env::BinaryEnv;
use crate::event::{Event, TestId, TestRecord};
use crate::outcome::{classify, Outcome, Policies};
use harness::{Cancel, Engine, Limits, Output, SandboxResult, SandboxSpec, Stdin};
use std::collections::VecDeque;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-test output kept (head and tail) beyond which the middle is dropped.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// How every sandbox of the run is set up.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub limits: Limits,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    pub tmp_size_bytes: u64,
    pub isolation: Isolation,
    pub policies: Policies,
    pub jobs: usize,
}

/// A test binary with what it needs to run.
#[derive(Debug)]
pub struct BinaryContext {
    pub binary: TestBinary,
    pub env: BinaryEnv,
}

#[derive(Debug, Clone)]
pub struct SelectedTest {
    pub name: String,
    pub ignored: bool,
}

/// One sandbox's worth of work: one test, or (`--isolation binary`) all of a binary's.
#[derive(Debug)]
pub struct Job {
    pub binary: Arc<BinaryContext>,
    pub tests: Vec<SelectedTest>,
    /// Every test the binary lists was selected (ignored ones as ignored): libtest's own
    /// selection matches, so tests need not be named.
    pub whole_binary: bool,
}

/// The sandbox a test (or a listing) runs in.
pub fn spec_for(binary: &BinaryContext, args: Vec<String>, settings: &RunSettings) -> SandboxSpec {
    let argv = std::iter::once(binary.binary.path.display().to_string())
        .chain(args)
        .collect();
    settings.spec(argv, binary.env.cwd.clone(), binary.env.vars.clone())
}

impl RunSettings {
    /// A sandbox spec under this run's caps: stdin `/dev/null`, output captured (bounded).
    pub fn spec(
        &self,
        argv: Vec<String>,
        cwd: std::path::PathBuf,
        env: Vec<(String, String)>,
    ) -> SandboxSpec {
        let mut spec = SandboxSpec::new(argv, cwd, env);
        spec.limits = self.limits;
        spec.timeout = self.timeout;
        spec.grace = self.grace;
        spec.tmp_size_bytes = self.tmp_size_bytes;
        spec.stdin = Stdin::Null;
        spec.output = Output::Capture {
            limit_bytes: OUTPUT_LIMIT,
        };
        spec
    }
}

/// Maps `f` over `items` on `jobs` threads, keeping the input order.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { return };
                let r = f(item);
                if let Ok(mut results) = results.lock() {
                    results[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

pub fn run_jobs(
    engine: &Engine,
    jobs: Vec<Job>,
    settings: &RunSettings,
    cancel: &Cancel,
    events: &Sender<Event>,
) {
    let queue = Mutex::new(VecDeque::from(jobs));
    std::thread::scope(|scope| {
        for _ in 0..settings.jobs.max(1) {
            scope.spawn(|| loop {
                if cancel.is_cancelled() {
                    return;
                }
                let Some(job) = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None) else {
                    return;
                };
                for record in run_job(engine, &job, settings, cancel, events) {
                    let _ = events.send(Event::TestFinished(Box::new(record)));
                }
            });
        }
    });
}

fn run_job(
    engine: &Engine,
    job: &Job,
    settings: &RunSettings,
    cancel: &Cancel,
    events: &Sender<Event>,
) -> Vec<TestRecord> {
    let id = |name: &str| TestId {
        binary_id: job.binary.binary.id.clone(),
        name: name.to_owned(),
    };
    for test in &job.tests {
        let _ = events.send(Event::TestStarted(id(&test.name)));
    }
    let spec = spec_for(&job.binary, libtest_args(job, settings.isolation), settings);
    let started = Instant::now();
    let result = engine.run(&spec, Some(cancel));
    let duration = started.elapsed();
    let result = match result {
        Ok(result) => result,
        Err(e) => {
            return job
                .tests
                .iter()
                .map(|t| TestRecord {
                    spec: Some(spec.clone()),
                    error: Some(e.to_string()),
                    ..TestRecord::not_run(id(&t.name), Outcome::SandboxError, true)
                })
                .collect()
        }
    };
    let record = |name: &str, outcome: Outcome| {
        let failure = outcome.is_failure(settings.policies);
        TestRecord::ran(id(name), outcome, failure, duration, &result, &spec)
    };
    match settings.isolation {
        Isolation::Test => {
            let ran_one = result.exit != harness::Exit::Code(0) || ran_exactly_one(&result);
            vec![record(&job.tests[0].name, classify(&result, ran_one))]
        }
        Isolation::Binary => {
            let lines =
                libtest_results(&result.output.as_ref().map(|o| o.text()).unwrap_or_default());
            let binary_outcome = classify(&result, true);
            job.tests
                .iter()
                .map(|t| {
                    let outcome = match lines
                        .iter()
                        .find(|(name, _)| name == &t.name)
                        .map(|(_, r)| r.as_str())
                    {
                        Some("ok") => Outcome::Passed,
                        Some("FAILED") => Outcome::Failed,
                        Some("ignored") => Outcome::Ignored,
                        _ if binary_outcome == Outcome::Passed => Outcome::Failed,
                        _ => binary_outcome.clone(),
                    };
                    record(&t.name, outcome)
                })
                .collect()
        }
    }
}

/// The libtest command line for a job.
fn libtest_args(job: &Job, isolation: Isolation) -> Vec<String> {
    let mut args = Vec::new();
    match isolation {
        Isolation::Test => {
            let test = &job.tests[0];
            args.extend([
                "--exact".to_owned(),
                test.name.clone(),
                "--nocapture".to_owned(),
            ]);
            if test.ignored {
                args.push("--ignored".to_owned());
            }
        }
        Isolation::Binary => {
            if !job.whole_binary {
                args.push("--exact".to_owned());
                args.extend(job.tests.iter().map(|t| t.name.clone()));
            }
            if job.tests.iter().all(|t| t.ignored) {
                args.push("--ignored".to_owned());
            } else if job.tests.iter().any(|t| t.ignored) {
                args.push("--include-ignored".to_owned());
            }
        }
    }
    args
}

/// libtest's summary says one test ran (a name that matched nothing would run zero and pass).
fn ran_exactly_one(result: &SandboxResult) -> bool {
    result
        .output
        .as_ref()
        .is_some_and(|o| o.tail.contains(" 1 passed") || o.head.contains(" 1 passed"))
}

/// `test NAME ... ok|FAILED|ignored` lines of libtest's pretty output.
fn libtest_results(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (name, result) = rest.rsplit_once(" ... ")?;
            let name = name.strip_suffix(" - should panic").unwrap_or(name);
            let result = result
                .split(|c: char| c.is_whitespace() || c == ',')
                .next()?;
            Some((name.to_owned(), result.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_lines() {
        let out =
            "running 3 tests\ntest a::b ... ok\ntest c ... FAILED\ntest d ... ignored, slow\n";
        assert_eq!(
            libtest_results(out),
            vec![
                ("a::b".into(), "ok".into()),
                ("c".into(), "FAILED".into()),
                ("d".into(), "ignored".into())
            ]
        );
    }
}
