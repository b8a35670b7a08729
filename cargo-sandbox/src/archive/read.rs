//! Opening an archive for a run: each entry checked as it is unpacked into this run's private
//! directory, then the build moved onto the unpacked files and the checkout.

use super::{FileEntry, Manifest, FORMAT, MANIFEST, SEAL, TARGET, TOOLCHAIN_DIR};
use crate::build::Build;
use crate::doctest;
use crate::run_dir::RunDir;
use anyhow::Context;
use cargo_metadata::camino::Utf8PathBuf;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The archive cannot be run: missing, damaged, of another version, or not of this checkout.
/// The message says which and what to do; the run exits with [`crate::exit::USAGE`].
#[derive(Debug)]
pub struct BadArchive(pub String);

impl std::fmt::Display for BadArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadArchive {}

/// An archive unpacked for this run; its directory goes when this does.
#[derive(Debug)]
pub struct Unpacked {
    pub build: Build,
    pub doctests: Option<doctest::Collected>,
    /// The manifest's SHA-256, as `cargo sandbox archive` printed it.
    pub fingerprint: String,
    /// Holds the unpacked files; removed when dropped.
    pub dir: RunDir,
}

/// Unpacks the archive at `path` for a run in the checkout `workspace`. `None` when cancelled.
pub fn open(
    path: &Path,
    workspace: &Path,
    cancel: &harness::Cancel,
) -> anyhow::Result<Option<Unpacked>> {
    let workspace = workspace.canonicalize().map_err(|e| {
        BadArchive(format!(
            "the workspace to run the archive in ({}): {e}; pass the checkout's directory with \
             --workspace-remap",
            workspace.display()
        ))
    })?;
    let file = std::fs::File::open(path).map_err(|e| {
        BadArchive::at(
            path,
            format!(
                "{e}; make one with `cargo sandbox archive --archive-file {}`",
                path.display()
            ),
        )
    })?;
    let dir = RunDir::new(&std::env::temp_dir().join("cargo-sandbox-archives"))?;
    let Some((manifest, fingerprint)) = unpack(path, file, dir.path(), &workspace, cancel)? else {
        return Ok(None);
    };
    let (build, doctests) = relocate(manifest, dir.path(), workspace)?;
    Ok(Some(Unpacked {
        build,
        doctests,
        fingerprint,
        dir,
    }))
}

impl BadArchive {
    /// What is wrong with the archive at `path`.
    fn at(path: &Path, what: String) -> BadArchive {
        BadArchive(format!("the archive {}: {what}", path.display()))
    }
}

/// Unpacks every entry of the archive `file` (at `path`) into `into`, each checked against
/// the manifest, which comes first, and that against the seal, which comes last. Returns the
/// manifest and its fingerprint; `None` when cancelled.
fn unpack(
    path: &Path,
    file: std::fs::File,
    into: &Path,
    workspace: &Path,
    cancel: &harness::Cancel,
) -> anyhow::Result<Option<(Manifest, String)>> {
    let bad = |what: String| BadArchive::at(path, what);
    let decoder = zstd::Decoder::new(file).map_err(|e| bad(format!("not zstd: {e}")))?;
    let mut tar = tar::Archive::new(decoder);
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("not a tar stream: {e}")))?;
    let mut unpacker: Option<Unpacker> = None;
    let mut sealed = None;
    for entry in entries {
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let mut entry = entry.map_err(|e| bad(damaged(&e)))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if sealed.is_some() {
            return Err(bad(format!(
                "`{name}` follows the seal: it was added afterwards"
            ))
            .into());
        }
        match unpacker.as_mut() {
            None if name == MANIFEST => {
                let bytes = read_small(&mut entry, 1 << 28).map_err(|e| bad(damaged(&e)))?;
                let u = Unpacker::new(bytes, into).map_err(bad)?;
                // Before anything is unpacked: the checkout must be the archive's.
                check_workspace(&u.manifest.build, workspace)?;
                unpacker = Some(u);
            }
            None => return Err(bad(format!("it starts with `{name}`, not its manifest: it was not made by `cargo sandbox archive`")).into()),
            Some(u) if name == SEAL => {
                let seal = read_small(&mut entry, 64).map_err(|e| bad(damaged(&e)))?;
                let expected = crate::report::hex(&Sha256::digest(&u.manifest_bytes));
                if seal != expected.as_bytes() {
                    return Err(bad("its manifest does not match its seal: it was changed after it was made".to_owned()).into());
                }
                sealed = Some(expected);
            }
            Some(u) => u.unpack(&name, &mut entry).map_err(bad)?,
        }
    }
    let (Some(unpacker), Some(fingerprint)) = (unpacker, sealed) else {
        return Err(bad(
            "it is damaged or truncated (it ends early): make it again or download it again"
                .to_owned(),
        )
        .into());
    };
    if let Some(missing) = unpacker.files.keys().next() {
        return Err(bad(format!("`{missing}` is listed but missing")).into());
    }
    Ok(Some((unpacker.manifest, fingerprint)))
}

/// The archived build and doc tests, moved onto the files unpacked in `unpacked` and the
/// checkout `workspace`.
fn relocate(
    manifest: Manifest,
    unpacked: &Path,
    workspace: PathBuf,
) -> anyhow::Result<(Build, Option<doctest::Collected>)> {
    let target = unpacked.join(TARGET);
    let moves = Relocation {
        target: (manifest.build.target_dir.clone(), target.clone()),
        workspace: (manifest.build.workspace_root.clone(), workspace),
    };
    let mut build = moves.build(manifest.build)?;
    // Build scripts' OUT_DIRs exist at run time, also those that wrote nothing.
    for script in build.build_scripts.values() {
        if script.out_dir.starts_with(&target) {
            std::fs::create_dir_all(&script.out_dir)
                .with_context(|| format!("creating {}", script.out_dir.display()))?;
        }
    }
    // The toolchain's dylibs are the archive's (none when the tests link none).
    build.toolchain_lib = Some(target.join(TOOLCHAIN_DIR));
    // Paths compiled in (`env!("CARGO_BIN_EXE_x")`, `env!("CARGO_MANIFEST_DIR")`) name the
    // building machine's directories: sandboxes show the checkout and the unpacked files
    // there too, the checkout first (the target often lies inside it).
    build.shown_at = [&moves.workspace, &moves.target]
        .into_iter()
        .filter(|(from, to)| from != to)
        .map(|(from, to)| harness::ShownAt {
            source: to.clone(),
            at: from.clone(),
        })
        .collect();
    let doctests = manifest.doctests.map(|d| {
        let tests = d
            .tests
            .into_iter()
            .map(|mut t| {
                t.binary = moves.path(&t.binary);
                t
            })
            .collect();
        doctest::Collected::archived(tests, d.settled)
    });
    Ok((build, doctests))
}

fn damaged(e: &std::io::Error) -> String {
    format!("it is damaged or truncated ({e}): make it again or download it again")
}

/// Reads an entry known to be small, refusing one over `limit` bytes.
fn read_small(entry: &mut impl Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other("an entry is larger than it can be"));
    }
    Ok(bytes)
}

/// Checks each file against the manifest as it is written.
struct Unpacker {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    /// Those not unpacked yet.
    files: BTreeMap<String, FileEntry>,
    target: PathBuf,
}

impl Unpacker {
    fn new(manifest_bytes: Vec<u8>, dir: &Path) -> Result<Unpacker, String> {
        // The version first: another version's manifest may not even parse.
        let header: serde_json::Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| format!("its manifest cannot be read ({e}): it is damaged"))?;
        let version = header["tool_version"]
            .as_str()
            .unwrap_or("an unknown version");
        if version != super::tool_version() || header["format"] != FORMAT {
            return Err(format!(
                "it was made by {version}, and this is {}: make and run archives with the same \
                 version of cargo-sandbox",
                super::tool_version()
            ));
        }
        let manifest: Manifest = serde_json::from_value(header)
            .map_err(|e| format!("its manifest cannot be read ({e}): it is damaged"))?;
        let files = manifest
            .files
            .iter()
            .map(|f| (format!("{TARGET}/{}", f.path), f.clone()))
            .collect();
        Ok(Unpacker {
            manifest,
            manifest_bytes,
            files,
            target: dir.join(TARGET),
        })
    }

    /// Writes one entry under the target directory, if it is a listed file with its bytes.
    fn unpack(&mut self, name: &str, entry: &mut tar::Entry<impl Read>) -> Result<(), String> {
        let Some(rel) = name.strip_prefix(&format!("{TARGET}/")) else {
            return Err(format!("`{name}` lies outside `{TARGET}/`"));
        };
        let rel = Path::new(rel);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!(
                "`{name}` would be written outside the directory it is unpacked into"
            ));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(format!("`{name}` is not a plain file"));
        }
        let Some(file) = self.files.remove(name) else {
            return Err(format!(
                "`{name}` is not listed in its manifest (listed twice?)"
            ));
        };
        let dest = self.target.join(rel);
        let write = |e: std::io::Error| format!("unpacking `{name}` to {}: {e}", dest.display());
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(if file.executable { 0o755 } else { 0o644 })
            .open(&dest)
            .map_err(write)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(|e| damaged(&e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(write)?;
            size += n as u64;
        }
        if size != file.size || crate::report::hex(&hasher.finalize()) != file.sha256 {
            return Err(format!(
                "`{name}` is not the file it was made with (its bytes differ): it is damaged"
            ));
        }
        Ok(())
    }
}

/// The checkout must hold the archive's workspace packages, by the same names at the same places.
fn check_workspace(build: &Build, workspace: &Path) -> Result<(), BadArchive> {
    let not_it = |why: String| {
        BadArchive(format!(
            "{} is not the workspace the archive was made from: {why}; run from its checkout or \
             pass it with --workspace-remap",
            workspace.display()
        ))
    };
    for package in build.packages.values() {
        let Ok(rel) = package
            .manifest_path
            .as_std_path()
            .strip_prefix(&build.workspace_root)
        else {
            continue;
        };
        let manifest = workspace.join(rel);
        let text = std::fs::read_to_string(&manifest).map_err(|_| {
            not_it(format!(
                "it has no {} (package `{}`)",
                rel.display(),
                package.name
            ))
        })?;
        let name = text
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| t.get("package")?.get("name")?.as_str().map(str::to_owned));
        if name.as_deref() != Some(package.name.as_str()) {
            return Err(not_it(format!(
                "its {} is {}, the archive's is package `{}`",
                rel.display(),
                name.map_or("no package".to_owned(), |n| format!("package `{n}`")),
                package.name
            )));
        }
    }
    Ok(())
}

/// Where the building machine's target directory and workspace are on this one.
struct Relocation {
    target: (PathBuf, PathBuf),
    workspace: (PathBuf, PathBuf),
}

impl Relocation {
    /// The target first: it often lies inside the workspace.
    fn path(&self, path: &Path) -> PathBuf {
        for (from, to) in [&self.target, &self.workspace] {
            if let Ok(rest) = path.strip_prefix(from) {
                // `join("")` would add a trailing `/`, which mounts take for another path.
                return if rest.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rest)
                };
            }
        }
        path.to_owned()
    }

    /// A value that may be a path (a build script's `rustc-env`).
    fn text(&self, value: &str) -> String {
        let path = Path::new(value);
        if path.is_absolute() {
            self.path(path).display().to_string()
        } else {
            value.to_owned()
        }
    }

    fn utf8(&self, path: &Utf8PathBuf) -> anyhow::Result<Utf8PathBuf> {
        Utf8PathBuf::from_path_buf(self.path(path.as_std_path())).map_err(|p| {
            anyhow::anyhow!(
                "{} is not UTF-8: the workspace cannot be run from an archive there",
                p.display()
            )
        })
    }

    fn build(&self, mut build: Build) -> anyhow::Result<Build> {
        for binary in &mut build.binaries {
            binary.path = self.path(&binary.path);
        }
        for package in build.packages.values_mut() {
            package.manifest_path = self.utf8(&package.manifest_path)?;
            for target in &mut package.targets {
                target.src_path = self.utf8(&target.src_path)?;
            }
        }
        for (_, exe) in build.bin_exes.values_mut().flatten() {
            *exe = self.path(exe);
        }
        for script in build.build_scripts.values_mut() {
            script.out_dir = self.path(&script.out_dir);
            for path in &mut script.linked_paths {
                *path = self.path(path);
            }
            for (_, value) in &mut script.env {
                *value = self.text(value);
            }
        }
        for dir in &mut build.deps_dirs {
            *dir = self.path(dir);
        }
        build.target_dir = self.path(&build.target_dir);
        build.workspace_root = self.path(&build.workspace_root);
        Ok(build)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_moves_before_the_workspace_it_lies_in() {
        let moves = Relocation {
            target: ("/w/target".into(), "/tmp/u/target".into()),
            workspace: ("/w".into(), "/checkout".into()),
        };
        assert_eq!(
            moves.path(Path::new("/w/target/debug/t")),
            Path::new("/tmp/u/target/debug/t")
        );
        assert_eq!(
            moves.path(Path::new("/w/src/lib.rs")),
            Path::new("/checkout/src/lib.rs")
        );
        assert_eq!(moves.path(Path::new("/usr/lib")), Path::new("/usr/lib"));
        assert_eq!(moves.path(Path::new("/w")).as_os_str(), "/checkout");
        assert_eq!(moves.text("x=1"), "x=1");
    }
}
