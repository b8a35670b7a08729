//! Lists what the command changed in its copy-on-write directories, by walking each overlay's
//! upper layer (reached through the init's descriptor under the sandbox's own `/dev`, or on the
//! host when writes are kept) and
//! comparing with the lower layer (the host directory, opened before the overlay hid it):
//! a file only in the upper layer was created, one in both was modified, a whiteout (a 0:0
//! character device) is a deletion, and an opaque directory hides everything the host had in it.

use super::mounts::Overlays;
use crate::protocol::MAX_FILES_LISTED;
use crate::result::{FileChange, FileWrite};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub fn list(overlays: &Overlays) -> (Vec<FileWrite>, usize) {
    let mut found = Found::default();
    for o in &overlays.overlays {
        let lower = PathBuf::from(format!("/proc/self/fd/{}", o.lower.as_raw_fd()));
        walk(
            &Layers {
                upper: &o.upper,
                lower: &lower,
                host: &o.path,
                made: &overlays.made,
            },
            Path::new(""),
            &mut found,
        );
    }
    (found.listed, found.total)
}

#[derive(Default)]
struct Found {
    listed: Vec<FileWrite>,
    total: usize,
}

impl Found {
    fn push(&mut self, path: PathBuf, kind: FileChange, size: u64) {
        self.total += 1;
        if self.listed.len() < MAX_FILES_LISTED {
            self.listed.push(FileWrite { path, kind, size });
        }
    }
}

struct Layers<'a> {
    upper: &'a Path,
    lower: &'a Path,
    /// Where the directory is on the host (for the report).
    host: &'a Path,
    /// Mount points the sandbox made itself (see `mounts::show_at`), as `host` names them.
    made: &'a [PathBuf],
}

fn walk(layers: &Layers, rel: &Path, found: &mut Found) {
    let dir = layers.upper.join(rel);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    if is_opaque(&dir) {
        // The command replaced this directory: what the host had here is gone for it.
        if let Ok(lower) = std::fs::read_dir(layers.lower.join(rel)) {
            let mut gone: Vec<_> = lower
                .flatten()
                .map(|e| e.file_name())
                .filter(|n| !names.contains(n))
                .collect();
            gone.sort();
            for name in gone {
                found.push(layers.host.join(rel).join(name), FileChange::Deleted, 0);
            }
        }
    }
    for name in names {
        let rel = rel.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(layers.upper.join(&rel)) else {
            continue;
        };
        let in_lower = std::fs::symlink_metadata(layers.lower.join(&rel)).ok();
        let host = layers.host.join(&rel);
        let file_type = meta.file_type();
        if file_type.is_char_device() && meta.rdev() == 0 {
            found.push(host, FileChange::Deleted, 0);
        } else if file_type.is_dir() {
            // A mount point the sandbox made: empty in the upper layer, what was written there
            // went to the directory shown on it.
            if layers.made.contains(&host) {
                continue;
            }
            if !in_lower.as_ref().is_some_and(|m| m.is_dir()) {
                found.push(host, FileChange::Created, 0);
            }
            walk(layers, &rel, found);
        } else {
            let kind = if in_lower.is_some() {
                FileChange::Modified
            } else {
                FileChange::Created
            };
            found.push(host, kind, meta.len());
        }
    }
}

/// overlayfs marks a directory that replaced a lower one with `trusted.overlay.opaque = y`
/// (`user.overlay.opaque` when mounted in a user namespace).
fn is_opaque(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    [c"trusted.overlay.opaque", c"user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut value = [0u8; 1];
            // SAFETY: both buffers outlive the call; the size passed is the buffer's.
            let n = unsafe {
                libc::getxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            n == 1 && value[0] == b'y'
        })
}
