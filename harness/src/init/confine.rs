//! Root in the sandbox is not root on the host: once its sandbox is set up, the init confines
//! itself — it keeps its own capabilities, since the bounding set only limits what an exec
//! gains — so the command, and everything else it starts, gets
//!
//! - a reduced capability set: Docker's default minus `CAP_MKNOD` (file ownership, setuid/setgid,
//!   binding low ports and raw sockets in its own network namespace, kill inside its own PID
//!   namespace); no `CAP_SYS_ADMIN` (so no mount, remount, or cgroup escape), no module loading,
//!   no raw I/O, no ptrace of anything, no `CAP_DAC_READ_SEARCH` (`open_by_handle_at` escapes);
//! - `PR_SET_NO_NEW_PRIVS`, so setuid binaries and file capabilities cannot give any back;
//! - a seccomp deny-list for calls no test needs that reach the host: they fail with `EPERM`
//!   (not a kill), so the test's own error message names the cause.
//!
//! `--privileged` skips all of it, for suites that test namespace or mount code themselves.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
use std::collections::BTreeMap;
use std::io;

/// Capabilities the command keeps (numbers from linux/capability.h).
const KEEP: [u32; 13] = [
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    13, // CAP_NET_RAW
    18, // CAP_SYS_CHROOT
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

/// System calls that fail with `EPERM` inside the sandbox.
const DENIED: &[libc::c_long] = &[
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_syslog,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// The confinement, built once per process (it allocates and compiles the filter). The zygote
/// builds it before it clones any init, so each of its inits finds it built.
pub fn prepared() -> Result<&'static Confinement, String> {
    static PREPARED: std::sync::OnceLock<Result<Confinement, String>> = std::sync::OnceLock::new();
    PREPARED
        .get_or_init(|| prepare().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Set in the zygote once it confined itself: the inits it clones are copies of it, confined
/// already, and skip their own (one filter compiled and attached per run, not per sandbox:
/// attaching one cost each init about 0.07 ms of CPU, 3 % of a per-test run's). Only inits of
/// shapes that confine are cloned by it (see `Starter::zygote_for`).
static INHERITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Confines this process (the zygote), and so every init it clones from now on.
pub fn for_children() {
    if prepared().is_ok_and(|c| c.apply().is_ok()) {
        INHERITED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether this process was confined before it became an init (a copy of the zygote's).
pub fn inherited() -> bool {
    INHERITED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Applied by the init to itself before its command comes: all it starts inherits it.
pub struct Confinement {
    filter: BpfProgram,
    last_cap: u32,
}

fn prepare() -> io::Result<Confinement> {
    let arch = if cfg!(target_arch = "aarch64") {
        TargetArch::aarch64
    } else {
        TargetArch::x86_64
    };
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(|e| io::Error::other(format!("building the seccomp filter: {e}")))?;
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    Ok(Confinement { filter, last_cap })
}

impl Confinement {
    /// Drops capabilities from the bounding set (so the exec as root gets only [`KEEP`]),
    /// clears the ambient set, sets no_new_privs and installs the filter. No allocation.
    pub fn apply(&self) -> io::Result<()> {
        let check = |ret: libc::c_int| {
            if ret == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        for cap in 0..=self.last_cap {
            if !KEEP.contains(&cap) {
                // SAFETY: plain prctl; dropping a capability the process lacks is not an error.
                check(unsafe {
                    libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0)
                })?;
            }
        }
        // SAFETY: plain prctl calls.
        check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        })?;
        // SAFETY: as above.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
        seccompiler::apply_filter(&self.filter).map_err(|e| io::Error::other(e.to_string()))
    }
}
