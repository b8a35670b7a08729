//! A drop-in for libtest-mimic whose trials each run in their own sandbox, for
//! `[[test]] harness = false` targets. A libtest-mimic suite switches by one line,
//! `use sandbox_harness::libtest as libtest_mimic;`, and may then give trials limits:
//!
//! ```ignore
//! use sandbox_harness::libtest::{self as libtest_mimic, Arguments, Failed, Trial};
//! fn main() {
//!     let args = Arguments::from_args();
//!     let trials = cases().map(|case| {
//!         Trial::test(case.name(), move || case.check().map_err(Failed::from)).memory("256M")
//!     });
//!     libtest_mimic::run(&args, trials.collect()).exit();
//! }
//! ```
//!
//! How a trial runs:
//! - under `cargo test` / nextest: the binary re-executes itself in a sandbox for that one trial
//!   (marked by [`TRIAL_VAR`]); `main` runs again there and builds the same trial list, and the
//!   trial at the same position runs (its name is checked: a list built differently fails the
//!   trial with the reason, never runs the wrong one). What the sandbox saw becomes the result:
//!   `OOM`, fork bomb, timeout, signal, or the trial's own `Err`/panic message;
//! - under `cargo sandbox test` (the runner sets `CARGO_SANDBOX_TEST`): directly, since the
//!   runner already put this process in a sandbox; the runner learns the settings from the
//!   listing (lines `cargo-sandbox-limits<TAB>NAME<TAB>JSON` when it sets [`LIST_LIMITS_VAR`]);
//! - without privileges for sandboxes: each trial fails with the reason, unless the crate
//!   opted into [`Harness::allow_unsandboxed`] or the environment sets
//!   [`ALLOW_UNSANDBOXED_VAR`]`=1`.

mod args;
mod child;
mod sandboxed;
mod trial;

use crate::front::TrialSettings;
use child::{Report, Request};
use sandboxed::{Placement, Sandboxes};
use std::sync::Arc;
use trial::{settings_setters, Runner};

pub use crate::front::{
    Network, ALLOW_UNSANDBOXED_VAR, LIMITS_LINE, LIST_LIMITS_VAR, RUNNER_VAR, TRIAL_VAR,
};
pub use args::Arguments;
pub use libtest_mimic::{ColorSetting, Completion, Conclusion, Failed, FormatSetting, Measurement};
pub use trial::Trial;

/// Runs the trials as libtest-mimic's `run` does (filters, `--list`, threads, the summary),
/// each in its own sandbox. Call `.exit()` on the result.
pub fn run(args: &Arguments, trials: Vec<Trial>) -> Conclusion {
    Harness::new(args.clone()).run(trials)
}

/// [`run`] with default settings for every trial: a trial's own settings win, and
/// `cargo sandbox test`'s configuration overrides and command line win over both.
pub struct Harness {
    args: Arguments,
    defaults: TrialSettings,
    allow_unsandboxed: bool,
}

impl Harness {
    /// Reads libtest's arguments (see [`Arguments::from_args`]).
    pub fn from_args() -> Harness {
        Harness::new(Arguments::from_args())
    }

    pub fn new(args: Arguments) -> Harness {
        Harness {
            args,
            defaults: TrialSettings::default(),
            allow_unsandboxed: false,
        }
    }

    /// Run trials unsandboxed (in this process) when sandboxes are unavailable, instead of
    /// failing them.
    pub fn allow_unsandboxed(mut self) -> Self {
        self.allow_unsandboxed = true;
        self
    }

    settings_setters!(defaults);

    /// Runs the trials; in a trial's own sandbox, runs that one trial and exits.
    pub fn run(self, mut trials: Vec<Trial>) -> Conclusion {
        crate::run_if_requested();
        if let Some(request) = Request::from_env() {
            child::run(&request, trials);
        }
        for trial in &mut trials {
            trial.settings = trial.settings.or(self.defaults);
        }
        if self.args.list && std::env::var_os(LIST_LIMITS_VAR).is_some() {
            print_settings(&trials);
        }
        // Under `cargo sandbox test` this process is a sandbox already.
        let sandboxes = (std::env::var_os(RUNNER_VAR).is_none() && !self.args.list).then(|| {
            let to_run: Vec<TrialSettings> = trials
                .iter()
                .filter(|t| self.will_run(t))
                .map(|t| t.settings)
                .collect();
            Arc::new(Sandboxes::new(
                self.allow_unsandboxed,
                self.args.nocapture,
                &to_run,
            ))
        });
        let trials = trials
            .into_iter()
            .enumerate()
            .map(|(index, trial)| into_mimic(index, trial, sandboxes.clone()))
            .collect();
        let conclusion = libtest_mimic::run(&self.args, trials);
        // Here, on the thread that made it: the engine's zygote dies with that thread.
        drop(sandboxes);
        conclusion
    }

    /// Whether libtest-mimic will run the trial (not filtered out, not ignored).
    fn will_run(&self, trial: &Trial) -> bool {
        let probe = if trial.is_bench() {
            libtest_mimic::Trial::bench(&trial.name, |_| Ok(None))
        } else {
            libtest_mimic::Trial::test(&trial.name, || Ok(()))
        }
        .with_kind(&trial.kind)
        .with_ignored_flag(trial.ignored);
        !self.args.is_filtered_out(&probe) && !self.args.is_ignored(&probe)
    }
}

/// The lines `cargo sandbox test` reads from a listing to apply each trial's settings.
fn print_settings(trials: &[Trial]) {
    for trial in trials.iter().filter(|t| !t.settings.is_empty()) {
        let json = serde_json::to_string(&trial.settings).unwrap_or_default();
        println!("{LIMITS_LINE}\t{}\t{json}", trial.listed_name());
    }
}

/// The libtest-mimic trial that runs ours: in a sandbox of its own, or here when the runner
/// already made one (`sandboxes` is `None`) or none can be made and that is allowed.
fn into_mimic(
    index: usize,
    trial: Trial,
    sandboxes: Option<Arc<Sandboxes>>,
) -> libtest_mimic::Trial {
    let Trial {
        name,
        kind,
        ignored,
        runner,
        settings,
    } = trial;
    let mut request = Request {
        index,
        name: name.clone(),
        kind: kind.clone(),
        bench: false,
    };
    let mimic = match runner {
        Runner::Test(test) => libtest_mimic::Trial::ignorable_test(name, move || {
            let Some(sandboxes) = sandboxes else {
                return test();
            };
            match sandboxes.placement()? {
                Placement::Here => test(),
                Placement::Sandbox(engine) => {
                    sandboxes
                        .run(engine, &request, settings)
                        .map(|report| match report {
                            Report::Ignored { reason } => Completion::Ignored { reason },
                            _ => Completion::Completed,
                        })
                }
            }
        }),
        Runner::Bench(bench) => libtest_mimic::Trial::bench(name, move |test_mode| {
            let Some(sandboxes) = sandboxes else {
                return bench(test_mode);
            };
            match sandboxes.placement()? {
                Placement::Here => bench(test_mode),
                Placement::Sandbox(engine) => {
                    request.bench = !test_mode;
                    sandboxes
                        .run(engine, &request, settings)
                        .map(|report| match report {
                            Report::Measured { avg, variance } => {
                                Some(Measurement { avg, variance })
                            }
                            _ => None,
                        })
                }
            }
        }),
    };
    mimic.with_kind(kind).with_ignored_flag(ignored)
}
