//! The runner's side: the multi-threaded process that makes sandboxes, starts their inits,
//! watches them and collects what happened. Nothing here runs inside a sandbox; what does is
//! in [`crate::init`].
//!
//! - `engine`: [`Engine`](engine::Engine), the one entry point: a spec in, a result out.
//! - `watch`: the loop around one running sandbox (deadline, cancellation, output, report).
//! - `start`: cgroup + clone + the init's set-up, up to the moment the command may start.
//! - `warm`, `netpool`, `zygote`: sandboxes, network namespaces and inits made ahead of need.
//! - `clone`: the raw clone3 / fork-and-exec of an init, async-signal-safe.
//! - `janitor`: waits for inits to exit and removes their cgroups off the test's path.
//! - `cancel`, `capture`, `userns`: a run's cancellation, bounded output, user namespaces.

pub mod cancel;
pub(crate) mod capture;
pub(crate) mod clone;
pub mod engine;
pub(crate) mod janitor;
pub(crate) mod netpool;
pub(crate) mod start;
pub(crate) mod userns;
pub(crate) mod warm;
mod watch;
pub(crate) mod zygote;
