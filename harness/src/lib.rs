//! The cargo-sandbox engine: run one command in fresh Linux namespaces, under cgroup caps, and
//! tell the caller everything that happened to it.
//!
//! The seam with the CLI is [`Engine::run`]: a [`SandboxSpec`] goes in, a [`SandboxResult`] comes
//! out. Nothing here knows about cargo.
//!
//! ```text
//! runner (multi-threaded)            sandbox
//! ───────────────────────            ───────────────────────────────────────────
//! cgroup::Group (caps) ────┐
//! clone3(NEW{PID,NET,NS,UTS,IPC}) ─► init (PID 1, one thread: this binary re-executed, or
//! add init to the cgroup   │          a clone of the zygote); confines itself
//! write InitSetup ─────────┘          reads InitSetup from fd 3: cgroup ns, mounts, lo, hostname
//!   (all of the above ahead of need, by `warm`, when many sandboxes run)
//! write InitRun ────────────────────► reads InitRun: spawns the command, reaps, takes the census
//! poll(pidfd, report, output) ◄────── writes InitReport to fd 4, exits (the namespace dies)
//! read cgroup stats; the janitor removes the cgroup once the init is gone
//! ```
//!
//! Any binary that uses the engine must call [`run_if_requested`] first thing in `main`,
//! because the sandbox's PID 1 is that same binary re-executed.

pub mod cgroup;
mod devices;
mod error;
pub mod front;
pub mod init;
#[cfg(feature = "libtest")]
pub mod libtest;
mod netstat;
mod protocol;
mod result;
mod runner;
mod spec;
pub mod units;

pub use error::SandboxError;
pub use front::{Network, TrialSettings};
/// libtest-mimic's API at the root, so `use sandbox_harness as libtest_mimic;` (or renaming the
/// dependency in Cargo.toml) ports a libtest-mimic suite without touching its code.
#[cfg(feature = "libtest")]
pub use libtest::{
    run, Arguments, ColorSetting, Completion, Conclusion, Failed, FormatSetting, Harness,
    Measurement, Trial,
};
pub use result::{
    CapturedOutput, Exit, FileChange, FileWrite, LeakedProcess, NetworkAttempts, Protections,
    ResourceUsage, SandboxResult,
};
pub use runner::cancel::Cancel;
pub use runner::engine::{Engine, EngineOptions};
pub use spec::{
    utf8_env, Filesystem, Limits, Namespaces, Output, RootMapping, SandboxSpec, ShownAt, Stdin,
};

/// Call first thing in `main` of any binary that runs sandboxes: when this process was started
/// as a sandbox's init it runs the init and exits; otherwise it returns at once.
pub fn run_if_requested() {
    // Referenced, so the linker keeps the protocol stamp a runner looks for in this binary.
    std::hint::black_box(&init::STAMP);
    match std::env::args_os().nth(1) {
        Some(a) if a == protocol::INIT_ARG => std::process::exit(init::main()),
        Some(a) if a == runner::zygote::ZYGOTE_ARG => std::process::exit(runner::zygote::serve()),
        _ => {}
    }
}
