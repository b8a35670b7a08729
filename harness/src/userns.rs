//! Rootless sandboxes: a user namespace maps the runner's user to root inside, and every other
//! namespace is created within it, so the init may mount, set the hostname and bring `lo` up
//! without any privilege on the host.

use crate::error::SandboxError;

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
