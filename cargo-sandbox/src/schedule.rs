//! Runs the selected tests: a pool of `-j` worker threads takes jobs from one queue and runs each
//! in a fresh sandbox. Repeats are queued up front; a failed attempt with retries left goes back
//! on the queue; a test's record is emitted once all its attempts are in. Cancellation (Ctrl-C)
//! stops the queue and kills what runs.
//!
//! Tests the history says mostly wait (sleeping, on timers; see `History::waits`) have a queue
//! of their own, served by more workers beside the `-j` ones: they need no CPU, so they
//! neither hold a slot a computing test could use nor take a jobserver token from cargo. The
//! `-j` workers take from that queue too once theirs is empty. `--strict-jobs` turns it off.

use crate::config::{Isolation, Resolved};
use crate::event::{Event, TestId, TestRecord};
use crate::filter::TestFilter;
use crate::history::History;
use crate::job::test_id;
use crate::job::{Job, RunsAs, SelectedTest, Selection};
use crate::libtest::{libtest_results, libtest_total, own_section, ran_exactly_one};
use crate::list::{self, Plan};
use crate::outcome::{classify, classify_doctest, Outcome};
use crate::sandbox_spec;
use harness::{Cancel, Engine, Exit, SandboxSpec};
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A seed per test and attempt, derived from the run's seed: the same `--seed` gives every test
/// the same `SANDBOX_SEED`, and each repeat a different one.
pub fn seed_for(run_seed: u64, key: &str, attempt: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    splitmix64(run_seed ^ h ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fisher–Yates from the seed: the same seed, the same order.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = splitmix64(state);
        items.swap(i, (state % (i as u64 + 1)) as usize);
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

/// What the workers share.
pub struct Run<'a> {
    pub engine: &'a Engine,
    pub cancel: &'a Cancel,
    pub events: &'a Sender<Event>,
    pub host_env: &'a [(String, String)],
    pub run_seed: u64,
    pub workers: usize,
    /// `--keep-writes DIR`: each sandbox keeps its copy-on-write layers in its own directory.
    pub keep_writes: Option<std::path::PathBuf>,
    /// The user's test selection, which libtest applies in unlisted binaries.
    pub filter: &'a TestFilter,
    /// `--fail-fast` / `--max-fail N`: after this many failed tests no job starts.
    pub max_fail: Option<u32>,
    /// `--no-capture`: a test sandboxed alone writes straight to the runner's stdout and stderr.
    pub no_capture: bool,
    /// While cargo builds, each job first takes one of the CPUs it shares with cargo.
    pub slots: Option<&'a crate::pipeline::Slots>,
}

/// The jobs the workers take. The plan feeds it (a binary's jobs as soon as its listing is
/// in, while cargo builds the others) and closes it when complete; the workers end once it is
/// closed and empty. With a history, jobs are taken longest first, those never seen before
/// ahead of all (they may be the longest); equal ones by binary, then as listed
/// ([`Queued::first`]).
///
/// A test that spent its last run waiting, not computing ([`History::waits`]), needs no CPU of
/// its own: unless the run is strict, it goes to a queue of its own that workers beside the
/// `-j` take from (and the `-j` too once theirs is empty).
/// While cargo builds, such a job takes no CPU from it.
pub struct Feed<'a> {
    queue: Mutex<Queue>,
    /// Idle workers wait on this while jobs may still come: more of the plan, or retries of
    /// jobs running. Signalled on every change.
    changed: std::sync::Condvar,
    pending: Mutex<Tally>,
    history: Option<&'a History>,
    /// Jobs that mostly wait run beside the `-j` (not `--strict-jobs`).
    beside: bool,
}

/// Which jobs a worker takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// One of the `-j`: any job, those that compute first.
    Jobs,
    /// Beside them: only jobs that mostly wait.
    Beside,
}

/// A job taken, and whether it is one that mostly waits.
struct Taken {
    job: Job,
    waits: bool,
}

/// A job queued, with what orders it: how long it is expected to take, in ms (infinite: not
/// known), then its binary and its place in the binary's listing. The tie-break makes the order
/// the listing's, whichever binary cargo or the listing threads happened to hand in first.
struct Queued {
    ms: f64,
    /// Place in the batch it was pushed with (a binary's listing order).
    place: usize,
    job: Job,
}

impl Queued {
    /// Which runs first: the longer, then by binary, then as listed.
    fn first(&self, other: &Queued) -> std::cmp::Ordering {
        other
            .ms
            .total_cmp(&self.ms)
            .then_with(|| self.job.binary.binary.id.cmp(&other.job.binary.binary.id))
            .then(self.place.cmp(&other.place))
    }
}

/// The jobs not yet taken, and how many are running (each may queue a retry).
struct Queue {
    /// Slowest expected first when there is a history; retries are queued at the end.
    jobs: VecDeque<Queued>,
    /// Jobs that mostly wait, longest first (only when they run beside).
    waiting: VecDeque<Queued>,
    busy: usize,
    /// Failed tests so far (final outcomes, after retries).
    failures: u32,
    /// `--max-fail` was reached: no more jobs start.
    stopped: bool,
    /// No more jobs of the plan will come.
    closed: bool,
    /// Jobs taken so far: the next one's place in the run's order.
    taken: usize,
}

/// Attempts of each test collected so far; tests of unlisted binaries whose record was
/// emitted (a later record for one, a test named twice in a binary's output or a binary's
/// pseudo-test again from its retry, is no new test).
type Tally = (HashMap<TestId, Pending>, std::collections::HashSet<TestId>);

/// Attempts of one test collected so far.
struct Pending {
    expected: u32,
    records: Vec<TestRecord>,
}

impl<'a> Feed<'a> {
    /// `beside`: jobs that mostly wait run beside the `-j` (it takes a history to know them).
    pub fn new(history: Option<&'a History>, beside: bool) -> Feed<'a> {
        Feed {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                waiting: VecDeque::new(),
                busy: 0,
                failures: 0,
                stopped: false,
                closed: false,
                taken: 0,
            }),
            changed: std::sync::Condvar::new(),
            pending: Mutex::new(Default::default()),
            history,
            beside,
        }
    }

    /// Adds jobs of the plan: merged by expected duration with a history, at the end without.
    pub fn push(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        {
            let mut guard = self.tally();
            for job in &jobs {
                for test in job.selection.listed() {
                    guard
                        .0
                        .entry(test_id(job, &test.name))
                        .or_insert(Pending {
                            expected: 0,
                            records: Vec::new(),
                        })
                        .expected += 1;
                }
            }
        }
        let (mut waiting, mut batch): (Vec<Queued>, Vec<Queued>) = jobs
            .into_iter()
            .enumerate()
            .map(|(place, job)| {
                let ms = self.history.map_or(f64::INFINITY, |h| {
                    h.expected_ms(&job).unwrap_or(f64::INFINITY)
                });
                Queued { ms, place, job }
            })
            .partition(|q| self.beside && self.history.is_some_and(|h| h.waits(&q.job)));
        let mut q = self.lock();
        if self.history.is_some() {
            // Then merged with the jobs not yet taken (retries, at the end, stay there).
            batch.sort_by(Queued::first);
            waiting.sort_by(Queued::first);
            merge_longest_first(&mut q.jobs, batch);
            merge_longest_first(&mut q.waiting, waiting);
        } else {
            q.jobs.extend(batch);
        }
        drop(q);
        self.changed.notify_all();
    }

    /// Nothing more starts (the plan failed): what is left is reported as not run.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }

    /// Jobs not yet taken.
    pub fn queued(&self) -> usize {
        let q = self.lock();
        q.jobs.len() + q.waiting.len()
    }

    /// No more of the plan will come.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next job for a worker of `lane`; `None` when the run is over for it.
    fn take(&self, cancel: &Cancel, lane: Lane) -> Option<Taken> {
        let mut q = self.lock();
        loop {
            if cancel.is_cancelled() || q.stopped {
                return None;
            }
            let next = match lane {
                Lane::Jobs => (q.jobs.pop_front().map(|q| (q.job, false)))
                    .or_else(|| q.waiting.pop_front().map(|q| (q.job, true))),
                Lane::Beside => q.waiting.pop_front().map(|q| (q.job, true)),
            };
            if let Some((mut job, waits)) = next {
                q.busy += 1;
                if job.order.is_none() {
                    job.order = Some(q.taken);
                    q.taken += 1;
                }
                return Some(Taken { job, waits });
            }
            // Retries go to the `-j`: beside, only the plan's end matters.
            let over = match lane {
                Lane::Jobs => q.busy == 0,
                Lane::Beside => true,
            };
            if over && q.closed {
                return None;
            }
            // A timeout, to see a cancellation.
            q = self
                .changed
                .wait_timeout(q, std::time::Duration::from_millis(50))
                .map_or_else(|e| e.into_inner().0, |(q, _)| q);
        }
    }

    /// Waits until a job that mostly waits is queued (`true`), or none will be: the plan is
    /// complete without one (retries go to the `-j`), or the run is over.
    fn wait_for_waiting(&self, cancel: &Cancel) -> bool {
        let mut q = self.lock();
        loop {
            if !q.waiting.is_empty() {
                return true;
            }
            if q.closed || q.stopped || cancel.is_cancelled() {
                return false;
            }
            q = self
                .changed
                .wait_timeout(q, std::time::Duration::from_millis(50))
                .map_or_else(|e| e.into_inner().0, |(q, _)| q);
        }
    }

    /// Waits until the plan is complete (or the run cancelled).
    fn wait_closed(&self, cancel: &Cancel) {
        let mut q = self.lock();
        while !q.closed && !cancel.is_cancelled() {
            q = self
                .changed
                .wait_timeout(q, std::time::Duration::from_millis(50))
                .map_or_else(|e| e.into_inner().0, |(q, _)| q);
        }
    }
}

/// Workers beside the `-j` per `-j` worker, for jobs that mostly wait. Such a job spends under
/// a tenth of its time on a CPU, so this many together take under half a CPU per `-j`; a suite
/// whose few slow tests sleep runs them all at once rather than a `-j` at a time.
const BESIDE_PER_WORKER: usize = 4;

/// Runs the jobs fed to `feed` on `run.workers` threads (and [`BESIDE_PER_WORKER`] times as
/// many beside them for jobs that mostly wait) until it is closed and empty.
pub fn run_jobs(run: &Run, feed: &Feed) {
    let workers = run.workers.max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| work(run, feed, Lane::Jobs));
        }
        // Those beside start once a job that mostly waits is queued: most runs have none, and
        // each thread started and ended for nothing costs about a tenth of a millisecond.
        if feed.beside && feed.wait_for_waiting(run.cancel) {
            for _ in 0..workers * BESIDE_PER_WORKER {
                scope.spawn(|| work(run, feed, Lane::Beside));
            }
        }
    });
    feed.wait_closed(run.cancel);
    let q = std::mem::replace(
        &mut *feed.lock(),
        Queue {
            jobs: VecDeque::new(),
            waiting: VecDeque::new(),
            busy: 0,
            failures: 0,
            stopped: false,
            closed: true,
            taken: 0,
        },
    );
    if q.stopped {
        let (pending, _) = std::mem::take(&mut *feed.tally());
        let jobs = q.jobs.into_iter().chain(q.waiting).map(|q| q.job).collect();
        for record in not_run(jobs, pending) {
            let _ = run.events.send(Event::TestFinished(Box::new(record)));
        }
    }
}

/// One worker of `lane`: takes jobs until the run is over for it.
fn work(run: &Run, feed: &Feed, lane: Lane) {
    while let Some(Taken { job, waits }) = feed.take(run.cancel, lane) {
        // A job that mostly waits takes no CPU from cargo.
        let slot = if waits {
            None
        } else {
            run.slots.and_then(|s| s.take())
        };
        let mut records = contained(|| run_job(run, feed, &job)).unwrap_or_else(|panic| {
            let error = format!(
                "internal error: cargo-sandbox panicked running this test ({panic}); please \
                 report it"
            );
            unrun_records(&job, &error, None, None)
        });
        drop(slot);
        for record in &mut records {
            record.beside = waits;
        }
        finished(run, feed, &job, records);
    }
}

/// Merges `batch` (in [`Queued::first`] order) into `queue` (the same, then retries): retries
/// stay at the end.
fn merge_longest_first(queue: &mut VecDeque<Queued>, batch: Vec<Queued>) {
    let mut queued = std::mem::take(queue).into_iter().peekable();
    let mut batch = batch.into_iter().peekable();
    while let (Some(q), Some(b)) = (queued.peek(), batch.peek()) {
        let next = if b.first(q).is_lt() {
            batch.next()
        } else {
            queued.next()
        };
        queue.extend(next);
    }
    queue.extend(queued.chain(batch));
}

/// Takes in a job's records: a test whose attempts are all in is emitted; failed ones with
/// retries left go back on the queue.
fn finished(run: &Run, feed: &Feed, job: &Job, records: Vec<TestRecord>) {
    let mut failed = Vec::new();
    let mut done = Vec::new();
    {
        let mut guard = feed.tally();
        let (pending, emitted) = &mut *guard;
        let unlisted = matches!(job.selection, Selection::Unlisted { .. });
        for record in records {
            let retry = record.failure
                && !list::is_pseudo_test(&record.id.name)
                && job.retry < job.settings.retries
                && !run.cancel.is_cancelled();
            // An unlisted binary's tests are known once it ran: one seen for the first time
            // and not retried is done at once (most of a run of binaries run whole).
            if unlisted && !retry && !pending.contains_key(&record.id) {
                if emitted.insert(record.id.clone()) {
                    done.push(Pending {
                        expected: 1,
                        records: vec![record],
                    });
                }
                continue;
            }
            let id = record.id.clone();
            if unlisted && !emitted.contains(&id) {
                pending.entry(id.clone()).or_insert(Pending {
                    expected: 1,
                    records: Vec::new(),
                });
            }
            let Some(entry) = pending.get_mut(&id) else {
                continue;
            };
            // A test an unlisted binary's output names twice is retried once.
            if retry && !failed.contains(&id.name) {
                entry.expected += 1;
                failed.push(id.name.clone());
            }
            entry.records.push(record);
            if entry.records.len() as u32 >= entry.expected {
                done.extend(pending.remove(&id));
                if unlisted {
                    emitted.insert(id);
                }
            }
        }
    }
    let mut newly_failed = 0;
    for attempts in done {
        let mut record = combine(attempts.records, &job.settings);
        record.kind = job.binary.binary.kind.word().to_owned();
        newly_failed += u32::from(record.failure);
        let _ = run.events.send(Event::TestFinished(Box::new(record)));
    }
    {
        let mut q = feed.lock();
        q.failures += newly_failed;
        if run.max_fail.is_some_and(|max| q.failures >= max) {
            q.stopped = true;
        }
        for selection in job.selection.retries(&failed) {
            let retry = Job {
                selection,
                attempt: job.attempt + 1,
                retry: job.retry + 1,
                ..job.clone()
            };
            q.jobs.push_back(Queued {
                ms: f64::NEG_INFINITY,
                place: 0,
                job: retry,
            });
        }
        q.busy -= 1;
    }
    feed.changed.notify_all();
}

/// Records for what `--max-fail` kept from running: a test some of whose attempts ran shows
/// them; a test none of whose ran is `not-run`, and so is a binary not yet run whole.
fn not_run(jobs: VecDeque<Job>, mut pending: HashMap<TestId, Pending>) -> Vec<TestRecord> {
    let mut records = Vec::new();
    // A test repeated (`--repeat`) or retried has several jobs left; it gets one record.
    let mut recorded = std::collections::HashSet::new();
    for job in &jobs {
        let names: Vec<&str> = match &job.selection {
            Selection::Listed { tests, .. } => tests.iter().map(|t| t.name.as_str()).collect(),
            Selection::Unlisted { only: Some(name) } => vec![name.as_str()],
            Selection::Unlisted { only: None } => vec![list::WHOLE_BINARY],
        };
        for name in names {
            let id = test_id(job, name);
            if !recorded.insert(id.clone()) {
                continue;
            }
            let attempts = pending.remove(&id).map(|p| p.records).unwrap_or_default();
            records.push(if attempts.is_empty() {
                TestRecord {
                    order: job.order,
                    ..TestRecord::not_run(id, Outcome::NotRun, false)
                }
            } else {
                combine(attempts, &job.settings)
            });
        }
    }
    records
}

/// Records for every test a job was to run, when none of them could run: `error` says why.
fn unrun_records(
    job: &Job,
    error: &str,
    spec: Option<&Arc<SandboxSpec>>,
    seed: Option<u64>,
) -> Vec<TestRecord> {
    let names: Vec<&str> = match &job.selection {
        Selection::Listed { tests, .. } => tests.iter().map(|t| t.name.as_str()).collect(),
        Selection::Unlisted { only: Some(name) } => vec![name.as_str()],
        Selection::Unlisted { only: None } => vec![list::WHOLE_BINARY],
    };
    names
        .into_iter()
        .map(|name| TestRecord {
            spec: spec.cloned(),
            error: Some(error.to_owned()),
            seed,
            order: job.order,
            ..TestRecord::not_run(test_id(job, name), Outcome::SandboxError, true)
        })
        .collect()
}

/// Runs `f`, turning a panic into its message. A worker that unwound would leave the others
/// waiting for its job forever; a bug met by one job is that job's tests' error instead, and
/// the run goes on (the engine cleans up whatever the job left, as after any failed sandbox).
fn contained<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// Runs one job's sandbox and reads its records. An unlisted binary whose libtest never
/// started goes back on the feed as a listed one (its listing taken here).
fn run_job(run: &Run, feed: &Feed, job: &Job) -> Vec<TestRecord> {
    let id = |name: &str| test_id(job, name);
    match &job.selection {
        Selection::Listed { tests, .. } => {
            for test in tests {
                let _ = run.events.send(Event::TestStarted(id(&test.name)));
            }
        }
        Selection::Unlisted { .. } => {
            let _ = run.events.send(Event::TestStarted(id(list::WHOLE_BINARY)));
        }
    }
    let listed = job.selection.listed();
    let key = match job.settings.isolation {
        Isolation::Test => id(listed.first().map_or("", |t| t.name.as_str())).to_string(),
        Isolation::Binary => job.binary.binary.id.clone(),
    };
    let seed = seed_for(run.run_seed, &key, job.attempt);
    let pass_through = sandbox_spec::passes_through(job, run.no_capture);
    let spec = sandbox_spec::for_job(
        job,
        run.filter,
        run.host_env,
        seed,
        pass_through,
        run.keep_writes.as_deref(),
    );
    // Shared by the records of every test it runs.
    let spec = Arc::new(spec);
    let started = Instant::now();
    let result = run.engine.run(&spec, Some(run.cancel));
    let duration = started.elapsed();
    let policies = job.settings.policies();
    let mut result = match result {
        Ok(result) => result,
        Err(e) => return unrun_records(job, &e.to_string(), Some(&spec), Some(seed)),
    };
    // Under `--isolation binary` the binary's output is all its tests' together: each failing
    // test gets its own section of it (`binary_records`), no test a copy of the whole.
    let shared_output = match job.settings.isolation {
        Isolation::Binary => result.output.take(),
        Isolation::Test => None,
    };
    let shared_sandbox = job.runs_several();
    let record = |name: &str, outcome: Outcome| {
        let failure = outcome.is_failure(policies);
        TestRecord {
            policies,
            seed: Some(seed),
            order: job.order,
            shared_sandbox,
            ..TestRecord::ran(id(name), outcome, failure, duration, &result, &spec)
        }
    };
    if let RunsAs::DocTest { should_panic } = job.binary.runs_as {
        let name = listed.first().map_or("", |t| t.name.as_str());
        return vec![record(
            name,
            classify_doctest(&result, should_panic, policies),
        )];
    }
    if job.settings.isolation == Isolation::Test {
        // Output passed through is not seen: the exit status alone says how the test went.
        let ran_one = result.exit != Exit::Code(0) || pass_through || ran_exactly_one(&result);
        let name = listed.first().map_or("", |t| t.name.as_str());
        return vec![record(name, classify(&result, ran_one, policies))];
    }
    let text = shared_output.as_ref().map(|o| o.text()).unwrap_or_default();
    let binary = BinaryRun {
        job,
        lines: libtest_results(&text),
        text: &text,
        outcome: classify(&result, true, policies),
        output: shared_output.as_ref(),
        exit: &result.exit,
        record: &record,
    };
    binary.records(run, feed, seed)
}

/// A run of a binary's tests in one sandbox (`--isolation binary`), read for each test's
/// record: from its own libtest line, else from the binary's outcome.
struct BinaryRun<'a> {
    job: &'a Job,
    /// The binary's output, and each test's result line in it.
    text: &'a str,
    lines: Vec<(String, String)>,
    output: Option<&'a harness::CapturedOutput>,
    /// How the binary itself ended.
    outcome: Outcome,
    exit: &'a Exit,
    record: &'a dyn Fn(&str, Outcome) -> TestRecord,
}

impl BinaryRun<'_> {
    fn records(&self, run: &Run, feed: &Feed, seed: u64) -> Vec<TestRecord> {
        match &self.job.selection {
            Selection::Listed { tests, .. } => {
                let tests = tests.iter().map(|t| (t.name.clone(), Plan::Run)).collect();
                self.finish(tests, Vec::new())
            }
            Selection::Unlisted { only } => {
                // libtest's own ending: its exit code for "all passed" or "some failed", and
                // a summary that counts every line. (The summary is in the output's tail and
                // the lines come first, in its head: a long failure section cut from the middle
                // leaves both.) A crash or kill after the summary is the binary's, and is
                // listed below.
                let libtest_ended = matches!(self.exit, Exit::Code(0) | Exit::Code(101));
                if libtest_ended && libtest_total(self.text) == Some(self.lines.len()) {
                    self.finish(self.reported(false), Vec::new())
                } else if run.cancel.is_cancelled() {
                    // Stopped: no listing. What the binary reported, and the rest as one record.
                    self.finish(self.reported(true), Vec::new())
                } else {
                    self.listed_after(run, feed, seed, only.as_deref())
                }
            }
        }
    }

    /// Records for `tests` (see [`binary_records`]), then `extra`.
    fn finish(&self, tests: Vec<(String, Plan)>, extra: Vec<TestRecord>) -> Vec<TestRecord> {
        let output = self.output.map(|o| (o, self.text));
        binary_records(
            self.job,
            tests,
            extra,
            &self.lines,
            &self.outcome,
            output,
            self.record,
        )
    }

    /// The tests the binary reported, by their lines; `rest`: and one record for the binary's
    /// outcome, which names no test.
    fn reported(&self, rest: bool) -> Vec<(String, Plan)> {
        let mut tests: Vec<(String, Plan)> = self
            .lines
            .iter()
            .map(|(name, result)| {
                let plan = if result == "ignored" {
                    Plan::Ignore
                } else {
                    Plan::Run
                };
                (name.clone(), plan)
            })
            .collect();
        if rest {
            tests.push((list::WHOLE_BINARY.to_owned(), Plan::Run));
        }
        tests
    }

    /// An unlisted binary whose output does not account for every test (it crashed, was
    /// killed, or is no libtest binary): its listing names the tests. One whose harness never
    /// started goes back on the feed as a listed job.
    fn listed_after(
        &self,
        run: &Run,
        feed: &Feed,
        seed: u64,
        only: Option<&str>,
    ) -> Vec<TestRecord> {
        let job = self.job;
        let listing = list::in_sandbox(run.engine, &job.binary, &job.settings, run.host_env, seed);
        let (names, tests) = match listing {
            Ok(listing) => (listing.names(), listing.tests),
            Err(record) => return self.finish(self.reported(true), vec![*record]),
        };
        let chosen: Vec<(String, bool, Plan)> = list::select(&tests, run.filter)
            .into_iter()
            .filter(|(name, _, _)| only.is_none_or(|o| o == name))
            .collect();
        let mut selected: Vec<(String, Plan)> = chosen
            .iter()
            .map(|(name, _, plan)| (name.clone(), *plan))
            .collect();
        if !self.text.contains("\nrunning ") && !self.text.starts_with("running ") {
            // libtest never started: the run says nothing about the tests, which go back on
            // the feed as listed ones.
            let whole_binary = only.is_none() && selected.len() == tests.len();
            let listed = Job {
                selection: Selection::Listed {
                    whole_binary,
                    listing: names,
                    tests: chosen
                        .into_iter()
                        .filter(|(_, _, plan)| *plan == Plan::Run)
                        .map(|(name, ignored, _)| SelectedTest { name, ignored })
                        .collect(),
                },
                ..job.clone()
            };
            selected.retain(|(_, plan)| *plan == Plan::Ignore);
            if !listed.selection.listed().is_empty() {
                feed.push(vec![listed]);
            } else if self.outcome != Outcome::Passed {
                // Nothing to run again: the failure is the binary's own.
                let binary = vec![(list::WHOLE_BINARY.to_owned(), Plan::Run)];
                return self.finish(binary, Vec::new());
            }
            return ignored_records(job, &selected).collect();
        }
        // A failure neither a test's own line nor a test without one carries (every listed
        // test reported, or none listed) is the binary's own.
        let carried = selected
            .iter()
            .any(|(name, plan)| *plan == Plan::Run && !self.lines.iter().any(|(l, _)| l == name));
        let explained = self.outcome == Outcome::Passed
            || (self.outcome == Outcome::Failed
                && self.lines.iter().any(|(_, result)| result == "FAILED"));
        if !explained && !carried {
            selected.push((list::WHOLE_BINARY.to_owned(), Plan::Run));
        }
        self.finish(selected, Vec::new())
    }
}

/// Records for `tests` of one binary's run: each with its own libtest line's outcome (tests
/// without one, the binary's), tests skipped as ignored without running, then `extra`; a retry
/// also gets a record for each retried test the run did not report. `output`: the binary's,
/// with its text.
#[allow(clippy::too_many_arguments)]
fn binary_records(
    job: &Job,
    tests: Vec<(String, Plan)>,
    extra: Vec<TestRecord>,
    lines: &[(String, String)],
    binary_outcome: &Outcome,
    output: Option<(&harness::CapturedOutput, &str)>,
    record: &dyn Fn(&str, Outcome) -> TestRecord,
) -> Vec<TestRecord> {
    // Each test's own line, the first when its name comes twice (a binary of many thousand
    // tests is looked up once per test).
    let mut results: HashMap<&str, &str> = HashMap::with_capacity(lines.len());
    for (name, result) in lines {
        results.entry(name.as_str()).or_insert(result.as_str());
    }
    let (ran, skipped): (Vec<_>, Vec<_>) = tests.into_iter().partition(|(_, p)| *p == Plan::Run);
    let unreported = match &job.selection {
        Selection::Unlisted { only: Some(only) } => std::iter::once(only)
            .filter(|n| !ran.iter().chain(&skipped).any(|(name, _)| name == *n))
            .map(|n| (n.clone(), Plan::Run))
            .collect(),
        _ => Vec::new(),
    };
    ran.iter()
        .chain(&unreported)
        .map(|(name, _)| {
            let outcome = match results.get(name.as_str()).copied() {
                Some("ok") => Outcome::Passed,
                Some("FAILED") => Outcome::Failed,
                Some("ignored") => Outcome::Ignored,
                _ if *binary_outcome == Outcome::Passed => Outcome::Failed,
                _ => binary_outcome.clone(),
            };
            let mut r = record(name, outcome);
            // The binary's output is shared: each test keeps only its own failure section
            // (passing tests print nothing of their own).
            r.output = match r.outcome {
                Outcome::Passed | Outcome::Ignored => None,
                _ => output.map(|(o, text)| own_section(o, text, name)),
            };
            r
        })
        .chain(ignored_records(job, &skipped))
        .chain(extra)
        .collect()
}

/// Records of tests skipped as ignored (`#[ignore]` without `--ignored`): they did not run.
fn ignored_records<'a>(
    job: &'a Job,
    tests: &'a [(String, Plan)],
) -> impl Iterator<Item = TestRecord> + 'a {
    tests
        .iter()
        .filter(|(_, plan)| *plan == Plan::Ignore)
        .map(|(name, _)| TestRecord::not_run(test_id(job, name), Outcome::Ignored, false))
}

/// One record from all attempts of a test: when some attempts failed and others did not, the
/// test is flaky; the attempt shown is the last failing one (its output explains the failure).
fn combine(mut attempts: Vec<TestRecord>, settings: &Resolved) -> TestRecord {
    if let [_] = attempts.as_slice() {
        // One attempt (nearly every test): nothing to combine.
        let mut record = attempts.swap_remove(0);
        record.attempts = 1;
        record.passes = u32::from(!record.failure);
        return record;
    }
    attempts.sort_by_key(|r| r.order);
    let total = attempts.len() as u32;
    let passes = attempts.iter().filter(|r| !r.failure).count() as u32;
    let outcomes: Vec<Outcome> = attempts.iter().map(|r| r.outcome.clone()).collect();
    let first_order = attempts.iter().filter_map(|r| r.order).min();
    let shown = attempts
        .iter()
        .rposition(|r| r.failure)
        .unwrap_or(attempts.len() - 1);
    let mut record = attempts.swap_remove(shown);
    if total > 1 {
        if passes > 0 && passes < total {
            record.outcome = Outcome::Flaky;
            record.failure = Outcome::Flaky.is_failure(settings.policies());
        }
        record.attempt_outcomes = outcomes;
    }
    record.attempts = total;
    record.passes = passes;
    record.order = first_order;
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_job_becomes_its_message() {
        assert_eq!(contained(|| 7), Ok(7));
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let literal = contained(|| -> u8 { panic!("a bug") });
        let formatted = contained(|| -> u8 { panic!("bug {}", 2) });
        std::panic::set_hook(hook);
        assert_eq!(literal, Err("a bug".to_owned()));
        assert_eq!(formatted, Err("bug 2".to_owned()));
    }

    /// A history where `sleeps` (400 ms) and `naps` (200 ms) mostly waited and `computes`
    /// (300 ms) did not.
    fn paced_history() -> History {
        let timed = |name: &str, ms: f64, cpu: f64| TestRecord {
            duration_ms: ms,
            cpu_user_ms: Some(cpu),
            cpu_system_ms: Some(0.0),
            ..TestRecord::not_run(
                crate::event::TestId {
                    binary_id: "a".to_owned(),
                    name: name.to_owned(),
                },
                Outcome::Passed,
                false,
            )
        };
        let mut history = History::default();
        history.record(&[
            timed("naps", 200.0, 2.0),
            timed("computes", 300.0, 290.0),
            timed("sleeps", 400.0, 4.0),
        ]);
        history
    }

    /// What `lane` takes from a feed of the three tests, `count` times.
    fn taken(history: &History, beside: bool, lane: Lane, count: usize) -> Vec<(String, bool)> {
        let cancel = harness::Cancel::new().unwrap();
        let feed = Feed::new(Some(history), beside);
        let jobs = ["naps", "computes", "sleeps"];
        feed.push(
            jobs.iter()
                .map(|n| crate::job::test_job("a", &[n]))
                .collect(),
        );
        feed.close();
        (0..count)
            .map_while(|_| feed.take(&cancel, lane))
            .map(|t| (t.job.selection.listed()[0].name.clone(), t.waits))
            .collect()
    }

    #[test]
    fn jobs_that_mostly_wait_run_beside_the_j_and_the_j_take_them_last() {
        let history = paced_history();
        let named = |list: &[(&str, bool)]| -> Vec<(String, bool)> {
            list.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect()
        };
        assert_eq!(
            taken(&history, true, Lane::Beside, 3),
            named(&[("sleeps", true), ("naps", true)]),
            "beside: only those that wait, longest first, and then the lane ends"
        );
        assert_eq!(
            taken(&history, true, Lane::Jobs, 3),
            named(&[("computes", false), ("sleeps", true), ("naps", true)]),
            "the -j compute first, then help with the waiting"
        );
        assert_eq!(
            taken(&history, false, Lane::Jobs, 3),
            named(&[("sleeps", false), ("computes", false), ("naps", false)]),
            "strict: one queue, longest first"
        );
    }

    #[test]
    fn without_a_history_tests_start_as_listed_whichever_binary_came_first() {
        let cancel = harness::Cancel::new().unwrap();
        let empty = History::default();
        let feed = Feed::new(Some(&empty), true);
        let job = |binary: &str, name: &str| crate::job::test_job(binary, &[name]);
        feed.push(vec![job("b", "z"), job("b", "y")]);
        let first = feed.take(&cancel, Lane::Jobs).unwrap();
        feed.push(vec![job("a", "x"), job("a", "w")]);
        feed.close();
        // Three: `first` still counts as running, so a fourth take would wait for it.
        let rest: Vec<String> = std::iter::from_fn(|| feed.take(&cancel, Lane::Jobs))
            .take(3)
            .map(|t| {
                let name = &t.job.selection.listed()[0].name;
                format!("{}::{name}", t.job.binary.binary.id)
            })
            .collect();
        assert_eq!(first.job.selection.listed()[0].name, "z");
        assert_eq!(rest, ["a::x", "a::w", "b::y"], "by binary, then as listed");
    }

    #[test]
    fn seeds_and_shuffles_are_reproducible() {
        assert_eq!(seed_for(1, "a", 0), seed_for(1, "a", 0));
        assert_ne!(seed_for(1, "a", 0), seed_for(1, "a", 1));
        assert_ne!(seed_for(1, "a", 0), seed_for(2, "a", 0));
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        shuffle(&mut a, 9);
        shuffle(&mut b, 9);
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
    }

    fn attempt(outcome: Outcome, order: usize) -> TestRecord {
        let failure = outcome == Outcome::Failed;
        TestRecord {
            order: Some(order),
            ..TestRecord::not_run(
                TestId {
                    binary_id: "b".into(),
                    name: "t".into(),
                },
                outcome,
                failure,
            )
        }
    }

    #[test]
    fn mixed_attempts_are_flaky() {
        let settings = Resolved::default();
        let r = combine(
            vec![attempt(Outcome::Passed, 1), attempt(Outcome::Failed, 2)],
            &settings,
        );
        assert_eq!(r.outcome, Outcome::Flaky);
        assert!(!r.failure, "flaky passes by default");
        assert_eq!((r.attempts, r.passes), (2, 1));
        let r = combine(
            vec![attempt(Outcome::Failed, 1), attempt(Outcome::Failed, 2)],
            &settings,
        );
        assert_eq!(r.outcome, Outcome::Failed);
        let r = combine(vec![attempt(Outcome::Passed, 3)], &settings);
        assert_eq!((r.outcome, r.attempts), (Outcome::Passed, 1));
    }
}
