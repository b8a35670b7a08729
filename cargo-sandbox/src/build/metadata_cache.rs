//! `cargo metadata --no-deps` kept from one run for the next. It costs about 10 ms of CPU at every
//! run's start, on the same cores as cargo's own build check, which is what the first test waits
//! for (the generated suite's binary-mode run came 2.8 ms sooner without it). Its output is a
//! function of files cargo reads and of how it is called; a run digests all of them and uses the
//! kept output when the digest is the one it was kept with:
//!
//! - the cargo binary (path, device, inode, size, modification time), its arguments, the
//!   working directory, and every `CARGO*`, `RUSTUP*`, `RUSTC*`, `RUSTDOC*`, `RUSTFLAGS` and
//!   `HOME` variable;
//! - in the working directory, the manifest's directory and every ancestor of either: the
//!   contents of `Cargo.toml` (the search for the workspace), `.cargo/config[.toml]` and
//!   `rust-toolchain[.toml]`, and the same config files in `$CARGO_HOME`;
//! - for each package: its manifest, every ancestor's `Cargo.toml` up to the workspace's root, and
//!   the names in its directory, `src`, `src/bin`, `tests`, `examples`, `benches` and their
//!   subdirectories (cargo finds targets, build scripts and readmes by their names);
//! - the names under each directory a glob of `workspace.members` walks through.
//!
//! Contents, not times, so that a CI checkout with its target directory restored uses it too;
//! this program's version too, which decides how the kept copy is read. A config that includes
//! other files (`include`) or is named by `--config PATH`, a `**` member glob, an input that
//! cannot be read, or a `CARGO` that is unset or a toolchain proxy (rustup's, which picks a
//! toolchain by files not named here) keeps nothing. Output is kept only when no input changed in
//! the two seconds before `cargo metadata` started (times read after the contents), so an edit
//! made while it ran is never kept as the state it read, and only into a target directory cargo
//! made (cargo marks a new one as a cache, `CACHEDIR.TAG`, only when it makes it). A kept output
//! that still misses a package cargo builds is replaced by running `cargo metadata` again (see
//! `Build::take_in`).

use cargo_metadata::Metadata;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Its name under `<target>/cargo-sandbox/`.
const FILE: &str = "metadata.json";

/// Inputs changed this recently before `cargo metadata` ran are not trusted to be what it read:
/// file times advance in clock ticks.
const SETTLED: Duration = Duration::from_secs(2);

/// Most directories a member glob may walk through before nothing is kept.
const MAX_GLOB_DIRS: usize = 4096;

/// Where the target's own subdirectories are that auto-discovery looks into.
const TARGET_DIRS: [&str; 5] = ["src", "src/bin", "tests", "examples", "benches"];

/// The names in a package's directory that cargo's output depends on: its target directories,
/// its build script, and the readme it finds by itself. (Not `target/`, `Cargo.lock` or an
/// editor's swap files, which would only make the kept copy miss.)
fn discovered_in_package_root(name: &str) -> bool {
    ["src", "tests", "examples", "benches", "build.rs"].contains(&name)
        || name.to_ascii_lowercase().starts_with("readme")
}

/// How `cargo metadata` is called: the same call on the same inputs gives the same output.
#[derive(Debug, Clone)]
pub struct Call {
    pub cargo: PathBuf,
    /// Its arguments after `metadata --format-version 1 --no-deps`.
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub manifest_path: Option<PathBuf>,
    /// The variables that may change what cargo reads or says, sorted.
    pub env: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct Kept {
    digest: String,
    metadata: Metadata,
}

impl Call {
    /// The call of this process: `None` when its inputs cannot all be named (see the module;
    /// a variable that matters and is not UTF-8 is one).
    pub fn of(args: Vec<String>, manifest_path: Option<PathBuf>) -> Option<Call> {
        let matters = |k: &std::ffi::OsStr| {
            let k = k.as_encoded_bytes();
            [&b"CARGO"[..], b"RUSTUP", b"RUSTC", b"RUSTDOC", b"RUSTFLAGS"]
                .iter()
                .any(|p| k.starts_with(p))
                || k == b"HOME"
        };
        let mut env = std::env::vars_os()
            .filter(|(k, _)| matters(k))
            .map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect::<Option<Vec<(String, String)>>>()?;
        env.sort();
        Some(Call {
            cargo: std::env::var_os("CARGO").map(PathBuf::from)?,
            args,
            cwd: std::env::current_dir().ok()?,
            manifest_path,
            env,
        })
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The output kept for this call when its inputs are as they were.
    pub fn kept(&self) -> Option<Metadata> {
        let path = self.candidates().into_iter().find(|p| p.is_file())?;
        let kept: Kept = crate::state_file::load(&path)?;
        let target = path.parent()?.parent()?;
        if kept.metadata.target_directory.as_std_path() != target {
            return None;
        }
        let digest = self.digest(&kept.metadata)?;
        (digest.hex == kept.digest).then_some(kept.metadata)
    }

    /// Keeps `metadata`, which `cargo metadata` gave for this call when started at `started`.
    pub fn keep(&self, metadata: &Metadata, started: SystemTime) {
        if !metadata.target_directory.as_std_path().is_dir() {
            return;
        }
        let Some(digest) = self.digest(metadata) else {
            return;
        };
        if digest.newest_change + SETTLED > started {
            return;
        }
        let path = crate::state_file::path(metadata.target_directory.as_std_path(), FILE);
        let kept = Kept {
            digest: digest.hex,
            metadata: metadata.clone(),
        };
        // Only work is lost when it cannot be kept.
        let _ = crate::state_file::save(&path, &kept);
    }

    /// Where a kept output may be: cargo's default target directory is under the workspace's
    /// root, an ancestor of where the search starts; `CARGO_TARGET_DIR` names it. (Set in a
    /// config, it is elsewhere: then nothing is found, and nothing is lost but time.)
    fn candidates(&self) -> Vec<PathBuf> {
        let targets = match self.var("CARGO_TARGET_DIR") {
            Some(named) => vec![self.cwd.join(named)],
            None => self.start().ancestors().map(|a| a.join("target")).collect(),
        };
        targets
            .iter()
            .map(|target| crate::state_file::path(target, FILE))
            .collect()
    }

    /// Where cargo starts looking for the workspace.
    fn start(&self) -> PathBuf {
        match &self.manifest_path {
            Some(m) => self
                .cwd
                .join(m)
                .parent()
                .map_or_else(|| self.cwd.clone(), Path::to_path_buf),
            None => self.cwd.clone(),
        }
    }

    /// The digest of every input of this call for the workspace `metadata` describes.
    fn digest(&self, metadata: &Metadata) -> Option<Digested> {
        let mut inputs = Inputs::new();
        inputs.text("cargo-sandbox", env!("CARGO_PKG_VERSION").as_bytes());
        inputs.text("cargo", self.cargo.as_os_str().as_encoded_bytes());
        if self.cargo.with_file_name("rustup").exists() {
            return None;
        }
        inputs.identity(&self.cargo)?;
        let mut after_config = false;
        for arg in &self.args {
            // `--config` takes KEY=VALUE or the path of a file, whose contents are not named.
            if after_config && (!arg.contains('=') || self.cwd.join(arg).exists()) {
                return None;
            }
            after_config = arg == "--config";
            inputs.text("arg", arg.as_bytes());
        }
        inputs.text("cwd", self.cwd.as_os_str().as_encoded_bytes());
        let start = self.start();
        inputs.text("start", start.as_os_str().as_encoded_bytes());
        for (k, v) in &self.env {
            inputs.text(k, v.as_bytes());
        }
        let searched: BTreeSet<&Path> = self.cwd.ancestors().chain(start.ancestors()).collect();
        for dir in &searched {
            inputs.file(&dir.join("rust-toolchain"));
            inputs.file(&dir.join("rust-toolchain.toml"));
            inputs.config(&dir.join(".cargo"))?;
        }
        let cargo_home = self
            .var("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| self.var("HOME").map(|h| Path::new(h).join(".cargo")))?;
        inputs.config(&cargo_home)?;
        // Every `Cargo.toml` cargo may read, each once: on the way to the workspace from where
        // the search starts, and from each package up to the root (the packages' own too).
        let root = metadata.workspace_root.as_std_path();
        let mut manifest_dirs = searched;
        manifest_dirs.insert(root);
        for package in &metadata.packages {
            let dir = package.manifest_path.as_std_path().parent()?;
            manifest_dirs.insert(dir);
            manifest_dirs.extend(dir.ancestors().skip(1).take_while(|a| a.starts_with(root)));
        }
        let mut root_manifest = None;
        for dir in manifest_dirs {
            let text = inputs.file(&dir.join("Cargo.toml"));
            if dir == root {
                root_manifest = text;
            }
        }
        inputs.member_globs(root, &root_manifest?)?;
        for package in &metadata.packages {
            let dir = package.manifest_path.as_std_path().parent()?;
            inputs.listing_of(dir, discovered_in_package_root);
            for sub in TARGET_DIRS {
                let subdirs = inputs.listing(&dir.join(sub));
                if sub != "src" {
                    for subdir in subdirs {
                        inputs.listing(&dir.join(sub).join(subdir));
                    }
                }
            }
        }
        inputs.finish()
    }
}

/// A digest of inputs being read, and when the most recently changed of them changed.
struct Inputs {
    hasher: Sha256,
    newest_change: SystemTime,
    /// An input exists but could not be read: nothing is kept or served.
    unreadable: bool,
}

/// What [`Inputs`] came to.
struct Digested {
    hex: String,
    newest_change: SystemTime,
}

impl Inputs {
    fn new() -> Inputs {
        Inputs {
            hasher: Sha256::new(),
            newest_change: SystemTime::UNIX_EPOCH,
            unreadable: false,
        }
    }

    fn finish(self) -> Option<Digested> {
        (!self.unreadable).then(|| Digested {
            hex: crate::report::hex(&self.hasher.finalize()),
            newest_change: self.newest_change,
        })
    }

    /// A labelled value (lengths included: no two sequences of values digest alike).
    fn text(&mut self, label: &str, value: &[u8]) {
        for part in [label.as_bytes(), value] {
            self.hasher.update((part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
    }

    fn changed(&mut self, meta: &std::fs::Metadata) {
        use std::os::unix::fs::MetadataExt;
        let ctime = SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        let newest = meta.modified().map_or(ctime, |m| m.max(ctime));
        self.newest_change = self.newest_change.max(newest);
    }

    /// The program itself, by identity: reading it whole would cost more than what is saved.
    fn identity(&mut self, path: &Path) -> Option<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        self.changed(&meta);
        let id = format!(
            "{} {} {} {}.{}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        self.text("identity", id.as_bytes());
        Some(())
    }

    /// A file's contents, or that there is none; its text. Its times are read after its
    /// contents: a change between the two counts as a change, never as the state read.
    fn file(&mut self, path: &Path) -> Option<String> {
        use std::io::Read as _;
        let label = path.as_os_str().to_string_lossy();
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.text(&label, b"absent");
                return None;
            }
            Err(_) => {
                self.unreadable = true;
                return None;
            }
        };
        let mut bytes = Vec::new();
        match file.read_to_end(&mut bytes).and_then(|_| file.metadata()) {
            Ok(meta) => self.changed(&meta),
            Err(_) => self.unreadable = true,
        }
        self.text(&label, &bytes);
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The config files of a `.cargo` directory; `None` when one includes others.
    fn config(&mut self, dir: &Path) -> Option<()> {
        for name in ["config", "config.toml"] {
            if self
                .file(&dir.join(name))
                .is_some_and(|t| t.contains("include"))
            {
                return None;
            }
        }
        Some(())
    }

    /// The names in a directory, or that there is none; returns the names of its
    /// subdirectories (followed through symbolic links: the globs of `workspace.members` are).
    fn listing(&mut self, dir: &Path) -> Vec<String> {
        self.listing_of(dir, |_| true)
    }

    /// [`Inputs::listing`] of the names `named` keeps. Each name is digested with its kind: a
    /// directory, a file, or a symbolic link and what it points to now (cargo looks through
    /// them: a link whose file is gone is no target). The directory's times are read after its
    /// names.
    fn listing_of(&mut self, dir: &Path, named: impl Fn(&str) -> bool) -> Vec<String> {
        let label = dir.as_os_str().to_string_lossy();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.text(&label, b"absent");
                return Vec::new();
            }
            Err(_) => {
                self.unreadable = true;
                return Vec::new();
            }
        };
        let mut entries: Vec<(String, &str)> = entries
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e))
            .filter(|(name, _)| named(name))
            .map(|(name, e)| {
                let kind = match e.file_type() {
                    Ok(t) if t.is_dir() => "/",
                    Ok(t) if t.is_symlink() => match std::fs::metadata(e.path()) {
                        Ok(target) if target.is_dir() => "@/",
                        Ok(_) => "@",
                        Err(_) => "@!",
                    },
                    _ => "",
                };
                (name, kind)
            })
            .collect();
        match std::fs::metadata(dir) {
            Ok(meta) => self.changed(&meta),
            Err(_) => self.unreadable = true,
        }
        entries.sort();
        let text: String = entries
            .iter()
            .map(|(name, kind)| format!("{name}{kind}\0"))
            .collect();
        self.text(&label, text.as_bytes());
        entries
            .into_iter()
            .filter_map(|(name, kind)| kind.ends_with('/').then_some(name))
            .collect()
    }

    /// The directories `workspace.members` globs walk through: at each glob component, the
    /// names in every directory reached (all its subdirectories are followed, a superset of
    /// the matches). `None` for a `**` or a walk too large.
    fn member_globs(&mut self, root: &Path, root_manifest: &str) -> Option<()> {
        let manifest: toml::Table = toml::from_str(root_manifest).ok()?;
        let members = manifest
            .get("workspace")
            .and_then(|w| w.get("members"))
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut walked = 0;
        for pattern in members.iter().filter_map(toml::Value::as_str) {
            if !pattern.contains(['*', '?', '[']) {
                continue;
            }
            let mut reached = vec![root.to_path_buf()];
            for component in Path::new(pattern).components() {
                let part = component.as_os_str().to_string_lossy();
                if part == "**" {
                    return None;
                }
                if !part.contains(['*', '?', '[']) {
                    reached.iter_mut().for_each(|d| d.push(&*part));
                    continue;
                }
                let mut next = Vec::new();
                for dir in &reached {
                    next.extend(self.listing(dir).into_iter().map(|sub| dir.join(sub)));
                }
                walked += next.len();
                if walked > MAX_GLOB_DIRS {
                    return None;
                }
                reached = next;
            }
            for dir in &reached {
                self.file(&dir.join("Cargo.toml"));
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A workspace of one package under a `crates/*` glob, with its target directory (as
    /// cargo's build made it) and cargo home inside it.
    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nresolver = \"2\"\nmembers = [\"crates/*\"]\n",
        )
        .unwrap();
        package(root, "crates/a", "a");
        fs::create_dir_all(root.join("target")).unwrap();
        dir
    }

    fn package(root: &Path, at: &str, name: &str) {
        let dir = root.join(at);
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        )
        .unwrap();
        fs::write(dir.join("src/lib.rs"), "").unwrap();
    }

    fn call(root: &Path) -> Call {
        let cargo = std::env::var_os("CARGO").map_or_else(|| env!("CARGO").into(), PathBuf::from);
        let mut env = vec![
            (
                "CARGO_HOME".to_owned(),
                root.join("home/.cargo").display().to_string(),
            ),
            (
                "CARGO_TARGET_DIR".to_owned(),
                root.join("target").display().to_string(),
            ),
            ("HOME".to_owned(), root.join("home").display().to_string()),
        ];
        env.sort();
        Call {
            cargo,
            args: vec!["--offline".to_owned()],
            cwd: root.to_owned(),
            manifest_path: None,
            env,
        }
    }

    /// What `cargo metadata` says now, kept as if it had started long after every change.
    fn run_and_keep(call: &Call) -> Metadata {
        let mut command = cargo_metadata::MetadataCommand::new();
        command
            .cargo_path(&call.cargo)
            .current_dir(&call.cwd)
            .no_deps()
            .other_options(call.args.clone());
        if let Some(manifest) = &call.manifest_path {
            command.manifest_path(manifest);
        }
        for (k, v) in &call.env {
            command.env(k, v);
        }
        let metadata = command.exec().unwrap();
        call.keep(&metadata, SystemTime::now() + Duration::from_secs(3600));
        assert_eq!(call.kept().as_ref(), Some(&metadata), "kept and read back");
        metadata
    }

    #[test]
    fn a_kept_output_serves_until_an_input_of_cargo_metadata_changes() {
        let dir = workspace();
        let root = dir.path();
        let call = call(root);
        run_and_keep(&call);
        let a = root.join("crates/a");
        type Change<'a> = (&'a str, Box<dyn Fn() + 'a>);
        let changes: Vec<Change> = vec![
            (
                "a manifest",
                Box::new(|| {
                    let manifest = fs::read_to_string(a.join("Cargo.toml")).unwrap();
                    fs::write(a.join("Cargo.toml"), manifest.replace("0.1.0", "0.2.0")).unwrap();
                }),
            ),
            (
                "a test target",
                Box::new(|| fs::write(a.join("tests/it.rs"), "").unwrap()),
            ),
            (
                "a test's module directory",
                Box::new(|| fs::write(a.join("tests/multi/m.rs"), "").unwrap()),
            ),
            (
                "a test in a directory",
                Box::new(|| fs::write(a.join("tests/multi/main.rs"), "").unwrap()),
            ),
            (
                "a binary",
                Box::new(|| fs::write(a.join("src/bin/tool.rs"), "").unwrap()),
            ),
            (
                "a binary's file behind a link",
                Box::new(|| {
                    fs::write(a.join("linked.rs"), "").unwrap();
                    std::os::unix::fs::symlink("../../linked.rs", a.join("src/bin/linked.rs"))
                        .unwrap();
                }),
            ),
            (
                "the file a binary's link points to, gone",
                Box::new(|| fs::remove_file(a.join("linked.rs")).unwrap()),
            ),
            (
                "a build script",
                Box::new(|| fs::write(a.join("build.rs"), "").unwrap()),
            ),
            (
                "a readme",
                Box::new(|| fs::write(a.join("README.md"), "").unwrap()),
            ),
            (
                "a member by a glob",
                Box::new(|| package(root, "crates/b", "b")),
            ),
            (
                "a config",
                Box::new(|| {
                    fs::create_dir_all(root.join(".cargo")).unwrap();
                    fs::write(root.join(".cargo/config.toml"), "[term]\nverbose = false\n")
                        .unwrap();
                }),
            ),
            (
                "cargo home's config",
                Box::new(|| {
                    fs::create_dir_all(root.join("home/.cargo")).unwrap();
                    fs::write(root.join("home/.cargo/config.toml"), "").unwrap();
                }),
            ),
        ];
        fs::create_dir_all(a.join("tests/multi")).unwrap();
        fs::create_dir_all(a.join("src/bin")).unwrap();
        run_and_keep(&call);
        for (what, change) in &changes {
            change();
            assert!(
                call.kept().is_none(),
                "{what} changed, the kept output still served"
            );
            run_and_keep(&call);
        }
        let mut other = call.clone();
        other.args.push("--frozen".to_owned());
        assert!(other.kept().is_none(), "another argument");
        let mut other = call.clone();
        other
            .env
            .push(("RUSTFLAGS".to_owned(), "-Dwarnings".to_owned()));
        assert!(other.kept().is_none(), "another variable");
        let mut other = call.clone();
        other.cwd = a.clone();
        assert!(other.kept().is_none(), "another working directory");
        // A manifest between a member and the root (cargo would take it for the member's
        // workspace).
        fs::write(root.join("crates/Cargo.toml"), "[workspace]\n").unwrap();
        assert!(call.kept().is_none(), "a manifest above a member");
        fs::remove_file(root.join("crates/Cargo.toml")).unwrap();
        assert!(call.kept().is_some(), "as it was");
        // What cargo does not read changes nothing.
        fs::write(a.join("notes.txt"), "").unwrap();
        fs::write(a.join(".Cargo.toml.swp"), "").unwrap();
        assert!(
            call.kept().is_some(),
            "a file cargo does not read made it miss"
        );
    }

    #[test]
    fn a_member_named_without_a_glob_is_digested_by_its_manifest() {
        let dir = workspace();
        let root = dir.path();
        let manifest = root.join("Cargo.toml");
        let text = fs::read_to_string(&manifest).unwrap();
        fs::write(&manifest, text.replace("crates/*", "crates/a")).unwrap();
        let call = call(root);
        run_and_keep(&call);
        let member = root.join("crates/a/Cargo.toml");
        let text = fs::read_to_string(&member).unwrap();
        fs::write(&member, text.replace("0.1.0", "0.2.0")).unwrap();
        assert!(call.kept().is_none());
    }

    #[test]
    fn a_manifest_path_finds_and_checks_the_kept_output_from_elsewhere() {
        let dir = workspace();
        let root = dir.path();
        let mut call = call(root);
        call.cwd = root.join("home");
        fs::create_dir_all(&call.cwd).unwrap();
        call.manifest_path = Some(root.join("Cargo.toml"));
        run_and_keep(&call);
        fs::write(root.join("crates/a/build.rs"), "fn main() {}").unwrap();
        assert!(call.kept().is_none());
    }

    #[test]
    fn nothing_is_kept_in_a_target_directory_cargo_has_not_made() {
        let dir = workspace();
        let call = call(dir.path());
        let metadata = run_and_keep(&call);
        fs::remove_dir_all(dir.path().join("target")).unwrap();
        call.keep(&metadata, SystemTime::now() + Duration::from_secs(3600));
        assert!(!dir.path().join("target").exists());
    }

    #[test]
    fn a_config_file_given_by_path_keeps_nothing() {
        let dir = workspace();
        let root = dir.path();
        fs::write(root.join("extra.toml"), "").unwrap();
        let mut call = call(root);
        call.args = vec!["--config".to_owned(), "extra.toml".to_owned()];
        let mut command = cargo_metadata::MetadataCommand::new();
        command
            .cargo_path(&call.cargo)
            .current_dir(root)
            .no_deps()
            .other_options(call.args.clone());
        for (k, v) in &call.env {
            command.env(k, v);
        }
        let metadata = command.exec().unwrap();
        call.keep(&metadata, SystemTime::now() + Duration::from_secs(3600));
        assert!(call.kept().is_none());
        assert!(!crate::state_file::path(&root.join("target"), FILE).exists());
    }

    #[test]
    fn nothing_is_kept_of_inputs_changed_just_before_cargo_metadata_ran() {
        let dir = workspace();
        let call = call(dir.path());
        let metadata = run_and_keep(&call);
        fs::remove_file(crate::state_file::path(
            dir.path().join("target").as_path(),
            FILE,
        ))
        .unwrap();
        // The workspace was written a moment ago.
        call.keep(&metadata, SystemTime::now());
        assert!(call.kept().is_none());
    }

    #[test]
    fn a_config_that_includes_other_files_keeps_nothing() {
        let dir = workspace();
        let root = dir.path();
        let call = call(root);
        fs::create_dir_all(root.join(".cargo")).unwrap();
        fs::write(
            root.join(".cargo/config.toml"),
            "include = [\"more.toml\"]\n",
        )
        .unwrap();
        fs::write(root.join(".cargo/more.toml"), "").unwrap();
        let metadata = cargo_metadata::MetadataCommand::new()
            .cargo_path(&call.cargo)
            .current_dir(root)
            .no_deps()
            .env("CARGO_TARGET_DIR", root.join("target"))
            .env("CARGO_HOME", root.join("home/.cargo"))
            .exec()
            .unwrap();
        call.keep(&metadata, SystemTime::now() + Duration::from_secs(3600));
        assert!(call.kept().is_none());
        assert!(!crate::state_file::path(&root.join("target"), FILE).exists());
    }
}
