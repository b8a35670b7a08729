//! What `cargo sandbox test` and the `sandbox-harness` test front say to each other (the front
//! itself, [`crate::libtest`], needs the `libtest` feature; the runner needs only this).

use serde::{Deserialize, Serialize};

/// Set in a re-executed trial's environment: the name of the one trial to run.
pub const TRIAL_VAR: &str = "SANDBOX_HARNESS_TRIAL";
/// Set by `cargo sandbox test` while listing: print each trial's limits.
pub const LIST_LIMITS_VAR: &str = "CARGO_SANDBOX_LIST_LIMITS";
/// Set by `cargo sandbox test` in every test's environment.
pub const RUNNER_VAR: &str = "CARGO_SANDBOX_TEST";
/// Prefix of the limit lines in a listing.
pub const LIMITS_LINE: &str = "cargo-sandbox-limits";

/// Limits a trial asks for; unset ones fall back to the harness's, then to the runner's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialLimits {
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub cpu_millis: Option<u32>,
    pub timeout_ms: Option<u64>,
}

impl TrialLimits {
    pub fn or(self, fallback: TrialLimits) -> TrialLimits {
        TrialLimits {
            memory_bytes: self.memory_bytes.or(fallback.memory_bytes),
            pids: self.pids.or(fallback.pids),
            cpu_millis: self.cpu_millis.or(fallback.cpu_millis),
            timeout_ms: self.timeout_ms.or(fallback.timeout_ms),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == TrialLimits::default()
    }
}
