//! What to run and under which protections: a plain value that can be printed, stored in a
//! report and replayed.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// One command and the sandbox it runs in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Program and arguments. The program is looked up in `env`'s `PATH` when it has no `/`.
    pub argv: Vec<String>,
    /// Working directory, resolved before the sandbox's mounts are made (so a cwd under `/tmp`
    /// still works even though `/tmp` is private inside).
    pub cwd: PathBuf,
    /// The command's whole environment: nothing is inherited that is not listed here.
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    pub namespaces: Namespaces,
    /// Bring `lo` up in the network namespace (off: no interface at all is up).
    #[serde(default = "yes")]
    pub loopback: bool,
    /// Directories created inside the sandbox once its mounts are made (e.g. a `HOME` on the
    /// private `/tmp`).
    #[serde(default)]
    pub make_dirs: Vec<PathBuf>,
    /// Host paths the command needs (a workspace, a target directory) that the private `/tmp`
    /// would otherwise hide: they are bound back into it. The working directory and an absolute
    /// program path always are.
    #[serde(default)]
    pub reachable: Vec<PathBuf>,
    /// CPUs the sandbox runs on (the CPU affinity of its init, which every process inherits),
    /// for reproducible timing. A process may re-pin itself: this pins, it does not enforce.
    #[serde(default)]
    pub cpuset: Option<Vec<u32>>,
    /// Give the command its full capabilities back (no reduced set, no no_new_privs, no seccomp
    /// filter): for suites that test namespace or mount code themselves.
    #[serde(default)]
    pub privileged: bool,
    /// The host filesystem as the command sees it.
    #[serde(default)]
    pub filesystem: Filesystem,
    /// Size cap of the private tmpfs, which `/tmp`, `/dev/shm`, the scratch directories and the
    /// overlays' upper layers share.
    pub tmp_size_bytes: u64,
    /// Hostname inside the UTS namespace.
    pub hostname: String,
    pub stdin: Stdin,
    pub output: Output,
    /// Wall-clock limit; at the deadline every process of the sandbox gets SIGTERM, and SIGKILL
    /// after `grace`.
    #[serde(with = "opt_millis")]
    pub timeout: Option<Duration>,
    #[serde(with = "millis")]
    pub grace: Duration,
}

/// This process's environment as a sandbox's spec takes it (UTF-8), and the names of the
/// variables that are not and so cannot be passed on: `std::env::vars` would panic on them.
pub fn utf8_env() -> (Vec<(String, String)>, Vec<String>) {
    let mut vars = Vec::new();
    let mut skipped = Vec::new();
    for (name, value) in std::env::vars_os() {
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => vars.push((name, value)),
            (name, _) => skipped.push(name.unwrap_or_else(|n| n.to_string_lossy().into_owned())),
        }
    }
    (vars, skipped)
}

impl SandboxSpec {
    /// A spec with the product's defaults: every namespace, caps as given, 256 MiB `/tmp`,
    /// hostname `localhost`, stdin `/dev/null`, output inherited, no timeout.
    pub fn new(argv: Vec<String>, cwd: PathBuf, env: Vec<(String, String)>) -> Self {
        SandboxSpec {
            argv,
            cwd,
            env,
            limits: Limits::default(),
            namespaces: Namespaces::default(),
            loopback: true,
            make_dirs: Vec::new(),
            reachable: Vec::new(),
            cpuset: None,
            privileged: false,
            filesystem: Filesystem::Host,
            tmp_size_bytes: 256 << 20,
            hostname: "localhost".to_owned(),
            stdin: Stdin::Null,
            output: Output::Inherit,
            timeout: None,
            grace: Duration::from_secs(1),
        }
    }
}

/// How much of the host filesystem the command may change. Either way `/tmp`, `/dev` and `/proc`
/// are the sandbox's own and `/sys` is read-only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filesystem {
    /// The host's filesystem, writable wherever the host's is.
    #[default]
    Host,
    /// The host read-only (every mount), except:
    Isolated {
        /// host directories shown copy-on-write: the command may write there, the host never
        /// sees it, and every change is reported (`files_written`);
        copy_on_write: Vec<PathBuf>,
        /// directories replaced by an empty private tmpfs (e.g. `CARGO_TARGET_TMPDIR`);
        scratch: Vec<PathBuf>,
        /// host paths left writable, because the user asked.
        writable: Vec<PathBuf>,
        /// Keep the copy-on-write layers here on the host for inspection (`DIR/<i>/upper`,
        /// one per copy-on-write directory) instead of on a private tmpfs.
        #[serde(default)]
        keep_writes: Option<PathBuf>,
        /// Directories shown at a second path too, in order, after everything above: a test
        /// archive's checkout and unpacked target directory at the paths its binaries were
        /// compiled with (`env!("CARGO_BIN_EXE_x")` names the building machine's).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        shown_at: Vec<ShownAt>,
    },
}

/// `source` shown at `at` as well. A missing `at` is made where the sandbox can write without
/// the host seeing it (in a copy-on-write directory, never reported as a change, or under the
/// private `/tmp`); where it cannot be made, nothing is shown there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownAt {
    pub source: PathBuf,
    pub at: PathBuf,
}

/// Cgroup caps. `None` means "not capped" (usage is still measured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory cap in bytes; swap is always off for the sandbox so the cap is real.
    pub memory_bytes: Option<u64>,
    /// Cap on tasks (processes *and* threads).
    pub pids: Option<u64>,
    /// CPU quota in thousandths of a CPU (`1.5` CPUs = 1500).
    pub cpu_millis: Option<u32>,
    /// Write bandwidth cap in bytes per second, on each block device (cgroup v1 `blkio`, v2
    /// `io`).
    #[serde(default)]
    pub io_write_bps: Option<u64>,
}

/// Which namespaces the sandbox gets. All are on by default; a caller turning one off must say so
/// in its report, which is why the choice travels with the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    pub pid: bool,
    pub net: bool,
    pub mount: bool,
    pub uts: bool,
    pub ipc: bool,
    pub cgroup: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            pid: true,
            net: true,
            mount: true,
            uts: true,
            ipc: true,
            cgroup: true,
        }
    }
}

impl Namespaces {
    /// Names of the namespaces in force, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.pid, "pid"),
            (self.net, "net"),
            (self.mount, "mount"),
            (self.uts, "uts"),
            (self.ipc, "ipc"),
            (self.cgroup, "cgroup"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stdin {
    /// `/dev/null`: what tests get.
    Null,
    /// The runner's own stdin.
    Inherit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// stdout and stderr go where the runner's go.
    Inherit,
    /// The runner's stdout and stderr both go to the runner's stderr (keeps stdout for JSON).
    Stderr,
    /// stdout and stderr are captured together, in order; beyond `limit_bytes` only the head and
    /// tail are kept, so a command printing gigabytes costs the runner no memory.
    Capture { limit_bytes: usize },
}

fn yes() -> bool {
    true
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// The host user and group that root inside a sandbox's user namespace really is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootMapping {
    pub uid: u32,
    pub gid: u32,
}

impl RootMapping {
    /// `nobody:nogroup`: what `--userns` maps root to unless told otherwise.
    pub const NOBODY: RootMapping = RootMapping {
        uid: 65534,
        gid: 65534,
    };

    /// The runner's own user and group: the only mapping an unprivileged runner may write.
    pub fn runner() -> RootMapping {
        RootMapping {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }
}

impl std::str::FromStr for RootMapping {
    type Err = String;

    /// `UID` or `UID:GID` (the group defaults to the same number).
    fn from_str(text: &str) -> Result<Self, String> {
        let number = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("`{text}` is not UID or UID:GID (numbers)"))
        };
        let (uid, gid) = match text.split_once(':') {
            Some((uid, gid)) => (number(uid)?, number(gid)?),
            None => (number(text)?, number(text)?),
        };
        Ok(RootMapping { uid, gid })
    }
}
