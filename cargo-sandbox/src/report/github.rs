//! GitHub Actions (`--github`, or automatically under `GITHUB_ACTIONS=true`): an `::error`
//! annotation per failing test, pointing at its panic location when the output has one, a
//! `::warning` for tests that passed but leaked or tried the network, and a Markdown job summary
//! appended to `$GITHUB_STEP_SUMMARY` (kept under GitHub's 1 MiB limit).

use super::{panic_location, totals, FinishedRun, Reporter};
use crate::event::TestRecord;
use crate::outcome::Outcome;
use harness::units::format_bytes;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// GitHub refuses summaries over 1 MiB; stay well below.
const SUMMARY_LIMIT: usize = 900 << 10;
const MAX_TABLE_ROWS: usize = 100;

pub struct GithubReporter {
    /// `$GITHUB_STEP_SUMMARY`, when set.
    pub summary_path: Option<PathBuf>,
    /// Paths in annotations are relative to this (`$GITHUB_WORKSPACE`, else the current dir).
    pub repo_root: PathBuf,
}

impl GithubReporter {
    pub fn from_env() -> GithubReporter {
        GithubReporter {
            summary_path: std::env::var_os("GITHUB_STEP_SUMMARY")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            repo_root: std::env::var_os("GITHUB_WORKSPACE")
                .map(PathBuf::from)
                .or_else(|| std::env::current_dir().ok())
                .unwrap_or_default(),
        }
    }
}

impl Reporter for GithubReporter {
    fn finish(&mut self, run: &FinishedRun) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        for line in annotations(run, &self.repo_root) {
            let _ = writeln!(out, "{line}");
        }
        if let Some(path) = &self.summary_path {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    anyhow::anyhow!("opening $GITHUB_STEP_SUMMARY {}: {e}", path.display())
                })?;
            file.write_all(job_summary(run).as_bytes())?;
        }
        Ok(())
    }
}

/// Workflow-command escaping: data escapes `%`, CR and LF; properties also `:` and `,`.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub fn annotations(run: &FinishedRun, repo_root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for r in &run.records {
        let notable = matches!(
            r.outcome,
            Outcome::Leaked | Outcome::Network | Outcome::FileLeak
        );
        if !r.failure && !notable {
            continue;
        }
        let level = if r.failure { "error" } else { "warning" };
        let title = format!("{}: {}", r.outcome.word(), r.id);
        let output = r.output_text();
        let mut properties = Vec::new();
        let mut place = |file: &str, line: u32| {
            let absolute = normalize(&run.workspace_root.join(file));
            let file = absolute
                .strip_prefix(repo_root)
                .unwrap_or(&absolute)
                .display()
                .to_string();
            properties.push(format!("file={}", escape_property(&file)));
            properties.push(format!("line={line}"));
        };
        let panic = panic_location(&output);
        // A doc test is pointed at where it is written: its panic's location lies in code
        // rustdoc generated around it.
        match doctest_place(r) {
            Some((file, line)) => place(file, line),
            None => {
                if let Some(at) = &panic {
                    place(&at.file, at.line);
                }
            }
        }
        let message = panic.map_or_else(|| describe(r), |at| at.message);
        properties.push(format!("title={}", escape_property(&title)));
        lines.push(format!(
            "::{level} {}::{}",
            properties.join(","),
            escape_data(&message)
        ));
    }
    lines
}

/// A doc test's file and first line, from its name (`src/lib.rs - add (line 3)`).
fn doctest_place(r: &TestRecord) -> Option<(&str, u32)> {
    if r.kind != "doctest" {
        return None;
    }
    let (file, rest) = r.id.name.split_once(" - ")?;
    let line = rest
        .rsplit_once("(line ")?
        .1
        .split(')')
        .next()?
        .parse()
        .ok()?;
    Some((file, line))
}

/// `a/../b` as `b`: rustdoc names a crate's doc tests by the path cargo gave it.
fn normalize(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// One sentence on what happened to a test without a panic message.
fn describe(r: &TestRecord) -> String {
    match &r.outcome {
        Outcome::TimedOut => "timed out and was killed".to_owned(),
        Outcome::Oom if r.oom_victims.is_empty() => {
            format!("killed by the memory cap ({} OOM kill(s))", r.oom_kills)
        }
        Outcome::Oom => format!(
            "killed by the memory cap ({} OOM kill(s): {})",
            r.oom_kills,
            r.oom_victims.join(", ")
        ),
        Outcome::ForkBomb => format!(
            "fork bomb contained: the pid cap refused {} fork(s)",
            r.forks_refused
        ),
        Outcome::Signal(name) => format!("killed by {name}"),
        Outcome::Leaked => format!(
            "left {} process(es) behind: {}",
            r.leaked_total,
            r.leaked_processes
                .iter()
                .map(|l| format!("{} [{}]", l.comm, l.cmdline))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Outcome::Network => format!(
            "tried to reach the network ({} packet(s) with no route)",
            r.network_attempts
        ),
        Outcome::FileLeak => format!(
            "changed {} file(s) in the workspace (the host tree never saw it): {}",
            r.files_written_total,
            r.files_written
                .iter()
                .take(5)
                .map(|f| format!("{:?} {}", f.kind, f.path.display()))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => r.error.clone().unwrap_or_else(|| r.outcome.word()),
    }
}

/// The Markdown appended to `$GITHUB_STEP_SUMMARY`: the verdict, the failures, the tests
/// the sandbox caught misbehaving, the biggest users of memory and CPU, the protections.
pub fn job_summary(run: &FinishedRun) -> String {
    let mut md = String::new();
    verdict(&mut md, run);
    failures(&mut md, &run.records);
    callouts(&mut md, &run.records);
    let by_memory = super::top_by_memory(&run.records, 10);
    if !by_memory.is_empty() {
        top_by_memory(&mut md, &by_memory);
        top_by_cpu(&mut md, &run.records);
    }
    let _ = writeln!(
        md,
        "In force: {}\n",
        crate::protections::in_force(&run.protections)
    );
    truncated(md)
}

/// `## cargo-sandbox: failed` and the counts per outcome.
fn verdict(md: &mut String, run: &FinishedRun) {
    let totals = totals(&run.records);
    let counts: Vec<String> = totals.iter().map(|(w, n)| format!("{n} {w}")).collect();
    let verdict = if run.cancelled {
        "cancelled"
    } else if run.failed() {
        "failed"
    } else {
        "passed"
    };
    let _ = writeln!(md, "## cargo-sandbox: {verdict}\n");
    let _ = writeln!(
        md,
        "{} tests in {:.1}s: {}\n",
        run.records.len(),
        run.duration_ms / 1000.0,
        counts.join(", ")
    );
}

/// A table of the failing tests, the first [`MAX_TABLE_ROWS`] of them.
fn failures(md: &mut String, records: &[TestRecord]) {
    let failures: Vec<&TestRecord> = records.iter().filter(|r| r.failure).collect();
    if failures.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### Failures\n\n| test | outcome | duration | peak memory |\n|---|---|---|---|"
    );
    for r in failures.iter().take(MAX_TABLE_ROWS) {
        let _ = writeln!(
            md,
            "| `{}` | **{}** | {:.3}s | {} |",
            r.id,
            r.outcome.word(),
            r.duration_ms / 1000.0,
            memory(r)
        );
    }
    if failures.len() > MAX_TABLE_ROWS {
        let _ = writeln!(
            md,
            "\n… and {} more failures (see the JSON report).",
            failures.len() - MAX_TABLE_ROWS
        );
    }
    md.push('\n');
}

/// A list of the tests the sandbox caught: leaks, fork bombs, OOMs, network attempts, files
/// changed (also those that passed but leaked or tried the network).
fn callouts(md: &mut String, records: &[TestRecord]) {
    let callouts: Vec<String> = records
        .iter()
        .filter_map(|r| Some(format!("- `{}`: {}", r.id, caught(r)?)))
        .collect();
    if callouts.is_empty() {
        return;
    }
    let _ = writeln!(md, "### Leaks, fork bombs, OOMs and network attempts\n");
    for line in callouts.iter().take(MAX_TABLE_ROWS) {
        let _ = writeln!(md, "{line}");
    }
    md.push('\n');
}

/// What the sandbox caught the test doing, if anything worth a line.
fn caught(r: &TestRecord) -> Option<String> {
    Some(match r.outcome {
        Outcome::Leaked => format!("leaked {} process(es)", r.leaked_total),
        Outcome::ForkBomb => format!("fork bomb contained ({} forks refused)", r.forks_refused),
        Outcome::Network => format!("tried the network ({} packets)", r.network_attempts),
        Outcome::Oom => "killed by the memory cap".to_owned(),
        Outcome::FileLeak => format!("changed {} file(s) in the workspace", r.files_written_total),
        _ if r.leaked_total > 0 => format!("leaked {} process(es)", r.leaked_total),
        _ if r.network_attempts > 0 => {
            format!("tried the network ({} packets)", r.network_attempts)
        }
        _ => return None,
    })
}

/// A table of the tests with the highest peak memory, and the same as a bar chart.
fn top_by_memory(md: &mut String, by_memory: &[&TestRecord]) {
    let _ = writeln!(
        md,
        "### Top 10 by peak memory\n\n| test | peak memory | CPU |\n|---|---|---|"
    );
    for r in by_memory {
        let _ = writeln!(
            md,
            "| `{}` | {} | {:.3}s |",
            r.id,
            memory(r),
            r.cpu_ms() / 1000.0
        );
    }
    memory_chart(md, by_memory);
}

/// A mermaid bar chart of the peak memory (MiB), its bars numbered, the numbers' legend under
/// it (test ids are too long for an axis).
fn memory_chart(md: &mut String, by_memory: &[&TestRecord]) {
    let _ = writeln!(
        md,
        "\n```mermaid\nxychart-beta\n    title \"Peak memory of the top tests (MiB)\""
    );
    let labels: Vec<String> = (1..=by_memory.len()).map(|i| format!("\"#{i}\"")).collect();
    let values: Vec<String> = by_memory
        .iter()
        .map(|r| {
            format!(
                "{:.1}",
                r.memory_peak_bytes.unwrap_or(0) as f64 / (1 << 20) as f64
            )
        })
        .collect();
    let _ = writeln!(
        md,
        "    x-axis [{}]\n    y-axis \"MiB\"\n    bar [{}]\n```\n",
        labels.join(", "),
        values.join(", ")
    );
    let _ = writeln!(
        md,
        "{}\n",
        by_memory
            .iter()
            .enumerate()
            .map(|(i, r)| format!("#{} `{}`", i + 1, r.id))
            .collect::<Vec<_>>()
            .join(" · ")
    );
}

/// A table of the tests that used the most CPU time.
fn top_by_cpu(md: &mut String, records: &[TestRecord]) {
    let _ = writeln!(
        md,
        "### Top 10 by CPU time\n\n| test | CPU | peak memory |\n|---|---|---|"
    );
    for r in super::top_by_cpu(records, 10) {
        let _ = writeln!(
            md,
            "| `{}` | {:.3}s | {} |",
            r.id,
            r.cpu_ms() / 1000.0,
            memory(r)
        );
    }
    md.push('\n');
}

/// The summary cut to stay under GitHub's limit (on a character boundary), saying so.
fn truncated(mut md: String) -> String {
    if md.len() > SUMMARY_LIMIT {
        let cut = (0..=SUMMARY_LIMIT)
            .rev()
            .find(|&i| md.is_char_boundary(i))
            .unwrap_or(0);
        md.truncate(cut);
        md.push_str(
            "\n\n… summary truncated to stay under GitHub's 1 MiB limit; see the JSON report.\n",
        );
    }
    md
}

fn memory(r: &TestRecord) -> String {
    r.memory_peak_bytes
        .map(format_bytes)
        .unwrap_or_else(|| "—".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_workflow_commands() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }
}
