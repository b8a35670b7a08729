//! The typed events the runner emits. Every reporter consumes these; none re-derives an outcome.

use crate::outcome::Outcome;
use harness::{SandboxResult, SandboxSpec};
use serde::Serialize;
use std::time::Duration;

/// A test's identity: its binary's id, then its name (the order every report lists them in).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TestId {
    pub binary_id: String,
    pub name: String,
}

impl std::fmt::Display for TestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.binary_id, self.name)
    }
}

/// Everything known about one finished (or skipped) test.
#[derive(Debug, Clone, Serialize)]
pub struct TestRecord {
    #[serde(flatten)]
    pub id: TestId,
    pub outcome: Outcome,
    /// Whether the outcome counts as a failure under the run's policies.
    pub failure: bool,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    /// What the sandbox saw; absent for tests that did not run. Under `--isolation binary` it is
    /// the whole binary's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxResult>,
    /// The exact sandbox the test ran in (enough to rerun it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<SandboxSpec>,
    /// Why the sandbox could not run the test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TestRecord {
    pub fn output(&self) -> String {
        self.sandbox
            .as_ref()
            .and_then(|s| s.output.as_ref())
            .map(|o| o.text())
            .unwrap_or_default()
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0)
}

#[derive(Debug)]
pub enum Event {
    RunStarted {
        tests: usize,
        binaries: usize,
        ignored: usize,
    },
    TestStarted(TestId),
    TestFinished(Box<TestRecord>),
}
