//! Builds the tests with `cargo test --no-run --message-format json-render-diagnostics` (cargo
//! renders compiler errors itself, on stderr, exactly as `cargo test` would) and collects, from
//! cargo's messages and `cargo metadata`, everything needed to run each test binary the way
//! `cargo test` runs it.

mod args;
mod metadata_cache;

use crate::filterset::{Platform, TestQuery};
use anyhow::{bail, Context};
pub use args::{CargoArgs, ColorChoice};
use cargo_metadata::{Message, MetadataCommand, Package, PackageId, TargetKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// One test executable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestBinary {
    /// nextest-style id: `pkg` (lib), `pkg::test-target`, `pkg::bin/name`, `pkg::example/name`;
    /// a library's doc tests are `pkg::doctest/lib-name`.
    pub id: String,
    pub package_id: PackageId,
    pub target_name: String,
    pub kind: BinaryKind,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryKind {
    Lib,
    ProcMacro,
    Bin,
    Test,
    Bench,
    Example,
    /// One doc test, compiled by rustdoc (see `doctest`).
    Doctest,
}

impl BinaryKind {
    /// The word nextest's `kind()` matches, and the reports' `kind`.
    pub fn word(self) -> &'static str {
        match self {
            BinaryKind::Lib => "lib",
            BinaryKind::ProcMacro => "proc-macro",
            BinaryKind::Bin => "bin",
            BinaryKind::Test => "test",
            BinaryKind::Bench => "bench",
            BinaryKind::Example => "example",
            BinaryKind::Doctest => "doctest",
        }
    }
}

impl TestBinary {
    /// A library's doc test (`pkg::doctest/lib`), kept at `path`.
    pub fn doctest(package: &str, package_id: &PackageId, lib: &str, path: PathBuf) -> TestBinary {
        TestBinary {
            id: binary_id(package, BinaryKind::Doctest, lib),
            package_id: package_id.clone(),
            target_name: lib.to_owned(),
            kind: BinaryKind::Doctest,
            path,
        }
    }

    /// One of its tests as filtersets see it; proc-macro crates are built for the host.
    pub fn filter_query<'a>(&'a self, package: &'a str, test: &'a str) -> TestQuery<'a> {
        TestQuery {
            package,
            binary_id: &self.id,
            binary_name: &self.target_name,
            kind: self.kind.word(),
            platform: if self.kind == BinaryKind::ProcMacro {
                Platform::Host
            } else {
                Platform::Target
            },
            test_name: test,
        }
    }
}

/// What a build script of a package produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildScriptOutput {
    pub out_dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub linked_paths: Vec<PathBuf>,
}

/// Everything a run needs of the build; an archive keeps it (see `archive`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Build {
    pub binaries: Vec<TestBinary>,
    pub packages: BTreeMap<PackageId, Package>,
    /// Each package's binary targets (for `CARGO_BIN_EXE_<name>`).
    pub bin_exes: BTreeMap<PackageId, Vec<(String, PathBuf)>>,
    pub build_scripts: BTreeMap<PackageId, BuildScriptOutput>,
    pub target_dir: PathBuf,
    pub workspace_root: PathBuf,
    /// `target/<profile>/deps`, where dylib dependencies are.
    pub deps_dirs: Vec<PathBuf>,
    /// Set when `packages` are a kept copy: asks cargo again for a package it does not have.
    #[serde(skip)]
    refresh: Option<Refresh>,
    /// Where the toolchain's dylibs are when not in its sysroot (a run from an archive).
    #[serde(skip)]
    pub toolchain_lib: Option<PathBuf>,
    /// A run from an archive: its checkout and unpacked target directory shown at the paths
    /// they had on the building machine too (for paths compiled in with `env!`).
    #[serde(skip)]
    pub shown_at: Vec<harness::ShownAt>,
}

/// The build failed; cargo already printed why. Carries cargo's exit code.
#[derive(Debug)]
pub struct BuildFailed(pub i32);

impl std::fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the build failed (cargo exited with {})", self.0)
    }
}

impl std::error::Error for BuildFailed {}

/// A build that failed ends the run with cargo's exit code (cargo said why); anything else
/// that went wrong while `doing` is cargo-sandbox's own failure.
pub fn failure_code(e: anyhow::Error, doing: &str) -> anyhow::Result<i32> {
    match e.downcast_ref::<BuildFailed>() {
        Some(BuildFailed(code)) => {
            say!("cargo-sandbox: error: {doing}: {e}");
            Ok(*code)
        }
        None => Err(e.context(doing.to_owned())),
    }
}

pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cargo".into())
}

/// `cargo test --no-run` with the user's cargo flags.
fn build_command(args: &CargoArgs) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.args(["test", "--no-run", "--message-format"]);
    cmd.arg(message_format(&args.message_format).cargo);
    package_flags(&mut cmd, args);
    flag(&mut cmd, args.lib, "--lib");
    flag(&mut cmd, args.bins, "--bins");
    many(&mut cmd, &args.bin, "--bin");
    flag(&mut cmd, args.tests, "--tests");
    many(&mut cmd, &args.test, "--test");
    flag(&mut cmd, args.examples, "--examples");
    many(&mut cmd, &args.example, "--example");
    flag(&mut cmd, args.benches, "--benches");
    many(&mut cmd, &args.bench, "--bench");
    flag(&mut cmd, args.all_targets, "--all-targets");
    compile_flags(&mut cmd, args);
    match args.timings.as_deref() {
        Some("") => {
            cmd.arg("--timings");
        }
        Some(formats) => {
            cmd.arg(format!("--timings={formats}"));
        }
        None => {}
    }
    flag(
        &mut cmd,
        args.future_incompat_report,
        "--future-incompat-report",
    );
    for _ in 0..args.verbose + args.cargo_verbose {
        cmd.arg("--verbose");
    }
    flag(&mut cmd, args.quiet || args.cargo_quiet, "--quiet");
    cmd.args(global_options(args));
    if let Some(color) = args.color {
        cmd.arg("--color").arg(format!("{color:?}").to_lowercase());
    }
    cmd
}

/// `cargo test --doc` for collecting doc tests (see `doctest`): `packages` by id, or as the
/// user's flags select; the build as the tests' build. Never `--quiet`: libtest would print
/// its terse format, which names no test.
pub fn doc_command(args: &CargoArgs, packages: Option<&[String]>) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.args(["test", "--doc", "--no-fail-fast"]);
    match packages {
        Some(ids) => many(&mut cmd, ids, "--package"),
        None => package_flags(&mut cmd, args),
    }
    compile_flags(&mut cmd, args);
    cmd.args(global_options(args));
    cmd
}

fn flag(cmd: &mut Command, on: bool, name: &str) {
    if on {
        cmd.arg(name);
    }
}

fn many(cmd: &mut Command, values: &[String], name: &str) {
    for v in values {
        cmd.arg(name).arg(v);
    }
}

fn package_flags(cmd: &mut Command, args: &CargoArgs) {
    many(cmd, &args.packages, "--package");
    flag(cmd, args.workspace, "--workspace");
    many(cmd, &args.exclude, "--exclude");
}

/// What shapes the compiled code and where it goes.
fn compile_flags(cmd: &mut Command, args: &CargoArgs) {
    many(cmd, &args.features, "--features");
    flag(cmd, args.all_features, "--all-features");
    flag(cmd, args.no_default_features, "--no-default-features");
    flag(cmd, args.release, "--release");
    if let Some(profile) = &args.cargo_profile {
        cmd.arg("--profile").arg(profile);
    }
    many(cmd, &args.target, "--target");
    if let Some(jobs) = &args.build_jobs {
        cmd.arg("--jobs").arg(jobs);
    }
    flag(cmd, args.ignore_rust_version, "--ignore-rust-version");
    if let Some(dir) = &args.target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    if let Some(path) = &args.manifest_path {
        cmd.arg("--manifest-path").arg(path);
    }
}

/// Cargo's options that also shape `cargo metadata`: configuration, unstable flags, and how
/// the lock file and the network may be used.
fn global_options(args: &CargoArgs) -> Vec<String> {
    let mut options = Vec::new();
    for value in &args.config {
        options.extend(["--config".to_owned(), value.clone()]);
    }
    for value in &args.unstable {
        options.extend(["-Z".to_owned(), value.clone()]);
    }
    for (on, name) in [
        (args.locked, "--locked"),
        (args.offline, "--offline"),
        (args.frozen, "--frozen"),
    ] {
        if on {
            options.push(name.to_owned());
        }
    }
    options
}

/// The build's `--message-format` for cargo, from the user's: cargo-sandbox reads cargo's
/// JSON messages whatever the user asked, and shows them on stdout when the user asked for JSON.
struct MessageFormat {
    cargo: String,
    forward_json: bool,
}

fn message_format(user: &[String]) -> MessageFormat {
    let words: Vec<&str> = user.iter().flat_map(|f| f.split(',')).collect();
    if words.iter().any(|w| w.starts_with("json")) {
        return MessageFormat {
            cargo: words.join(","),
            forward_json: true,
        };
    }
    let mut cargo = "json-render-diagnostics".to_owned();
    if words.contains(&"short") {
        cargo.push_str(",json-diagnostic-short");
    }
    MessageFormat {
        cargo,
        forward_json: false,
    }
}

/// Cargo's messages as they are read, copied to stdout (`--message-format json`).
struct Forwarded<R>(R);

impl<R: std::io::Read> std::io::Read for Forwarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Write as _;
        let n = self.0.read(buf)?;
        // A closed stdout is no reason to stop reading the build.
        let _ = std::io::stdout().write_all(&buf[..n]);
        Ok(n)
    }
}

/// A build under way: `cargo test --no-run` and, beside it, `cargo metadata --no-deps` (which
/// neither builds nor resolves dependencies). Cargo's messages are read on a thread of their
/// own and handed over as they come, so a run can start a binary's tests while cargo still
/// builds the others (see `pipeline`).
pub struct Building {
    metadata: Option<std::thread::JoinHandle<Workspace>>,
    messages: std::sync::mpsc::Receiver<Read>,
}

/// The workspace's packages, and when they are a kept copy (see `metadata_cache`), how to
/// ask cargo again.
type Workspace = cargo_metadata::Result<(cargo_metadata::Metadata, Option<Refresh>)>;

/// `cargo metadata` for this run, and the call whose inputs say whether a kept output serves.
#[derive(Debug)]
struct Refresh {
    command: MetadataCommand,
    call: Option<metadata_cache::Call>,
}

impl Refresh {
    /// The output kept for this call, else `cargo metadata`'s (then kept for the next run).
    fn kept_or_run(self) -> Workspace {
        if let Some(kept) = self.call.as_ref().and_then(metadata_cache::Call::kept) {
            return Ok((kept, Some(self)));
        }
        Ok((self.run()?, None))
    }

    fn run(&self) -> cargo_metadata::Result<cargo_metadata::Metadata> {
        let started = std::time::SystemTime::now();
        let metadata = self.command.exec()?;
        if let Some(call) = &self.call {
            call.keep(&metadata, started);
        }
        Ok(metadata)
    }
}

/// What the reading thread hands over: a message that matters to a run, then how cargo ended.
enum Read {
    Message(Box<Message>),
    Ended(anyhow::Result<()>),
}

/// Starts building the tests. With `slots`, cargo joins that jobserver (it shares the CPUs
/// with tests run while it builds); `exited` is called as soon as cargo exits, before its
/// last messages are taken in. Cargo runs in a process group of its own, stopped whole
/// (its compilers too) when `cancel` is: a Ctrl-C reaches the runner alone, which then stops
/// cargo and its sandboxes alike.
pub fn start(
    args: &CargoArgs,
    slots: Option<&jobserver::Client>,
    cancel: &harness::Cancel,
    exited: Box<dyn FnOnce() + Send>,
) -> anyhow::Result<Building> {
    let mut metadata = MetadataCommand::new();
    metadata.cargo_path(cargo()).no_deps();
    if let Some(path) = &args.manifest_path {
        metadata.manifest_path(path);
    }
    metadata.other_options(global_options(args));
    let refresh = Refresh {
        command: metadata,
        call: metadata_cache::Call::of(global_options(args), args.manifest_path.clone()),
    };
    let metadata = Some(std::thread::spawn(move || refresh.kept_or_run()));
    let forward_json = message_format(&args.message_format).forward_json;
    let (sender, messages) = std::sync::mpsc::channel();
    if args.doc {
        // Doc tests only: `cargo test --doc` builds what they need when they are collected
        // (cargo has no `--doc --no-run`).
        let _ = sender.send(Read::Ended(Ok(())));
        return Ok(Building { metadata, messages });
    }
    let mut cmd = build_command(args);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null());
    if let Some(slots) = slots {
        slots.configure_make(&mut cmd);
    }
    use std::os::unix::process::CommandExt as _;
    cmd.process_group(0);
    let cancel = cancel.try_clone().context("watching for a cancellation")?;
    let child = cmd
        .spawn()
        .with_context(|| format!("running {}", cargo().display()))?;
    let group = child.id() as i32;
    let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cargo_ended = ended.clone();
    std::thread::spawn(move || {
        let result = read_messages(child, forward_json, &sender);
        cargo_ended.store(true, std::sync::atomic::Ordering::Relaxed);
        exited();
        let _ = sender.send(Read::Ended(result));
    });
    std::thread::spawn(move || {
        while !ended.load(std::sync::atomic::Ordering::Relaxed) {
            if cancel.is_cancelled() {
                // SAFETY: signalling the process group of the cargo this run started (the
                // group lives until cargo is reaped, which `read_messages` does).
                unsafe { libc::kill(-group, libc::SIGINT) };
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    Ok(Building { metadata, messages })
}

impl Building {
    /// The workspace's packages and directories, from `cargo metadata` (done long before
    /// cargo's build): the build so far, without test binaries. When `cargo metadata` fails,
    /// the build fails too and cargo says why: its failure is the one returned.
    pub fn packages(&mut self) -> anyhow::Result<Build> {
        let metadata = self
            .metadata
            .take()
            .context("the workspace's packages were asked for twice")?
            .join()
            .map_err(|_| anyhow::anyhow!("`cargo metadata` panicked"))?;
        match metadata {
            Ok((metadata, refresh)) => Ok(Build {
                refresh,
                ..Build::from_metadata(metadata)
            }),
            Err(e) => {
                self.wait()?;
                Err(anyhow::Error::new(e).context("running `cargo metadata`"))
            }
        }
    }

    /// Waits for cargo's end without taking in what it says (the run stops anyway, but cargo
    /// is not stopped halfway); `Err` when the build failed.
    pub fn wait(&mut self) -> anyhow::Result<()> {
        loop {
            match self.messages.recv() {
                Ok(Read::Message(_)) => {}
                Ok(Read::Ended(ended)) => return ended,
                Err(_) => return Ok(()),
            }
        }
    }

    /// Waits for the next test binary or package binary cargo builds, taking in `build` what
    /// cargo said before it; `None` once cargo ended well, `Err` when it failed (its code in
    /// [`BuildFailed`]).
    pub fn next(&mut self, build: &mut Build) -> Option<anyhow::Result<Linked>> {
        loop {
            match self.messages.recv() {
                Ok(Read::Message(message)) => match build.take_in(*message) {
                    Ok(Some(linked)) => return Some(Ok(linked)),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                },
                Ok(Read::Ended(Ok(()))) => return None,
                Ok(Read::Ended(Err(e))) => return Some(Err(e)),
                Err(_) => {
                    return Some(Err(anyhow::anyhow!(
                        "reading cargo's build messages stopped"
                    )))
                }
            }
        }
    }

    /// Waits for the whole build. `with_root` gets the workspace's root as soon as it is known,
    /// while cargo still builds.
    pub fn finish(mut self, with_root: impl FnOnce(&std::path::Path)) -> anyhow::Result<Build> {
        let mut build = self.packages()?;
        with_root(&build.workspace_root);
        while let Some(binary) = self.next(&mut build) {
            binary?;
        }
        build.sort_binaries();
        Ok(build)
    }
}

/// What cargo just linked.
pub enum Linked {
    Test(TestBinary),
    /// One of a package's binaries (`CARGO_BIN_EXE_<name>` of its integration tests).
    Bin,
}

impl Build {
    /// Whether a binary's environment is complete: an integration test or benchmark needs
    /// its package's binaries (`CARGO_BIN_EXE_<name>`), which cargo may report after it.
    pub fn ready(&self, binary: &TestBinary) -> bool {
        if !matches!(binary.kind, BinaryKind::Test | BinaryKind::Bench) {
            return true;
        }
        let Some(package) = self.packages.get(&binary.package_id) else {
            return true;
        };
        let linked = self.bin_exes.get(&binary.package_id).map_or(0, Vec::len);
        let bins = package
            .targets
            .iter()
            .filter(|t| t.kind.contains(&TargetKind::Bin))
            .count();
        linked >= bins
    }

    fn from_metadata(metadata: cargo_metadata::Metadata) -> Build {
        Build {
            packages: metadata
                .packages
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            target_dir: metadata.target_directory.into(),
            workspace_root: metadata.workspace_root.into(),
            ..Build::default()
        }
    }

    /// Replaces kept packages that miss one cargo built with `cargo metadata`'s (see
    /// `metadata_cache`); the workspace's directories must be the same.
    fn refresh_packages(&mut self) -> anyhow::Result<()> {
        let Some(refresh) = self.refresh.take() else {
            return Ok(());
        };
        let fresh = refresh.run().context("running `cargo metadata`")?;
        let fresh = Build::from_metadata(fresh);
        if (&fresh.target_dir, &fresh.workspace_root) != (&self.target_dir, &self.workspace_root) {
            bail!(
                "the workspace moved while it was built (target directory {}, root {})",
                fresh.target_dir.display(),
                fresh.workspace_root.display()
            );
        }
        self.packages = fresh.packages;
        Ok(())
    }

    /// Takes in one of cargo's messages; says what was linked (a test binary only when not
    /// seen before).
    fn take_in(&mut self, message: Message) -> anyhow::Result<Option<Linked>> {
        match message {
            Message::CompilerArtifact(artifact) => {
                let Some(exe) = artifact.executable else {
                    return Ok(None);
                };
                let exe = PathBuf::from(exe);
                if let Some(dir) = exe.parent() {
                    if !self.deps_dirs.iter().any(|d| d == dir) {
                        self.deps_dirs.push(dir.to_owned());
                    }
                }
                let kind = binary_kind(&artifact.target.kind);
                if !artifact.profile.test {
                    if kind != BinaryKind::Bin {
                        return Ok(None);
                    }
                    self.bin_exes
                        .entry(artifact.package_id)
                        .or_default()
                        .push((artifact.target.name, exe));
                    return Ok(Some(Linked::Bin));
                }
                if !self.packages.contains_key(&artifact.package_id) {
                    self.refresh_packages()?;
                }
                let Some(package) = self.packages.get(&artifact.package_id) else {
                    bail!(
                        "cargo built a test of a package `cargo metadata` does not list: {}",
                        artifact.package_id
                    );
                };
                let binary = TestBinary {
                    id: binary_id(&package.name, kind, &artifact.target.name),
                    package_id: artifact.package_id,
                    target_name: artifact.target.name,
                    kind,
                    path: exe,
                };
                // The same test target built twice (several `--target`s) is run once.
                if self.binaries.iter().any(|b| b.id == binary.id) {
                    return Ok(None);
                }
                self.binaries.push(binary.clone());
                Ok(Some(Linked::Test(binary)))
            }
            Message::BuildScriptExecuted(script) => {
                let linked_paths = script
                    .linked_paths
                    .iter()
                    .map(|p| {
                        let p = p.as_str();
                        PathBuf::from(p.split_once('=').map_or(p, |(_, path)| path))
                    })
                    .collect();
                self.build_scripts.insert(
                    script.package_id,
                    BuildScriptOutput {
                        out_dir: script.out_dir.into(),
                        env: script.env,
                        linked_paths,
                    },
                );
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Test binaries in id order (the order of every report), once the build is done.
    pub fn sort_binaries(&mut self) {
        self.binaries.sort_by(|a, b| a.id.cmp(&b.id));
    }
}

/// Reads the messages of `cargo test --no-run` (`child`) until it exits, handing over those
/// that matter to a run.
fn read_messages(
    mut child: std::process::Child,
    forward_json: bool,
    sender: &std::sync::mpsc::Sender<Read>,
) -> anyhow::Result<()> {
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let stdout: Box<dyn std::io::Read + Send> = if forward_json {
        Box::new(Forwarded(stdout))
    } else {
        Box::new(stdout)
    };
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let message = message.context("reading cargo's build messages")?;
        if matches!(
            message,
            Message::CompilerArtifact(_) | Message::BuildScriptExecuted(_)
        ) {
            // A run that stopped listening still lets cargo finish (see [`start`]).
            let _ = sender.send(Read::Message(Box::new(message)));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        return Err(BuildFailed(status.code().unwrap_or(101)).into());
    }
    Ok(())
}

fn binary_kind(kinds: &[TargetKind]) -> BinaryKind {
    match kinds.first() {
        Some(TargetKind::Bin) => BinaryKind::Bin,
        Some(TargetKind::Test) => BinaryKind::Test,
        Some(TargetKind::Bench) => BinaryKind::Bench,
        Some(TargetKind::Example) => BinaryKind::Example,
        Some(TargetKind::ProcMacro) => BinaryKind::ProcMacro,
        _ => BinaryKind::Lib,
    }
}

/// The ids nextest uses, so users recognise them.
pub fn binary_id(package: &str, kind: BinaryKind, target: &str) -> String {
    match kind {
        BinaryKind::Lib | BinaryKind::ProcMacro => package.to_owned(),
        BinaryKind::Doctest => format!("{package}::doctest/{target}"),
        BinaryKind::Test => format!("{package}::{target}"),
        BinaryKind::Bin => format!("{package}::bin/{target}"),
        BinaryKind::Bench => format!("{package}::bench/{target}"),
        BinaryKind::Example => format!("{package}::example/{target}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(binary_id("basic", BinaryKind::Lib, "basic"), "basic");
        assert_eq!(binary_id("basic", BinaryKind::Test, "env"), "basic::env");
        assert_eq!(
            binary_id("basic", BinaryKind::Bin, "basic-bin"),
            "basic::bin/basic-bin"
        );
    }

    #[test]
    fn json_formats_are_the_users_and_forwarded() {
        let f = message_format(&["json-diagnostic-short".into()]);
        assert_eq!(f.cargo, "json-diagnostic-short");
        assert!(f.forward_json);
        let f = message_format(&["human".into()]);
        assert_eq!(f.cargo, "json-render-diagnostics");
        assert!(!f.forward_json);
    }

    #[test]
    fn passes_cargo_flags_through() {
        let args = CargoArgs {
            packages: vec!["a".into()],
            features: vec!["x y".into()],
            release: true,
            cargo_profile: Some("ci".into()),
            verbose: 2,
            timings: Some(String::new()),
            config: vec!["build.rustflags=['-Cdebuginfo=0']".into()],
            unstable: vec!["unstable-options".into()],
            message_format: vec!["short".into()],
            build_jobs: Some("-1".into()),
            bench: vec!["b".into()],
            locked: true,
            ..CargoArgs::default()
        };
        let cmd = build_command(&args);
        let argv: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "test",
                "--no-run",
                "--message-format",
                "json-render-diagnostics,json-diagnostic-short",
                "--package",
                "a",
                "--bench",
                "b",
                "--features",
                "x y",
                "--release",
                "--profile",
                "ci",
                "--jobs",
                "-1",
                "--timings",
                "--verbose",
                "--verbose",
                "--config",
                "build.rustflags=['-Cdebuginfo=0']",
                "-Z",
                "unstable-options",
                "--locked"
            ]
        );
    }

    #[test]
    fn a_kept_workspace_missing_a_built_package_is_asked_of_cargo_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"fresh\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        )
        .unwrap();
        std::fs::write(root.join("src/lib.rs"), "").unwrap();
        let cargo = std::env::var_os("CARGO").map_or_else(|| env!("CARGO").into(), PathBuf::from);
        let mut command = MetadataCommand::new();
        command
            .cargo_path(cargo)
            .current_dir(root)
            .no_deps()
            .env("CARGO_TARGET_DIR", root.join("target"));
        let fresh = command.exec().unwrap();
        let id = fresh.packages[0].id.clone();
        // Kept when the package did not exist yet: same directories, no packages.
        let kept = || {
            let mut before = fresh.clone();
            before.packages.clear();
            Build {
                refresh: Some(Refresh {
                    command: command.clone(),
                    call: None,
                }),
                ..Build::from_metadata(before)
            }
        };
        let artifact = serde_json::json!({
            "reason": "compiler-artifact",
            "package_id": id.repr,
            "manifest_path": root.join("Cargo.toml"),
            "target": {"kind": ["lib"], "crate_types": ["lib"], "name": "fresh",
                       "src_path": root.join("src/lib.rs"), "edition": "2021",
                       "doc": true, "doctest": true, "test": true},
            "profile": {"opt_level": "0", "debuginfo": 2, "debug_assertions": true,
                        "overflow_checks": true, "test": true},
            "features": [],
            "filenames": [root.join("target/debug/deps/fresh-0")],
            "executable": root.join("target/debug/deps/fresh-0"),
            "fresh": true
        });
        let message = || serde_json::from_value::<Message>(artifact.clone()).unwrap();
        let mut build = kept();
        let linked = build.take_in(message()).unwrap();
        assert!(matches!(linked, Some(Linked::Test(b)) if b.id == "fresh"));
        assert!(build.packages.contains_key(&id));
        // Not kept: cargo's own answer missing the package is an error.
        let mut build = Build {
            refresh: None,
            ..kept()
        };
        assert!(build.take_in(message()).is_err());
    }
}
