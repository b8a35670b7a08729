//! Everything a report needs about one sandboxed command.

use crate::spec::{Filesystem, Limits, RootMapping, SandboxSpec};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the command's main process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell's convention: the exit code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }

    /// `SIGSEGV`, `SIGKILL`... for a signal exit.
    pub fn signal_name(self) -> Option<String> {
        match self {
            Exit::Code(_) => None,
            Exit::Signal(n) => Some(
                nix::sys::signal::Signal::try_from(n)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| format!("signal {n}")),
            ),
        }
    }
}

/// Resource figures read from the sandbox's cgroup. `None` where this kernel does not keep the
/// figure (e.g. `pids.peak` before Linux 6.x): unknown is never reported as zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceUsage {
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    pub memory_peak_bytes: Option<u64>,
    pub oom_kills: u64,
    pub pids_peak: Option<u64>,
    /// Forks and clones the pids cap refused.
    pub forks_refused: u64,
    /// Times the CPU quota stopped the sandbox, and for how long in all (0 without `--cpus`).
    #[serde(default)]
    pub cpu_throttled_count: u64,
    #[serde(default)]
    pub cpu_throttled_us: u64,
    /// Peak swap use, only where the machine has swap (v2 `memory.swap.peak`, Linux 6.5+; on
    /// v1 the memory+swap peak less the memory peak, a lower bound).
    #[serde(default)]
    pub memory_swap_peak_bytes: Option<u64>,
    /// Bytes read from and written to block devices (`None` without the blkio/io controller).
    /// Page-cache writes count when written back, which cgroup v1 charges to the flusher, not
    /// the sandbox: there only direct and synchronous IO shows.
    #[serde(default)]
    pub io_read_bytes: Option<u64>,
    #[serde(default)]
    pub io_write_bytes: Option<u64>,
}

/// A process still alive in the sandbox when the command's main process had exited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakedProcess {
    /// PID inside the sandbox's PID namespace.
    pub pid: i32,
    pub comm: String,
    pub cmdline: String,
}

/// A change the command made to a copy-on-write directory (which the host never saw).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWrite {
    /// Where it would have landed on the host.
    pub path: std::path::PathBuf,
    pub kind: FileChange,
    /// Size after the change (0 for deletions and directories).
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    Created,
    Modified,
    Deleted,
}

/// Packets the sandbox tried to send to somewhere its namespace has no route to: any non-zero
/// value means the command tried to reach the outside network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttempts {
    pub ipv4_no_route: u64,
    pub ipv6_no_route: u64,
}

impl NetworkAttempts {
    pub fn total(&self) -> u64 {
        self.ipv4_no_route + self.ipv6_no_route
    }
}

/// The protections that were really in force, as a report must state them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protections {
    pub namespaces: Vec<String>,
    /// `v1` or `v2`.
    pub cgroup_version: String,
    pub limits: Limits,
    pub swap_disabled: bool,
    pub tmp_size_bytes: u64,
    /// `host` or `isolated`.
    pub filesystem: String,
    pub read_only: Vec<String>,
    pub copy_on_write: Vec<String>,
    pub writable: Vec<String>,
    /// Protections that were asked for but not in force (`--allow-degraded`); empty normally.
    pub degraded: Vec<String>,
    /// `reduced` (capabilities, no_new_privs, seccomp deny-list) or `privileged`.
    pub capabilities: String,
    /// Which device nodes the command may create and open: `allowlist` (the minimal /dev's
    /// character devices and terminals, enforced by the cgroup), `user-namespace` (no device
    /// node works on the sandbox's mounts), `no-mknod` (only the minimal /dev exists and
    /// CAP_MKNOD is dropped) or `unrestricted` (privileged without a device controller).
    #[serde(default)]
    pub devices: String,
    /// With a user namespace: the host uid that root inside really is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_is_host_uid: Option<u32>,
}

impl Protections {
    pub(crate) fn new(
        spec: &SandboxSpec,
        cgroup_version: &str,
        swap_disabled: bool,
        user_namespace: Option<RootMapping>,
        devices_enforced: bool,
        degraded: Option<&str>,
    ) -> Self {
        let namespaces = &spec.namespaces;
        let view = FilesystemView::of(spec);
        let mut names: Vec<String> = namespaces.names().into_iter().map(str::to_owned).collect();
        if user_namespace.is_some() {
            names.insert(0, "user".to_owned());
        }
        Protections {
            namespaces: names,
            cgroup_version: cgroup_version.to_owned(),
            // Without cgroups no cap is in force, whatever was asked.
            limits: if degraded.is_some() {
                Limits::default()
            } else {
                spec.limits
            },
            degraded: degraded
                .map(|reason| {
                    vec![format!(
                        "no cgroup, so no memory, pids or cpu cap: {reason}"
                    )]
                })
                .unwrap_or_default(),
            swap_disabled,
            tmp_size_bytes: spec.tmp_size_bytes,
            filesystem: view.kind.to_owned(),
            read_only: view.read_only,
            copy_on_write: view.copy_on_write,
            writable: view.writable,
            capabilities: if spec.privileged {
                "privileged"
            } else {
                "reduced"
            }
            .to_owned(),
            devices: if devices_enforced {
                "allowlist"
            } else if user_namespace.is_some() {
                "user-namespace"
            } else if !spec.privileged {
                "no-mknod"
            } else {
                "unrestricted"
            }
            .to_owned(),
            root_is_host_uid: user_namespace.map(|m| m.uid),
        }
    }
}

/// The filesystem a spec gives its command, as [`Protections`] states it.
struct FilesystemView {
    /// `host` or `isolated`.
    kind: &'static str,
    read_only: Vec<String>,
    copy_on_write: Vec<String>,
    writable: Vec<String>,
}

impl FilesystemView {
    fn of(spec: &SandboxSpec) -> FilesystemView {
        let paths = |v: &[std::path::PathBuf]| v.iter().map(|p| p.display().to_string()).collect();
        let host = |read_only: Vec<String>| FilesystemView {
            kind: "host",
            read_only,
            copy_on_write: Vec::new(),
            writable: Vec::new(),
        };
        match (&spec.filesystem, spec.namespaces.mount) {
            (_, false) => host(Vec::new()),
            (Filesystem::Host, true) => host(vec!["/sys".to_owned(), "/proc/sys".to_owned()]),
            (
                Filesystem::Isolated {
                    copy_on_write,
                    scratch,
                    writable,
                    ..
                },
                true,
            ) => {
                let mut open: Vec<String> = vec!["/tmp".into(), "/dev".into(), "/proc".into()];
                open.extend(paths(scratch));
                open.extend(paths(writable));
                FilesystemView {
                    kind: "isolated",
                    read_only: vec![
                        format!("/ (all but {})", open.join(", ")),
                        "/proc/sys".to_owned(),
                    ],
                    copy_on_write: paths(copy_on_write),
                    writable: paths(writable),
                }
            }
        }
    }
}

/// The outcome of [`crate::Engine::run`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SandboxResult {
    pub exit: Exit,
    /// The deadline passed and the sandbox was killed.
    pub timed_out: bool,
    /// The run was cancelled (Ctrl-C) and the sandbox was killed.
    pub cancelled: bool,
    /// From the command's start to its main process's exit (sandbox set-up excluded).
    #[serde(with = "micros")]
    pub wall_time: Duration,
    pub usage: ResourceUsage,
    /// Names of the processes the OOM killer chose (from the kernel log; empty when there was
    /// no OOM kill or the log is not readable here).
    #[serde(default)]
    pub oom_victims: Vec<String>,
    /// Processes that outlived the main process; all of them were killed.
    pub leaked_processes: Vec<LeakedProcess>,
    /// How many leaked, when more than the list could hold.
    pub leaked_total: usize,
    pub network_attempts: NetworkAttempts,
    /// Changes to copy-on-write directories (at most a few hundred listed).
    pub files_written: Vec<FileWrite>,
    pub files_written_total: usize,
    pub protections: Protections,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<CapturedOutput>,
}

mod micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

/// What a command printed, bounded: its head and its tail, with the count of what was dropped
/// in between (see the runner's capture).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedOutput {
    /// The first bytes printed (lossy UTF-8).
    pub head: String,
    /// The last bytes printed, when more than the limit was printed.
    pub tail: String,
    /// Bytes dropped between head and tail.
    pub truncated_bytes: u64,
}

impl CapturedOutput {
    /// Head and tail joined with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        if self.truncated_bytes == 0 {
            format!("{}{}", self.head, self.tail)
        } else {
            format!(
                "{}\n[... {} bytes of output truncated ...]\n{}",
                self.head, self.truncated_bytes, self.tail
            )
        }
    }
}
