//! `cargo sandbox doctor`: what this machine allows, and the exact commands to enable what is
//! missing. Ends by really setting up the engine the way `test` would.

use crate::cli::EngineArgs;
use crate::exit;
use harness::cgroup::{Layout, V1Dirs};
use harness::Engine;
use std::path::Path;

/// Kernel features sandboxes use when the kernel has them: the name, the release that brought
/// it, and what it is for (each has a fallback, so a missing one is no verdict).
const KERNEL_FEATURES: [(&str, (u32, u32), &str); 6] = [
    ("clone3 + pidfd", (5, 3), "race-free waiting and killing"),
    (
        "mount_setattr",
        (5, 12),
        "read-only host in one call (else per-mount remounts)",
    ),
    ("cgroup.kill", (5, 14), "v2 kills (else per-process)"),
    ("memory.peak", (5, 19), "v2 peak memory"),
    (
        "overlayfs in user namespaces",
        (5, 11),
        "rootless --fs isolated",
    ),
    (
        "user xattrs on tmpfs",
        (6, 6),
        "rootless --fs isolated (overlay upper on tmpfs)",
    ),
];

pub fn run(args: EngineArgs) -> anyhow::Result<i32> {
    let root = nix::unistd::geteuid().is_root();
    let release = read("/proc/sys/kernel/osrelease").unwrap_or_default();
    print_user(root);
    println!("kernel      {release}");
    print_user_namespaces();
    println!("cgroups:");
    match harness::cgroup::detect() {
        Ok(Layout::V1(dirs)) => print_cgroups_v1(dirs, root),
        Ok(Layout::V2 { own, .. }) => print_cgroup_v2(&own, root),
        Err(e) => println!("  {e}"),
    }
    print_kernel_features(&release);
    verdict(&args)
}

fn print_user(root: bool) {
    println!(
        "user        {}",
        if root {
            "root".to_owned()
        } else {
            format!(
                "uid {} (rootless: sandboxes get a user namespace)",
                nix::unistd::geteuid()
            )
        }
    );
}

/// The sysctls that decide whether a user without root may make a user namespace.
fn print_user_namespaces() {
    println!("user namespaces for unprivileged users:");
    println!(
        "  user.max_user_namespaces = {}",
        read_sysctl("user.max_user_namespaces")
            .as_deref()
            .unwrap_or("?")
    );
    print_switch("kernel.unprivileged_userns_clone", "0", "1");
    print_switch("kernel.apparmor_restrict_unprivileged_userns", "1", "0");
}

/// A sysctl that only some kernels have: shown where it exists, with the command that sets it
/// to `wanted` when it is `blocking`.
fn print_switch(name: &str, blocking: &str, wanted: &str) {
    let Some(value) = read_sysctl(name) else {
        return;
    };
    let fix = if value == blocking {
        format!("   -> sudo sysctl -w {name}={wanted}")
    } else {
        String::new()
    };
    println!("  {name} = {value}{fix}");
}

/// Each controller's directory and whether this user may write there; without root, how to
/// have them delegated.
fn print_cgroups_v1(dirs: V1Dirs, root: bool) {
    println!("  version v1 (legacy or hybrid layout); this process's cgroups:");
    for (name, dir, needed_for) in [
        ("memory", Some(dirs.memory), ""),
        ("pids", Some(dirs.pids), ""),
        ("cpuacct", Some(dirs.cpuacct), ""),
        ("cpu", dirs.cpu, "--cpus"),
        ("blkio", dirs.blkio, "IO figures and --io-write-bps"),
        ("devices", dirs.devices, "the device allowlist"),
    ] {
        match dir {
            Some(dir) => println!("    {name:<8} {} ({})", dir.display(), writable(&dir)),
            None => println!("    {name:<8} not mounted (only needed for {needed_for})"),
        }
    }
    if !root {
        println!("  without root, have root delegate one cgroup per controller, e.g.:");
        println!("    for c in memory pids cpuacct cpu; do sudo mkdir /sys/fs/cgroup/$c/sandbox-$USER; sudo chown -R $USER /sys/fs/cgroup/$c/sandbox-$USER; done");
        println!("    export CARGO_SANDBOX_CGROUP_PARENT=/sys/fs/cgroup/memory/sandbox-$USER:/sys/fs/cgroup/pids/sandbox-$USER:/sys/fs/cgroup/cpuacct/sandbox-$USER:/sys/fs/cgroup/cpu/sandbox-$USER");
    }
}

/// This process's cgroup, the controllers it may hand down, and how to get an empty or
/// delegated one.
fn print_cgroup_v2(own: &Path, root: bool) {
    let controllers = read(&format!("{}/cgroup.controllers", own.display())).unwrap_or_default();
    let subtree = read(&format!("{}/cgroup.subtree_control", own.display())).unwrap_or_default();
    println!(
        "  version v2; this process's cgroup {} ({})",
        own.display(),
        writable(own)
    );
    println!("  controllers offered: {controllers}; enabled for children: {subtree}");
    for needed in ["memory", "pids", "cpu"] {
        if !controllers.split_whitespace().any(|c| c == needed) {
            println!("  missing `{needed}`: the parent cgroup does not delegate it");
        }
    }
    println!("  a runner sharing its cgroup with other processes needs an empty one:");
    println!("    sudo mkdir /sys/fs/cgroup/sandbox && export CARGO_SANDBOX_CGROUP_PARENT=/sys/fs/cgroup/sandbox");
    if !root {
        println!("  without root, start in a delegated scope:");
        println!("    systemd-run --user --scope -p Delegate=yes cargo-sandbox sandbox test");
    }
}

fn print_kernel_features(release: &str) {
    println!("kernel features:");
    for (feature, (major, minor), needed_for) in KERNEL_FEATURES {
        println!(
            "  {:<38} {}  ({needed_for})",
            format!("{feature} ({major}.{minor})"),
            if kernel_at_least(release, major, minor) {
                "yes"
            } else {
                "no "
            }
        );
    }
}

/// The engine set up the way `test` sets it up: everything above is a hint, this is the proof.
fn verdict(args: &EngineArgs) -> anyhow::Result<i32> {
    print!("verdict: ");
    match Engine::new(args.options()) {
        Ok(engine) => {
            let degraded = engine.cgroup_version() == "none";
            println!(
                "sandboxes can run here (cgroup {}{}{})",
                engine.cgroup_version(),
                if engine.rootless() { ", rootless" } else { "" },
                if degraded { ", DEGRADED: no caps" } else { "" }
            );
            Ok(0)
        }
        Err(e) => {
            println!("sandboxes cannot run here: {e}");
            Ok(exit::TOOL_FAILED)
        }
    }
}

fn writable(dir: &Path) -> &'static str {
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok() {
        "writable"
    } else {
        "not writable"
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A sysctl by its dotted name (`user.max_user_namespaces`), where the kernel has it.
fn read_sysctl(name: &str) -> Option<String> {
    read(&format!("/proc/sys/{}", name.replace('.', "/")))
}

fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}
