//! What the runner and the sandbox's init say to each other over two pipes. On fd 3 the runner
//! writes an [`InitSetup`] and a newline once the init is in its cgroup (the init then builds its
//! sandbox), then an [`InitRun`] and closes the pipe (the init then runs it). The two are
//! apart so that a sandbox started ahead of need (see `crate::runner::warm`) is built while it
//! waits for its command. The init writes one [`InitReport`] to fd 4 and exits.

use crate::result::{Exit, FileWrite, LeakedProcess, NetworkAttempts};
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;

pub const CONFIG_FD: RawFd = 3;
pub const REPORT_FD: RawFd = 4;

/// The argument that turns a binary into the sandbox's init; see [`crate::run_if_requested`].
pub const INIT_ARG: &str = "__cargo_sandbox_init__";

/// Most leaked processes listed by name; beyond it only the count is kept, so a fork bomb's
/// leftovers cannot make the report unbounded.
pub const MAX_LEAKS_LISTED: usize = 64;

/// Most file changes listed per sandbox; beyond it only the count is kept.
pub const MAX_FILES_LISTED: usize = 256;

/// The sandbox around the command: the same for every sandbox of a shape.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitSetup {
    pub hostname: Option<String>,
    /// Set up `/proc`, `/tmp`, `/dev`, read-only `/sys`: only with a new mount namespace.
    pub mounts: Option<MountConfig>,
    /// Bring `lo` up: only with a new network namespace.
    pub loopback: bool,
    /// Host paths kept reachable under the private `/tmp` (with the command's working
    /// directory and program when they lie there).
    pub reachable: Vec<std::path::PathBuf>,
    /// The command's working directory when the sandbox's own mounts may hide it (it lies
    /// under none of the paths kept reachable): opened before them, entered through that.
    pub cwd: Option<std::path::PathBuf>,
    pub new_cgroup_ns: bool,
    /// The init runs in a user namespace (no mknod; overlayfs needs `userxattr`).
    pub user_ns: bool,
    /// The sandbox's own cgroup directories (one per hierarchy), shown read-only at
    /// `/sys/fs/cgroup` in place of the host's.
    pub cgroup_dirs: Vec<std::path::PathBuf>,
    /// Once set up, the init confines itself (see `init::confine`), so everything it starts
    /// inherits it; off for `--privileged`.
    pub confine: bool,
}

/// The command to run in the sandbox.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitRun {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: std::path::PathBuf,
    /// Created before the command starts.
    pub make_dirs: Vec<std::path::PathBuf>,
    /// stdin is the runner's terminal: give the command the terminal's foreground.
    pub foreground_tty: bool,
    pub cpuset: Option<Vec<u32>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MountConfig {
    pub tmp_size_bytes: u64,
    pub filesystem: crate::spec::Filesystem,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum InitReport {
    Finished {
        exit: Exit,
        wall_us: u64,
        leaked: Vec<LeakedProcess>,
        leaked_total: usize,
        network: NetworkAttempts,
        files_written: Vec<FileWrite>,
        files_written_total: usize,
        /// The init's own CPU time, which the cgroup counts too and the result leaves out.
        init_user_us: u64,
        init_system_us: u64,
        /// CPU and peak RSS of everything the init reaped (`RUSAGE_CHILDREN`): the usage
        /// figures when there is no cgroup.
        children: crate::result::ResourceUsage,
    },
    SpawnFailed {
        not_found: bool,
        message: String,
    },
    SetupFailed {
        stage: String,
        message: String,
    },
}
