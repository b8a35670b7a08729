//! Builds the tests with `cargo test --no-run --message-format json-render-diagnostics` (cargo
//! renders compiler errors itself, on stderr, exactly as `cargo test` would) and collects, from
//! cargo's messages and `cargo metadata`, everything needed to run each test binary the way
//! `cargo test` runs it.

use crate::cli::CargoArgs;
use crate::filterset::{Platform, TestQuery};
use anyhow::{bail, Context};
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
#[derive(Debug, Serialize, Deserialize)]
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
/// neither builds nor resolves dependencies).
pub struct Building {
    metadata: std::thread::JoinHandle<cargo_metadata::Result<cargo_metadata::Metadata>>,
    built: std::thread::JoinHandle<anyhow::Result<Built>>,
}

/// Starts building the tests; [`Building::finish`] waits for the build. The build is never
/// stopped halfway: cargo's compilers would outlive it, and what they build is needed anyway.
pub fn start(args: &CargoArgs) -> anyhow::Result<Building> {
    let mut metadata = MetadataCommand::new();
    metadata.cargo_path(cargo()).no_deps();
    if let Some(path) = &args.manifest_path {
        metadata.manifest_path(path);
    }
    metadata.other_options(global_options(args));
    let metadata = std::thread::spawn(move || metadata.exec());
    let forward_json = message_format(&args.message_format).forward_json;
    if args.doc {
        // Doc tests only: `cargo test --doc` builds what they need when they are collected
        // (cargo has no `--doc --no-run`).
        let built = std::thread::spawn(|| Ok(<Built as Default>::default()));
        return Ok(Building { metadata, built });
    }
    let mut cmd = build_command(args);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null());
    let child = cmd
        .spawn()
        .with_context(|| format!("running {}", cargo().display()))?;
    let built = std::thread::spawn(move || build_tests(child, forward_json));
    Ok(Building { metadata, built })
}

impl Building {
    /// Waits for the build. `with_root` gets the workspace's root as soon as it is known, while
    /// cargo still builds.
    pub fn finish(self, with_root: impl FnOnce(&std::path::Path)) -> anyhow::Result<Build> {
        let Building { metadata, built } = self;
        let metadata = metadata
            .join()
            .map_err(|_| anyhow::anyhow!("`cargo metadata` panicked"))?;
        // Without metadata the build fails too, and cargo says why.
        if let Ok(metadata) = &metadata {
            with_root(metadata.workspace_root.as_std_path());
        }
        let built = built
            .join()
            .map_err(|_| anyhow::anyhow!("reading cargo's build messages panicked"))?;
        let (mut binaries, bin_exes, build_scripts, deps_dirs) = built?;
        let metadata = metadata.context("running `cargo metadata`")?;
        let packages: BTreeMap<PackageId, Package> = metadata
            .packages
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        for binary in &mut binaries {
            let Some(package) = packages.get(&binary.package_id) else {
                bail!(
                    "cargo built a test of a package `cargo metadata` does not list: {}",
                    binary.package_id
                );
            };
            binary.id = binary_id(&package.name, binary.kind, &binary.target_name);
        }
        binaries.sort_by(|a, b| a.id.cmp(&b.id));
        binaries.dedup_by(|a, b| a.id == b.id);
        Ok(Build {
            binaries,
            packages,
            bin_exes,
            build_scripts,
            target_dir: metadata.target_directory.into(),
            workspace_root: metadata.workspace_root.into(),
            deps_dirs,
            toolchain_lib: None,
            shown_at: Vec::new(),
        })
    }
}

/// What `cargo test --no-run` built: test binaries (ids still empty), the packages' binaries,
/// build script outputs, and the directories holding them.
type Built = (
    Vec<TestBinary>,
    BTreeMap<PackageId, Vec<(String, PathBuf)>>,
    BTreeMap<PackageId, BuildScriptOutput>,
    Vec<PathBuf>,
);

/// Reads the messages of `cargo test --no-run` (`child`) until it exits.
fn build_tests(mut child: std::process::Child, forward_json: bool) -> anyhow::Result<Built> {
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let stdout: Box<dyn std::io::Read + Send> = if forward_json {
        Box::new(Forwarded(stdout))
    } else {
        Box::new(stdout)
    };

    let mut binaries = Vec::new();
    let mut bin_exes: BTreeMap<PackageId, Vec<(String, PathBuf)>> = BTreeMap::new();
    let mut build_scripts = BTreeMap::new();
    let mut deps_dirs = Vec::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        match message.context("reading cargo's build messages")? {
            Message::CompilerArtifact(artifact) => {
                let Some(exe) = artifact.executable else {
                    continue;
                };
                let exe = PathBuf::from(exe);
                if let Some(dir) = exe.parent() {
                    if !deps_dirs.iter().any(|d| d == dir) {
                        deps_dirs.push(dir.to_owned());
                    }
                }
                let kind = binary_kind(&artifact.target.kind);
                if artifact.profile.test {
                    binaries.push(TestBinary {
                        id: String::new(),
                        package_id: artifact.package_id,
                        target_name: artifact.target.name,
                        kind,
                        path: exe,
                    });
                } else if kind == BinaryKind::Bin {
                    bin_exes
                        .entry(artifact.package_id)
                        .or_default()
                        .push((artifact.target.name, exe));
                }
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
                build_scripts.insert(
                    script.package_id,
                    BuildScriptOutput {
                        out_dir: script.out_dir.into(),
                        env: script.env,
                        linked_paths,
                    },
                );
            }
            _ => {}
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        return Err(BuildFailed(status.code().unwrap_or(101)).into());
    }
    Ok((binaries, bin_exes, build_scripts, deps_dirs))
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
}
