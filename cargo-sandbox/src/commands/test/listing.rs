//! `--list`: the selected tests printed instead of run.

use crate::event::TestRecord;
use crate::job::Job;
use crate::outcome::Outcome;

/// `--list`: each binary's selected tests, in report order, nextest's way (`binary:` then its
/// tests indented); ignored ones marked; those settled without a sandbox (doc tests rustdoc
/// judged by compiling them) too.
pub(super) fn print(jobs: &[Job], not_run: &[TestRecord]) {
    let mut tests: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for job in jobs.iter().filter(|j| j.attempt == 0) {
        for test in job.selection.listed() {
            tests
                .entry(&job.binary.binary.id)
                .or_default()
                .push(test.name.clone());
        }
    }
    for record in not_run {
        let name = match record.outcome {
            Outcome::SkippedByPartition => continue,
            Outcome::Ignored => format!("{} (ignored)", record.id.name),
            _ => record.id.name.clone(),
        };
        tests.entry(&record.id.binary_id).or_default().push(name);
    }
    let mut out = String::new();
    for (binary, mut names) in tests {
        names.sort();
        out.push_str(binary);
        out.push_str(":\n");
        for name in names {
            out.push_str("    ");
            out.push_str(&name);
            out.push('\n');
        }
    }
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(out.as_bytes());
}
