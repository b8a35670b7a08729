//! The sandbox's filesystem view, set up in its own mount namespace, top to bottom:
//!
//! 1. `/` and everything below it private (recursive): nothing we mount reaches the host, and
//!    nothing the host mounts later appears inside.
//! 2. Isolated filesystem: every mount read-only (recursive), copy-on-write directories shown
//!    through overlayfs with their upper layers on a private tmpfs (so the host never sees a
//!    write, and the init can list every change afterwards). Host filesystem: `/sys` read-only.
//! 3. A fresh `/proc` for the new PID namespace, with `/proc/sys` read-only.
//! 4. A minimal `/dev` on tmpfs: null, zero, full, random, urandom, tty, a private devpts with
//!    `ptmx`, `shm`, and the fd symlinks. No disks.
//! 5. A private `/tmp`; private scratch directories; the paths the user asked to keep writable,
//!    bound read-write.
//! 6. Directories shown at a second path too (`ShownAt`: an archive's files at the paths its
//!    tests were compiled with).
//!
//! Everything the sandbox writes to memory — `/tmp`, `/dev/shm`, the scratch directories, the
//! overlays' upper layers — lives on one private tmpfs (see [`Private`]), bound where each is
//! shown: one size cap for them all, and one superblock to make and tear down instead of five
//! (a superblock's making and teardown were a tenth of a sandbox's CPU).

use crate::spec::{Filesystem, ShownAt};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::fs::File;
use std::path::{Path, PathBuf};

type Failure = (&'static str, nix::Error);

/// A copy-on-write directory: where it is, its lower layer (opened before the overlay hid it) and
/// its upper layer (on the private tmpfs).
pub struct Overlay {
    pub path: PathBuf,
    pub lower: File,
    /// Where the upper layer can be read after the command ran (through the private tmpfs's
    /// descriptor, or on the host when writes are kept).
    pub upper: PathBuf,
}

/// What the init needs after the command ran to list its changes.
pub struct Overlays {
    /// The directory holding the upper layers (the private tmpfs, or the --keep-writes
    /// directory), opened before anything covered it; kept open so they stay reachable.
    pub staging: Option<File>,
    pub overlays: Vec<Overlay>,
    /// Mount points made for [`ShownAt`]s inside copy-on-write directories, as the census
    /// names them: not the command's changes.
    pub made: Vec<PathBuf>,
}

/// Where the private tmpfs is mounted until the sandbox's own `/dev` covers it (then only the
/// init's descriptor reaches it). `/dev` is never part of what a command needs from the host.
const STAGING: &str = "/dev";

/// The sandbox's one private tmpfs, `size` bytes for all its parts: the overlays' layers, and
/// the directories bound at `/tmp`, `/dev/shm`, each scratch directory and (cgroup v1) at
/// `/sys/fs/cgroup`. Binds keep its `nosuid,nodev`.
struct Private(File);

/// Its parts (directories at its root).
const LAYERS: &str = "layers";
const TMP: &str = "tmp";
const SHM: &str = "shm";
const CGROUP: &str = "cgroup";
const SCRATCH: &str = "scratch";

impl Private {
    /// Mounts it at [`STAGING`] (on a read-only host: the mount point needs no write) and makes
    /// its parts, `scratch` scratch directories among them.
    fn mount(size: u64, scratch: usize) -> Result<Private, Failure> {
        use std::os::unix::fs::PermissionsExt;
        tmpfs(STAGING, size).map_err(|e| ("mounting the sandbox's private tmpfs", e))?;
        let root = Path::new(STAGING);
        let scratch_dirs = (0..scratch).map(|i| format!("{SCRATCH}/{i}"));
        let parts = [LAYERS, TMP, SHM, CGROUP].map(str::to_owned).into_iter();
        for part in parts.chain(scratch_dirs) {
            let dir = root.join(&part);
            let mode = if part == CGROUP || part == LAYERS {
                0o755
            } else {
                0o1777
            };
            std::fs::create_dir_all(&dir)
                .and_then(|()| {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                })
                .map_err(|e| ("making the private tmpfs's directories", io_errno(e)))?;
        }
        let file = File::open(STAGING).map_err(|e| ("opening the private tmpfs", io_errno(e)))?;
        Ok(Private(file))
    }

    /// `part`, reachable whatever covers [`STAGING`] later.
    fn part(&self, part: &str) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}/{part}", self.0.as_raw_fd()))
    }

    /// Binds `part` at `target` (which must exist).
    fn bind(&self, part: &str, target: impl AsRef<Path>) -> nix::Result<()> {
        let source = self.part(part);
        mount(
            Some(source.as_path()),
            target.as_ref(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        )
    }
}

/// `reachable`: host paths the command needs (its workspace, its binaries) that the private
/// `/tmp` would otherwise hide; they are bound back into it.
pub fn set_up(
    tmp_size_bytes: u64,
    filesystem: &Filesystem,
    reachable: &[PathBuf],
    own_cgroup: &[PathBuf],
    user_ns: bool,
) -> Result<Overlays, Failure> {
    let host_devices = user_ns.then(HostDevices::open);
    // Opened before /sys/fs/cgroup is replaced by the sandbox's own view of it.
    let own_cgroup: Vec<File> = own_cgroup
        .iter()
        .filter_map(|dir| File::open(dir).ok())
        .collect();
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(|e| ("making / private", e))?;
    let (private, mut result) = host_view(filesystem, tmp_size_bytes, user_ns)?;
    // Opened now, after the overlays, so they show what the command will see.
    let hidden = hidden_by_tmp(reachable);
    fresh_proc(&own_cgroup, &private)?;
    set_up_dev(&private, host_devices.as_ref()).map_err(|e| ("building /dev", e))?;
    private
        .bind(TMP, "/tmp")
        .map_err(|e| ("binding the private /tmp", e))?;
    for (path, file) in hidden {
        rebind(path, &file).map_err(|e| ("keeping a host path under /tmp reachable", e))?;
    }
    if let Filesystem::Isolated {
        scratch,
        writable,
        shown_at,
        ..
    } = filesystem
    {
        for (i, dir) in scratch.iter().enumerate() {
            // Under the private /tmp it may not exist yet; elsewhere it must (the host is
            // read-only).
            let _ = std::fs::create_dir_all(dir);
            private
                .bind(&format!("{SCRATCH}/{i}"), dir)
                .map_err(|e| ("binding a scratch directory", e))?;
        }
        for path in writable {
            bind_writable(path)?;
        }
        for (i, shown) in shown_at.iter().enumerate() {
            if let Some(made) = show_at(shown, &shown_at[..i])
                .map_err(|e| ("showing a directory at a second path", e))?
            {
                result.made.push(made);
            }
        }
    }
    Ok(result)
}

/// `mount`'s "no source / type / data".
const NONE: Option<&str> = None;

/// The host as the command sees it: `/sys` read-only, or (isolated) everything read-only with
/// the copy-on-write directories' overlays in place; and the private tmpfs, mounted once the
/// host is read-only (a recursive read-only would reach it).
fn host_view(
    filesystem: &Filesystem,
    tmp_size_bytes: u64,
    user_ns: bool,
) -> Result<(Private, Overlays), Failure> {
    let empty = Overlays {
        staging: None,
        overlays: Vec::new(),
        made: Vec::new(),
    };
    let Filesystem::Isolated {
        copy_on_write,
        keep_writes,
        scratch,
        ..
    } = filesystem
    else {
        read_only_recursive("/sys").map_err(|e| ("making /sys read-only", e))?;
        return Ok((Private::mount(tmp_size_bytes, 0)?, empty));
    };
    let lowers = copy_on_write
        .iter()
        .map(|path| File::open(path).map(|f| (path.clone(), f)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("opening a copy-on-write directory", io_errno(e)))?;
    match keep_writes {
        // Upper layers on the host, to be inspected afterwards: mounted while the host is
        // still writable, then made writable again after the host turns read-only.
        Some(keep) if !lowers.is_empty() => {
            let kept = overlays_in(keep, lowers, user_ns)?;
            read_only_recursive("/").map_err(|e| ("making the host read-only", e))?;
            let private = Private::mount(tmp_size_bytes, scratch.len())?;
            for o in &kept.overlays {
                mount(
                    NONE,
                    o.path.as_path(),
                    NONE,
                    MsFlags::MS_REMOUNT | MsFlags::MS_BIND,
                    NONE,
                )
                .map_err(|e| ("making a copy-on-write overlay writable", e))?;
            }
            Ok((private, kept))
        }
        _ => {
            read_only_recursive("/").map_err(|e| ("making the host read-only", e))?;
            let private = Private::mount(tmp_size_bytes, scratch.len())?;
            if lowers.is_empty() {
                return Ok((private, empty));
            }
            let staged = stage_overlays(&private, lowers, user_ns)?;
            Ok((private, staged))
        }
    }
}

/// The paths under `/tmp` the private `/tmp` would hide, opened so they can be bound back; a
/// path inside another one on the list comes back with it.
fn hidden_by_tmp(reachable: &[PathBuf]) -> Vec<(&PathBuf, File)> {
    let mut under_tmp: Vec<&PathBuf> = reachable
        .iter()
        .filter(|p| p.starts_with("/tmp") && p.as_path() != Path::new("/tmp"))
        .collect();
    under_tmp.sort_by_key(|p| p.components().count());
    let mut outermost: Vec<&PathBuf> = Vec::new();
    for path in under_tmp {
        if !outermost.iter().any(|kept| path.starts_with(kept)) {
            outermost.push(path);
        }
    }
    outermost
        .into_iter()
        .filter_map(|p| File::open(p).ok().map(|f| (p, f)))
        .collect()
}

/// A `/proc` of the sandbox's PID namespace, `/proc/sys` read-only, and the sandbox's own
/// cgroup shown at `/sys/fs/cgroup`.
fn fresh_proc(own_cgroup: &[File], private: &Private) -> Result<(), Failure> {
    let quiet = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), quiet, NONE).map_err(|e| ("mounting /proc", e))?;
    mount(
        Some("/proc/sys"),
        "/proc/sys",
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(|e| ("binding /proc/sys", e))?;
    read_only_recursive("/proc/sys").map_err(|e| ("making /proc/sys read-only", e))?;
    own_cgroup_view(own_cgroup, private).map_err(|e| ("showing the sandbox its own cgroup", e))
}

/// A path the user asked to keep writable in a read-only host: bound onto itself, read-write.
fn bind_writable(path: &Path) -> Result<(), Failure> {
    mount(
        Some(path),
        path,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(|e| ("binding a writable path", e))?;
    // A bind of a read-only mount starts read-only; remount this one read-write.
    mount(
        NONE,
        path,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        NONE,
    )
    .map_err(|e| ("making a writable path writable", e))
}

/// Binds `shown.source` at `shown.at`; returns the mount point it made, named as on the host
/// (through the [`ShownAt`]s before it), or `None` when there was nothing to make or nowhere
/// to make it.
fn show_at(shown: &ShownAt, before: &[ShownAt]) -> nix::Result<Option<PathBuf>> {
    let Ok(source) = File::open(&shown.source) else {
        return Ok(None);
    };
    let made = if shown.at.is_dir() {
        None
    } else if std::fs::create_dir_all(&shown.at).is_ok() {
        let host = before
            .iter()
            .rev()
            .find_map(|b| Some(b.source.join(shown.at.strip_prefix(&b.at).ok()?)))
            .unwrap_or_else(|| shown.at.clone());
        Some(host)
    } else {
        // Read-only host: nothing is shown there.
        return Ok(None);
    };
    use std::os::fd::AsRawFd;
    let from = format!("/proc/self/fd/{}", source.as_raw_fd());
    mount(
        Some(from.as_str()),
        shown.at.as_path(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    Ok(made)
}

/// Shows, read-only at `/sys/fs/cgroup`, only the sandbox's own cgroups (`own`, its directory
/// per hierarchy, opened before anything covers them): bound in place of the host's hierarchies,
/// so a test can read its own limits and usage but not see, let alone raise, anyone else's.
/// Hierarchies the sandbox has no cgroup in show as empty directories.
fn own_cgroup_view(own: &[File], private: &Private) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let points = cgroup_mount_points()?;
    // Which hierarchy each of our directories lies in: read through its descriptor.
    let in_hierarchy = |file: &File| -> Option<String> {
        let target = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        points
            .iter()
            .filter(|p| target.starts_with(p.as_str()))
            .max_by_key(|p| p.len())
            .cloned()
    };
    let sources: Vec<(String, String)> = own
        .iter()
        .filter_map(|f| Some((in_hierarchy(f)?, format!("/proc/self/fd/{}", f.as_raw_fd()))))
        .collect();
    let bind = |source: &str, point: &str| -> nix::Result<()> {
        mount(Some(source), point, NONE, MsFlags::MS_BIND, NONE)
    };
    if points.iter().any(|p| p == "/sys/fs/cgroup") {
        // Pure v2: the one hierarchy is mounted right there.
        if let Some((_, source)) = sources.first() {
            bind(source, "/sys/fs/cgroup")?;
            read_only_recursive("/sys/fs/cgroup")?;
        }
        return Ok(());
    }
    // The hierarchies' mount points on a directory of the private tmpfs, in place of the host's.
    private.bind(CGROUP, "/sys/fs/cgroup")?;
    for point in points {
        std::fs::create_dir_all(point).map_err(io_errno)?;
        if let Some((_, source)) = sources.iter().find(|(h, _)| h == point) {
            bind(source, point)?;
        }
    }
    // The directory and every bind on it in one call (one remount each on kernels before 5.12).
    read_only_recursive("/sys/fs/cgroup")
}

/// Where the cgroup hierarchies are mounted (under `/sys/fs/cgroup`). Read once per process:
/// the zygote reads it before it clones any init, and each init starts from a copy of the
/// zygote's mount table, so its inits find it read (the read and parse of `mountinfo` was
/// 1.5% of a suite's CPU).
/// A failed read is not kept: the next init reads again.
pub fn cgroup_mount_points() -> nix::Result<&'static [String]> {
    static POINTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    if let Some(points) = POINTS.get() {
        return Ok(points);
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(io_errno)?;
    let points = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let point = left.split(' ').nth(4)?;
            ((fstype == "cgroup" || fstype == "cgroup2") && point.starts_with("/sys/fs/cgroup"))
                .then(|| point.to_owned())
        })
        .collect();
    Ok(POINTS.get_or_init(|| points))
}

/// Binds what `file` (opened before `/tmp` was covered) refers to at `path` in the new `/tmp`.
fn rebind(path: &Path, file: &File) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
    let io = |e: std::io::Error| io_errno(e);
    // The mount point is made in the sandbox's fresh /tmp, never over anything that exists.
    if is_dir {
        std::fs::create_dir_all(path).map_err(io)?;
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
    }
    let source = format!("/proc/self/fd/{}", file.as_raw_fd());
    mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
}

/// An overlay on each copy-on-write directory, its layers on the private tmpfs.
fn stage_overlays(
    private: &Private,
    lowers: Vec<(PathBuf, File)>,
    user_ns: bool,
) -> Result<Overlays, Failure> {
    let staging = private
        .0
        .try_clone()
        .map_err(|e| ("keeping the private tmpfs open", io_errno(e)))?;
    // Read back through the descriptor kept (the private tmpfs's own closes after set-up).
    let read_back = PathBuf::from(format!(
        "/proc/self/fd/{}/{LAYERS}",
        std::os::fd::AsRawFd::as_raw_fd(&staging)
    ));
    let layers = Path::new(STAGING).join(LAYERS);
    let mut result = mount_overlays(&layers, &read_back, lowers, user_ns)?;
    result.staging = Some(staging);
    Ok(result)
}

/// Overlays whose upper layers stay in `keep` on the host (read back through a descriptor: the
/// private `/tmp` may hide the path itself).
fn overlays_in(
    keep: &Path,
    lowers: Vec<(PathBuf, File)>,
    user_ns: bool,
) -> Result<Overlays, Failure> {
    std::fs::create_dir_all(keep)
        .map_err(|e| ("creating the --keep-writes directory", io_errno(e)))?;
    let dir = File::open(keep).map_err(|e| ("opening the --keep-writes directory", io_errno(e)))?;
    let through = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ));
    let mut result = mount_overlays(keep, &through, lowers, user_ns)?;
    result.staging = Some(dir);
    Ok(result)
}

/// Mounts an overlay on each copy-on-write directory with its layers in `layers/<i>/`;
/// `read_back` is where those layers are reachable once the command has run.
fn mount_overlays(
    layers: &Path,
    read_back: &Path,
    lowers: Vec<(PathBuf, File)>,
    user_ns: bool,
) -> Result<Overlays, Failure> {
    let mut overlays = Vec::new();
    for (i, (path, lower)) in lowers.into_iter().enumerate() {
        let upper = layers.join(format!("{i}/upper"));
        let work = layers.join(format!("{i}/work"));
        for dir in [&upper, &work] {
            std::fs::create_dir_all(dir).map_err(|e| ("creating overlay layers", io_errno(e)))?;
        }
        let mut options = format!(
            "lowerdir={},upperdir={},workdir={}",
            escape(&path),
            escape(&upper),
            escape(&work)
        );
        if user_ns {
            // trusted.* xattrs need privilege in the initial user namespace.
            options.push_str(",userxattr");
        }
        mount(
            Some("overlay"),
            path.as_path(),
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|e| ("mounting a copy-on-write overlay", e))?;
        overlays.push(Overlay {
            path,
            lower,
            upper: read_back.join(format!("{i}/upper")),
        });
    }
    Ok(Overlays {
        staging: None,
        overlays,
        made: Vec::new(),
    })
}

/// overlayfs option values escape `,` `:` and `\` with a backslash.
fn escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn tmpfs(target: impl AsRef<Path>, size: u64) -> nix::Result<()> {
    let options = format!("size={size},mode=1777");
    mount(
        Some("tmpfs"),
        target.as_ref(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
}

fn io_errno(e: std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The device nodes the sandbox's `/dev` offers (the device policy allows exactly these).
const DEVICES: [(&str, u32, u32); 6] = crate::devices::NODES;

/// The host's device nodes, opened (`O_PATH`, so nothing is really opened) before anything hides
/// `/dev`: in a user namespace mknod is not allowed, so they are bound in instead.
pub struct HostDevices(Vec<(&'static str, std::os::fd::OwnedFd)>);

impl HostDevices {
    fn open() -> HostDevices {
        use std::os::fd::FromRawFd;
        let mut devices = Vec::new();
        for (name, _, _) in DEVICES {
            let Ok(path) = std::ffi::CString::new(format!("/dev/{name}")) else {
                continue;
            };
            // SAFETY: plain open(2) with a NUL-terminated path; the descriptor is owned below.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if fd >= 0 {
                // SAFETY: a fresh descriptor nothing else owns.
                devices.push((name, unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }));
            }
        }
        HostDevices(devices)
    }
}

fn set_up_dev(private: &Private, bind_from: Option<&HostDevices>) -> nix::Result<()> {
    mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=1m"),
    )?;
    let old_umask = nix::sys::stat::umask(Mode::empty());
    let rw = Mode::from_bits_truncate(0o666);
    match bind_from {
        None => {
            for (name, major, minor) in DEVICES {
                mknod(
                    Path::new("/dev").join(name).as_path(),
                    SFlag::S_IFCHR,
                    rw,
                    makedev(major.into(), minor.into()),
                )?;
            }
        }
        Some(HostDevices(devices)) => {
            use std::os::fd::AsRawFd;
            for (name, fd) in devices {
                let target = Path::new("/dev").join(name);
                std::fs::File::create(&target).map_err(io_errno)?;
                let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
                mount(
                    Some(source.as_str()),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )?;
            }
        }
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
    private.bind(SHM, "/dev/shm")?;
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
