//! The run's reporters behind one door: events go to each, held for those that wait for the
//! run's start.

use crate::cli::{OutputWhen, ShowProgress, StatusLevel, TestArgs};
use crate::event::{Event, TestRecord};
use crate::report::{github, json, junit, terminal, Reporter};

/// The run's reporters, and the records they were given. Until the run's start is announced
/// (a pipelined run's tests finish while cargo still prints), the terminal's events wait,
/// without their sandbox specs; the other reporters take each one at once (the JSON report
/// spills records to a file: holding them would grow with the suite).
pub(super) struct Reporters {
    pub(super) reporters: Vec<Box<dyn Reporter>>,
    pub(super) records: Vec<TestRecord>,
    success_output: OutputWhen,
    /// Events held for the reporters that wait for the run's start.
    held: Option<Vec<Event>>,
}

impl Reporters {
    pub(super) fn new(args: &TestArgs, no_capture: bool) -> Reporters {
        let palette = terminal::Palette::new(args.cargo.color);
        let quiet = args.cargo.quiet;
        let progress = if args.hide_progress_bar {
            ShowProgress::None
        } else {
            args.show_progress.unwrap_or(ShowProgress::Auto)
        };
        let success_output = args.success_output.unwrap_or(if no_capture {
            OutputWhen::Immediate
        } else {
            OutputWhen::Never
        });
        let terminal = terminal::Options {
            quiet,
            status_level: args.status_level.unwrap_or(match (quiet, progress) {
                (_, ShowProgress::Only) => StatusLevel::None,
                (true, _) => StatusLevel::Fail,
                (false, _) => StatusLevel::Skip,
            }),
            final_status_level: args.final_status_level.unwrap_or(StatusLevel::None),
            success_output,
            failure_output: args.failure_output.unwrap_or(OutputWhen::Final),
            // Output passed through would be torn by a bar redrawn under it.
            progress: !no_capture && !matches!(progress, ShowProgress::None),
        };
        let mut reporters: Vec<Box<dyn Reporter>> =
            vec![Box::new(terminal::Terminal::new(palette, terminal))];
        if let Some(path) = &args.report_json {
            reporters.push(Box::new(json::JsonReporter::new(path.clone())));
        }
        if let Some(path) = &args.junit {
            reporters.push(Box::new(junit::JunitReporter { path: path.clone() }));
        }
        if args.github || std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
            reporters.push(Box::new(github::GithubReporter::from_env()));
        }
        Reporters {
            reporters,
            records: Vec::new(),
            success_output,
            held: Some(Vec::new()),
        }
    }

    pub(super) fn event(&mut self, event: Event) {
        let Some(held) = &mut self.held else {
            self.give(event, |_| true);
            return;
        };
        if !matches!(event, Event::RunStarted { .. }) {
            if let Event::TestFinished(record) = &event {
                held.push(Event::TestFinished(Box::new(TestRecord {
                    spec: None,
                    ..(**record).clone()
                })));
            }
            self.give(event, |r| !r.waits_for_the_start());
            return;
        }
        let held = self.held.take().unwrap_or_default();
        self.reporters.iter_mut().for_each(|r| r.event(&event));
        for event in held {
            for reporter in self
                .reporters
                .iter_mut()
                .filter(|r| r.waits_for_the_start())
            {
                reporter.event(&event);
            }
        }
    }

    /// Hands `event` to the reporters `to` chooses, and keeps its record.
    fn give(&mut self, event: Event, to: impl Fn(&dyn Reporter) -> bool) {
        for reporter in self.reporters.iter_mut() {
            if to(reporter.as_ref()) {
                reporter.event(&event);
            }
        }
        if let Event::TestFinished(record) = event {
            // A passing test's output is kept only when it is shown at the end.
            self.records.push(if self.success_output.at_end() {
                TestRecord {
                    spec: None,
                    ..*record
                }
            } else {
                record.slim()
            });
        }
    }

    pub(super) fn flush(&mut self) {
        let holding = self.held.is_some();
        self.reporters
            .iter_mut()
            .filter(|r| !(holding && r.waits_for_the_start()))
            .for_each(|r| r.flush());
    }
}
