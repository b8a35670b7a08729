//! JUnit XML (`--junit PATH`), written with quick-junit: one testsuite per test binary, one
//! testcase per test, failures with their output, and resource figures as testcase properties.

use super::{FinishedRun, Reporter};
use crate::event::TestRecord;
use crate::outcome::Outcome;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub struct JunitReporter {
    pub path: PathBuf,
}

impl Reporter for JunitReporter {
    fn finish(&mut self, run: &FinishedRun) -> anyhow::Result<()> {
        super::json::write(&self.path, &render(run)?)
    }
}

pub fn render(run: &FinishedRun) -> anyhow::Result<String> {
    let mut report = Report::new("cargo-sandbox");
    report.set_time(Duration::from_secs_f64(run.duration_ms / 1000.0));
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for record in &run.records {
        let suite = suites
            .entry(&record.id.binary_id)
            .or_insert_with(|| TestSuite::new(record.id.binary_id.as_str()));
        suite.add_test_case(test_case(record));
    }
    report.add_test_suites(suites.into_values());
    Ok(report.to_string()?)
}

fn test_case(r: &TestRecord) -> TestCase {
    let status = if r.outcome == Outcome::Ignored {
        TestCaseStatus::skipped()
    } else if r.outcome == Outcome::NotRun {
        let mut status = TestCaseStatus::skipped();
        status.set_message("not run: the run stopped at --fail-fast / --max-fail");
        status
    } else if r.failure {
        let kind = if r.outcome == Outcome::Failed {
            NonSuccessKind::Failure
        } else {
            NonSuccessKind::Error
        };
        let mut status = TestCaseStatus::non_success(kind);
        let message = super::panic_location(&r.output_text())
            .map(|p| format!("{}: {}", r.outcome.word(), p.message))
            .or_else(|| r.error.clone())
            .unwrap_or_else(|| r.outcome.word());
        status
            .set_message(message)
            .set_type(r.outcome.word())
            .set_description(r.output_text());
        status
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(r.id.name.as_str(), status);
    case.set_classname(r.id.binary_id.as_str());
    case.set_time(Duration::from_secs_f64(r.duration_ms / 1000.0));
    let mut property = |name: &str, value: String| {
        case.add_property(Property::new(name, value));
    };
    property("outcome", r.outcome.word());
    if !r.kind.is_empty() {
        property("kind", r.kind.clone());
    }
    if r.ran_in_sandbox() {
        let opt = |v: Option<u64>| v.map_or_else(|| "unknown".to_owned(), |v| v.to_string());
        property("memory_peak_bytes", opt(r.memory_peak_bytes));
        property(
            "cpu_user_ms",
            format!("{:.3}", r.cpu_user_ms.unwrap_or(0.0)),
        );
        property(
            "cpu_system_ms",
            format!("{:.3}", r.cpu_system_ms.unwrap_or(0.0)),
        );
        property("pids_peak", opt(r.pids_peak));
        property("forks_refused", r.forks_refused.to_string());
        property("oom_kills", r.oom_kills.to_string());
        if !r.oom_victims.is_empty() {
            property("oom_victims", r.oom_victims.join(","));
        }
        property("io_read_bytes", opt(r.io_read_bytes));
        property("io_write_bytes", opt(r.io_write_bytes));
        property("leaked_processes", r.leaked_total.to_string());
        property("network_attempts", r.network_attempts.to_string());
        property("files_written", r.files_written_total.to_string());
    }
    case
}
