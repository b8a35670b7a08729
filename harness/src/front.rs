//! What `cargo sandbox test` and the `sandbox-harness` test front say to each other (the front
//! itself, [`crate::libtest`], needs the `libtest` feature; the runner needs only this).

use serde::{Deserialize, Serialize};

/// Set in a re-executed trial's environment: which trial to run (JSON, see
/// `libtest::child::Request`).
pub const TRIAL_VAR: &str = "SANDBOX_HARNESS_TRIAL";
/// Set by `cargo sandbox test` while listing: print each trial's settings.
pub const LIST_LIMITS_VAR: &str = "CARGO_SANDBOX_LIST_LIMITS";
/// Set by `cargo sandbox test` in every test's environment.
pub const RUNNER_VAR: &str = "CARGO_SANDBOX_TEST";
/// Set to `1` to run trials in-process where sandboxes cannot be made (a contributor's laptop
/// without root or delegated cgroups), as `Harness::allow_unsandboxed` does in code.
pub const ALLOW_UNSANDBOXED_VAR: &str = "SANDBOX_HARNESS_ALLOW_UNSANDBOXED";
/// Prefix of the settings lines in a listing.
pub const LIMITS_LINE: &str = "cargo-sandbox-limits";

/// The network a trial's sandbox has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// A network namespace with nothing in it, not even `lo`.
    None,
    /// A network namespace with `lo` up (the default).
    Loopback,
    /// The host's network: no network namespace.
    Host,
}

/// What a trial asks for; unset keys fall back to the harness's defaults, then to the runner's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrialSettings {
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub cpu_millis: Option<u32>,
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
}

impl TrialSettings {
    pub fn or(self, fallback: TrialSettings) -> TrialSettings {
        TrialSettings {
            memory_bytes: self.memory_bytes.or(fallback.memory_bytes),
            pids: self.pids.or(fallback.pids),
            cpu_millis: self.cpu_millis.or(fallback.cpu_millis),
            timeout_ms: self.timeout_ms.or(fallback.timeout_ms),
            network: self.network.or(fallback.network),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == TrialSettings::default()
    }
}
