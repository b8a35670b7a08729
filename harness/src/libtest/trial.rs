//! One trial: libtest-mimic's `Trial`, plus the sandbox settings it asks for.

use super::{Completion, Failed, Measurement};
use crate::front::TrialSettings;

/// Builder methods for sandbox settings, shared by [`Trial`] and [`super::Harness`] (whose
/// settings are every trial's defaults). Bad values panic with the reason: they are written in
/// test code, where a panic is the clearest report.
macro_rules! settings_setters {
    ($field:ident) => {
        /// Memory cap, e.g. `"256M"`.
        pub fn memory(mut self, size: &str) -> Self {
            let bytes = $crate::units::parse_bytes(size).unwrap_or_else(|e| panic!("memory: {e}"));
            self.$field.memory_bytes = Some(bytes);
            self
        }
        /// Cap on processes and threads.
        pub fn pids(mut self, max: u64) -> Self {
            self.$field.pids = Some(max);
            self
        }
        /// CPU quota in CPUs, e.g. `1.5`.
        pub fn cpus(mut self, cpus: f64) -> Self {
            self.$field.cpu_millis = Some((cpus * 1000.0).round() as u32);
            self
        }
        /// Wall-clock limit, e.g. `"30s"`.
        pub fn timeout(mut self, duration: &str) -> Self {
            let d =
                $crate::units::parse_duration(duration).unwrap_or_else(|e| panic!("timeout: {e}"));
            self.$field.timeout_ms = Some(d.as_millis() as u64);
            self
        }
        /// The network the sandbox has (default: its own namespace with only `lo`).
        pub fn network(mut self, network: $crate::front::Network) -> Self {
            self.$field.network = Some(network);
            self
        }
    };
}
pub(super) use settings_setters;

/// What a trial runs: a test, or a benchmark told whether to measure (`false`) or just run once.
pub(super) enum Runner {
    Test(Box<dyn FnOnce() -> Result<Completion, Failed> + Send>),
    Bench(Box<dyn FnOnce(bool) -> Result<Option<Measurement>, Failed> + Send>),
}

/// A test or benchmark, as libtest-mimic's [`libtest_mimic::Trial`]: a name, a runner (a
/// closure, which may own the data it tests), a kind, an ignored flag; plus sandbox settings.
pub struct Trial {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) ignored: bool,
    pub(super) runner: Runner,
    pub(super) settings: TrialSettings,
}

impl Trial {
    /// A test: `Ok(())` passes; `Err(Failed)` or a panic fails it.
    pub fn test<R>(name: impl Into<String>, runner: R) -> Trial
    where
        R: FnOnce() -> Result<(), Failed> + Send + 'static,
    {
        Trial::ignorable_test(name, move || runner().map(|()| Completion::Completed))
    }

    /// A test that may decide while it runs to be ignored (`Ok(Completion::Ignored { .. })`).
    pub fn ignorable_test<R>(name: impl Into<String>, runner: R) -> Trial
    where
        R: FnOnce() -> Result<Completion, Failed> + Send + 'static,
    {
        Trial::new(name.into(), Runner::Test(Box::new(runner)))
    }

    /// A benchmark. Its runner's argument is `true` when it should only run once, as a test
    /// (neither `--bench` nor `--test` given); with `--bench` it must return a [`Measurement`].
    pub fn bench<R>(name: impl Into<String>, runner: R) -> Trial
    where
        R: FnOnce(bool) -> Result<Option<Measurement>, Failed> + Send + 'static,
    {
        Trial::new(name.into(), Runner::Bench(Box::new(runner)))
    }

    fn new(name: String, runner: Runner) -> Trial {
        Trial {
            name,
            kind: String::new(),
            ignored: false,
            runner,
            settings: TrialSettings::default(),
        }
    }

    /// Printed in brackets before the name (`test [parse] case_1 ... ok`) and part of the name
    /// filters and `--exact` see.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Trial {
        self.kind = kind.into();
        self
    }

    /// Marks the trial ignored, like `#[ignore]`: it runs with `--ignored` or `--include-ignored`.
    pub fn with_ignored_flag(mut self, is_ignored: bool) -> Trial {
        self.ignored = is_ignored;
        self
    }

    /// Marks the trial ignored (shorthand for `with_ignored_flag(true)`).
    pub fn ignored(self) -> Trial {
        self.with_ignored_flag(true)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind, empty when none was set.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn has_ignored_flag(&self) -> bool {
        self.ignored
    }

    pub fn is_test(&self) -> bool {
        matches!(self.runner, Runner::Test(_))
    }

    pub fn is_bench(&self) -> bool {
        matches!(self.runner, Runner::Bench(_))
    }

    /// The name as `--list` prints it and `--exact` matches it: `[kind] name`, or the name.
    pub fn listed_name(&self) -> String {
        listed_name(&self.kind, &self.name)
    }

    settings_setters!(settings);
}

/// `[kind] name`, or the name when there is no kind.
pub(super) fn listed_name(kind: &str, name: &str) -> String {
    if kind.is_empty() {
        name.to_owned()
    } else {
        format!("[{kind}] {name}")
    }
}

impl std::fmt::Debug for Trial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trial")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("ignored", &self.ignored)
            .field("bench", &self.is_bench())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
