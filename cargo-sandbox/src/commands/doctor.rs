//! `cargo sandbox doctor`: what this machine allows, and the exact commands to enable what is
//! missing. Ends by really setting up the engine the way `test` would.

use crate::cli::EngineArgs;
use crate::exit;
use harness::Engine;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

pub fn run(args: EngineArgs) -> anyhow::Result<i32> {
    let root = nix::unistd::geteuid().is_root();
    let release = read("/proc/sys/kernel/osrelease").unwrap_or_default();
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
    println!("kernel      {release}");

    let max_userns = read("/proc/sys/user/max_user_namespaces");
    let clone_sysctl = read("/proc/sys/kernel/unprivileged_userns_clone");
    let apparmor = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    println!("user namespaces for unprivileged users:");
    println!(
        "  user.max_user_namespaces = {}",
        max_userns.as_deref().unwrap_or("?")
    );
    if let Some(v) = &clone_sysctl {
        println!(
            "  kernel.unprivileged_userns_clone = {v}{}",
            if v == "0" {
                "   -> sudo sysctl -w kernel.unprivileged_userns_clone=1"
            } else {
                ""
            }
        );
    }
    if let Some(v) = &apparmor {
        println!(
            "  kernel.apparmor_restrict_unprivileged_userns = {v}{}",
            if v == "1" {
                "   -> sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
            } else {
                ""
            }
        );
    }

    println!("cgroups:");
    match harness::cgroup::detect() {
        Ok(harness::cgroup::Layout::V1(dirs)) => {
            println!("  version v1 (legacy or hybrid layout); this process's cgroups:");
            for (name, dir, needed_for) in [
                ("memory", Some(dirs.memory), ""),
                ("pids", Some(dirs.pids), ""),
                ("cpuacct", Some(dirs.cpuacct), ""),
                ("cpu", dirs.cpu, "--cpus"),
                ("blkio", dirs.blkio, "IO figures and --io-write-bps"),
                ("devices", dirs.devices, "the device allowlist"),
            ] {
                let Some(dir) = dir else {
                    println!("    {name:<8} not mounted (only needed for {needed_for})");
                    continue;
                };
                let writable = nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok();
                println!(
                    "    {name:<8} {} ({})",
                    dir.display(),
                    if writable { "writable" } else { "not writable" }
                );
            }
            if !root {
                println!("  without root, have root delegate one cgroup per controller, e.g.:");
                println!("    for c in memory pids cpuacct cpu; do sudo mkdir /sys/fs/cgroup/$c/sandbox-$USER; sudo chown -R $USER /sys/fs/cgroup/$c/sandbox-$USER; done");
                println!("    export CARGO_SANDBOX_CGROUP_PARENT=/sys/fs/cgroup/memory/sandbox-$USER:/sys/fs/cgroup/pids/sandbox-$USER:/sys/fs/cgroup/cpuacct/sandbox-$USER:/sys/fs/cgroup/cpu/sandbox-$USER");
            }
        }
        Ok(harness::cgroup::Layout::V2 { own, .. }) => {
            let controllers =
                read(&format!("{}/cgroup.controllers", own.display())).unwrap_or_default();
            let subtree =
                read(&format!("{}/cgroup.subtree_control", own.display())).unwrap_or_default();
            let writable = nix::unistd::access(&own, nix::unistd::AccessFlags::W_OK).is_ok();
            println!(
                "  version v2; this process's cgroup {} ({})",
                own.display(),
                if writable { "writable" } else { "not writable" }
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
                println!(
                    "    systemd-run --user --scope -p Delegate=yes cargo-sandbox sandbox test"
                );
            }
        }
        Err(e) => println!("  {e}"),
    }

    println!("kernel features:");
    for (feature, ok, needed_for) in [
        (
            "clone3 + pidfd (5.3)",
            kernel_at_least(&release, 5, 3),
            "race-free waiting and killing",
        ),
        (
            "mount_setattr (5.12)",
            kernel_at_least(&release, 5, 12),
            "read-only host in one call (else per-mount remounts)",
        ),
        (
            "cgroup.kill (5.14)",
            kernel_at_least(&release, 5, 14),
            "v2 kills (else per-process)",
        ),
        (
            "memory.peak (5.19)",
            kernel_at_least(&release, 5, 19),
            "v2 peak memory",
        ),
        (
            "overlayfs in user namespaces (5.11)",
            kernel_at_least(&release, 5, 11),
            "rootless --fs isolated",
        ),
        (
            "user xattrs on tmpfs (6.6)",
            kernel_at_least(&release, 6, 6),
            "rootless --fs isolated (overlay upper on tmpfs)",
        ),
    ] {
        println!(
            "  {:<38} {}  ({needed_for})",
            feature,
            if ok { "yes" } else { "no " }
        );
    }

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
