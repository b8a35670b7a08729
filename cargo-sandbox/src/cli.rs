//! Command-line types. Cargo runs us as `cargo-sandbox sandbox <ARGS>`; `main` drops the
//! `sandbox` word so `cargo-sandbox exec ...` works the same when run directly.

use clap::{Args, Parser, Subcommand};
use harness::units::{parse_bytes, parse_duration};
use harness::Limits;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "cargo sandbox",
    bin_name = "cargo sandbox",
    version,
    about = "Run commands and tests in fresh Linux sandboxes: their own PID, network, mount, UTS \
             and IPC namespaces, under cgroup caps, with leaks, OOMs, fork bombs and network \
             attempts reported."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one command in a sandbox and exit with its exit code.
    #[command(
        after_help = "Exit status: the command's own, 128+N when it was killed by signal N, \
                      124 when it timed out, 125 when cargo-sandbox itself failed (bad flags, \
                      no privileges, no cgroups), 126 when the command cannot be run, 127 when \
                      it was not found, 130 when interrupted."
    )]
    Exec(ExecArgs),
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Print the result as JSON on stdout (the command's own output then goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Write the result as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json_file: Option<PathBuf>,

    /// Always print the resource summary (by default only when something notable happened).
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Never print the resource summary.
    #[arg(short, long)]
    pub quiet: bool,

    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Caps and sandbox knobs shared by every subcommand that runs sandboxes.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Memory cap (e.g. 512M, 2G), swap included; `none` to lift it.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_cap_bytes)]
    pub memory: Cap<u64>,

    /// Cap on processes and threads; `none` to lift it.
    #[arg(long, value_name = "N", default_value = "1024", value_parser = parse_cap_count)]
    pub pids: Cap<u64>,

    /// CPU quota in CPUs (e.g. 1.5); unlimited by default.
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    pub cpus: Option<u32>,

    /// Kill the sandbox after this long (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Time between SIGTERM and SIGKILL at the timeout.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Create sandbox cgroups under this (empty, cgroup v2) cgroup instead of under the runner's
    /// own; for runners that share their cgroup with other processes.
    #[arg(long, value_name = "DIR", env = "CARGO_SANDBOX_CGROUP_PARENT")]
    pub cgroup_parent: Option<PathBuf>,

    /// Size of the private tmpfs on /tmp (and /dev/shm).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_bytes)]
    pub tmp_size: u64,
}

/// A cap that may be lifted with `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap<T> {
    Max(T),
    None,
}

impl<T: Copy> Cap<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Cap::Max(v) => Some(v),
            Cap::None => None,
        }
    }
}

fn parse_cap_bytes(text: &str) -> Result<Cap<u64>, String> {
    if text == "none" {
        return Ok(Cap::None);
    }
    let bytes = parse_bytes(text)?;
    if bytes < 4 << 20 {
        return Err(format!(
            "`{text}` is below the 4 MiB a sandbox needs to start"
        ));
    }
    Ok(Cap::Max(bytes))
}

fn parse_cap_count(text: &str) -> Result<Cap<u64>, String> {
    if text == "none" {
        return Ok(Cap::None);
    }
    match text.parse::<u64>() {
        Ok(n) if n >= 2 => Ok(Cap::Max(n)),
        _ => Err(format!(
            "`{text}` is not a process count of at least 2 (the init and the command)"
        )),
    }
}

fn parse_cpus(text: &str) -> Result<u32, String> {
    match text.parse::<f64>() {
        Ok(cpus) if (0.01..=4096.0).contains(&cpus) => Ok((cpus * 1000.0).round() as u32),
        _ => Err(format!("`{text}` is not a CPU count between 0.01 and 4096")),
    }
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory.value(),
            pids: self.pids.value(),
            cpu_millis: self.cpus,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn caps() {
        assert_eq!(parse_cap_bytes("64M"), Ok(Cap::Max(64 << 20)));
        assert_eq!(parse_cap_bytes("none"), Ok(Cap::None));
        assert!(parse_cap_bytes("1K").is_err());
        assert_eq!(parse_cap_count("32"), Ok(Cap::Max(32)));
        assert!(parse_cap_count("1").is_err());
        assert_eq!(parse_cpus("1.5"), Ok(1500));
        assert!(parse_cpus("0").is_err());
    }
}
