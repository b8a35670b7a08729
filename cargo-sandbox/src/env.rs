//! The one place a test's environment is built: what `cargo test` (and nextest) give a test
//! binary at run time, on top of the runner's own environment.

use crate::build::{BinaryKind, Build, TestBinary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Marks a process as running under `cargo sandbox test` (the harness front reads it).
pub const RUNNER_MARKER: &str = "CARGO_SANDBOX_TEST";

/// Everything per binary that does not change from test to test.
#[derive(Debug, Clone)]
pub struct BinaryEnv {
    pub vars: Vec<(String, String)>,
    /// The package's manifest directory: tests run there, as under `cargo test`.
    pub cwd: PathBuf,
}

pub fn for_binary(binary: &TestBinary, build: &Build, host: &[(String, String)]) -> BinaryEnv {
    let package = &build.packages[&binary.package_id];
    let manifest_dir = package
        .manifest_path
        .parent()
        .map(|p| p.as_std_path().to_owned())
        .unwrap_or_default();
    let mut vars: BTreeMap<String, String> = host.iter().cloned().collect();
    let mut set = |k: &str, v: String| {
        vars.insert(k.to_owned(), v);
    };

    set("CARGO", crate::build::cargo().display().to_string());
    set("CARGO_MANIFEST_DIR", manifest_dir.display().to_string());
    set("CARGO_MANIFEST_PATH", package.manifest_path.to_string());
    set("CARGO_PKG_NAME", package.name.to_string());
    let v = &package.version;
    set("CARGO_PKG_VERSION", v.to_string());
    set("CARGO_PKG_VERSION_MAJOR", v.major.to_string());
    set("CARGO_PKG_VERSION_MINOR", v.minor.to_string());
    set("CARGO_PKG_VERSION_PATCH", v.patch.to_string());
    set("CARGO_PKG_VERSION_PRE", v.pre.to_string());
    set("CARGO_PKG_AUTHORS", package.authors.join(":"));
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    set("CARGO_PKG_DESCRIPTION", text(&package.description));
    set("CARGO_PKG_HOMEPAGE", text(&package.homepage));
    set("CARGO_PKG_REPOSITORY", text(&package.repository));
    set("CARGO_PKG_LICENSE", text(&package.license));
    set(
        "CARGO_PKG_LICENSE_FILE",
        package
            .license_file
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    set(
        "CARGO_PKG_README",
        package
            .readme
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    set(
        "CARGO_PKG_RUST_VERSION",
        package
            .rust_version
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
    );
    set("CARGO_CRATE_NAME", binary.target_name.replace('-', "_"));
    if binary.kind == BinaryKind::Bin {
        set("CARGO_BIN_NAME", binary.target_name.clone());
    }
    if matches!(binary.kind, BinaryKind::Test | BinaryKind::Bench) {
        for (name, exe) in build.bin_exes.get(&binary.package_id).into_iter().flatten() {
            set(&format!("CARGO_BIN_EXE_{name}"), exe.display().to_string());
        }
        let tmp = build.target_dir.join("tmp");
        let _ = std::fs::create_dir_all(&tmp);
        set("CARGO_TARGET_TMPDIR", tmp.display().to_string());
    }
    let mut library_paths: Vec<PathBuf> = Vec::new();
    if let Some(script) = build.build_scripts.get(&binary.package_id) {
        set("OUT_DIR", script.out_dir.display().to_string());
        for (k, v) in &script.env {
            set(k, v.clone());
        }
    }
    // Native libraries of every build script (dependencies' too), then cargo's own dirs, then
    // whatever the user had: the order `cargo test` uses.
    for script in build.build_scripts.values() {
        library_paths.extend(
            script
                .linked_paths
                .iter()
                .filter(|p| p.starts_with(&build.target_dir))
                .cloned(),
        );
    }
    library_paths.extend(build.deps_dirs.iter().cloned());
    library_paths.extend(sysroot_lib());
    let existing = vars.get("LD_LIBRARY_PATH").cloned().unwrap_or_default();
    let mut joined = std::env::join_paths(
        library_paths
            .iter()
            .map(PathBuf::as_path)
            .filter(|p| !p.as_os_str().is_empty()),
    )
    .map(|s| s.to_string_lossy().into_owned())
    .unwrap_or_default();
    if !existing.is_empty() {
        joined = format!("{joined}:{existing}");
    }
    vars.insert("LD_LIBRARY_PATH".to_owned(), joined);
    vars.insert(RUNNER_MARKER.to_owned(), "1".to_owned());
    BinaryEnv {
        vars: vars.into_iter().collect(),
        cwd: manifest_dir,
    }
}

/// The Rust sysroot's library directory, for `-C prefer-dynamic` builds. Asked once per run.
fn sysroot_lib() -> Option<PathBuf> {
    static SYSROOT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    SYSROOT
        .get_or_init(|| {
            let out = std::process::Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .ok()?;
            let root = String::from_utf8(out.stdout).ok()?;
            let lib = Path::new(root.trim()).join("lib");
            lib.is_dir().then_some(lib)
        })
        .clone()
}
