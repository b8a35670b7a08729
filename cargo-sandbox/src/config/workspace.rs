//! The workspace's configuration as the subcommands read it: the workspace found through cargo,
//! the file read, the chosen profile checked. A bad one is a usage error (exit 2), said once.

use super::Config;
use crate::{build, exit};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The configuration of the workspace `manifest_path` names (or the current one), its profile
/// checked; `Err` carries the exit code after the message.
pub fn of_workspace(manifest_path: Option<&Path>, profile: &str) -> Result<Config, i32> {
    workspace_root(manifest_path)
        .map_err(|e| e.to_string())
        .and_then(|root| read_checked(&root, profile))
        .map_err(|message| {
            say!("cargo-sandbox: error: {message}");
            exit::USAGE
        })
}

/// The configuration of the workspace at `root`, its profile checked; `Err` is the message.
pub fn read_checked(root: &Path, profile: &str) -> Result<Config, String> {
    let config = Config::load(root).map_err(|e| e.to_string())?;
    config.check_profile(profile).map_err(|e| e.to_string())?;
    Ok(config)
}

/// The workspace's root directory, found without building.
fn workspace_root(manifest_path: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut cmd = std::process::Command::new(build::cargo());
    cmd.args(["locate-project", "--workspace", "--message-format", "plain"]);
    if let Some(path) = manifest_path {
        cmd.arg("--manifest-path").arg(path);
    }
    let out = cmd.output().context("running `cargo locate-project`")?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let manifest = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(manifest.parent().map(Path::to_owned).unwrap_or_default())
}
