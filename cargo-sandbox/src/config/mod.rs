//! Settings for each test, from four layers (lowest first): built-in defaults, the profile
//! (`[profile.default]`, then the chosen `[profile.<name>]`), the profile's overrides that match
//! the test, and the command line. Read from `.config/sandbox.toml` in the workspace or from
//! `[workspace.metadata.sandbox]` in its Cargo.toml (one or the other).
//!
//! ```toml
//! [profile.default]
//! memory = "1G"
//! timeout = "60s"
//! env.pass = ["DATABASE_URL", "MY_*"]
//!
//! [[profile.default.overrides]]
//! test = "regex:^parser::"        # also: package = "...", binary = "...", "exact:", "glob:"
//! memory = "4G"
//! network = "host"
//! ```

mod file;
mod values;
mod workspace;

pub use file::Config;
pub use values::{Bandwidth, Cap, CpuList, Cpus, Grace, Memory, Pids, Size, Timeout};
pub use workspace::{of_workspace, read_checked};

use harness::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// One sandbox per test.
    Test,
    /// One sandbox per test binary.
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// A network namespace with nothing in it, not even `lo`.
    None,
    /// A network namespace with `lo` up (the default).
    Loopback,
    /// The host's network: no network namespace (the report says so).
    Host,
}

impl From<harness::Network> for NetworkMode {
    fn from(network: harness::Network) -> NetworkMode {
        match network {
            harness::Network::None => NetworkMode::None,
            harness::Network::Loopback => NetworkMode::Loopback,
            harness::Network::Host => NetworkMode::Host,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsMode {
    /// The host read-only; the workspace copy-on-write, every change reported.
    Isolated,
    /// No file isolation: tests may write the real tree (the report says so).
    Host,
}

/// What a test that changed files in the workspace gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileLeakPolicy {
    /// Reported with its own outcome word; the test still passes.
    Warn,
    /// The test fails.
    Fail,
    /// Listed in the report only.
    Allow,
}

/// `fs = "isolated"`, or `fs = { mode = "isolated", writable = ["/var/cache/x"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FsLayer {
    Mode(FsMode),
    Table(FsTable),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsTable {
    pub mode: Option<FsMode>,
    #[serde(default)]
    pub writable: Vec<std::path::PathBuf>,
}

/// One layer of settings: a profile, an override, or the command line. `None` leaves the key
/// to the layers below.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Layer {
    pub memory: Option<Memory>,
    pub pids: Option<Pids>,
    pub cpus: Option<Cpus>,
    pub cpuset: Option<CpuList>,
    pub io_write_bps: Option<Bandwidth>,
    pub timeout: Option<Timeout>,
    pub grace: Option<Grace>,
    pub tmp_size: Option<Size>,
    pub network: Option<NetworkMode>,
    pub leaks: Option<Policy>,
    pub network_attempts: Option<Policy>,
    pub flaky: Option<Policy>,
    pub isolation: Option<Isolation>,
    pub retries: Option<u32>,
    pub repeat: Option<u32>,
    pub env: Option<EnvLayer>,
    pub fs: Option<FsLayer>,
    pub file_leaks: Option<FileLeakPolicy>,
    /// Full capabilities, no no_new_privs, no seccomp filter (for suites that test namespace
    /// or mount code themselves).
    pub privileged: Option<bool>,
    // Only in overrides: which tests it applies to.
    pub package: Option<toml::Spanned<file::Pattern>>,
    pub binary: Option<toml::Spanned<file::Pattern>>,
    pub test: Option<toml::Spanned<file::Pattern>>,
    /// A nextest filterset (`filter = 'test(parse) & kind(lib)'`), compiled once the
    /// workspace's packages are known ([`Config::compile_filters`]).
    pub filter: Option<toml::Spanned<String>>,
    // Only in profiles.
    pub overrides: Option<toml::Spanned<Vec<toml::Spanned<Layer>>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvLayer {
    /// Host variables that reach tests (`*` globs allowed).
    #[serde(default)]
    pub pass: Vec<String>,
    /// Variables set for tests.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Inherit the whole host environment (not hermetic).
    pub inherit: Option<bool>,
}

impl Layer {
    /// The settings a test declares itself, as a layer.
    pub fn declared(settings: harness::TrialSettings) -> Layer {
        Layer {
            memory: settings.memory_bytes.map(|b| Memory(Cap::Max(b))),
            pids: settings.pids.map(|n| Pids(Cap::Max(n))),
            cpus: settings.cpu_millis.map(Cpus),
            timeout: settings
                .timeout_ms
                .map(|ms| Timeout(Cap::Max(Duration::from_millis(ms)))),
            network: settings.network.map(NetworkMode::from),
            ..Layer::default()
        }
    }
}

/// A test's settings, every key decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub memory: Cap<u64>,
    pub pids: Cap<u64>,
    pub cpus: Option<u32>,
    pub cpuset: Option<Vec<u32>>,
    pub io_write_bps: Cap<u64>,
    pub timeout: Cap<Duration>,
    pub grace: Duration,
    pub tmp_size: u64,
    pub network: NetworkMode,
    pub leaks: Policy,
    pub network_attempts: Policy,
    pub flaky: Policy,
    pub isolation: Isolation,
    pub retries: u32,
    pub repeat: u32,
    pub env: EnvSettings,
    pub fs: FsMode,
    pub writable: Vec<std::path::PathBuf>,
    pub file_leaks: FileLeakPolicy,
    pub privileged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EnvSettings {
    pub pass: Vec<String>,
    pub set: BTreeMap<String, String>,
    pub inherit: bool,
}

impl Default for Resolved {
    /// The built-in defaults, the bottom layer.
    fn default() -> Resolved {
        Resolved {
            memory: Cap::Max(4 << 30),
            pids: Cap::Max(1024),
            cpus: None,
            cpuset: None,
            io_write_bps: Cap::None,
            timeout: Cap::None,
            grace: Duration::from_secs(1),
            tmp_size: 256 << 20,
            network: NetworkMode::Loopback,
            leaks: Policy::Pass,
            network_attempts: Policy::Pass,
            flaky: Policy::Pass,
            isolation: Isolation::Test,
            retries: 0,
            repeat: 1,
            env: EnvSettings::default(),
            fs: FsMode::Isolated,
            writable: Vec::new(),
            file_leaks: FileLeakPolicy::Warn,
            privileged: false,
        }
    }
}

/// Where each key's value came from, for `cargo sandbox config`.
pub type Origins = BTreeMap<&'static str, String>;

impl Resolved {
    /// Applies `layers` from lowest to highest priority onto the defaults.
    pub fn from_layers<'a>(
        layers: impl IntoIterator<Item = (&'a Layer, String)>,
    ) -> (Resolved, Origins) {
        let mut r = Resolved::default();
        let mut origins = Origins::new();
        for (layer, origin) in layers {
            macro_rules! take {
                ($key:literal, $field:ident, $value:expr) => {
                    if let Some(v) = &layer.$field {
                        #[allow(clippy::redundant_closure_call)]
                        {
                            r.$field = $value(v);
                        }
                        origins.insert($key, origin.clone());
                    }
                };
            }
            take!("memory", memory, |v: &Memory| v.0);
            take!("pids", pids, |v: &Pids| v.0);
            take!("cpus", cpus, |v: &Cpus| Some(v.0));
            take!("cpuset", cpuset, |v: &CpuList| Some(v.0.clone()));
            take!("io-write-bps", io_write_bps, |v: &Bandwidth| v.0);
            take!("timeout", timeout, |v: &Timeout| v.0);
            take!("grace", grace, |v: &Grace| v.0);
            take!("tmp-size", tmp_size, |v: &Size| v.0);
            take!("network", network, |v: &NetworkMode| *v);
            take!("leaks", leaks, |v: &Policy| *v);
            take!("network-attempts", network_attempts, |v: &Policy| *v);
            take!("flaky", flaky, |v: &Policy| *v);
            take!("isolation", isolation, |v: &Isolation| *v);
            take!("retries", retries, |v: &u32| *v);
            take!("repeat", repeat, |v: &u32| (*v).max(1));
            take!("file-leaks", file_leaks, |v: &FileLeakPolicy| *v);
            take!("privileged", privileged, |v: &bool| *v);
            if let Some(fs) = &layer.fs {
                let (mode, writable) = match fs {
                    FsLayer::Mode(mode) => (Some(*mode), &[][..]),
                    FsLayer::Table(t) => (t.mode, &t.writable[..]),
                };
                if let Some(mode) = mode {
                    r.fs = mode;
                }
                for path in writable {
                    if !r.writable.contains(path) {
                        r.writable.push(path.clone());
                    }
                }
                origins.insert("fs", origin.clone());
            }
            if let Some(env) = &layer.env {
                for pattern in &env.pass {
                    if !r.env.pass.contains(pattern) {
                        r.env.pass.push(pattern.clone());
                    }
                }
                r.env
                    .set
                    .extend(env.set.iter().map(|(k, v)| (k.clone(), v.clone())));
                if let Some(inherit) = env.inherit {
                    r.env.inherit = inherit;
                }
                origins.insert("env", origin.clone());
            }
        }
        (r, origins)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory.value(),
            pids: self.pids.value(),
            cpu_millis: self.cpus,
            io_write_bps: self.io_write_bps.value(),
        }
    }

    /// Puts these settings' caps, confinement and network mode on a spec: the one place a
    /// sandbox's protections come from settings, for `test` and `exec` alike.
    pub fn apply_caps(&self, spec: &mut harness::SandboxSpec) {
        spec.limits = self.limits();
        spec.privileged = self.privileged;
        spec.cpuset = self.cpuset.clone();
        spec.timeout = self.timeout.value();
        spec.grace = self.grace;
        spec.tmp_size_bytes = self.tmp_size;
        spec.namespaces.net = self.network != NetworkMode::Host;
        spec.loopback = self.network == NetworkMode::Loopback;
    }

    pub fn policies(&self) -> crate::outcome::Policies {
        crate::outcome::Policies {
            leaks: self.leaks,
            network: self.network_attempts,
            flaky: self.flaky,
            file_leaks: self.file_leaks,
        }
    }
}
