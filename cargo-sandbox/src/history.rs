//! How long each test took when it last ran, so that a run starts its longest tests first: one
//! slow test started last sets a run's wall time. Kept in `<target>/cargo-sandbox/history.json`
//! by binary id and test name (both survive a rebuild; a binary's path does not), written
//! whole to a file beside it and renamed over it, so a run killed halfway leaves the previous
//! history. A JSON report (`--history-from`) seeds it on a machine without one: CI keeps the
//! last run's report as an artifact more often than its target directory.
//!
//! Each test's CPU time is kept beside its duration: a test that spent its last run waiting
//! (sleeps, timers, a child it waits for) rather than computing runs beside the `-j` tests,
//! not in one of their slots (see [`History::waits`]).
//!
//! A sandbox that ran several tests (`--isolation binary`) says nothing of each: its time is
//! kept as its binary's, and the tests keep what a run of their own last measured.

use crate::event::TestRecord;
use crate::job::{Job, Selection};
use crate::outcome::Outcome;
use crate::state_file;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The format's version: a history of another is not read (it is rebuilt by the next run).
/// Version 1's entries (a duration alone) are still read, as timings without a CPU time.
const VERSION: u32 = 1;

/// A test that took at least this long...
const WAITS_MIN_MS: f64 = 50.0;
/// ...and was on a CPU for at most this share of it, mostly waited.
const WAITS_CPU_SHARE: f64 = 0.1;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct History {
    version: u32,
    /// By binary id, then test name.
    tests: BTreeMap<String, BTreeMap<String, Timing>>,
    /// By binary id: its longest sandbox that ran several of its tests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    binaries: BTreeMap<String, Timing>,
    /// The file this is exactly the content of (see [`History::into_current`]); `None` once
    /// seeded from a report.
    #[serde(skip)]
    read_from: Option<state_file::Stamp>,
}

/// One test's timing from a run, as [`History::take`] takes it in.
struct Measured<'r> {
    binary: &'r str,
    name: &'r str,
    /// Its sandbox ran other tests too: the timing is that sandbox's.
    shared_sandbox: bool,
    timing: Timing,
}

/// What one test's last run measured: `{"ms":…,"cpu_ms":…}`, or a number (a duration alone).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
enum Timing {
    Measured {
        /// Wall time, milliseconds.
        ms: f64,
        /// CPU time of everything in its sandbox, user and system, milliseconds.
        cpu_ms: f64,
    },
    /// A duration alone: a history written before CPU times were kept, or a sandbox whose
    /// CPU time could not be read.
    Duration(f64),
}

/// Read by hand: serde's untagged enums buffer every value and try each variant in turn, which
/// was most of a history's load (read twice a run, a value per test).
impl<'de> Deserialize<'de> for Timing {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timing, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Timing;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration in ms, or {\"ms\", \"cpu_ms\"}")
            }

            fn visit_f64<E: serde::de::Error>(self, ms: f64) -> Result<Timing, E> {
                Ok(Timing::Duration(ms))
            }

            fn visit_u64<E: serde::de::Error>(self, ms: u64) -> Result<Timing, E> {
                Ok(Timing::Duration(ms as f64))
            }

            fn visit_i64<E: serde::de::Error>(self, ms: i64) -> Result<Timing, E> {
                Ok(Timing::Duration(ms as f64))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Timing, A::Error> {
                let (mut ms, mut cpu_ms) = (None, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "ms" => ms = Some(map.next_value::<f64>()?),
                        "cpu_ms" => cpu_ms = Some(map.next_value::<f64>()?),
                        _ => map.next_value::<serde::de::IgnoredAny>().map(|_| ())?,
                    }
                }
                let ms = ms.ok_or_else(|| serde::de::Error::missing_field("ms"))?;
                Ok(match cpu_ms {
                    Some(cpu_ms) => Timing::Measured { ms, cpu_ms },
                    None => Timing::Duration(ms),
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Timing {
    fn new(ms: f64, user_ms: Option<f64>, system_ms: Option<f64>) -> Timing {
        match (user_ms, system_ms) {
            (Some(user), Some(system)) => Timing::Measured {
                ms,
                cpu_ms: user + system,
            },
            _ => Timing::Duration(ms),
        }
    }

    fn ms(self) -> f64 {
        match self {
            Timing::Measured { ms, .. } | Timing::Duration(ms) => ms,
        }
    }

    /// It took a while, nearly all of it off the CPU.
    fn waited(self) -> bool {
        match self {
            Timing::Measured { ms, cpu_ms } => ms >= WAITS_MIN_MS && cpu_ms <= ms * WAITS_CPU_SHARE,
            Timing::Duration(_) => false,
        }
    }
}

impl History {
    /// Where a workspace's history is kept.
    pub fn path(target_dir: &Path) -> PathBuf {
        state_file::path(target_dir, "history.json")
    }

    /// The history at `path`; an empty one when there is none yet, or it cannot be read (it
    /// only orders the run, and the run's end writes a new one).
    pub fn load(path: &Path) -> History {
        let (history, read_from) = state_file::load_stamped::<History>(path);
        History {
            read_from,
            ..history.filter(|h| h.version == VERSION).unwrap_or_default()
        }
    }

    /// The history kept at `path` now: this one when the file is still the one it was read
    /// from (nothing saved since), else the file read again. A run's end records into it
    /// without parsing again what its start read (a millisecond at 2,000 tests).
    pub fn into_current(self, path: &Path) -> History {
        match self.read_from {
            Some(read) if state_file::Stamp::now(path) == Some(read) => self,
            _ => History::load(path),
        }
    }

    /// Takes in the durations of a JSON report's tests (`--history-from`), over the ones known.
    pub fn seed_from_report(&mut self, path: &Path) -> anyhow::Result<()> {
        // No longer what the file holds.
        self.read_from = None;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let report: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a JSON report", path.display()))?;
        let tests = report
            .get("tests")
            .and_then(|t| t.as_array())
            .with_context(|| format!("{} has no `tests`: not a JSON report", path.display()))?;
        let mut timings = Vec::new();
        for test in tests {
            let (Some(binary), Some(name), Some(ms), Some(outcome)) = (
                test.get("binary_id").and_then(|v| v.as_str()),
                test.get("name").and_then(|v| v.as_str()),
                test.get("duration_ms").and_then(|v| v.as_f64()),
                test.get("outcome").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            let cpu = |key: &str| test.get(key).and_then(|v| v.as_f64());
            if !matches!(outcome, "ignored" | "not-run" | "skipped-by-partition") {
                timings.push(Measured {
                    binary,
                    name,
                    shared_sandbox: test.get("shared_sandbox").and_then(|v| v.as_bool())
                        == Some(true),
                    timing: Timing::new(ms, cpu("cpu_user_ms"), cpu("cpu_system_ms")),
                });
            }
        }
        self.take(timings.into_iter());
        Ok(())
    }

    /// Takes in one run's timings (of a report or of this run): each test's own, and for a
    /// binary whose tests shared sandboxes, its longest such sandbox (each of the tests'
    /// records carries its sandbox's).
    fn take<'r>(&mut self, timings: impl Iterator<Item = Measured<'r>>) {
        self.version = VERSION;
        let mut shared: BTreeMap<&str, Timing> = BTreeMap::new();
        for Measured {
            binary,
            name,
            shared_sandbox,
            timing,
        } in timings
        {
            if shared_sandbox {
                let kept = shared.entry(binary).or_insert(timing);
                if timing.ms() > kept.ms() {
                    *kept = timing;
                }
            } else {
                self.tests
                    .entry(binary.to_owned())
                    .or_default()
                    .insert(name.to_owned(), timing);
            }
        }
        for (binary, timing) in shared {
            self.binaries.insert(binary.to_owned(), timing);
        }
    }

    /// Takes in what a run measured: every test that ran (the others keep what they had, as
    /// tests of other partitions and filters do).
    pub fn record(&mut self, records: &[TestRecord]) {
        let ran = records.iter().filter(|record| {
            !matches!(
                record.outcome,
                Outcome::Ignored | Outcome::NotRun | Outcome::SkippedByPartition
            ) && record.ran_in_sandbox()
        });
        self.take(ran.map(|record| Measured {
            binary: &record.id.binary_id,
            name: &record.id.name,
            shared_sandbox: record.shared_sandbox,
            timing: Timing::new(record.duration_ms, record.cpu_user_ms, record.cpu_system_ms),
        }));
    }

    /// Writes the history to a file beside `path`, then renames it over `path`.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        state_file::save(path, self)
    }

    /// How long a job is expected to take: its test's last duration. One that runs several
    /// tests: its binary's last sandbox that ran several, else the longest of its tests (a
    /// whole binary's, of those known). `None`: some of it never ran.
    pub fn expected_ms(&self, job: &Job) -> Option<f64> {
        let id = &job.binary.binary.id;
        if let Some(timing) = self.binaries.get(id).filter(|_| job.runs_several()) {
            return Some(timing.ms());
        }
        let binary = self.tests.get(id)?;
        let ms = |name: &str| binary.get(name).map(|t| t.ms());
        match &job.selection {
            Selection::Listed { tests, .. } => tests
                .iter()
                .map(|t| ms(&t.name))
                .try_fold(0.0_f64, |longest, ms| Some(longest.max(ms?))),
            Selection::Unlisted { only: Some(name) } => ms(name),
            Selection::Unlisted { only: None } => binary.values().map(|t| t.ms()).reduce(f64::max),
        }
    }

    /// Whether a job is one test that spent its last run waiting: at least 50 ms, at most a
    /// tenth of it on a CPU. Such a job needs no CPU of its own, so it runs beside the `-j`
    /// jobs. A group or a binary run whole is never one (what it does next is not known).
    pub fn waits(&self, job: &Job) -> bool {
        let name = match &job.selection {
            Selection::Listed { tests, .. } if tests.len() == 1 => &tests[0].name,
            Selection::Unlisted { only: Some(name) } => name,
            _ => return false,
        };
        self.tests
            .get(&job.binary.binary.id)
            .and_then(|binary| binary.get(name))
            .is_some_and(|t| t.waited())
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
            cpu_system_ms: Some(0.5),
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
    fn the_history_read_at_the_start_serves_the_end_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = History::path(dir.path());
        let mut first = History::default();
        first.record(&[record("a", "t", Outcome::Passed, 10.0)]);
        first.save(&path).unwrap();
        // What a run's start read, then (in memory only) something the file does not hold:
        // kept only when nothing was saved since.
        let marked = || {
            let mut read = History::load(&path);
            read.tests.entry("marker".into()).or_default();
            read
        };
        assert!(marked().into_current(&path).tests.contains_key("marker"));
        let stale = marked();
        let mut other = History::load(&path);
        other.record(&[record("a", "t", Outcome::Passed, 20.0)]);
        other.save(&path).unwrap();
        let now = stale.into_current(&path);
        assert!(!now.tests.contains_key("marker"), "read again");
        assert_eq!(now.tests["a"]["t"].ms(), 20.0, "another run's save is kept");
        // Seeded from a report, it is no longer the file's content.
        let report = dir.path().join("report.json");
        std::fs::write(&report, r#"{"tests": []}"#).unwrap();
        let mut seeded = marked();
        seeded.seed_from_report(&report).unwrap();
        assert!(!seeded.into_current(&path).tests.contains_key("marker"));
        // No file when the run started, none at its end.
        let absent = History::path(&dir.path().join("elsewhere"));
        assert!(History::load(&absent)
            .into_current(&absent)
            .tests
            .is_empty());
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
        assert_eq!(
            again.tests, history.tests,
            "every timing read back as written"
        );
        assert_eq!(
            again.tests["a"]["slow"],
            Timing::Measured {
                ms: 900.0,
                cpu_ms: 1.5
            }
        );
        assert_eq!(again.tests["a"].len(), 2, "{:?}", again.tests);
        again.record(&[record("a", "slow", Outcome::Passed, 800.0)]);
        assert_eq!(again.tests["a"]["slow"].ms(), 800.0);
        assert_eq!(
            again.tests["a"]["failing"].ms(),
            5.0,
            "tests not run keep theirs"
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert!(History::load(&path).tests.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_test_that_mostly_waited_runs_beside_the_others() {
        let mut history = History::default();
        let timed = |ms: f64, cpu: f64| TestRecord {
            cpu_user_ms: Some(cpu * 0.75),
            cpu_system_ms: Some(cpu * 0.25),
            ..record("a", "", Outcome::Passed, ms)
        };
        let tests = [
            ("sleeps", timed(400.0, 8.0)),
            ("computes", timed(400.0, 390.0)),
            ("waits_a_tenth", timed(400.0, 40.0)),
            ("waits_a_little_more", timed(400.0, 41.0)),
            ("short", timed(40.0, 0.5)),
            (
                "failed_while_sleeping",
                TestRecord {
                    outcome: Outcome::Failed,
                    ..timed(400.0, 1.0)
                },
            ),
            (
                "no_cpu_figure",
                TestRecord {
                    cpu_system_ms: None,
                    ..timed(400.0, 1.0)
                },
            ),
        ];
        let records: Vec<TestRecord> = tests
            .iter()
            .map(|(name, r)| TestRecord {
                id: TestId {
                    binary_id: "a".to_owned(),
                    name: (*name).to_owned(),
                },
                ..r.clone()
            })
            .collect();
        history.record(&records);
        let waits = |names: &[&str]| history.waits(&crate::job::test_job("a", names));
        assert!(waits(&["sleeps"]));
        assert!(waits(&["waits_a_tenth"]));
        assert!(
            waits(&["failed_while_sleeping"]),
            "an outcome says nothing of its pace"
        );
        assert!(!waits(&["computes"]));
        assert!(!waits(&["waits_a_little_more"]));
        assert!(!waits(&["short"]), "too short to be worth a place beside");
        assert!(!waits(&["no_cpu_figure"]));
        assert!(!waits(&["never_seen"]));
        assert!(
            !waits(&["sleeps", "sleeps"]),
            "a group is never placed beside"
        );
        assert!(!history.waits(&crate::job::test_job("b", &["sleeps"])));
    }

    #[test]
    fn a_sandbox_shared_by_several_tests_is_its_binarys_not_theirs() {
        let mut history = History::default();
        history.record(&[
            record("a", "slow", Outcome::Passed, 900.0),
            record("a", "quick", Outcome::Passed, 2.0),
        ]);
        let shared = |name: &str, ms: f64| TestRecord {
            shared_sandbox: true,
            ..record("a", name, Outcome::Passed, ms)
        };
        // `--isolation binary`: two groups of the binary's tests, each test carrying its group's.
        history.record(&[
            shared("slow", 3000.0),
            shared("quick", 3000.0),
            shared("other", 1200.0),
        ]);
        let job = |names: &[&str]| crate::job::test_job("a", names);
        assert_eq!(history.expected_ms(&job(&["slow"])), Some(900.0));
        assert_eq!(history.expected_ms(&job(&["quick"])), Some(2.0));
        assert_eq!(
            history.expected_ms(&job(&["other"])),
            None,
            "a test seen only in a shared sandbox is still unknown on its own"
        );
        assert_eq!(history.expected_ms(&job(&["slow", "quick"])), Some(3000.0));
        history.record(&[shared("slow", 1500.0), shared("quick", 1500.0)]);
        assert_eq!(
            history.expected_ms(&job(&["slow", "quick"])),
            Some(1500.0),
            "the last run's, not the longest ever"
        );
        let text = serde_json::to_string(&history).unwrap();
        let again: History = serde_json::from_str(&text).unwrap();
        assert_eq!(again.binaries, history.binaries);
    }

    #[test]
    fn a_history_of_durations_alone_still_orders_the_run() {
        let old = br#"{"version":1,"tests":{"a":{"slow":900.0,"quick":1.5,"whole":2}}}"#;
        let history: History = serde_json::from_slice(old).unwrap();
        let job = |name: &str| crate::job::test_job("a", &[name]);
        assert_eq!(history.expected_ms(&job("slow")), Some(900.0));
        assert_eq!(history.expected_ms(&job("quick")), Some(1.5));
        assert_eq!(history.expected_ms(&job("whole")), Some(2.0));
        assert!(
            !history.waits(&job("slow")),
            "no CPU time: not known to wait"
        );
        let text = serde_json::to_string(&history).unwrap();
        assert_eq!(
            serde_json::from_str::<History>(&text).unwrap().tests,
            history.tests
        );
    }
}
