//! The parent side of a sandboxed trial: re-execute this binary for the one trial in a fresh
//! sandbox with the trial's settings, and judge what happened, our outcome words first.

use super::child::{split_report, Report, Request};
use super::trial::listed_name;
use super::Failed;
use crate::front::{Network, TrialSettings, ALLOW_UNSANDBOXED_VAR, TRIAL_VAR};
use crate::units::format_bytes;
use crate::{Engine, EngineOptions, Exit, Output, SandboxResult, SandboxSpec, Stdin};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// Where the trials of one run go: shared by the trials' runners on libtest-mimic's threads.
pub(super) struct Sandboxes {
    /// Made by the first trial that runs, so `--list` never makes one.
    engine: OnceLock<Result<Engine, String>>,
    /// Run trials here when no sandbox can be made (asked for in code or by the environment).
    allow_unsandboxed: bool,
    /// `--nocapture`: print what each trial printed, not only a failing one's.
    show_output: bool,
}

/// What the trial's runner should do.
pub(super) enum Placement<'a> {
    Here,
    Sandbox(&'a Engine),
}

impl Sandboxes {
    /// `to_run`: the settings of each trial this run will start. When there are any, the
    /// engine is made now, on this thread, which outlives the trials' threads (the zygote that
    /// makes sandboxes ahead of need dies with the thread that started it); when there are
    /// many, sandboxes are made ahead of need, as `cargo sandbox test` makes them.
    pub fn new(allow_unsandboxed: bool, show_output: bool, to_run: &[TrialSettings]) -> Sandboxes {
        let allowed_by_env = std::env::var_os(ALLOW_UNSANDBOXED_VAR).is_some_and(|v| v == "1");
        let engine = OnceLock::new();
        if !to_run.is_empty() {
            let _ = engine.set(make_engine(to_run));
        }
        Sandboxes {
            engine,
            allow_unsandboxed: allow_unsandboxed || allowed_by_env,
            show_output,
        }
    }

    /// Where a trial runs now; an error when it can run nowhere.
    pub fn placement(&self) -> Result<Placement<'_>, Failed> {
        match self.engine.get_or_init(|| make_engine(&[])) {
            Ok(engine) => Ok(Placement::Sandbox(engine)),
            Err(_) if self.allow_unsandboxed => Ok(Placement::Here),
            Err(reason) => Err(format!(
                "cannot run this trial in a sandbox: {reason}\n(run it as root or under \
                 `cargo sandbox test`; or set {ALLOW_UNSANDBOXED_VAR}=1 to run trials \
                 unsandboxed)"
            )
            .into()),
        }
    }

    /// Runs the trial in a fresh sandbox: `Ok` with what the trial reported when it passed,
    /// was ignored or measured; `Err` with the reason otherwise.
    pub fn run(
        &self,
        engine: &Engine,
        request: &Request,
        settings: TrialSettings,
    ) -> Result<Report, Failed> {
        let spec = spec_for(request, settings)?;
        let result = engine
            .run(&spec, None)
            .map_err(|e| format!("the sandbox failed: {e}"))?;
        let captured = result.output.as_ref().map(|o| o.text()).unwrap_or_default();
        let (printed, report) = split_report(&captured);
        let usage = usage(&result);
        let failure = match (stopped_by_sandbox(&result, &spec), report) {
            (Some(what), _) => what,
            (None, Some(Report::Failed { message })) => message.unwrap_or_else(|| "failed".into()),
            (None, Some(Report::Mismatch { found })) => mismatch(request, found),
            (None, Some(report)) => return Ok(self.passed(report, &result, request, &printed)),
            (None, None) => match result.exit {
                Exit::Code(0) => {
                    return Ok(self.passed(Report::Passed, &result, request, &printed))
                }
                exit => format!("exited ({exit:?}) before the trial returned"),
            },
        };
        let printed = printed.trim_end();
        let output = if printed.is_empty() {
            String::new()
        } else {
            format!("\n{printed}")
        };
        Err(format!("{failure}\n({usage}){output}").into())
    }

    /// A trial that ended well: what the sandbox caught is said, as `cargo sandbox test` says it
    /// (it passes, as there by default).
    fn passed(
        &self,
        report: Report,
        r: &SandboxResult,
        request: &Request,
        printed: &str,
    ) -> Report {
        let name = &request.name;
        if r.leaked_total > 0 {
            let listed: Vec<String> = r
                .leaked_processes
                .iter()
                .map(|p| format!("{} {}", p.pid, p.cmdline))
                .collect();
            println!(
                "LEAKED: `{name}` left {} process(es) behind, killed: {}",
                r.leaked_total,
                listed.join(", ")
            );
        }
        let attempts = r.network_attempts.total();
        if attempts > 0 {
            println!(
                "NETWORK: `{name}` tried to reach the network {attempts} time(s); its namespace \
                 has no route out"
            );
        }
        if self.show_output && !printed.is_empty() {
            print!("{printed}");
        }
        report
    }
}

/// An engine for the trials to come, preparing their sandboxes ahead when there are several
/// (not for one: nextest runs each trial in a process of its own).
fn make_engine(to_run: &[TrialSettings]) -> Result<Engine, String> {
    let options = EngineOptions {
        prepare_ahead: to_run.len() > 1,
        ..EngineOptions::default()
    };
    let engine = Engine::new(options).map_err(|e| e.to_string())?;
    let mut uses: HashMap<TrialSettings, usize> = HashMap::new();
    for settings in to_run {
        *uses.entry(*settings).or_default() += 1;
    }
    for (settings, uses) in uses {
        if let Ok(spec) = spec_for(&Request::default(), settings) {
            engine.prepare(&spec, Some(uses));
        }
    }
    Ok(engine)
}

/// The sandbox for one trial: this binary again, told which trial, under the trial's settings.
fn spec_for(request: &Request, settings: TrialSettings) -> Result<SandboxSpec, Failed> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this test binary: {e}"))?;
    let cwd = std::env::current_dir().map_err(|e| format!("reading the current directory: {e}"))?;
    let request_json =
        serde_json::to_string(request).map_err(|e| format!("naming the trial: {e}"))?;
    let (mut env, skipped) = crate::spec::utf8_env();
    static SAID: std::sync::Once = std::sync::Once::new();
    for name in skipped {
        SAID.call_once(|| {
            eprintln!(
                "sandbox-harness: warning: `{name}` is not UTF-8: the sandboxes do not get it"
            )
        });
    }
    env.push((TRIAL_VAR.to_owned(), request_json));
    let mut spec = SandboxSpec::new(vec![exe.display().to_string()], cwd, env);
    spec.limits = crate::Limits {
        memory_bytes: settings.memory_bytes,
        pids: settings.pids,
        cpu_millis: settings.cpu_millis,
        io_write_bps: None,
    };
    spec.timeout = settings.timeout_ms.map(Duration::from_millis);
    match settings.network {
        Some(Network::Host) => spec.namespaces.net = false,
        Some(Network::None) => spec.loopback = false,
        Some(Network::Loopback) | None => {}
    }
    spec.stdin = Stdin::Null;
    spec.output = Output::Capture {
        limit_bytes: 1 << 20,
    };
    Ok(spec)
}

/// Our outcome word when the sandbox, not the trial, decided how it ended.
fn stopped_by_sandbox(r: &SandboxResult, spec: &SandboxSpec) -> Option<String> {
    if r.timed_out {
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
    } else {
        r.exit
            .signal_name()
            .map(|signal| format!("killed by {signal}"))
    }
}

fn usage(r: &SandboxResult) -> String {
    format!(
        "peak memory {}, cpu {:.1?}",
        r.usage
            .memory_peak_bytes
            .map_or("unknown".into(), format_bytes),
        Duration::from_micros(r.usage.cpu_user_us + r.usage.cpu_system_us)
    )
}

fn mismatch(request: &Request, found: Option<String>) -> String {
    let asked = listed_name(&request.kind, &request.name);
    let found = found.map_or("no trial (the list is shorter)".to_owned(), |f| {
        format!("`{f}`")
    });
    format!(
        "the trial list changed between runs of this binary: trial #{} is `{asked}` here but \
         {found} in the trial's sandbox. Each trial's sandbox runs `main` again and picks its \
         trial by position, so `main` must build the same trials in the same order every time \
         (sort directory listings; do not build trials from files under /tmp, which is private \
         to each sandbox).",
        request.index
    )
}
