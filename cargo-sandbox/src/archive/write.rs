//! `cargo sandbox archive`: builds the tests as `test` builds them, collects their doc tests,
//! and writes everything a run needs into one archive (see the module above for its layout).

use super::{tool_version, TOOLCHAIN_DIR};
use super::{Doctests, FileEntry, Manifest, DOCTESTS_DIR, FORMAT, MANIFEST, SEAL, TARGET};
use crate::build::Build;
use crate::doctest;
use crate::env;
use anyhow::Context;
use harness::units::format_bytes;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes the archive of `built` (with the doc tests `collected`) to `path`, compressed at
/// zstd `level`. `None` when interrupted: a failed or interrupted write leaves nothing.
pub fn archive(
    path: &Path,
    built: Build,
    collected: Option<&doctest::Collected>,
    level: i32,
    cancel: &harness::Cancel,
) -> anyhow::Result<Option<Archived>> {
    let contents = Contents::of(&built, collected)?;
    let manifest = contents.manifest(built)?;
    let Some(written) = write(path, &manifest, &contents, level, cancel)? else {
        return Ok(None);
    };
    Ok(Some(Archived {
        compressed: written.compressed,
        unpacked: manifest.files.iter().map(|f| f.size).sum(),
        files: contents.files.len(),
        breakdown: contents.breakdown(&manifest),
        fingerprint: written.fingerprint,
    }))
}

/// A written archive, as `cargo sandbox archive` reports it.
pub struct Archived {
    pub compressed: u64,
    /// The files' sizes, as they are once unpacked.
    pub unpacked: u64,
    pub files: usize,
    /// `12 test binaries (80.1 MiB), 3 binaries (9.0 MiB), ...`
    pub breakdown: String,
    /// The seal: the manifest's SHA-256, which covers every file's.
    pub fingerprint: String,
}

/// What goes into the archive: each file by its path relative to the target directory.
struct Contents {
    files: Vec<File>,
    doctests: Option<Doctests>,
}

struct File {
    /// Relative to the target directory.
    path: String,
    source: PathBuf,
    executable: bool,
    part: Part,
}

/// The parts the archive's breakdown counts (the line under `Archived`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    TestBinary,
    Binary,
    DocTest,
    BuildScriptOutput,
    Dylib,
    ToolchainDylib,
}

impl Part {
    fn noun(self, n: usize) -> String {
        let (one, many) = match self {
            Part::TestBinary => ("test binary", "test binaries"),
            Part::Binary => ("binary", "binaries"),
            Part::DocTest => ("doc test binary", "doc test binaries"),
            Part::BuildScriptOutput => ("build script output file", "build script output files"),
            Part::Dylib => ("dylib", "dylibs"),
            Part::ToolchainDylib => ("toolchain dylib", "toolchain dylibs"),
        };
        format!("{n} {}", if n == 1 { one } else { many })
    }
}

impl Contents {
    fn of(built: &Build, collected: Option<&doctest::Collected>) -> anyhow::Result<Contents> {
        let target = &built.target_dir;
        let mut files = Vec::new();
        let mut add = |source: &Path, executable: bool, part: Part| -> anyhow::Result<()> {
            files.push(File {
                path: relative(source, target)?,
                source: source.to_owned(),
                executable,
                part,
            });
            Ok(())
        };
        for binary in &built.binaries {
            add(&binary.path, true, Part::TestBinary)?;
        }
        for (_, exe) in built.bin_exes.values().flatten() {
            add(exe, true, Part::Binary)?;
        }
        for script in built.build_scripts.values() {
            for file in files_under(&script.out_dir)? {
                add(&file, is_executable(&file), Part::BuildScriptOutput)?;
            }
        }
        // Merged doc tests share a binary: archived once (the dedup below).
        let doctests = collected
            .map(|c| -> anyhow::Result<Doctests> {
                let mut tests = c.tests.clone();
                for test in &mut tests {
                    let name = test.binary.file_name().unwrap_or_default();
                    let archived = target.join(DOCTESTS_DIR).join(name);
                    files.push(File {
                        path: relative(&archived, target)?,
                        source: std::mem::replace(&mut test.binary, archived),
                        executable: true,
                        part: Part::DocTest,
                    });
                }
                Ok(Doctests {
                    tests,
                    settled: c.settled.clone(),
                })
            })
            .transpose()?;
        add_dylibs(built, &mut files)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        Ok(Contents { files, doctests })
    }

    fn manifest(&self, build: Build) -> anyhow::Result<Manifest> {
        let hashed = crate::schedule::parallel_map(&self.files, cpus(), |file| {
            let bytes = std::fs::metadata(&file.source).map(|m| m.len());
            let sha = crate::report::sha256_file(&file.source);
            (bytes, sha)
        });
        let mut files = Vec::with_capacity(self.files.len());
        for (file, (size, sha)) in self.files.iter().zip(hashed) {
            let read = |e| format!("reading {}: {e}", file.source.display());
            files.push(FileEntry {
                path: file.path.clone(),
                size: size.map_err(|e| anyhow::anyhow!(read(e)))?,
                sha256: sha.map_err(|e| anyhow::anyhow!(read(e)))?,
                executable: file.executable,
            });
        }
        Ok(Manifest {
            format: FORMAT,
            tool_version: tool_version(),
            build,
            doctests: self.doctests.clone(),
            files,
        })
    }

    /// `12 test binaries (80.1 MiB), 3 binaries (9.0 MiB), ...`
    fn breakdown(&self, manifest: &Manifest) -> String {
        let mut parts: BTreeMap<Part, (usize, u64)> = BTreeMap::new();
        for (file, entry) in self.files.iter().zip(&manifest.files) {
            let size = entry.size;
            let entry = parts.entry(file.part).or_default();
            entry.0 += 1;
            entry.1 += size;
        }
        parts
            .into_iter()
            .map(|(part, (n, size))| format!("{} ({})", part.noun(n), format_bytes(size)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Adds the dylibs the archived executables load (`DT_NEEDED`, followed through the dylibs
/// themselves): the workspace's (in its deps and build scripts' native directories) where they
/// are, and the toolchain's (`-C prefer-dynamic` builds need its `libstd`) in
/// [`TOOLCHAIN_DIR`].
fn add_dylibs(built: &Build, files: &mut Vec<File>) -> anyhow::Result<()> {
    let mut candidates: BTreeMap<String, (PathBuf, Part)> = BTreeMap::new();
    let toolchain = env::sysroot_lib();
    let dirs = built
        .build_scripts
        .values()
        .flat_map(|s| s.linked_paths.iter())
        .filter(|p| p.starts_with(&built.target_dir))
        .map(|p| (p.as_path(), Part::Dylib))
        .chain(built.deps_dirs.iter().map(|d| (d.as_path(), Part::Dylib)))
        .chain(toolchain.as_deref().map(|d| (d, Part::ToolchainDylib)));
    for (dir, part) in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".so") && entry.file_type().is_ok_and(|t| t.is_file()) {
                candidates.entry(name).or_insert((entry.path(), part));
            }
        }
    }
    let mut queue: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.executable)
        .map(|f| f.source.clone())
        .collect();
    let mut added = BTreeSet::new();
    while let Some(path) = queue.pop() {
        for name in needed(&path)? {
            let Some((source, part)) = candidates.get(&name) else {
                continue;
            };
            if !added.insert(name.clone()) {
                continue;
            }
            let path = match part {
                Part::ToolchainDylib => format!("{TOOLCHAIN_DIR}/{name}"),
                _ => relative(source, &built.target_dir)?,
            };
            files.push(File {
                path,
                source: source.clone(),
                executable: false,
                part: *part,
            });
            queue.push(source.clone());
        }
    }
    Ok(())
}

/// The libraries an ELF file names as needed; none for files that are not ELF.
fn needed(path: &Path) -> anyhow::Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(match goblin::elf::Elf::parse(&bytes) {
        Ok(elf) => elf.libraries.iter().map(|s| (*s).to_owned()).collect(),
        Err(_) => Vec::new(),
    })
}

/// `path` relative to the target directory, `/`-separated; the archive holds nothing else.
fn relative(path: &Path, target: &Path) -> anyhow::Result<String> {
    let rest = path.strip_prefix(target).with_context(|| {
        format!(
            "{} lies outside the target directory {}: cargo-sandbox cannot archive it",
            path.display(),
            target.display()
        )
    })?;
    let parts: Option<Vec<&str>> = rest.components().map(|c| c.as_os_str().to_str()).collect();
    parts
        .map(|p| p.join("/"))
        .with_context(|| format!("{} is not UTF-8: it cannot be archived", path.display()))
}

/// Every regular file under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                found.push(entry.path());
            }
        }
    }
    Ok(found)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

struct Written {
    compressed: u64,
    /// The seal: the manifest's SHA-256, which covers every file's.
    fingerprint: String,
}

/// Writes the archive beside `path` and renames it into place: a failed or interrupted write
/// leaves nothing (`None` when interrupted).
fn write(
    path: &Path,
    manifest: &Manifest,
    contents: &Contents,
    level: i32,
    cancel: &harness::Cancel,
) -> anyhow::Result<Option<Written>> {
    let name = path
        .file_name()
        .context("the archive's path names no file")?;
    let partial = path.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let guard = RemoveUnlessKept(&partial);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut encoder = zstd::Encoder::new(std::io::BufWriter::new(file), level)
        .context("starting the zstd stream")?;
    encoder.include_checksum(true)?;
    encoder.multithread(cpus() as u32)?;
    let mut tar = tar::Builder::new(encoder);
    let manifest_bytes = serde_json::to_vec_pretty(manifest).context("writing the manifest")?;
    append(&mut tar, MANIFEST, &manifest_bytes, false)?;
    for file in &contents.files {
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let bytes = std::fs::read(&file.source)
            .with_context(|| format!("reading {}", file.source.display()))?;
        append(
            &mut tar,
            &format!("{TARGET}/{}", file.path),
            &bytes,
            file.executable,
        )?;
    }
    let fingerprint = crate::report::hex(&Sha256::digest(&manifest_bytes));
    append(&mut tar, SEAL, fingerprint.as_bytes(), false)?;
    let encoder = tar.into_inner().context("finishing the tar stream")?;
    let mut out = encoder.finish().context("finishing the zstd stream")?;
    out.flush()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let compressed = file.metadata()?.len();
    std::fs::rename(&partial, path)
        .with_context(|| format!("moving the archive to {}", path.display()))?;
    std::mem::forget(guard);
    Ok(Some(Written {
        compressed,
        fingerprint,
    }))
}

/// One entry with a fixed header (owner, time): the same build gives the same archive.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
    executable: bool,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(if executable { 0o755 } else { 0o644 });
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
        .with_context(|| format!("archiving {path}"))
}

struct RemoveUnlessKept<'a>(&'a Path);

impl Drop for RemoveUnlessKept<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}
