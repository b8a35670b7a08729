//! The sandbox's PID 1: this same binary, re-executed by the runner with `INIT_ARG` (see
//! `protocol.rs`). It is single-threaded from its first instruction, so the in-namespace set-up
//! (mounts, `lo`, hostname) runs here and not between fork and exec in the runner.
//!
//! In order: read the config (fd 3) → cgroup namespace → mounts → `lo` up → hostname → spawn the
//! command → reap everything until the command's main process exits → census of what is still
//! alive (the leaks) → kill and reap the rest → network counters → report (fd 4) → exit.

mod census;
mod changes;
pub(crate) mod confine;
pub(crate) mod mounts;
pub(crate) mod net;

use crate::protocol::{InitReport, InitRun, InitSetup, MountConfig, CONFIG_FD, REPORT_FD};
use crate::result::Exit;
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::time::Instant;

/// What a runner and an init must agree on: a hash of the files that define the messages they
/// exchange (so an init from another build whose messages differ is never used).
const PROTOCOL: &str = protocol_text();

const fn protocol_text() -> &'static str {
    // A hex digit per nibble of the hash, appended to the version at compile time.
    const HASH: u64 = fnv1a(
        fnv1a(
            fnv1a(0xcbf2_9ce4_8422_2325, include_str!("../protocol.rs")),
            include_str!("../result.rs"),
        ),
        include_str!("../spec.rs"),
    );
    const TEXT: [u8; 16] = hex(HASH);
    // SAFETY: `hex` produces ASCII only.
    unsafe { std::str::from_utf8_unchecked(&TEXT) }
}

const fn fnv1a(mut hash: u64, text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

const fn hex(value: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        let nibble = ((value >> (60 - 4 * i)) & 0xf) as u8;
        out[i] = if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + nibble - 10
        };
        i += 1;
    }
    out
}

/// [`PROTOCOL`] as it lies in every binary that can be an init: a runner finds it in an init
/// program's file instead of starting the program to ask (an exec and a start-up, 3–5 ms at
/// the start of every run, on the way to its first sandbox).
pub(crate) static STAMP: [u8; STAMP_LEN] = stamp();

const STAMP_PREFIX: &str = "cargo-sandbox init protocol ";
const STAMP_LEN: usize = STAMP_PREFIX.len() + PROTOCOL.len();

const fn stamp() -> [u8; STAMP_LEN] {
    let mut out = [0u8; STAMP_LEN];
    let (prefix, protocol) = (STAMP_PREFIX.as_bytes(), PROTOCOL.as_bytes());
    let mut i = 0;
    while i < STAMP_LEN {
        out[i] = if i < prefix.len() {
            prefix[i]
        } else {
            protocol[i - prefix.len()]
        };
        i += 1;
    }
    out
}

/// Whether `program` is an executable init that speaks this runner's protocol (its file holds
/// [`STAMP`]; read once per run, a piece at a time).
pub fn speaks_our_protocol(program: &std::path::Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let Ok(mut file) = File::open(program) else {
        return false;
    };
    if !file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    {
        return false;
    }
    // Each piece starts with the end of the one before, so a stamp across two is found.
    let mut buf = vec![0u8; 64 * 1024];
    let mut kept = 0;
    loop {
        match file.read(&mut buf[kept..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                let filled = kept + n;
                if memchr::memmem::find(&buf[..filled], &STAMP).is_some() {
                    return true;
                }
                kept = filled.min(STAMP_LEN - 1);
                buf.copy_within(filled - kept..filled, 0);
            }
        }
    }
}

pub use crate::run_if_requested;

/// The init, on descriptors 0..=4 as [`crate::runner::clone::ChildFds`] describes them.
pub(crate) fn main() -> i32 {
    // `ps` inside the sandbox shows PID 1 as what it is.
    let _ = nix::sys::prctl::set_name(c"sandbox-init");
    // SAFETY: the runner put the report pipe on fd 4 and nothing else in this process owns it.
    let mut report_pipe = unsafe { File::from_raw_fd(REPORT_FD) };
    // SAFETY: as above, fd 3 is the config pipe.
    let config_pipe = unsafe { File::from_raw_fd(CONFIG_FD) };
    // The command must inherit neither pipe.
    // SAFETY: plain fcntl on descriptors we own.
    unsafe {
        libc::fcntl(REPORT_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(CONFIG_FD, libc::F_SETFD, libc::FD_CLOEXEC);
    }

    let report = match run(&mut std::io::BufReader::new(config_pipe)) {
        Some(report) => report,
        None => return 1, // The runner is gone before it said go.
    };
    // Everything in the sandbox is gone: closing our copies of its output pipe ends the output
    // now, so the runner has all it needs with the report and does not wait for our exit (in
    // which the kernel tears the namespaces down).
    // SAFETY: closing this process's own stdio, which nothing here uses any more.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close(2);
    }
    let encoded = serde_json::to_vec(&report).unwrap_or_default();
    let _ = report_pipe.write_all(&encoded);
    0
}

/// Reads the set-up (one line; empty lines before it are the runner's "go" bytes), or `None`
/// when the pipe closes first.
fn read_setup(config: &mut impl BufRead) -> Option<Result<InitSetup, serde_json::Error>> {
    let mut line = Vec::new();
    loop {
        line.clear();
        match config.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line.trim_ascii().is_empty() => continue,
            Ok(_) => return Some(serde_json::from_slice(&line)),
        }
    }
}

/// Reads the command: the rest of the pipe, or `None` when it closes with nothing more (the
/// sandbox was started ahead and never used).
fn read_command(config: &mut impl BufRead) -> Option<Result<InitRun, serde_json::Error>> {
    let mut text = Vec::new();
    let _ = config.read_to_end(&mut text);
    (!text.trim_ascii().is_empty()).then(|| serde_json::from_slice(&text))
}

fn setup_failed(stage: &str, e: impl std::fmt::Display) -> Box<InitReport> {
    Box::new(InitReport::SetupFailed {
        stage: stage.to_owned(),
        message: e.to_string(),
    })
}

/// Builds the sandbox, waits for the command, runs it; `None` when the runner left first.
fn run(config: &mut impl BufRead) -> Option<InitReport> {
    let setup = match read_setup(config)? {
        Ok(setup) => setup,
        Err(e) => return Some(*setup_failed("reading the config", e)),
    };
    let built = match set_up(&setup) {
        Ok(built) => built,
        Err(report) => return Some(*report),
    };
    let command = match read_command(config)? {
        Ok(command) => command,
        Err(e) => return Some(*setup_failed("reading the command", e)),
    };
    Some(run_command(&setup, built, &command))
}

fn run_command(setup: &InitSetup, built: Built, config: &InitRun) -> InitReport {
    let overlays = match enter(setup, built, config) {
        Ok(overlays) => overlays,
        Err(report) => return *report,
    };
    let mut command = std::process::Command::new(&config.argv[0]);
    command
        .args(&config.argv[1..])
        .env_clear()
        .envs(config.env.iter().cloned());
    // The first argument is the name the user gave, not the path found in PATH.
    command.arg0(&config.argv[0]);
    if config.foreground_tty {
        // SAFETY: single-threaded process; setpgid, signal and tcsetpgrp are async-signal-safe.
        unsafe { command.pre_exec(take_the_terminal) };
    }
    let started = Instant::now();
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return InitReport::SpawnFailed {
                not_found: e.kind() == std::io::ErrorKind::NotFound,
                message: e.to_string(),
            }
        }
    };
    let main_pid = Pid::from_raw(child.id() as i32);
    let exit = reap_until(main_pid);
    let wall_us = started.elapsed().as_micros() as u64;

    // Only a /proc of our own shows just the sandbox's processes; without a mount namespace the
    // host's /proc would list everyone, so there is no census to take.
    let (leaked, leaked_total) = if setup.mounts.is_some() {
        census::take()
    } else {
        (Vec::new(), 0)
    };
    // PID 1 in its namespace: -1 reaches every other process in it.
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), nix::sys::signal::Signal::SIGKILL);
    reap_all();
    let network = crate::netstat::read_no_route_counters(std::path::Path::new("/proc/self/net"));
    let (files_written, files_written_total) = changes::list(&overlays);
    let own = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok();
    let reaped = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).ok();
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    let children = crate::result::ResourceUsage {
        cpu_user_us: reaped.map_or(0, |r| micros(r.user_time())),
        cpu_system_us: reaped.map_or(0, |r| micros(r.system_time())),
        // ru_maxrss is the largest single process, in KiB: a lower bound of the sandbox's peak.
        memory_peak_bytes: reaped.map(|r| r.max_rss() as u64 * 1024),
        ..Default::default()
    };
    InitReport::Finished {
        exit,
        wall_us,
        leaked,
        leaked_total,
        network,
        files_written,
        files_written_total,
        init_user_us: own.map_or(0, |r| micros(r.user_time())),
        init_system_us: own.map_or(0, |r| micros(r.system_time())),
        children,
    }
}

/// The sandbox as built before its command came.
struct Built {
    overlays: mounts::Overlays,
    /// The working directory named in the set-up, opened before the mounts could hide it.
    cwd: Option<File>,
}

/// Everything that does not depend on the command: cgroup namespace, mounts, `lo`, hostname.
fn set_up(setup: &InitSetup) -> Result<Built, Box<InitReport>> {
    if setup.new_cgroup_ns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| setup_failed("creating the cgroup namespace", e))?;
    }
    let cwd = match &setup.cwd {
        Some(dir) => Some(File::open(dir).map_err(|e| {
            setup_failed(
                &format!("opening the working directory {}", dir.display()),
                e,
            )
        })?),
        None => None,
    };
    let mut built = Built {
        overlays: mounts::Overlays {
            staging: None,
            overlays: Vec::new(),
            made: Vec::new(),
        },
        cwd,
    };
    if let Some(MountConfig {
        tmp_size_bytes,
        filesystem,
    }) = &setup.mounts
    {
        built.overlays = mounts::set_up(
            *tmp_size_bytes,
            filesystem,
            &setup.reachable,
            &setup.cgroup_dirs,
            setup.user_ns,
        )
        .map_err(|(stage, e)| setup_failed(stage, e))?;
    }
    if setup.loopback {
        net::loopback_up().map_err(|e| setup_failed("bringing up lo", e))?;
    }
    if let Some(hostname) = &setup.hostname {
        nix::unistd::sethostname(hostname).map_err(|e| setup_failed("setting the hostname", e))?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    forward_sigterm().map_err(|e| setup_failed("installing the SIGTERM handler", e))?;
    // Last: the init keeps its own capabilities (the bounding set only limits what an exec
    // gains) and needs none of the calls the filter denies. One cloned by the zygote has it
    // from the zygote already.
    match (setup.confine, confine::inherited()) {
        (true, true) => {}
        (true, false) => confine::prepared()
            .and_then(|c| c.apply().map_err(|e| e.to_string()))
            .map_err(|e| setup_failed("applying the capability and seccomp confinement", e))?,
        (false, false) => {}
        (false, true) => {
            return Err(setup_failed(
                "starting a --privileged sandbox",
                "internal error: its init came from the confined zygote; please report it",
            ))
        }
    }
    Ok(built)
}

/// What depends on the command: its directories made, its working directory, its CPUs.
fn enter(
    setup: &InitSetup,
    built: Built,
    config: &InitRun,
) -> Result<mounts::Overlays, Box<InitReport>> {
    for dir in &config.make_dirs {
        std::fs::create_dir_all(dir)
            .map_err(|e| setup_failed(&format!("creating {}", dir.display()), e))?;
    }
    // By path first, so a cwd inside a copy-on-write directory is the overlay; by the descriptor
    // opened before the mounts when the path no longer leads there.
    if let Err(e) = std::env::set_current_dir(&config.cwd) {
        let entered = match (&built.cwd, &setup.cwd) {
            (Some(dir), Some(path)) if *path == config.cwd => {
                nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(dir)).map_err(|e| e.into())
            }
            _ => Err(e),
        };
        entered.map_err(|e: std::io::Error| {
            setup_failed(
                &format!("entering the working directory {}", config.cwd.display()),
                e,
            )
        })?;
    }
    if let Some(cpus) = &config.cpuset {
        let mut set = nix::sched::CpuSet::new();
        for &cpu in cpus {
            set.set(cpu as usize)
                .map_err(|e| setup_failed(&format!("pinning to CPU {cpu}"), e))?;
        }
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
            .map_err(|e| setup_failed("pinning to the --cpuset CPUs", e))?;
    }
    Ok(built.overlays)
}

/// Makes the command the terminal's foreground process group (in the child, before exec): the
/// keyboard's signals (Ctrl-C, Ctrl-Z) reach it and not the runner, and a shell gets job control.
fn take_the_terminal() -> std::io::Result<()> {
    // SAFETY: plain syscalls on this process and fd 0, which is the terminal.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // A background process group may only take the terminal with SIGTTOU ignored.
        let previous = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        let taken = libc::tcsetpgrp(0, libc::getpid());
        libc::signal(libc::SIGTTOU, previous);
        if taken != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The runner's timeout sends SIGTERM to PID 1 (which only receives signals it handles); pass
/// it on to every process in the namespace so they can shut down within the grace period.
fn forward_sigterm() -> nix::Result<()> {
    extern "C" fn forward(_: libc::c_int) {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(-1, libc::SIGTERM) };
    }
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(forward),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only calls kill.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGTERM, &action) }.map(drop)
}

/// Reaps every child (orphans are re-parented to us) until `main` exits; returns how it did.
fn reap_until(main: Pid) -> Exit {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return Exit::Code(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                return Exit::Signal(signal as i32)
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            // No children at all: cannot happen while main lives; report what we know.
            Err(_) => return Exit::Code(-1),
        }
    }
}

/// Reaps until no child is left.
fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Err(Errno::EINTR) | Ok(_) => continue,
            Err(_) => return,
        }
    }
}

/// Reaps whatever has already exited, without blocking.
fn reap_exited() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file at `/tmp`, with `mode`, holding `bytes`; removed when dropped.
    struct Program(std::path::PathBuf);

    impl Program {
        fn new(name: &str, bytes: &[u8], mode: u32) -> Program {
            use std::os::unix::fs::PermissionsExt;
            let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            Program(path)
        }
    }

    impl Drop for Program {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn the_stamp_is_found_anywhere_in_an_executable_file_and_only_there() {
        // Across the boundary of the 64 KiB pieces the file is read in, and at its very end.
        for at in [0, 64 * 1024 - 10, 200_000] {
            let mut bytes = vec![b'x'; at];
            bytes.extend_from_slice(&STAMP);
            let program = Program::new(&format!("stamp-{at}"), &bytes, 0o755);
            assert!(speaks_our_protocol(&program.0), "stamp at {at}");
        }
        let mut other = STAMP;
        other[STAMP_LEN - 1] ^= 1;
        let another_build = Program::new("stamp-other", &other, 0o755);
        assert!(!speaks_our_protocol(&another_build.0));
        let not_executable = Program::new("stamp-noexec", &STAMP, 0o644);
        assert!(!speaks_our_protocol(&not_executable.0));
        assert!(!speaks_our_protocol(std::path::Path::new(
            "/nonexistent/init"
        )));
    }
}
