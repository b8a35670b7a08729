//! How long each test took when it last ran, so that a run starts its longest tests first: one
//! slow test started last sets a run's wall time. Kept in `<target>/cargo-sandbox/history.json`
//! by binary id and test name (both survive a rebuild; a binary's path does not), written
//! whole to a file beside it and renamed over it, so a run killed halfway leaves the previous
//! history. A JSON report (`--history-from`) seeds it on a machine without one: CI keeps the
//! last run's report as an artifact more often than its target directory.

use crate::event::TestRecord;
use crate::job::{Job, Selection};
use crate::outcome::Outcome;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The format's version: a history of another is not read (it is rebuilt by the next run).
const VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct History {
    version: u32,
    /// Milliseconds, by binary id, then test name.
    tests: BTreeMap<String, BTreeMap<String, f64>>,
}

impl History {
    /// Where a workspace's history is kept.
    pub fn path(target_dir: &Path) -> PathBuf {
        target_dir.join("cargo-sandbox").join("history.json")
    }

    /// The history at `path`; an empty one when there is none yet, or it cannot be read (it
    /// only orders the run, and the run's end writes a new one).
    pub fn load(path: &Path) -> History {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<History>(&bytes).ok())
            .filter(|h| h.version == VERSION)
            .unwrap_or_default()
    }

    /// Takes in the durations of a JSON report's tests (`--history-from`), over the ones known.
    pub fn seed_from_report(&mut self, path: &Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let report: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a JSON report", path.display()))?;
        let tests = report
            .get("tests")
            .and_then(|t| t.as_array())
            .with_context(|| format!("{} has no `tests`: not a JSON report", path.display()))?;
        for test in tests {
            let (Some(binary), Some(name), Some(ms), Some(outcome)) = (
                test.get("binary_id").and_then(|v| v.as_str()),
                test.get("name").and_then(|v| v.as_str()),
                test.get("duration_ms").and_then(|v| v.as_f64()),
                test.get("outcome").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            if !matches!(outcome, "ignored" | "not-run" | "skipped-by-partition") {
                self.set(binary, name, ms);
            }
        }
        Ok(())
    }

    fn set(&mut self, binary: &str, name: &str, ms: f64) {
        self.version = VERSION;
        self.tests
            .entry(binary.to_owned())
            .or_default()
            .insert(name.to_owned(), ms);
    }

    /// Takes in what a run measured: every test that ran (the others keep what they had, as
    /// tests of other partitions and filters do).
    pub fn record(&mut self, records: &[TestRecord]) {
        for record in records {
            let ran = !matches!(
                record.outcome,
                Outcome::Ignored | Outcome::NotRun | Outcome::SkippedByPartition
            );
            if ran && record.ran_in_sandbox() {
                self.set(&record.id.binary_id, &record.id.name, record.duration_ms);
            }
        }
    }

    /// Writes the history to a file beside `path`, then renames it over `path`.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .context("the history's path has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let staged = dir.join(format!(".history.{}.json", std::process::id()));
        let text = serde_json::to_vec(self).context("encoding the history")?;
        std::fs::write(&staged, text).with_context(|| format!("writing {}", staged.display()))?;
        std::fs::rename(&staged, path).with_context(|| format!("replacing {}", path.display()))
    }

    /// How long a job is expected to take: its test's last duration; a group's (they ran in
    /// one sandbox, each recorded with its whole duration), the longest; a binary run whole,
    /// the longest of its tests. `None`: some of it never ran.
    pub fn expected_ms(&self, job: &Job) -> Option<f64> {
        let binary = self.tests.get(&job.binary.binary.id)?;
        match &job.selection {
            Selection::Listed { tests, .. } => tests
                .iter()
                .map(|t| binary.get(&t.name).copied())
                .try_fold(0.0_f64, |longest, ms| Some(longest.max(ms?))),
            Selection::Unlisted { only: Some(name) } => binary.get(name).copied(),
            Selection::Unlisted { only: None } => binary.values().copied().reduce(f64::max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TestId;

    fn record(binary: &str, name: &str, outcome: Outcome, ms: f64) -> TestRecord {
        TestRecord {
            duration_ms: ms,
            cpu_user_ms: Some(1.0),
            ..TestRecord::not_run(
                TestId {
                    binary_id: binary.to_owned(),
                    name: name.to_owned(),
                },
                outcome,
                false,
            )
        }
    }

    #[test]
    fn keeps_what_ran_and_survives_a_round_trip() {
        let dir = std::env::temp_dir().join(format!("history-test-{}", std::process::id()));
        let path = History::path(&dir);
        let mut history = History::load(&path);
        assert!(history.tests.is_empty());
        history.record(&[
            record("a", "slow", Outcome::Passed, 900.0),
            record("a", "failing", Outcome::Failed, 5.0),
            record("a", "skipped", Outcome::Ignored, 0.0),
        ]);
        history.save(&path).unwrap();
        let mut again = History::load(&path);
        assert_eq!(again.tests["a"].len(), 2, "{:?}", again.tests);
        again.record(&[record("a", "slow", Outcome::Passed, 800.0)]);
        assert_eq!(again.tests["a"]["slow"], 800.0);
        assert_eq!(
            again.tests["a"]["failing"], 5.0,
            "tests not run keep theirs"
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert!(History::load(&path).tests.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
