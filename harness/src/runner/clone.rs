//! Starting the sandbox's init in new namespaces: the only code that runs between clone and exec
//! in the (multi-threaded) runner. Everything it touches is prepared beforehand; the child makes
//! raw syscalls only (prctl, sigprocmask, write, read, setres[ug]id, setgroups, dup2, execve,
//! _exit), all async-signal-safe, and formats an errno by hand.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_char;

use crate::cgroup::Entry;

/// Everything the child needs, built before cloning so the child never allocates.
pub struct InitCommand {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

// SAFETY: the raw pointers point into `_argv`, owned by the same value and never mutated.
unsafe impl Send for InitCommand {}
unsafe impl Sync for InitCommand {}

impl InitCommand {
    pub fn new(path: CString, argv: Vec<CString>) -> Self {
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        InitCommand {
            path,
            _argv: argv,
            argv_ptrs,
            envp_ptrs: vec![std::ptr::null()],
        }
    }
}

/// The init's fds 0..=4. `None` keeps the runner's own descriptor (stdio only). Sources must not
/// be in 0..=4 themselves unless they are the runner's stdio (see [`high_fd`]).
pub struct ChildFds {
    pub stdin: Option<RawFd>,
    pub stdout: Option<RawFd>,
    pub stderr: Option<RawFd>,
    pub config: RawFd,
    pub report: RawFd,
    /// A network namespace to join instead of creating one (see [`crate::runner::netpool`]).
    pub netns: Option<RawFd>,
}

/// Field layout of `struct clone_args` (linux/sched.h), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Clones a child in the namespaces of `ns_flags` (CLONE_NEW*) that executes `init`.
/// Returns its PID (in the runner's namespace) and a pidfd for it.
/// With `entry` the child enters its cgroup by itself (see [`Entry`]); the returned flag says
/// whether it did (a kernel without `CLONE_INTO_CGROUP` falls back to a plain clone, and the
/// caller moves the child).
pub fn spawn(
    init: &InitCommand,
    fds: &ChildFds,
    ns_flags: u64,
    entry: Option<&Entry>,
) -> io::Result<(i32, OwnedFd, bool)> {
    let (into_cgroup, move_self) = match entry {
        Some(Entry::CloneInto(fd)) => (Some(*fd), &[][..]),
        Some(Entry::MoveSelf(tasks)) => (None, &tasks[..]),
        None => (None, &[][..]),
    };
    // Made here, when the child moves itself: it may not allocate.
    let entry_failed = (!move_self.is_empty()).then(EntryFailed::new);
    let mut pidfd: RawFd = -1;
    // Asked before cloning: the child makes raw syscalls only.
    let runner_is_root = nix::unistd::geteuid().is_root();
    let mut empty_mask = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe { libc::sigemptyset(empty_mask.as_mut_ptr()) };
    // SAFETY: initialised just above.
    let empty_mask = unsafe { empty_mask.assume_init() };
    // SAFETY: the child goes straight to `child`, which makes raw syscalls only.
    let (ret, placed) = unsafe { fork_like(ns_flags, &mut pidfd, into_cgroup) };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        // SAFETY: we are the child: only async-signal-safe syscalls until execve or _exit.
        0 => unsafe {
            child(
                init,
                fds,
                (move_self, entry_failed.as_ref()),
                &empty_mask,
                ns_flags & libc::CLONE_NEWUSER as u64 != 0,
                runner_is_root,
            )
        },
        pid => {
            // SAFETY: the kernel wrote a fresh pidfd that nothing else owns.
            let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok((pid as i32, pidfd, placed || !move_self.is_empty()))
        }
    }
}

/// clone3 straight into `into_cgroup` when given; without it where the kernel cannot (the
/// caller then moves the child); classic clone where clone3 is missing. Returns what clone
/// returned and whether the child started in its cgroup.
///
/// # Safety
/// As [`clone3`].
unsafe fn fork_like(
    ns_flags: u64,
    pidfd: &mut RawFd,
    into_cgroup: Option<RawFd>,
) -> (libc::c_long, bool) {
    let mut args = clone_args(ns_flags, pidfd, into_cgroup);
    let mut placed = into_cgroup.is_some();
    let mut ret = clone3(&args);
    if ret == -1 && placed && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // A kernel without CLONE_INTO_CGROUP: clone plainly, the caller moves the child.
        args.flags &= !CLONE_INTO_CGROUP;
        args.cgroup = 0;
        placed = false;
        ret = clone3(&args);
    }
    if ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
        placed = false;
        // Kernels before 5.3, or seccomp profiles that hide clone3: classic clone, fork-like
        // (no new stack), with the pidfd written to the parent_tid argument. The argument
        // order (flags, stack, parent_tid, ...) is the same on x86_64 and aarch64 for the
        // first three.
        ret = libc::syscall(
            libc::SYS_clone,
            (ns_flags | CLONE_PIDFD) as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            pidfd as *mut RawFd,
            0usize,
            0usize,
        );
    }
    (ret, placed)
}

/// clone3's arguments for a fork-like clone into `ns_flags`: the pidfd written to `pidfd`,
/// SIGCHLD at exit, the child started in the cgroup `into_cgroup` when given.
fn clone_args(ns_flags: u64, pidfd: &mut RawFd, into_cgroup: Option<RawFd>) -> CloneArgs {
    let mut args = CloneArgs {
        flags: ns_flags | CLONE_PIDFD,
        pidfd: pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = into_cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    args
}

/// The raw clone3 syscall.
///
/// # Safety
/// Without CLONE_VM this is fork: the child returns from it with 0 in its own copy of the
/// address space. In a multi-threaded caller the child may then make async-signal-safe calls
/// only.
unsafe fn clone3(args: &CloneArgs) -> libc::c_long {
    libc::syscall(
        libc::SYS_clone3,
        args as *const CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    )
}

/// A fork-like clone3 (no shared memory) into new namespaces, for a *single-threaded* caller
/// (the zygote): returns the child's PID and a pidfd in the parent, and `(0, None)` in the
/// child, which may then run any code.
pub fn clone_fork(ns_flags: u64, into_cgroup: Option<RawFd>) -> io::Result<(i32, Option<OwnedFd>)> {
    let mut pidfd: RawFd = -1;
    let args = clone_args(ns_flags, &mut pidfd, into_cgroup);
    // SAFETY: the caller is single-threaded: the child may run any code.
    match unsafe { clone3(&args) } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok((0, None)),
        // SAFETY: the kernel wrote a fresh pidfd that nothing else owns.
        pid => Ok((pid as i32, Some(unsafe { OwnedFd::from_raw_fd(pidfd) }))),
    }
}

/// The child side. Never returns.
unsafe fn child(
    init: &InitCommand,
    fds: &ChildFds,
    (move_self, entry_failed): (&[OwnedFd], Option<&EntryFailed>),
    empty_mask: &libc::sigset_t,
    user_ns: bool,
    runner_is_root: bool,
) -> ! {
    // Die with the runner (the thread that cloned us): a runner killed with SIGKILL takes its
    // sandboxes along, since PID 1's death kills its whole PID namespace.
    libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
        0,
        0,
    );
    libc::sigprocmask(libc::SIG_SETMASK, empty_mask, std::ptr::null_mut());
    if let Err(errno) = move_into_cgroup(move_self) {
        if let Some(failed) = entry_failed {
            failed.report(fds.report, errno);
        }
        libc::_exit(125);
    }
    // Wait for the runner's "go" byte: by then our user is mapped (exec as an unmapped user
    // would drop every capability) and we are in our cgroup (so even exec is accounted): moved
    // just above, cloned there, or moved by the runner.
    let mut go = 0u8;
    if libc::read(fds.config, (&mut go as *mut u8).cast(), 1) != 1 {
        libc::_exit(125);
    }
    if let Some(netns) = fds.netns {
        if libc::syscall(libc::SYS_setns, netns, libc::CLONE_NEWNET) != 0 {
            libc::_exit(125);
        }
    }
    if user_ns {
        if !become_root(runner_is_root) {
            libc::_exit(125);
        }
        // Changing ids clears the parent-death signal: set it again.
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    let moves = [
        (fds.stdin, 0),
        (fds.stdout, 1),
        (fds.stderr, 2),
        (Some(fds.config), crate::protocol::CONFIG_FD),
        (Some(fds.report), crate::protocol::REPORT_FD),
    ];
    for (from, to) in moves {
        if let Some(from) = from {
            if from != to && libc::dup2(from, to) == -1 {
                libc::_exit(125);
            }
        }
    }
    // Nothing else the runner has open reaches the sandbox: not what its own parent left it
    // without close-on-exec either. CLOSE_RANGE_CLOEXEC (Linux 5.11): closed at the exec.
    libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 4u32);
    libc::execve(
        init.path.as_ptr(),
        init.argv_ptrs.as_ptr(),
        init.envp_ptrs.as_ptr(),
    );
    libc::_exit(127)
}

/// Moves the calling thread — the whole process, when it has no other — into the cgroup of
/// each `tasks` file (see [`Entry::MoveSelf`]); `Err` holds the errno of the write that failed.
/// Raw `write`s, async-signal-safe.
pub fn move_into_cgroup(tasks: &[OwnedFd]) -> Result<(), i32> {
    use std::os::fd::AsRawFd;
    for fd in tasks {
        // SAFETY: writing one byte from a static buffer to a descriptor the caller owns;
        // reading errno right after.
        unsafe {
            if libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                return Err(*libc::__errno_location());
            }
        }
    }
    Ok(())
}

/// The init's report of a child that could not enter its cgroup, written before it exits so
/// the run says why (`SetupFailed`), made before the clone: its JSON around the errno.
pub struct EntryFailed {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl EntryFailed {
    const ERRNO: &'static str = "@ERRNO@";

    pub fn new() -> EntryFailed {
        let report = crate::protocol::InitReport::SetupFailed {
            stage: "entering its cgroup".to_owned(),
            message: format!(
                "writing 0 to a cgroup v1 `tasks` file failed (errno {})",
                Self::ERRNO
            ),
        };
        let json = serde_json::to_string(&report).unwrap_or_default();
        let (head, tail) = json.split_once(Self::ERRNO).unwrap_or((&json, ""));
        EntryFailed {
            head: head.as_bytes().to_vec(),
            tail: tail.as_bytes().to_vec(),
        }
    }

    /// Writes the report with `errno` to `fd`: raw `write`s, no allocation, async-signal-safe.
    pub fn report(&self, fd: RawFd, errno: i32) {
        let mut digits = [0u8; 12];
        let mut at = digits.len();
        let mut n = errno.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for part in [&self.head[..], &digits[at..], &self.tail[..]] {
            // SAFETY: writing from buffers this process owns to a descriptor it owns.
            unsafe { libc::write(fd, part.as_ptr().cast(), part.len()) };
        }
    }
}

/// Becomes root of the new user namespace (its map is written by now). A runner that is root on
/// the host keeps its own ids across clone, which the map shows as unmapped (`nobody`): exec
/// would then drop every capability. Raw syscalls, not libc's wrappers, which would signal the
/// runner's other threads (that do not exist here). A root runner's supplementary groups
/// (host group 0...) are dropped too; an unprivileged runner's cannot be (`setgroups` is
/// denied in its namespaces) and are its own anyway.
unsafe fn become_root(runner_is_root: bool) -> bool {
    let ok = |ret: libc::c_long| ret == 0;
    ok(libc::syscall(libc::SYS_setresgid, 0, 0, 0))
        && (ok(libc::syscall(
            libc::SYS_setgroups,
            0,
            std::ptr::null::<libc::gid_t>(),
        )) || (!runner_is_root && *libc::__errno_location() == libc::EPERM))
        && ok(libc::syscall(libc::SYS_setresuid, 0, 0, 0))
}

/// Moves `fd` above the range the child rearranges (0..=4), keeping it close-on-exec.
pub fn high_fd(fd: OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we then own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if new == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_failed_move_is_reported_as_the_inits_set_up_failure_with_its_errno() {
        // Open for reading only: the write fails as a refused move would.
        let not_writable = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let errno = move_into_cgroup(&[not_writable]).unwrap_err();
        assert_eq!(errno, libc::EBADF);
        let (read, write) = nix::unistd::pipe().unwrap();
        EntryFailed::new().report(write.as_raw_fd(), errno);
        drop(write);
        let mut text = Vec::new();
        std::fs::File::from(read).read_to_end(&mut text).unwrap();
        match serde_json::from_slice(&text).unwrap() {
            crate::protocol::InitReport::SetupFailed { stage, message } => {
                assert_eq!(stage, "entering its cgroup");
                assert!(
                    message.ends_with(&format!("(errno {})", libc::EBADF)),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(move_into_cgroup(&[]), Ok(()));
    }
}
