//! Directories a run owns for its length only: doc test binaries while they are collected, an
//! archive's unpacked binaries. Each is named `<pid>-<nanos>` under a parent shared by all runs,
//! removed when dropped (also after Ctrl-C, which ends the run normally), and, when a runner was
//! killed outright, removed by the next run that makes one beside it.

use anyhow::Context;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct RunDir(PathBuf);

impl RunDir {
    /// Makes this run's directory under `parent`, first removing those of runners that are gone.
    pub fn new(parent: &Path) -> anyhow::Result<RunDir> {
        remove_stale(parent);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = parent.join(format!("{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(RunDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the directories under `parent` whose runner (the pid their name starts with) is gone.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_when_dropped_and_stale_ones_at_the_next_start() {
        let parent = std::env::temp_dir().join(format!("run-dir-test-{}", std::process::id()));
        // A runner that was killed: pid 0 never names a live process in /proc.
        let stale = parent.join("0-123");
        std::fs::create_dir_all(stale.join("inner")).unwrap();
        let dir = RunDir::new(&parent).unwrap();
        assert!(!stale.exists(), "a dead runner's directory is removed");
        assert!(dir.path().is_dir());
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
