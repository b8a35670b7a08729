//! What people see: a progress bar while tests run (only on a terminal), one status line per
//! finished test, the output of failing tests (bounded), and the closing totals.

use crate::cli::{OutputWhen, StatusLevel};
use crate::event::{Event, TestRecord};
use crate::outcome::Outcome;
use harness::units::format_bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// ANSI styling that can be switched off (`--color`, `CARGO_TERM_COLOR`, `NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub enabled: bool,
}

impl Palette {
    pub fn new(choice: Option<crate::cli::ColorChoice>) -> Palette {
        use crate::cli::ColorChoice;
        let from_env = std::env::var("CARGO_TERM_COLOR")
            .ok()
            .and_then(|v| match v.as_str() {
                "always" => Some(ColorChoice::Always),
                "never" => Some(ColorChoice::Never),
                "auto" => Some(ColorChoice::Auto),
                _ => None,
            });
        let enabled = match choice.or(from_env).unwrap_or(ColorChoice::Auto) {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        };
        Palette { enabled }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    pub fn green(&self, t: &str) -> String {
        self.paint("1;32", t)
    }
    pub fn red(&self, t: &str) -> String {
        self.paint("1;31", t)
    }
    pub fn yellow(&self, t: &str) -> String {
        self.paint("1;33", t)
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
}

/// The status word shown for an outcome, right-aligned in 12 columns as nextest does.
fn status(outcome: &Outcome, failure: bool, p: Palette) -> String {
    let word = match outcome {
        Outcome::Passed => "PASS".to_owned(),
        Outcome::Failed => "FAIL".to_owned(),
        Outcome::Ignored => "IGNORED".to_owned(),
        Outcome::TimedOut => "TIMEOUT".to_owned(),
        Outcome::Oom => "OOM".to_owned(),
        Outcome::ForkBomb => "FORK-BOMB".to_owned(),
        Outcome::Signal(name) => name.clone(),
        Outcome::Leaked => "LEAK".to_owned(),
        Outcome::Network => "NETWORK".to_owned(),
        Outcome::Cancelled => "CANCEL".to_owned(),
        Outcome::SandboxError => "ERROR".to_owned(),
        Outcome::Flaky => "FLAKY".to_owned(),
        Outcome::FileLeak => "FILE-LEAK".to_owned(),
        Outcome::SkippedByPartition => "SKIP".to_owned(),
        Outcome::NotRun => "NOT-RUN".to_owned(),
    };
    let padded = format!("{word:>12}");
    match (outcome, failure) {
        (_, true) => p.red(&padded),
        (Outcome::Passed, false) => p.green(&padded),
        _ => p.yellow(&padded),
    }
}

/// What the terminal shows besides the closing totals.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub quiet: bool,
    /// Tests at or below this level get a line as they finish.
    pub status_level: StatusLevel,
    /// Tests at or below this level are listed again before the closing totals.
    pub final_status_level: StatusLevel,
    /// When a passing test's captured output is shown (with `--no-capture` output that passed
    /// through was not captured).
    pub success_output: OutputWhen,
    /// When a failing test's output is shown.
    pub failure_output: OutputWhen,
    /// A progress bar, when stderr is a terminal.
    pub progress: bool,
}

impl Options {
    /// Only failures, for re-rendering a report.
    pub fn quiet() -> Options {
        Options {
            quiet: true,
            status_level: StatusLevel::Fail,
            final_status_level: StatusLevel::None,
            success_output: OutputWhen::Never,
            failure_output: OutputWhen::Final,
            progress: false,
        }
    }

    fn output_when(&self, r: &TestRecord) -> OutputWhen {
        if r.failure {
            self.failure_output
        } else {
            self.success_output
        }
    }
}

/// The level a test's line belongs to, as nextest ranks them.
fn level(r: &TestRecord) -> StatusLevel {
    if r.failure {
        return StatusLevel::Fail;
    }
    match r.outcome {
        Outcome::Flaky => StatusLevel::Retry,
        Outcome::Leaked | Outcome::Network | Outcome::FileLeak => StatusLevel::Leak,
        Outcome::Ignored => StatusLevel::Skip,
        // Never one line per test unless asked for all: a stopped run or a shard would list
        // every test it did not run.
        Outcome::NotRun | Outcome::SkippedByPartition => StatusLevel::All,
        _ => StatusLevel::Pass,
    }
}

pub struct Terminal {
    palette: Palette,
    bar: ProgressBar,
    options: Options,
    /// Lines not yet written: a binary run whole reports hundreds of tests at once, and a
    /// write per line cost more than the rest of their reporting.
    pending: String,
}

/// Past this, pending lines are written without waiting for a pause in the events.
const PENDING_AT_MOST: usize = 64 << 10;

impl Terminal {
    pub fn new(palette: Palette, options: Options) -> Terminal {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        // Output passed through would be torn by a bar redrawn under it.
        if std::io::stderr().is_terminal() && !options.quiet && options.progress {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix:>12.bold.cyan} [{elapsed_precise}] {wide_bar} {pos}/{len}: {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix("Running");
        }
        Terminal {
            palette,
            bar,
            options,
            pending: String::new(),
        }
    }

    fn line(&mut self, text: &str) {
        if self.bar.is_hidden() {
            self.pending.push_str(text);
            self.pending.push('\n');
            if self.pending.len() > PENDING_AT_MOST {
                self.write_pending();
            }
        } else {
            self.bar.println(text);
        }
    }

    /// Writes the pending lines in one go.
    fn write_pending(&mut self) {
        write_out(&mut self.pending);
    }

    pub fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                tests,
                binaries,
                unlisted_binaries,
                ignored,
                seed,
                profile,
                jobs,
            } => {
                if *unlisted_binaries == 0 {
                    self.bar.set_length(*tests as u64);
                } else {
                    // Tests of binaries run whole are counted as they report: no total.
                    self.bar.unset_length();
                }
                let skipped = if *ignored > 0 {
                    format!(" ({ignored} ignored)")
                } else {
                    String::new()
                };
                let counted = || {
                    format!(
                        "{} across {}{skipped}",
                        count(*tests, "test", "tests"),
                        count(*binaries, "binary", "binaries")
                    )
                };
                let whole = count(*unlisted_binaries, "binary", "binaries");
                let what = match (*tests, *unlisted_binaries) {
                    (_, 0) => counted(),
                    (0, _) => format!("the tests of {whole}, each run whole{skipped}"),
                    (_, _) => format!(
                        "{}, and the tests of {whole} more, each run whole",
                        counted()
                    ),
                };
                self.line(&format!(
                    "{:>12} {what} (profile {profile}, seed {seed}, jobs {jobs})",
                    self.palette.green("Starting")
                ));
            }
            Event::TestStarted(id) => self.bar.set_message(id.to_string()),
            Event::TestFinished(record) => {
                if !matches!(
                    record.outcome,
                    Outcome::Ignored | Outcome::NotRun | Outcome::SkippedByPartition
                ) {
                    self.bar.inc(1);
                }
                if level(record) <= self.options.status_level {
                    self.line(&status_line(record, self.palette));
                    if self.options.output_when(record).immediate() {
                        let text = record.output_text();
                        if !text.is_empty() {
                            self.line(text.trim_end_matches('\n'));
                        }
                    }
                }
            }
        }
    }
}

/// Writes `text` to stderr in one go and empties it.
fn write_out(text: &mut String) {
    use std::io::Write as _;
    if !text.is_empty() {
        let _ = std::io::stderr().write_all(text.as_bytes());
        text.clear();
    }
}

/// `1 binary`, `2 binaries`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl super::Reporter for Terminal {
    fn event(&mut self, event: &Event) {
        Terminal::event(self, event);
    }

    fn waits_for_the_start(&self) -> bool {
        true
    }

    fn flush(&mut self) {
        self.write_pending();
    }

    fn finish(&mut self, run: &super::FinishedRun) -> anyhow::Result<()> {
        use std::fmt::Write as _;
        self.bar.finish_and_clear();
        let p = self.palette;
        let out = &mut self.pending;
        let shown = |r: &&TestRecord| {
            let when = self.options.output_when(r);
            when.at_end() && (r.failure || !r.output_text().is_empty())
        };
        for r in run.records.iter().filter(shown) {
            output_section(out, r, p);
            // Thousands of failures with long output are not all held at once.
            if out.len() > PENDING_AT_MOST {
                write_out(out);
            }
        }
        if self.options.final_status_level > StatusLevel::None {
            for r in &run.records {
                if level(r) <= self.options.final_status_level {
                    let _ = writeln!(out, "{}", status_line(r, p));
                }
            }
        }
        let _ = writeln!(
            out,
            "{}",
            totals_line(&run.records, run.duration_ms, run.cancelled, p)
        );
        for line in top_users(&run.records) {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "{:>12} {}",
            p.bold("In force"),
            crate::protections::in_force(&run.protections)
        );
        self.write_pending();
        Ok(())
    }
}

/// A test's section at the end of the run: a header with its outcome, why the sandbox failed
/// it, the first leaked processes and changed files, and its output (shortened).
fn output_section(out: &mut String, r: &TestRecord, p: Palette) {
    use std::fmt::Write as _;
    let text = shorten(&r.output_text());
    let mark = if r.failure {
        p.red("---")
    } else {
        p.green("---")
    };
    let _ = writeln!(
        out,
        "\n{mark} {} {mark}",
        p.bold(&format!("{} {}", r.outcome.word().to_uppercase(), r.id)),
    );
    if let Some(error) = &r.error {
        let _ = writeln!(out, "{error}");
    }
    for leak in r.leaked_processes.iter().take(5) {
        let _ = writeln!(
            out,
            "leaked: pid {} {} [{}]",
            leak.pid, leak.comm, leak.cmdline
        );
    }
    for change in r.files_written.iter().take(10) {
        let _ = writeln!(out, "file {:?}: {}", change.kind, change.path.display());
    }
    out.push_str(&text);
    if !text.ends_with('\n') && !text.is_empty() {
        out.push('\n');
    }
}

/// Failing output shown in the terminal: the head and a longer tail (the report keeps more).
fn shorten(text: &str) -> String {
    const HEAD: usize = 4 << 10;
    const TAIL: usize = 16 << 10;
    if text.len() <= HEAD + TAIL {
        return text.to_owned();
    }
    let head_end = (0..=HEAD)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let tail_start = (text.len() - TAIL..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!(
        "{}\n[... {} bytes not shown; the JSON report keeps up to 1 MiB ...]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

pub fn status_line(r: &TestRecord, p: Palette) -> String {
    let memory = r.memory_peak_bytes.map(format_bytes).unwrap_or_default();
    format!(
        "{} [{:>8.3}s] {:>10} {} {}",
        status(&r.outcome, r.failure, p),
        r.duration_ms / 1000.0,
        memory,
        p.bold(&r.id.binary_id),
        r.id.name
    )
}

/// The closing line of totals per outcome:
/// `Summary [ 1.234s] 12 tests run: 9 passed, 2 failed, 1 oom; 2 ignored`
pub fn totals_line(
    records: &[TestRecord],
    duration_ms: f64,
    cancelled: bool,
    p: Palette,
) -> String {
    let totals = super::totals(records);
    let ran = super::ran(records);
    let order = [
        "passed",
        "failed",
        "timed-out",
        "oom",
        "fork-bomb",
        "leaked",
        "network",
        "cancelled",
        "sandbox-error",
        "flaky",
        "file-leak",
    ];
    let skipped = totals
        .get("skipped-by-partition")
        .map(|n| format!("; {n} in other shards"))
        .unwrap_or_default();
    let mut parts: Vec<String> = order
        .iter()
        .filter_map(|w| totals.get(*w).map(|n| format!("{n} {w}")))
        .collect();
    parts.extend(
        totals
            .iter()
            .filter(|(w, _)| w.starts_with("signal:"))
            .map(|(w, n)| format!("{n} {w}")),
    );
    let ignored = totals
        .get("ignored")
        .map(|n| format!("; {n} ignored"))
        .unwrap_or_default();
    let not_run = totals
        .get("not-run")
        .map(|n| format!("; {n} not run (--max-fail reached)"))
        .unwrap_or_default();
    let failed = records.iter().any(|r| r.failure);
    let head = if cancelled {
        p.red("Cancelled")
    } else if failed {
        p.red("Summary")
    } else {
        p.green("Summary")
    };
    format!(
        "{:>12} [{:>8.3}s] {ran} test{} run: {}{ignored}{not_run}{skipped}",
        head,
        duration_ms / 1000.0,
        if ran == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// The three biggest users of memory and of CPU.
fn top_users(records: &[TestRecord]) -> Vec<String> {
    let memory = super::top_by_memory(records, 3);
    if memory.is_empty() {
        return Vec::new();
    }
    let memory: Vec<String> = memory
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                format_bytes(r.memory_peak_bytes.unwrap_or(0)),
                r.id
            )
        })
        .collect();
    let cpu: Vec<String> = super::top_by_cpu(records, 3)
        .iter()
        .map(|r| format!("{:.3}s {}", r.cpu_ms() / 1000.0, r.id))
        .collect();
    vec![
        format!("{:>12} {}", "Top memory", memory.join(", ")),
        format!("{:>12} {}", "Top CPU", cpu.join(", ")),
    ]
}
