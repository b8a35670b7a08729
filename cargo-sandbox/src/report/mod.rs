//! Reporters. Each consumes the runner's events and the finished run; none re-derives an
//! outcome. The JSON report is also the model `cargo sandbox report` reads back.

pub mod binary_hashes;
pub mod diff;
pub mod github;
pub mod json;
pub mod junit;
pub mod terminal;

use crate::event::{Event, TestRecord};
use crate::outcome::Outcome;
use harness::Protections;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A finished run, as every reporter sees it (`Reporter::finish`), and as
/// `cargo sandbox report` reads it back from the JSON report.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    /// In report order: binary id, then test name.
    pub records: Vec<TestRecord>,
    pub duration_ms: f64,
    pub cancelled: bool,
    pub protections: Protections,
    pub kernel: String,
    pub tool_version: String,
    /// Panic locations in test output are relative to it.
    pub workspace_root: PathBuf,
    /// The run's seed (`--seed`): each test's `SANDBOX_SEED` and the `--shuffle` order follow.
    pub seed: u64,
    /// The configuration profile in force.
    pub profile: String,
    pub fingerprint: Fingerprint,
}

/// What the results depend on besides the code: tool, kernel, cgroups, compiler, binaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    pub tool_version: String,
    pub kernel: String,
    pub cgroup_version: String,
    pub rustc_version: String,
    /// sha256 of each test binary, by binary id.
    pub binaries: BTreeMap<String, String>,
}

/// A fingerprint made on a thread of its own while the tests run (one thread, so it takes
/// little from them).
pub struct InBackground(std::thread::JoinHandle<(Fingerprint, Option<String>)>);

impl InBackground {
    pub fn start(
        cgroup_version: &'static str,
        contexts: Vec<std::sync::Arc<crate::job::BinaryContext>>,
        target_dir: std::path::PathBuf,
    ) -> InBackground {
        InBackground(std::thread::spawn(move || {
            Fingerprint::new(cgroup_version, &contexts, 1, &target_dir)
        }))
    }

    /// The fingerprint; a warning it has is said now, on the thread that prints the run, not
    /// between two of its status lines.
    pub fn finish(self) -> Fingerprint {
        let (fingerprint, warning) = self.0.join().unwrap_or_default();
        if let Some(warning) = warning {
            say!("cargo-sandbox: warning: {warning}");
        }
        fingerprint
    }
}

impl Fingerprint {
    /// Hashes the binaries on `workers` threads, but those whose digest was kept under
    /// `target_dir` and which did not change since (see [`binary_hashes`]); with a warning
    /// when the digests could not be kept for the next run.
    pub fn new(
        cgroup_version: &str,
        contexts: &[std::sync::Arc<crate::job::BinaryContext>],
        workers: usize,
        target_dir: &std::path::Path,
    ) -> (Fingerprint, Option<String>) {
        let rustc_version = std::process::Command::new(crate::env::rustc())
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let kept = binary_hashes::BinaryHashes::load(target_dir);
        let hashed = crate::schedule::parallel_map(contexts, workers, |ctx| {
            kept.sha256(&ctx.binary.path).ok()
        });
        let binaries = contexts
            .iter()
            .zip(&hashed)
            .map(|(ctx, hashed)| {
                let sha256 = hashed.as_ref().map(|h| h.sha256.clone());
                (ctx.binary.id.clone(), sha256.unwrap_or_default())
            })
            .collect();
        let hashed: Vec<_> = hashed.into_iter().flatten().collect();
        let warning = kept
            .save(target_dir, &hashed)
            .err()
            .map(|e| format!("the test binaries' digests were not kept: {e:#}"));
        let fingerprint = Fingerprint {
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            kernel: kernel(),
            cgroup_version: cgroup_version.to_owned(),
            rustc_version,
            binaries,
        };
        (fingerprint, warning)
    }
}

pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A digest as lowercase hex, as reports and archives show it.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

impl FinishedRun {
    pub fn new(
        records: Vec<TestRecord>,
        duration_ms: f64,
        cancelled: bool,
        protections: Protections,
        workspace_root: PathBuf,
    ) -> FinishedRun {
        FinishedRun {
            records: sorted(records),
            duration_ms,
            cancelled,
            protections,
            kernel: kernel(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            workspace_root,
            seed: 0,
            profile: "default".to_owned(),
            fingerprint: Fingerprint::default(),
        }
    }

    pub fn failed(&self) -> bool {
        self.records.iter().any(|r| r.failure)
    }
}

/// A consumer of the run's events.
pub trait Reporter {
    fn event(&mut self, _event: &Event) {}
    /// Whether the reporter wants the run's start before any test (the terminal: its lines
    /// come after cargo's). The others get each test as it finishes, also while cargo builds.
    fn waits_for_the_start(&self) -> bool {
        false
    }
    /// No more events for now: what is buffered goes out.
    fn flush(&mut self) {}
    fn finish(&mut self, run: &FinishedRun) -> anyhow::Result<()>;
}

/// Counts per outcome word.
pub fn totals(records: &[TestRecord]) -> BTreeMap<String, usize> {
    let mut totals = BTreeMap::new();
    for r in records {
        *totals.entry(r.outcome.word()).or_insert(0) += 1;
    }
    totals
}

/// Records in report order: binary id, then test name, whatever order they finished in.
pub fn sorted(mut records: Vec<TestRecord>) -> Vec<TestRecord> {
    // Positions are sorted, then the records swapped into place along each cycle of that
    // permutation: a record is large (over 500 bytes), and sorting the records themselves
    // moved each a dozen times; moving them into a second vector cost more than the sort
    // itself (a megabyte to fault in at a 2,000-test run's end). Ties keep arrival order.
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_unstable_by(|&a, &b| records[a].id.cmp(&records[b].id).then(a.cmp(&b)));
    permute(&mut records, &mut order);
    records
}

/// Puts at each position `i` the item that was at `order[i]`, by swaps in place. `order` is
/// used up.
fn permute<T>(items: &mut [T], order: &mut [usize]) {
    const DONE: usize = usize::MAX;
    for start in 0..order.len() {
        let mut at = start;
        while order[at] != DONE {
            let from = std::mem::replace(&mut order[at], DONE);
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

pub fn ran(records: &[TestRecord]) -> usize {
    records
        .iter()
        .filter(|r| {
            !matches!(
                r.outcome,
                Outcome::Ignored | Outcome::SkippedByPartition | Outcome::NotRun
            )
        })
        .count()
}

/// The `n` tests with the highest peak memory (ties by id, so the list is stable).
pub fn top_by_memory(records: &[TestRecord], n: usize) -> Vec<&TestRecord> {
    top_by(records, n, |a, b| {
        b.memory_peak_bytes.cmp(&a.memory_peak_bytes)
    })
}

/// The `n` tests that used the most CPU time.
pub fn top_by_cpu(records: &[TestRecord], n: usize) -> Vec<&TestRecord> {
    top_by(records, n, |a, b| b.cpu_ms().total_cmp(&a.cpu_ms()))
}

/// The first `n` of the tests that ran in a sandbox, in the `order` given, ties by id.
fn top_by(
    records: &[TestRecord],
    n: usize,
    order: impl Fn(&TestRecord, &TestRecord) -> std::cmp::Ordering,
) -> Vec<&TestRecord> {
    let mut ran: Vec<&TestRecord> = records.iter().filter(|r| r.ran_in_sandbox()).collect();
    ran.sort_by(|a, b| order(a, b).then_with(|| a.id.cmp(&b.id)));
    ran.truncate(n);
    ran
}

/// Where a failing test panicked, from libtest's `panicked at FILE:LINE:COL:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicLocation {
    pub file: String,
    pub line: u32,
    pub message: String,
}

pub fn panic_location(output: &str) -> Option<PanicLocation> {
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        let Some((_, at)) = line.split_once(" panicked at ") else {
            continue;
        };
        let at = at.trim_end_matches(':');
        let mut parts = at.rsplitn(3, ':');
        let _column = parts.next()?;
        let line_no = parts.next()?.parse().ok()?;
        let file = parts.next()?.to_owned();
        let message = lines.next().unwrap_or_default().trim().to_owned();
        return Some(PanicLocation {
            file,
            line: line_no,
            message,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TestId;

    #[test]
    fn permute_puts_each_item_where_the_order_says_along_every_cycle() {
        // Cycles of length 1, 2 and 4, and every permutation of five items.
        let mut items = vec!['a', 'b', 'c', 'd', 'e', 'f', 'g'];
        permute(&mut items, &mut [0, 2, 1, 6, 3, 4, 5]);
        assert_eq!(items, vec!['a', 'c', 'b', 'g', 'd', 'e', 'f']);
        let mut order: Vec<usize> = (0..5).collect();
        let mut count = 0;
        loop {
            let mut items: Vec<usize> = (0..5).map(|i| i * 10).collect();
            permute(&mut items, &mut order.clone());
            let expected: Vec<usize> = order.iter().map(|i| i * 10).collect();
            assert_eq!(items, expected, "order {order:?}");
            count += 1;
            // The next permutation in lexicographic order.
            let Some(i) = (0..4).rev().find(|&i| order[i] < order[i + 1]) else {
                break;
            };
            let j = (i + 1..5).rev().find(|&j| order[j] > order[i]).unwrap();
            order.swap(i, j);
            order[i + 1..].reverse();
        }
        assert_eq!(count, 120);
    }

    #[test]
    fn records_are_sorted_by_binary_then_name_and_equal_ids_keep_their_order() {
        let record = |binary: &str, name: &str, duration_ms: f64| TestRecord {
            duration_ms,
            ..TestRecord::not_run(
                TestId {
                    binary_id: binary.to_owned(),
                    name: name.to_owned(),
                },
                Outcome::Passed,
                false,
            )
        };
        let records = vec![
            record("b", "x", 1.0),
            record("a", "z", 2.0),
            record("b", "a", 3.0),
            record("a", "z", 4.0),
            record("a", "b", 5.0),
        ];
        let order: Vec<(String, String, f64)> = sorted(records)
            .into_iter()
            .map(|r| (r.id.binary_id, r.id.name, r.duration_ms))
            .collect();
        let expected = [
            ("a", "b", 5.0),
            ("a", "z", 2.0),
            ("a", "z", 4.0),
            ("b", "a", 3.0),
            ("b", "x", 1.0),
        ];
        let expected: Vec<(String, String, f64)> = expected
            .iter()
            .map(|(b, n, d)| (b.to_string(), n.to_string(), *d))
            .collect();
        assert_eq!(order, expected);
        // Enough of them for the sort to partition (a handful is sorted by insertion, which
        // keeps equal ones in order anyway): three ids, many records each, interleaved.
        let many: Vec<TestRecord> = (0..300)
            .map(|i| record("bin", ["c", "a", "b"][i % 3], i as f64))
            .collect();
        let sorted = sorted(many);
        for pair in sorted.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(
                a.id < b.id || (a.id == b.id && a.duration_ms < b.duration_ms),
                "{} {} then {} {}",
                a.id,
                a.duration_ms,
                b.id,
                b.duration_ms
            );
        }
    }

    #[test]
    fn finds_panic_locations() {
        let out = "running 1 test\nthread 'tests::fails' (3) panicked at basic/src/lib.rs:17:9:\nassertion `left == right` failed\n";
        assert_eq!(
            panic_location(out),
            Some(PanicLocation {
                file: "basic/src/lib.rs".into(),
                line: 17,
                message: "assertion `left == right` failed".into()
            })
        );
        assert_eq!(panic_location("no panic here"), None);
    }
}
