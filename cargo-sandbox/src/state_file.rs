//! Files a run keeps for the next one under `<target>/cargo-sandbox/`: the tests' durations
//! (`history`) and the test binaries' digests (`report::binary_hashes`). Each is written whole
//! to a file beside it and renamed over it, so a run killed halfway, or one reading while
//! another writes, sees the old file or the new one, never half of one.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Where the file `name` lives for the target directory `target_dir`.
pub fn path(target_dir: &Path, name: &str) -> PathBuf {
    target_dir.join("cargo-sandbox").join(name)
}

/// The value kept at `path`; `None` when there is none, or it cannot be read as a `T` (each
/// file only saves work, and the run's end writes a new one).
pub fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Replaces the file at `path` with `value`, as JSON.
pub fn save<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("a kept file's path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let staged = dir.join(format!(".{name}.{}", std::process::id()));
    let text = serde_json::to_vec(value).with_context(|| format!("encoding {name}"))?;
    std::fs::write(&staged, text).with_context(|| format!("writing {}", staged.display()))?;
    std::fs::rename(&staged, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_value_loads_back_and_leaves_no_staged_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), "kept.json");
        save(&path, &vec![1, 2, 3]).unwrap();
        assert_eq!(load::<Vec<i32>>(&path), Some(vec![1, 2, 3]));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["kept.json"]);
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(load::<Vec<i32>>(&path), None);
    }
}
