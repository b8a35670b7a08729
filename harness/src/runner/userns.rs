//! Rootless sandboxes: a user namespace maps the runner's user to root inside, and every other
//! namespace is created within it, so the init may mount, set the hostname and bring `lo` up
//! without any privilege on the host.

use crate::error::SandboxError;
use crate::spec::RootMapping;

/// Fails, naming the remedy, when this machine does not let an unprivileged user create user
/// namespaces.
pub fn check_available() -> Result<(), SandboxError> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err(SandboxError::NoUserNamespaces(
            "user.max_user_namespaces is 0: `sudo sysctl -w user.max_user_namespaces=15000`"
                .to_owned(),
        ));
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err(SandboxError::NoUserNamespaces(
            "kernel.unprivileged_userns_clone is 0: `sudo sysctl -w kernel.unprivileged_userns_clone=1`".to_owned(),
        ));
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Err(SandboxError::NoUserNamespaces(
            "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+, GitHub runners): \
             `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Maps root in the user namespace of `pid` (just cloned, waiting for its config) to `to` on the
/// host. An unprivileged runner must deny `setgroups` before it may write `gid_map`; a root
/// runner need not, so its sandboxes may still drop supplementary groups.
pub fn map_root(pid: i32, to: RootMapping) -> Result<(), SandboxError> {
    let write = |file: &str, text: String| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| SandboxError::io(format!("writing {path}"), e))
    };
    if !nix::unistd::geteuid().is_root() {
        write("setgroups", "deny".to_owned())?;
    }
    write("uid_map", format!("0 {} 1", to.uid))?;
    write("gid_map", format!("0 {} 1", to.gid))
}
