//! The one mapping from what happened in a sandbox to a test's outcome word.

use crate::config::{FileLeakPolicy, Policy};
use harness::{Exit, SandboxResult};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
    TimedOut,
    /// The memory cap's OOM killer struck.
    Oom,
    /// The pid cap refused forks: a fork (or thread) bomb was contained.
    ForkBomb,
    /// Killed by a signal, named (`SIGSEGV`, `SIGABRT`...).
    Signal(String),
    /// Passed, but left processes behind (which were killed).
    Leaked,
    /// Passed, but tried to reach the network.
    Network,
    /// The run was interrupted while this test ran.
    Cancelled,
    /// The sandbox itself failed for this test.
    SandboxError,
    /// Mixed outcomes over repeats or retries.
    Flaky,
    /// Passed, but changed files in the (copy-on-write) workspace.
    FileLeak,
    /// Selected, but another shard's (`--partition`).
    SkippedByPartition,
    /// Selected, but `--fail-fast` / `--max-fail` stopped the run before it started.
    NotRun,
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.word())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(word: &str) -> Result<Outcome, String> {
        Ok(match word {
            "passed" => Outcome::Passed,
            "failed" => Outcome::Failed,
            "ignored" => Outcome::Ignored,
            "timed-out" => Outcome::TimedOut,
            "oom" => Outcome::Oom,
            "fork-bomb" => Outcome::ForkBomb,
            "leaked" => Outcome::Leaked,
            "network" => Outcome::Network,
            "cancelled" => Outcome::Cancelled,
            "sandbox-error" => Outcome::SandboxError,
            "flaky" => Outcome::Flaky,
            "file-leak" => Outcome::FileLeak,
            "skipped-by-partition" => Outcome::SkippedByPartition,
            "not-run" => Outcome::NotRun,
            other => match other.strip_prefix("signal:") {
                Some(name) => Outcome::Signal(name.to_owned()),
                None => return Err(format!("unknown outcome `{other}`")),
            },
        })
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Outcome, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What makes an outcome count as a failure (the defaults are the built-in ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    pub leaks: Policy,
    pub network: Policy,
    pub flaky: Policy,
    pub file_leaks: FileLeakPolicy,
}

impl Default for Policies {
    fn default() -> Policies {
        Policies {
            leaks: Policy::Pass,
            network: Policy::Pass,
            flaky: Policy::Pass,
            file_leaks: FileLeakPolicy::Warn,
        }
    }
}

impl Outcome {
    /// The word in the terminal, the report and every summary.
    pub fn word(&self) -> String {
        match self {
            Outcome::Passed => "passed".into(),
            Outcome::Failed => "failed".into(),
            Outcome::Ignored => "ignored".into(),
            Outcome::TimedOut => "timed-out".into(),
            Outcome::Oom => "oom".into(),
            Outcome::ForkBomb => "fork-bomb".into(),
            Outcome::Signal(name) => format!("signal:{name}"),
            Outcome::Leaked => "leaked".into(),
            Outcome::Network => "network".into(),
            Outcome::Cancelled => "cancelled".into(),
            Outcome::SandboxError => "sandbox-error".into(),
            Outcome::Flaky => "flaky".into(),
            Outcome::FileLeak => "file-leak".into(),
            Outcome::SkippedByPartition => "skipped-by-partition".into(),
            Outcome::NotRun => "not-run".into(),
        }
    }

    pub fn is_failure(&self, policies: Policies) -> bool {
        match self {
            Outcome::Passed | Outcome::Ignored | Outcome::SkippedByPartition | Outcome::NotRun => {
                false
            }
            Outcome::Leaked => policies.leaks == Policy::Fail,
            Outcome::Network => policies.network == Policy::Fail,
            Outcome::Flaky => policies.flaky == Policy::Fail,
            Outcome::FileLeak => policies.file_leaks == FileLeakPolicy::Fail,
            _ => true,
        }
    }
}

/// Classifies one sandboxed test run. Precedence: the harshest thing that happened wins, so a
/// test that hit the memory cap is `oom` even if it then exited with a panic.
pub fn classify(r: &SandboxResult, libtest_ran_one: bool, policies: Policies) -> Outcome {
    let succeeded = r.exit == Exit::Code(0) && libtest_ran_one;
    judge(r, succeeded, true, policies)
}

/// A doc test, judged as rustdoc judges it: by its exit status alone. One marked
/// `should_panic` succeeds when it fails (a panic, any non-zero exit, a signal) and fails when
/// it exits 0; the harsher outcomes (cancel, timeout, OOM, fork bomb) stand either way.
pub fn classify_doctest(r: &SandboxResult, should_panic: bool, policies: Policies) -> Outcome {
    let exited_zero = r.exit == Exit::Code(0);
    if should_panic {
        judge(r, !exited_zero, false, policies)
    } else {
        judge(r, exited_zero, true, policies)
    }
}

/// `succeeded`: the command did what it should; `signal_fails`: a death by signal is its own
/// outcome rather than the way it succeeded.
fn judge(r: &SandboxResult, succeeded: bool, signal_fails: bool, policies: Policies) -> Outcome {
    let signal = r.exit.signal_name().filter(|_| signal_fails);
    if r.cancelled {
        Outcome::Cancelled
    } else if r.timed_out {
        Outcome::TimedOut
    } else if r.usage.oom_kills > 0 {
        Outcome::Oom
    } else if r.usage.forks_refused > 0 {
        Outcome::ForkBomb
    } else if let Some(signal) = signal {
        Outcome::Signal(signal)
    } else if !succeeded {
        Outcome::Failed
    } else if r.network_attempts.total() > 0 {
        Outcome::Network
    } else if r.leaked_total > 0 {
        Outcome::Leaked
    } else if r.files_written_total > 0 && policies.file_leaks != FileLeakPolicy::Allow {
        Outcome::FileLeak
    } else {
        Outcome::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for o in [
            Outcome::Passed,
            Outcome::Failed,
            Outcome::Ignored,
            Outcome::TimedOut,
            Outcome::Oom,
            Outcome::ForkBomb,
            Outcome::Signal("SIGSEGV".into()),
            Outcome::Leaked,
            Outcome::Network,
            Outcome::Cancelled,
            Outcome::SandboxError,
            Outcome::Flaky,
            Outcome::FileLeak,
            Outcome::SkippedByPartition,
            Outcome::NotRun,
        ] {
            assert_eq!(o.word().parse::<Outcome>(), Ok(o));
        }
        assert!("bogus".parse::<Outcome>().is_err());
    }
}
