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
    load_stamped(path).0
}

/// [`load`], and the stamp of the file it read (`None`: there was none).
pub fn load_stamped<T: serde::de::DeserializeOwned>(path: &Path) -> (Option<T>, Option<Stamp>) {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return (None, None);
    };
    let stamp = file.metadata().ok().map(|m| Stamp::of(&m));
    let mut bytes = Vec::new();
    let value = file
        .read_to_end(&mut bytes)
        .ok()
        .and_then(|_| serde_json::from_slice(&bytes).ok());
    (value, stamp)
}

/// What identifies one version of a file without reading it: device, inode, size, modification
/// and change times. Every save here renames a new file over the old one (another inode); any
/// write changes the change time, which no user can set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file was last changed at least `settled` before `now` (file times advance
    /// in clock ticks: a second write within the same tick would leave the stamp as it was).
    pub fn settled(&self, now: std::time::SystemTime, settled: std::time::Duration) -> bool {
        let now_ns = now
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now_ns - self.ctime_ns >= settled.as_nanos() as i128
    }

    /// The file at `path` now; `None` when there is none.
    pub fn now(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().map(|m| Stamp::of(&m))
    }
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
    fn a_stamp_changes_with_every_save_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), "kept.json");
        assert_eq!(load_stamped::<Vec<i32>>(&path), (None, None));
        save(&path, &vec![1]).unwrap();
        let (value, read) = load_stamped::<Vec<i32>>(&path);
        assert_eq!(value, Some(vec![1]));
        assert!(read.is_some());
        assert_eq!(Stamp::now(&path), read, "read twice, the same file");
        // The same content saved again is another file.
        save(&path, &vec![1]).unwrap();
        assert_ne!(Stamp::now(&path), read);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(Stamp::now(&path), None);
    }

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
