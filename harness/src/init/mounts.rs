//! The sandbox's filesystem view, set up in its own mount namespace, top to bottom:
//!
//! 1. `/` and everything below it private (recursive): nothing we mount reaches the host, and
//!    nothing the host mounts later appears inside.
//! 2. A fresh `/proc` for the new PID namespace, with `/proc/sys` read-only.
//! 3. `/sys` read-only, recursively (every submount, e.g. the cgroup filesystems).
//! 4. A minimal `/dev` on tmpfs: null, zero, full, random, urandom, tty, a private devpts with
//!    `ptmx`, `shm`, and the fd symlinks. No disks.
//! 5. A private tmpfs `/tmp` with a size cap.

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::path::Path;

type Failure = (&'static str, nix::Error);

pub fn set_up(tmp_size_bytes: u64) -> Result<(), Failure> {
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| ("making / private", e))?;

    let quiet = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), quiet, none).map_err(|e| ("mounting /proc", e))?;
    mount(
        Some("/proc/sys"),
        "/proc/sys",
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(|e| ("binding /proc/sys", e))?;
    read_only_recursive("/proc/sys").map_err(|e| ("making /proc/sys read-only", e))?;
    read_only_recursive("/sys").map_err(|e| ("making /sys read-only", e))?;

    set_up_dev(tmp_size_bytes).map_err(|e| ("building /dev", e))?;

    let tmp = format!("size={tmp_size_bytes},mode=1777");
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(tmp.as_str()),
    )
    .map_err(|e| ("mounting /tmp", e))?;
    Ok(())
}

fn set_up_dev(shm_size_bytes: u64) -> nix::Result<()> {
    mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=1m"),
    )?;
    let old_umask = nix::sys::stat::umask(Mode::empty());
    let rw = Mode::from_bits_truncate(0o666);
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        mknod(
            Path::new("/dev").join(name).as_path(),
            SFlag::S_IFCHR,
            rw,
            makedev(major, minor),
        )?;
    }
    nix::unistd::mkdir("/dev/pts", Mode::from_bits_truncate(0o755))?;
    mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    nix::unistd::symlinkat("pts/ptmx", None, "/dev/ptmx")?;
    nix::unistd::mkdir("/dev/shm", Mode::from_bits_truncate(0o1777))?;
    let shm = format!("size={shm_size_bytes},mode=1777");
    mount(
        Some("tmpfs"),
        "/dev/shm",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(shm.as_str()),
    )?;
    for (target, link) in [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ] {
        nix::unistd::symlinkat(target, None, link)?;
    }
    nix::sys::stat::umask(old_umask);
    Ok(())
}

/// Makes the mount at `path` and every mount below it read-only, in this namespace only.
/// Uses `mount_setattr(AT_RECURSIVE)` (Linux 5.12+); older kernels get one bind-remount per
/// mount point found in `/proc/self/mountinfo`.
fn read_only_recursive(path: &str) -> nix::Result<()> {
    match mount_setattr_read_only(path) {
        Err(nix::Error::ENOSYS) => remount_each_read_only(path),
        other => other,
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

fn mount_setattr_read_only(path: &str) -> nix::Result<()> {
    let c_path = std::ffi::CString::new(path).map_err(|_| nix::Error::EINVAL)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the path and attribute struct outlive the call; size matches MOUNT_ATTR_SIZE_VER0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == -1 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

fn remount_each_read_only(path: &str) -> nix::Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|_| nix::Error::EIO)?;
    let prefix = format!("{}/", path.trim_end_matches('/'));
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        if *point != path && !point.starts_with(&prefix) {
            continue;
        }
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        for (name, flag) in [
            ("nosuid", MsFlags::MS_NOSUID),
            ("nodev", MsFlags::MS_NODEV),
            ("noexec", MsFlags::MS_NOEXEC),
            ("relatime", MsFlags::MS_RELATIME),
            ("noatime", MsFlags::MS_NOATIME),
        ] {
            if options.split(',').any(|o| o == name) {
                flags |= flag;
            }
        }
        mount(None::<&str>, *point, None::<&str>, flags, None::<&str>)?;
    }
    Ok(())
}
