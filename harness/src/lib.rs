//! The cargo-sandbox engine: run one command in fresh Linux namespaces, under cgroup caps, and
//! tell the caller everything that happened to it.
//!
//! The seam with the CLI is [`Engine::run`]: a [`SandboxSpec`] goes in, a [`SandboxResult`] comes
//! out. Nothing here knows about cargo.
//!
//! ```text
//! runner (multi-threaded)            sandbox
//! ───────────────────────            ───────────────────────────────────────────
//! cgroup::Group::create  ──┐
//! clone3(NEW{PID,NET,NS,UTS,IPC}) ─► init (this binary re-executed, PID 1, one thread)
//! add init to the cgroup   │          reads InitConfig from fd 3
//! write InitConfig ────────┘          cgroup ns, mounts, lo up, hostname
//!                                     spawns the command, reaps, takes the leak census
//! poll(pidfd, report, output) ◄────── writes InitReport to fd 4, exits (the namespace dies)
//! read cgroup stats, remove cgroup
//! ```
//!
//! Any binary that uses the engine must call [`init::run_if_requested`] first thing in `main`,
//! because the sandbox's PID 1 is that same binary re-executed.

mod cancel;
mod capture;
pub mod cgroup;
mod clone;
mod devices;
mod error;
pub mod front;
pub mod init;
mod janitor;
mod launch;
#[cfg(feature = "libtest")]
pub mod libtest;
mod netpool;
mod netstat;
mod oom;
mod protocol;
mod result;
mod spec;
mod start;
pub mod units;
mod userns;
mod warm;
mod zygote;

pub use cancel::Cancel;
pub use capture::CapturedOutput;
pub use error::SandboxError;
pub use front::TrialLimits;
pub use launch::{Engine, EngineOptions};
#[cfg(feature = "libtest")]
pub use libtest::{Harness, Trial};
pub use result::{
    Exit, FileChange, FileWrite, LeakedProcess, NetworkAttempts, Protections, ResourceUsage,
    SandboxResult,
};
pub use spec::{Filesystem, Limits, Namespaces, Output, SandboxSpec, Stdin};
pub use userns::RootMapping;
