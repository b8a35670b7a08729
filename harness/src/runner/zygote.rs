//! Starting sandbox inits without an exec each. The init program is started once, as a
//! single-threaded "zygote" that only waits for requests on a socket; for each sandbox it
//! clones a child into the new namespaces, and that child — a copy of a single-threaded
//! process, where any code may run — becomes the sandbox's init by calling it directly. This
//! spares every sandbox the exec of the init program (loading, relocating, starting it) and
//! the runner the fork of its own, larger and multi-threaded, address space.
//!
//! Used for root runners without a user namespace that run many sandboxes (`cargo sandbox
//! test`); anything else, or any failure of the zygote, takes the plain clone-and-exec path.
//!
//! The zygote dies with the runner (PDEATHSIG), its children with it; it exits when the
//! runner closes the socket. The kernel reaps its children (SIGCHLD ignored); the runner
//! watches each through the pidfd the zygote sends back.

use crate::cgroup::Entry;
use crate::runner::clone::ChildFds;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// The argument that makes the init program a zygote.
pub const ZYGOTE_ARG: &str = "__cargo_sandbox_zygote__";

/// The argument after [`ZYGOTE_ARG`] for a zygote that does not confine itself: the one that
/// clones `--privileged` sandboxes' inits.
const UNCONFINED_ARG: &str = "unconfined";

/// The zygote's end of the socket.
const SOCKET_FD: RawFd = 3;

/// A request: the namespace flags (8 bytes), what else is sent (flags below), how many
/// `tasks` files the init writes itself into (cgroup v1, see [`Entry::MoveSelf`]).
const REQUEST_LEN: usize = 10;
const HAS_CGROUP: u8 = 1;
const HAS_NETNS: u8 = 2;

/// Most `tasks` files in a request: one per v1 hierarchy a sandbox joins (memory, pids,
/// cpuacct, cpu, blkio, devices) and room to spare.
const MAX_TASKS: usize = 8;

#[derive(Debug)]
pub struct Zygote {
    socket: Mutex<OwnedFd>,
    child: Mutex<Child>,
}

impl Zygote {
    /// `confined`: it confines itself before its first clone, and so every init it clones (see
    /// `init::confine::for_children`); else it clones inits for `--privileged` shapes only.
    pub fn start(program: &Path, confined: bool) -> io::Result<Zygote> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let theirs_fd = theirs.as_raw_fd();
        let mut command = Command::new(program);
        command
            .arg(ZYGOTE_ARG)
            .args((!confined).then_some(UNCONFINED_ARG))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: dup2 and prctl are async-signal-safe; nothing else runs before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                if libc::dup2(theirs_fd, SOCKET_FD) < 0
                    || libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let child = command.spawn()?;
        drop(theirs);
        Ok(Zygote {
            socket: Mutex::new(ours),
            child: Mutex::new(child),
        })
    }

    /// Asks the zygote for a sandbox init in the namespaces of `ns_flags`, with `fds` as its
    /// descriptors 0..=4 (stdio not given is the runner's own, sent along), entering its cgroup
    /// by `entry` and joined to the network namespace `fds.netns`. Returns its PID and a pidfd.
    pub fn spawn(
        &self,
        fds: &ChildFds,
        ns_flags: u64,
        entry: Option<&Entry>,
    ) -> io::Result<(i32, OwnedFd)> {
        let mut sent = vec![
            fds.stdin.unwrap_or(0),
            fds.stdout.unwrap_or(1),
            fds.stderr.unwrap_or(2),
            fds.config,
            fds.report,
        ];
        let mut flags = 0u8;
        let mut tasks = 0u8;
        match entry {
            Some(Entry::CloneInto(fd)) => {
                sent.push(*fd);
                flags |= HAS_CGROUP;
            }
            Some(Entry::MoveSelf(files)) => {
                tasks = u8::try_from(files.len())
                    .ok()
                    .filter(|n| usize::from(*n) <= MAX_TASKS)
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::E2BIG))?;
                sent.extend(files.iter().map(AsRawFd::as_raw_fd));
            }
            None => {}
        }
        if let Some(fd) = fds.netns {
            sent.push(fd);
            flags |= HAS_NETNS;
        }
        let mut request = [0u8; REQUEST_LEN];
        request[..8].copy_from_slice(&ns_flags.to_ne_bytes());
        request[8] = flags;
        request[9] = tasks;
        let socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        let fd = socket.as_raw_fd();
        sendmsg::<()>(
            fd,
            &[IoSlice::new(&request)],
            &[ControlMessage::ScmRights(&sent)],
            MsgFlags::empty(),
            None,
        )?;
        let mut answer = [0u8; 4];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut answer)];
        let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let pidfd = msg.cmsgs()?.find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        let bytes = msg.bytes;
        drop(socket);
        let pid = i32::from_ne_bytes(answer);
        match pidfd {
            // SAFETY: a descriptor just received, owned by nobody else.
            Some(pidfd) if bytes == 4 && pid > 0 => {
                Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
            }
            _ => Err(io::Error::from_raw_os_error(if pid < 0 {
                -pid
            } else {
                libc::EIO
            })),
        }
    }

    /// Tells the zygote to exit (it starts no init after this), without waiting for it: it
    /// exits while the engine tears the rest down, and its drop then finds it gone.
    pub fn retire(&self) {
        let socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: shutting down our own socket; closing our end is what tells it to exit.
        unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        self.retire();
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.wait();
    }
}

/// The zygote's loop (in the init program, single-threaded): one sandbox init per request.
pub fn serve() -> i32 {
    // SAFETY: plain signal disposition change in a single-threaded process.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // Built and read once, before any clone: each init finds them ready (see
    // `mounts::cgroup_mount_points`), confined already (see `confine::for_children`) unless
    // this zygote is for --privileged sandboxes.
    let _ = crate::init::mounts::cgroup_mount_points();
    if std::env::args_os()
        .nth(2)
        .is_none_or(|a| a != UNCONFINED_ARG)
    {
        crate::init::confine::for_children();
    }
    loop {
        let mut request = [0u8; REQUEST_LEN];
        // stdio, config, report, a cgroup, a network namespace, `tasks` files.
        let mut space = nix::cmsg_space!([RawFd; 7 + MAX_TASKS]);
        let mut iov = [IoSliceMut::new(&mut request)];
        let Ok(msg) = recvmsg::<()>(
            SOCKET_FD,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) else {
            return 1;
        };
        if msg.bytes == 0 {
            return 0;
        }
        let received: Vec<OwnedFd> = msg
            .cmsgs()
            .map(|cmsgs| {
                cmsgs
                    .filter_map(|c| match c {
                        ControlMessageOwned::ScmRights(fds) => Some(fds),
                        _ => None,
                    })
                    .flatten()
                    // SAFETY: descriptors just received, owned by nobody else.
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
                    .collect()
            })
            .unwrap_or_default();
        let bytes = msg.bytes;
        let answer = if bytes == REQUEST_LEN {
            let ns_flags = u64::from_ne_bytes(request[..8].try_into().unwrap_or_default());
            start_init(ns_flags, request[8], usize::from(request[9]), received)
        } else {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        };
        let (pid, pidfd) = match answer {
            Ok((pid, pidfd)) => (pid, Some(pidfd)),
            Err(e) => (-e.raw_os_error().unwrap_or(libc::EIO), None),
        };
        let rights: Vec<RawFd> = pidfd.iter().map(AsRawFd::as_raw_fd).collect();
        let cmsgs: Vec<ControlMessage> = if rights.is_empty() {
            Vec::new()
        } else {
            vec![ControlMessage::ScmRights(&rights)]
        };
        if sendmsg::<()>(
            SOCKET_FD,
            &[IoSlice::new(&pid.to_ne_bytes())],
            &cmsgs,
            MsgFlags::empty(),
            None,
        )
        .is_err()
        {
            return 1;
        }
    }
}

/// Clones one init. `fds`: stdin, stdout, stderr, config, report, then the cgroup when `flags`
/// says so, `tasks` files to move itself into, and the network namespace when `flags` says so.
fn start_init(
    ns_flags: u64,
    flags: u8,
    tasks: usize,
    fds: Vec<OwnedFd>,
) -> io::Result<(i32, OwnedFd)> {
    let into_cgroup = usize::from(flags & HAS_CGROUP != 0);
    let expected = 5 + into_cgroup + tasks + usize::from(flags & HAS_NETNS != 0);
    if fds.len() != expected {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // Out of the way of 0..=4, which the child rearranges.
    let high: Vec<OwnedFd> = fds
        .into_iter()
        .map(crate::runner::clone::high_fd)
        .collect::<io::Result<_>>()?;
    let target = |i: usize| high[i].as_raw_fd();
    let (pid, pidfd) =
        crate::runner::clone::clone_fork(ns_flags, (into_cgroup == 1).then(|| target(5)))?;
    if pid == 0 {
        // The child: a copy of this single-threaded process, so any code may run.
        let move_self = &high[5 + into_cgroup..5 + into_cgroup + tasks];
        // SAFETY: prctl, signal, setns and dup2 on descriptors this process owns.
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if let Err(errno) = crate::runner::clone::move_into_cgroup(move_self) {
                crate::runner::clone::EntryFailed::new().report(target(4), errno);
                libc::_exit(125);
            }
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            if flags & HAS_NETNS != 0
                && libc::setns(target(high.len() - 1), libc::CLONE_NEWNET) != 0
            {
                libc::_exit(125);
            }
            for (from, to) in (0..5).map(|i| (target(i), i as RawFd)) {
                if libc::dup2(from, to) < 0 {
                    libc::_exit(125);
                }
            }
            libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32);
        }
        std::process::exit(crate::init::main());
    }
    Ok((
        pid,
        pidfd.ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))?,
    ))
}
