//! The re-executed side of a sandboxed trial: `main` ran again (building the same trial list),
//! and this process runs the one trial the parent named, then tells the parent how it ended.

use super::trial::{Runner, Trial};
use super::{Completion, Measurement};
use crate::front::TRIAL_VAR;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Starts the line that carries a [`Report`] on the trial's stdout. The record separator keeps
/// it apart from anything a trial prints itself.
pub(super) const REPORT_LINE: &str = "\u{1e}sandbox-harness-report ";

/// Which trial to run, in [`TRIAL_VAR`]. The index finds it; the name and kind check that the
/// re-executed `main` built the same list.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Request {
    pub index: usize,
    pub name: String,
    pub kind: String,
    /// Measure a benchmark (`--bench`) rather than run it once.
    pub bench: bool,
}

impl Request {
    /// The request this process was started for, if any.
    pub fn from_env() -> Option<Request> {
        let value = std::env::var(TRIAL_VAR).ok()?;
        match serde_json::from_str(&value) {
            Ok(request) => Some(request),
            Err(e) => {
                eprintln!("sandbox-harness: bad {TRIAL_VAR}={value:?}: {e}");
                std::process::exit(101)
            }
        }
    }
}

/// How the trial ended, as far as the trial itself knows (the sandbox knows the rest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub(super) enum Report {
    Passed,
    Failed {
        message: Option<String>,
    },
    Ignored {
        reason: Option<String>,
    },
    Measured {
        avg: u64,
        variance: u64,
    },
    /// The trial at the index is not the one asked for: `main` built a different list.
    Mismatch {
        found: Option<String>,
    },
}

/// Runs the requested trial of `trials`, prints its report and exits (0, or 101 on failure).
pub(super) fn run(request: &Request, trials: Vec<Trial>) -> ! {
    let report = match trials.into_iter().nth(request.index) {
        Some(trial) if trial.name == request.name && trial.kind == request.kind => {
            run_trial(trial.runner, request.bench)
        }
        other => Report::Mismatch {
            found: other.map(|t| t.listed_name()),
        },
    };
    let code = if matches!(report, Report::Failed { .. } | Report::Mismatch { .. }) {
        101
    } else {
        0
    };
    let json = serde_json::to_string(&report).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "\n{REPORT_LINE}{json}");
    let _ = stdout.flush();
    std::process::exit(code)
}

fn run_trial(runner: Runner, bench: bool) -> Report {
    let ran = catch_unwind(AssertUnwindSafe(move || match runner {
        Runner::Test(test) => test().map(|completion| match completion {
            Completion::Completed => Report::Passed,
            Completion::Ignored { reason } => Report::Ignored { reason },
        }),
        Runner::Bench(bench_fn) => bench_fn(!bench).map(|measured| match measured {
            Some(Measurement { avg, variance }) if bench => Report::Measured { avg, variance },
            None if bench => Report::Failed {
                message: Some("bench runner returned `Ok(None)` in bench mode".to_owned()),
            },
            _ => Report::Passed,
        }),
    }));
    match ran {
        Ok(Ok(report)) => report,
        Ok(Err(failed)) => Report::Failed {
            message: failed.message().map(str::to_owned),
        },
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            Report::Failed {
                message: Some(match text {
                    Some(text) => format!("test panicked: {text}"),
                    None => "test panicked".to_owned(),
                }),
            }
        }
    }
}

/// Splits a trial's captured output into what it printed and its report (the last report line).
pub(super) fn split_report(output: &str) -> (String, Option<Report>) {
    let Some(at) = output.rfind(REPORT_LINE) else {
        return (output.to_owned(), None);
    };
    let rest = &output[at + REPORT_LINE.len()..];
    let line = rest.lines().next().unwrap_or_default();
    let report = serde_json::from_str(line).ok();
    let printed = output[..at].strip_suffix('\n').unwrap_or(&output[..at]);
    let after = rest.get(line.len() + 1..).unwrap_or_default();
    (format!("{printed}{after}"), report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_line_is_found_and_cut_out_of_the_output() {
        let out = format!("hello\n\n{REPORT_LINE}{{\"outcome\":\"passed\"}}\n");
        assert_eq!(
            split_report(&out),
            ("hello\n".to_owned(), Some(Report::Passed))
        );
        let out =
            format!("a\n{REPORT_LINE}{{\"outcome\":\"ignored\",\"reason\":\"no data\"}}\nlate\n");
        assert_eq!(
            split_report(&out),
            (
                "alate\n".to_owned(),
                Some(Report::Ignored {
                    reason: Some("no data".to_owned())
                })
            )
        );
        assert_eq!(split_report("no report"), ("no report".to_owned(), None));
    }

    #[test]
    fn panics_and_errors_fail_with_their_message() {
        let report = run_trial(Runner::Test(Box::new(|| Err("bad case".into()))), false);
        assert_eq!(
            report,
            Report::Failed {
                message: Some("bad case".to_owned())
            }
        );
        let report = run_trial(
            Runner::Test(Box::new(|| std::panic::panic_any("boom".to_owned()))),
            false,
        );
        assert_eq!(
            report,
            Report::Failed {
                message: Some("test panicked: boom".to_owned())
            }
        );
        let report = run_trial(Runner::Bench(Box::new(|_| Ok(None))), true);
        assert!(matches!(report, Report::Failed { .. }));
    }
}
