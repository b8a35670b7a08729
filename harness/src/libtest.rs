//! The test front for `[[test]] harness = false` targets: each trial runs in its own sandbox, with
//! limits declared next to it, under plain `cargo test`, `cargo nextest run` or
//! `cargo sandbox test` alike (libtest's command line comes from libtest-mimic).
//!
//! ```ignore
//! use sandbox_harness::{Harness, Trial};
//! fn main() {
//!     Harness::from_args()
//!         .memory("256M").pids(64).timeout("30s")
//!         .run(vec![
//!             Trial::test("spawns_workers", spawns_workers),
//!             Trial::test("big_parse", big_parse).memory("1G"),
//!         ])
//! }
//! ```
//!
//! How a trial runs:
//! - under `cargo test` / nextest: the binary re-executes itself in a sandbox for that one trial
//!   (marked by [`TRIAL_VAR`]) with the trial's limits, and turns what the sandbox saw into the
//!   trial's result (`OOM`, fork bomb, timeout, signal, the panic's own output);
//! - under `cargo sandbox test` (the runner sets `CARGO_SANDBOX_TEST`): directly, since the
//!   runner already put this process in a sandbox; the runner learns the limits from the listing
//!   (lines `cargo-sandbox-limits<TAB>NAME<TAB>JSON` when it sets [`LIST_LIMITS_VAR`]);
//! - without privileges for sandboxes: each trial fails with the reason, unless the crate
//!   opted into [`Harness::allow_unsandboxed`].

use crate::units::{format_bytes, parse_bytes, parse_duration};
use crate::{Engine, EngineOptions, Exit, Output, SandboxResult, SandboxSpec, Stdin};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use crate::front::{TrialLimits, LIMITS_LINE, LIST_LIMITS_VAR, RUNNER_VAR, TRIAL_VAR};

/// Builder methods shared by [`Harness`] and [`Trial`]. Bad values panic with the reason: they
/// are written in test code, where a panic is the clearest report.
macro_rules! limit_setters {
    () => {
        /// Memory cap, e.g. `"256M"`.
        pub fn memory(mut self, size: &str) -> Self {
            self.limits.memory_bytes =
                Some(parse_bytes(size).unwrap_or_else(|e| panic!("memory: {e}")));
            self
        }
        /// Cap on processes and threads.
        pub fn pids(mut self, max: u64) -> Self {
            self.limits.pids = Some(max);
            self
        }
        /// CPU quota in CPUs, e.g. `1.5`.
        pub fn cpus(mut self, cpus: f64) -> Self {
            self.limits.cpu_millis = Some((cpus * 1000.0).round() as u32);
            self
        }
        /// Wall-clock limit, e.g. `"30s"`.
        pub fn timeout(mut self, duration: &str) -> Self {
            let d = parse_duration(duration).unwrap_or_else(|e| panic!("timeout: {e}"));
            self.limits.timeout_ms = Some(d.as_millis() as u64);
            self
        }
    };
}

/// One test: a name, a function, and optional limits of its own.
pub struct Trial {
    name: String,
    test: fn(),
    limits: TrialLimits,
    ignored: bool,
}

impl Trial {
    pub fn test(name: impl Into<String>, test: fn()) -> Trial {
        Trial {
            name: name.into(),
            test,
            limits: TrialLimits::default(),
            ignored: false,
        }
    }

    /// Marks the trial `#[ignore]`d.
    pub fn ignored(mut self) -> Self {
        self.ignored = true;
        self
    }

    limit_setters!();
}

/// The harness: libtest's command line plus default limits for every trial.
pub struct Harness {
    args: libtest_mimic::Arguments,
    limits: TrialLimits,
    allow_unsandboxed: bool,
}

impl Harness {
    /// Reads libtest's arguments. When this process is a sandbox's init, it runs the init
    /// instead and never returns (the sandbox's PID 1 is this binary re-executed).
    pub fn from_args() -> Harness {
        crate::init::run_if_requested();
        Harness {
            args: libtest_mimic::Arguments::from_args(),
            limits: TrialLimits::default(),
            allow_unsandboxed: false,
        }
    }

    /// Run trials unsandboxed (in this process) when sandboxes are unavailable, instead of
    /// failing them.
    pub fn allow_unsandboxed(mut self) -> Self {
        self.allow_unsandboxed = true;
        self
    }

    limit_setters!();

    /// Runs the trials and exits like libtest.
    pub fn run(self, trials: Vec<Trial>) -> ! {
        if let Ok(name) = std::env::var(TRIAL_VAR) {
            run_one_here(&trials, &name);
        }
        if self.args.list && std::env::var_os(LIST_LIMITS_VAR).is_some() {
            for trial in &trials {
                let limits = trial.limits.or(self.limits);
                if !limits.is_empty() {
                    let json = serde_json::to_string(&limits).unwrap_or_default();
                    println!("{LIMITS_LINE}\t{}\t{json}", trial.name);
                }
            }
        }
        let under_runner = std::env::var_os(RUNNER_VAR).is_some();
        let engine: Arc<OnceLock<Result<Engine, String>>> = Arc::new(OnceLock::new());
        let trials = trials
            .into_iter()
            .map(|trial| {
                let Trial {
                    name,
                    test,
                    limits,
                    ignored,
                } = trial;
                let limits = limits.or(self.limits);
                let engine = engine.clone();
                let allow_unsandboxed = self.allow_unsandboxed;
                let trial_name = name.clone();
                libtest_mimic::Trial::test(name, move || {
                    if under_runner {
                        test();
                        return Ok(());
                    }
                    let engine = engine.get_or_init(|| {
                        Engine::new(EngineOptions::default()).map_err(|e| e.to_string())
                    });
                    match engine {
                        Ok(engine) => run_in_sandbox(engine, &trial_name, limits),
                        Err(_) if allow_unsandboxed => {
                            test();
                            Ok(())
                        }
                        Err(reason) => {
                            Err(format!("cannot run this trial in a sandbox: {reason}").into())
                        }
                    }
                })
                .with_ignored_flag(ignored)
            })
            .collect();
        libtest_mimic::run(&self.args, trials).exit()
    }
}

/// Inside the sandbox: run the one trial named, exit 0 or (on panic) 101 as libtest does.
fn run_one_here(trials: &[Trial], name: &str) -> ! {
    let Some(trial) = trials.iter().find(|t| t.name == name) else {
        eprintln!("sandbox-harness: no trial named `{name}`");
        std::process::exit(101);
    };
    let code = match std::panic::catch_unwind(trial.test) {
        Ok(()) => 0,
        Err(_) => 101,
    };
    std::process::exit(code)
}

/// Re-executes this binary for one trial in a fresh sandbox and judges what happened.
fn run_in_sandbox(
    engine: &Engine,
    name: &str,
    limits: TrialLimits,
) -> Result<(), libtest_mimic::Failed> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this test binary: {e}"))?;
    let cwd = std::env::current_dir().map_err(|e| format!("reading the current directory: {e}"))?;
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.push((TRIAL_VAR.to_owned(), name.to_owned()));
    let mut spec = SandboxSpec::new(vec![exe.display().to_string()], cwd, env);
    spec.limits = crate::Limits {
        memory_bytes: limits.memory_bytes,
        pids: limits.pids,
        cpu_millis: limits.cpu_millis,
        io_write_bps: None,
    };
    spec.timeout = limits.timeout_ms.map(Duration::from_millis);
    spec.stdin = Stdin::Null;
    spec.output = Output::Capture {
        limit_bytes: 1 << 20,
    };
    let result = engine
        .run(&spec, None)
        .map_err(|e| format!("the sandbox failed: {e}"))?;
    verdict(&result, &spec, name)
}

/// The trial's result from what the sandbox saw: our outcome words lead the message.
fn verdict(r: &SandboxResult, spec: &SandboxSpec, name: &str) -> Result<(), libtest_mimic::Failed> {
    let output = r.output.as_ref().map(|o| o.text()).unwrap_or_default();
    let usage = format!(
        "peak memory {}, cpu {:.1?}",
        r.usage
            .memory_peak_bytes
            .map_or("unknown".into(), format_bytes),
        Duration::from_micros(r.usage.cpu_user_us + r.usage.cpu_system_us)
    );
    let failure = if r.timed_out {
        Some(format!(
            "TIMED OUT after {:?} and killed",
            spec.timeout.unwrap_or_default()
        ))
    } else if r.usage.oom_kills > 0 {
        Some(format!(
            "OOM: killed by the memory cap ({})",
            spec.limits.memory_bytes.map_or("none".into(), format_bytes)
        ))
    } else if r.usage.forks_refused > 0 {
        Some(format!(
            "FORK BOMB contained: the pids cap ({}) refused {} fork(s)",
            spec.limits.pids.map_or("none".into(), |n| n.to_string()),
            r.usage.forks_refused
        ))
    } else if let Some(signal) = r.exit.signal_name() {
        Some(format!("killed by {signal}"))
    } else if r.exit != Exit::Code(0) {
        Some("failed".to_owned())
    } else {
        None
    };
    match failure {
        Some(what) => Err(format!("{what}; {usage}\n{output}").into()),
        None => {
            if r.leaked_total > 0 {
                println!(
                    "note: {name} left {} process(es) behind (killed); {usage}",
                    r.leaked_total
                );
            }
            Ok(())
        }
    }
}
