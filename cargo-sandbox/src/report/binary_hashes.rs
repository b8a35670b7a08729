//! The sha256 of each test binary for the JSON report's fingerprint, kept between runs.
//!
//! Hashing every test binary on every run cost a run with `--report-json` more than its tests
//! on a small workspace: 20 debug test binaries of 7 MiB each, 140 MiB, about 100 ms of CPU
//! beside 96 ms of run. Most binaries did not change since the last run, so each digest is kept
//! in `<target>/cargo-sandbox/binary-hashes.json` with the file's stamp (device, inode, size,
//! modification and change times) and used again while the file's stamp is the same: cargo
//! writes a rebuilt binary as a new file, and any write changes the change time, which no
//! user can set back.
//!
//! As git's index does, a file changed shortly before it was hashed is hashed again next time
//! rather than trusted: file times advance in clock ticks, so a second write within the same
//! tick would leave the stamp as it was.

use crate::state_file::{self, Stamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A digest is kept only for a file last changed at least this long before it was hashed.
const SETTLED: Duration = Duration::from_secs(2);

const FILE: &str = "binary-hashes.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
    stamp: Stamp,
    sha256: String,
}

/// The digests kept from earlier runs, by the binary's path.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BinaryHashes {
    binaries: BTreeMap<PathBuf, Kept>,
}

/// A binary's digest, and what of it is kept for the next run.
#[derive(Debug)]
pub struct Hashed {
    pub sha256: String,
    path: PathBuf,
    keep: Option<Kept>,
}

impl BinaryHashes {
    /// The digests kept for the target directory `target_dir` (none when there are none yet).
    pub fn load(target_dir: &Path) -> BinaryHashes {
        state_file::load(&state_file::path(target_dir, FILE)).unwrap_or_default()
    }

    /// The sha256 of the file at `path`: the kept one while the file is as it was, else read.
    pub fn sha256(&self, path: &Path) -> std::io::Result<Hashed> {
        let stamp = Stamp::of(&std::fs::metadata(path)?);
        if let Some(kept) = self.binaries.get(path).filter(|k| k.stamp == stamp) {
            return Ok(Hashed {
                sha256: kept.sha256.clone(),
                path: path.to_owned(),
                keep: Some(kept.clone()),
            });
        }
        let now = SystemTime::now();
        let sha256 = super::sha256_file(path)?;
        // A file replaced while it was read keeps nothing: its digest is of either version.
        let unchanged = Stamp::of(&std::fs::metadata(path)?) == stamp;
        let keep = (unchanged && stamp.settled(now, SETTLED)).then(|| Kept {
            stamp,
            sha256: sha256.clone(),
        });
        Ok(Hashed {
            sha256,
            path: path.to_owned(),
            keep,
        })
    }

    /// Keeps the digests of this run's binaries, and of the others kept before whose file is
    /// still there (a run of some packages does not forget the rest's), when that changes
    /// what was kept.
    pub fn save(self, target_dir: &Path, hashed: &[Hashed]) -> anyhow::Result<()> {
        let ran: std::collections::BTreeSet<&Path> =
            hashed.iter().map(|h| h.path.as_path()).collect();
        let mut binaries: BTreeMap<PathBuf, Kept> = (self.binaries.iter())
            .filter(|(path, _)| !ran.contains(path.as_path()) && path.exists())
            .map(|(path, kept)| (path.clone(), kept.clone()))
            .collect();
        binaries.extend((hashed.iter()).filter_map(|h| Some((h.path.clone(), h.keep.clone()?))));
        if binaries == self.binaries {
            return Ok(());
        }
        state_file::save(
            &state_file::path(target_dir, FILE),
            &BinaryHashes { binaries },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_twice(dir: &Path, binary: &Path) -> (Hashed, Hashed) {
        let first = BinaryHashes::load(dir).sha256(binary).unwrap();
        BinaryHashes::load(dir)
            .save(dir, std::slice::from_ref(&first))
            .unwrap();
        let second = BinaryHashes::load(dir).sha256(binary).unwrap();
        (first, second)
    }

    #[test]
    fn a_kept_digest_serves_until_the_file_is_rewritten_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bin");
        std::fs::write(&binary, "one").unwrap();
        let stamp = Stamp::of(&std::fs::metadata(&binary).unwrap());
        assert!(!stamp.settled(SystemTime::now(), SETTLED), "just written");
        assert!(stamp.settled(SystemTime::now() + SETTLED, SETTLED));
        let keep = |path: &Path| {
            let stamp = Stamp::of(&std::fs::metadata(path).unwrap());
            let kept = Kept {
                stamp,
                sha256: "kept".to_owned(),
            };
            BinaryHashes {
                binaries: BTreeMap::from([(path.to_owned(), kept)]),
            }
        };
        let read = |hashes: &BinaryHashes| hashes.sha256(&binary).unwrap().sha256;
        assert_eq!(read(&keep(&binary)), "kept", "the file is not read again");

        // Rewritten in place (a size of its own: a write within the clock tick of the last
        // one would keep the times, which is why a digest is kept only for settled files).
        let hashes = keep(&binary);
        std::fs::write(&binary, "rewritten").unwrap();
        assert_eq!(read(&hashes), super::super::sha256_file(&binary).unwrap());

        // Replaced by another file of the same size, as cargo replaces a binary it rebuilt.
        let hashes = keep(&binary);
        let new = dir.path().join("new");
        std::fs::write(&new, "REWRITTEN").unwrap();
        std::fs::rename(&new, &binary).unwrap();
        assert_eq!(read(&hashes), super::super::sha256_file(&binary).unwrap());
    }

    #[test]
    fn a_file_changed_just_before_it_was_hashed_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bin");
        std::fs::write(&binary, "fresh").unwrap();
        let (first, second) = hash_twice(dir.path(), &binary);
        assert!(first.keep.is_none() && second.keep.is_none());
        assert_eq!(first.sha256, second.sha256);
        assert!(
            !state_file::path(dir.path(), FILE).exists(),
            "nothing to keep"
        );
    }

    #[test]
    fn saving_keeps_other_binaries_while_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let [ran, other, gone] = ["ran", "other", "gone"].map(|n| dir.path().join(n));
        for file in [&ran, &other] {
            std::fs::write(file, "x").unwrap();
        }
        let kept = |path: &Path| {
            let kept = Kept {
                stamp: Stamp::of(&std::fs::metadata(&ran).unwrap()),
                sha256: "old".to_owned(),
            };
            (path.to_owned(), kept)
        };
        let before = BinaryHashes {
            binaries: BTreeMap::from([kept(&ran), kept(&other), kept(&gone)]),
        };
        // `ran` was hashed this run and not kept (it changed a moment ago).
        let hashed = Hashed {
            sha256: "new".to_owned(),
            path: ran.clone(),
            keep: None,
        };
        before.save(dir.path(), &[hashed]).unwrap();
        let after = BinaryHashes::load(dir.path());
        let paths: Vec<&PathBuf> = after.binaries.keys().collect();
        assert_eq!(
            paths,
            [&other],
            "the other run's kept; the stale and the gone dropped"
        );
    }
}
