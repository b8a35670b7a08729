//! The one place a test's environment is built. It is built, not inherited: what `cargo test`
//! (and nextest) give a test binary at run time, a fixed base (`HOME`, `TZ`, locale...), the
//! host variables the user passed by name, and the test's seed. Secrets in CI variables do not
//! reach tests by accident.

use crate::build::{BinaryKind, Build, TestBinary};
use crate::config::EnvSettings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Marks a process as running under `cargo sandbox test` (the harness front reads it).
pub const RUNNER_MARKER: &str = "CARGO_SANDBOX_TEST";

/// `HOME` inside the sandbox: on its private tmpfs, created by the sandbox's init.
pub const SANDBOX_HOME: &str = "/tmp/home";

/// The seed variable each test gets (see `--seed`).
pub const SEED_VAR: &str = "SANDBOX_SEED";

/// What cargo gives one binary: the same for each of its tests.
#[derive(Debug, Clone)]
pub struct BinaryEnv {
    pub vars: Vec<(String, String)>,
    /// The package's manifest directory: tests run there, as under `cargo test`.
    pub cwd: PathBuf,
    /// The workspace (copy-on-write for tests) and the target directory it builds into.
    pub workspace_root: PathBuf,
    pub target_dir: PathBuf,
    /// From an archive: its checkout and files shown at the building machine's paths too.
    pub shown_at: Vec<harness::ShownAt>,
}

/// The environment `cargo test` gives `binary`, lowest priority first: the package's
/// variables, the target's, its build script's (which may set any of them), and the library
/// path.
pub fn for_binary(binary: &TestBinary, build: &Build, host: &[(String, String)]) -> BinaryEnv {
    let package = &build.packages[&binary.package_id];
    let manifest_dir = package
        .manifest_path
        .parent()
        .map(|p| p.as_std_path().to_owned())
        .unwrap_or_default();
    let mut vars = package_vars(package, &manifest_dir);
    vars.extend(target_vars(binary, build));
    if let Some(script) = build.build_scripts.get(&binary.package_id) {
        vars.insert("OUT_DIR".to_owned(), script.out_dir.display().to_string());
        vars.extend(script.env.iter().cloned());
    }
    vars.insert("LD_LIBRARY_PATH".to_owned(), library_path(build, host));
    BinaryEnv {
        vars: vars.into_iter().collect(),
        cwd: manifest_dir,
        workspace_root: build.workspace_root.clone(),
        target_dir: build.target_dir.clone(),
        shown_at: build.shown_at.clone(),
    }
}

/// `CARGO`, `CARGO_MANIFEST_*` and `CARGO_PKG_*`, as cargo sets them for every target.
fn package_vars(
    package: &cargo_metadata::Package,
    manifest_dir: &Path,
) -> BTreeMap<String, String> {
    // Fields the manifest leaves out are set empty, as cargo sets them.
    fn or_empty<T: ToString>(field: &Option<T>) -> String {
        field.as_ref().map(T::to_string).unwrap_or_default()
    }
    let v = &package.version;
    [
        ("CARGO", crate::build::cargo().display().to_string()),
        ("CARGO_MANIFEST_DIR", manifest_dir.display().to_string()),
        ("CARGO_MANIFEST_PATH", package.manifest_path.to_string()),
        ("CARGO_PKG_NAME", package.name.to_string()),
        ("CARGO_PKG_VERSION", v.to_string()),
        ("CARGO_PKG_VERSION_MAJOR", v.major.to_string()),
        ("CARGO_PKG_VERSION_MINOR", v.minor.to_string()),
        ("CARGO_PKG_VERSION_PATCH", v.patch.to_string()),
        ("CARGO_PKG_VERSION_PRE", v.pre.to_string()),
        ("CARGO_PKG_AUTHORS", package.authors.join(":")),
        ("CARGO_PKG_DESCRIPTION", or_empty(&package.description)),
        ("CARGO_PKG_HOMEPAGE", or_empty(&package.homepage)),
        ("CARGO_PKG_REPOSITORY", or_empty(&package.repository)),
        ("CARGO_PKG_LICENSE", or_empty(&package.license)),
        ("CARGO_PKG_LICENSE_FILE", or_empty(&package.license_file)),
        ("CARGO_PKG_README", or_empty(&package.readme)),
        ("CARGO_PKG_RUST_VERSION", or_empty(&package.rust_version)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The variables of the binary's own target: its crate name, and for tests and benchmarks
/// the package's binaries and a scratch directory.
fn target_vars(binary: &TestBinary, build: &Build) -> Vec<(String, String)> {
    let mut vars = vec![(
        "CARGO_CRATE_NAME".to_owned(),
        binary.target_name.replace('-', "_"),
    )];
    if binary.kind == BinaryKind::Bin {
        vars.push(("CARGO_BIN_NAME".to_owned(), binary.target_name.clone()));
    }
    // Every binary's sandbox gets a private tmpfs here (a scratch directory), so it must exist.
    let tmp = build.target_dir.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    if matches!(binary.kind, BinaryKind::Test | BinaryKind::Bench) {
        for (name, exe) in build.bin_exes.get(&binary.package_id).into_iter().flatten() {
            vars.push((format!("CARGO_BIN_EXE_{name}"), exe.display().to_string()));
        }
        vars.push(("CARGO_TARGET_TMPDIR".to_owned(), tmp.display().to_string()));
    }
    vars
}

/// `LD_LIBRARY_PATH`: the native libraries of every build script (dependencies' too), then
/// cargo's own directories, then whatever the user had: the order `cargo test` uses.
fn library_path(build: &Build, host: &[(String, String)]) -> String {
    let mut library_paths: Vec<PathBuf> = Vec::new();
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
    library_paths.extend(build.toolchain_lib.clone().or_else(sysroot_lib));
    let existing = host
        .iter()
        .rfind(|(k, _)| k == "LD_LIBRARY_PATH")
        .map_or("", |(_, v)| v.as_str());
    let joined = std::env::join_paths(
        library_paths
            .iter()
            .map(PathBuf::as_path)
            .filter(|p| !p.as_os_str().is_empty()),
    )
    .map(|s| s.to_string_lossy().into_owned())
    .unwrap_or_default();
    if existing.is_empty() {
        joined
    } else {
        format!("{joined}:{existing}")
    }
}

/// A test's whole environment, lowest priority first: the hermetic base (or the host's whole
/// environment with `inherit`), host variables passed by name or glob, cargo's variables, values
/// set explicitly, then the runner marker and the seed.
pub fn for_test(
    binary: &BinaryEnv,
    host: &[(String, String)],
    settings: &EnvSettings,
    seed: u64,
) -> Vec<(String, String)> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    if settings.inherit {
        vars.extend(host.iter().cloned());
    } else {
        let user = if nix::unistd::geteuid().is_root() {
            "root".to_owned()
        } else {
            host.iter()
                .find(|(k, _)| k == "USER")
                .map_or_else(|| "user".to_owned(), |(_, v)| v.clone())
        };
        let path = host
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or("/usr/local/bin:/usr/bin:/bin", |(_, v)| v.as_str());
        for (k, v) in [
            ("PATH", path),
            ("HOME", SANDBOX_HOME),
            ("TMPDIR", "/tmp"),
            ("TZ", "UTC"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C.UTF-8"),
            ("USER", user.as_str()),
            ("TERM", "dumb"),
        ] {
            vars.insert(k.to_owned(), v.to_owned());
        }
        for (k, v) in host
            .iter()
            .filter(|(k, _)| k == "RUST_BACKTRACE" || k == "RUST_LOG")
        {
            vars.insert(k.clone(), v.clone());
        }
    }
    let passed = Passed::new(&settings.pass);
    for (k, v) in host.iter().filter(|(k, _)| passed.passes(k)) {
        vars.insert(k.clone(), v.clone());
    }
    vars.extend(binary.vars.iter().cloned());
    vars.extend(settings.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars.insert(RUNNER_MARKER.to_owned(), "1".to_owned());
    vars.insert(SEED_VAR.to_owned(), seed.to_string());
    vars.into_iter().collect()
}

/// The host variables passed by name (`--env NAME`, `env.pass`): as documented there, `*`
/// matches any run of characters, `/` included, everything else is literal, and case counts.
/// globset reads more (`?`, `[..]`, `{..}`, `\`, `**`), so the rest is escaped.
struct Passed(globset::GlobSet);

impl Passed {
    fn new(patterns: &[String]) -> Passed {
        let mut set = globset::GlobSetBuilder::new();
        for pattern in patterns {
            // Cannot fail, every character but `*` being literal; were it to, the pattern
            // would pass nothing, the hermetic side.
            if let Ok(glob) = glob(pattern) {
                set.add(glob);
            }
        }
        Passed(set.build().unwrap_or_else(|_| globset::GlobSet::empty()))
    }

    fn passes(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

/// `pattern` in globset's syntax: the parts between stars escaped, and a run of stars one
/// star (globset takes `**` for any number of path components).
fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    let mut glob = String::with_capacity(pattern.len());
    for (i, part) in pattern.split('*').enumerate() {
        if i > 0 && !glob.ends_with('*') {
            glob.push('*');
        }
        glob.push_str(&globset::escape(part));
    }
    globset::GlobBuilder::new(&glob)
        .literal_separator(false)
        .case_insensitive(false)
        .backslash_escape(false)
        .build()
}

/// The runner's environment, as sandboxes take it: a variable that is not UTF-8 cannot be
/// passed on, and is named on stderr rather than dropped unsaid.
pub fn host_env() -> Vec<(String, String)> {
    let (vars, skipped) = harness::utf8_env();
    for name in skipped {
        say!("cargo-sandbox: warning: the environment variable `{name}` is not UTF-8: sandboxes do not get it");
    }
    vars
}

/// Asks rustc for its sysroot in the background (while cargo builds), so the first test need
/// not wait for it.
pub fn prefetch_sysroot() {
    std::thread::spawn(sysroot_lib);
}

/// The Rust sysroot's library directory, for `-C prefer-dynamic` builds. Found once per run.
pub fn sysroot_lib() -> Option<PathBuf> {
    static SYSROOT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    SYSROOT
        .get_or_init(|| {
            let root = sysroot_beside_cargo().or_else(|| {
                let out = std::process::Command::new(rustc())
                    .args(["--print", "sysroot"])
                    .output()
                    .ok()?;
                Some(PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()))
            })?;
            let lib = root.join("lib");
            lib.is_dir().then_some(lib)
        })
        .clone()
}

/// The rustc cargo builds with: `RUSTC`, else the one beside cargo (see
/// [`sysroot_beside_cargo`]), started without rustup's proxy in between (about 5 ms of CPU a
/// start), else `rustc` from `PATH`.
pub fn rustc() -> std::ffi::OsString {
    match (std::env::var_os("RUSTC"), sysroot_beside_cargo()) {
        (Some(rustc), _) => rustc,
        (None, Some(root)) => root.join("bin").join("rustc").into(),
        (None, None) => "rustc".into(),
    }
}

/// A toolchain's cargo and rustc sit side by side in its `bin`, and rustc's sysroot is that
/// directory's parent. Under `cargo sandbox` (cargo names itself in `CARGO`) that is the
/// sysroot, found without starting rustc (about 25 ms of CPU, competing with the build) —
/// unless the rustc cargo uses is another: one of the user's own (`RUSTC`), or, under rustup,
/// another toolchain than the one `CARGO` lies in (a linked toolchain borrowing another's
/// cargo; a `CARGO` inherited from an outer cargo of another toolchain).
fn sysroot_beside_cargo() -> Option<PathBuf> {
    if std::env::var_os("RUSTC").is_some() {
        return None;
    }
    sysroot_beside(
        Path::new(&std::env::var_os("CARGO")?),
        std::env::var_os("RUSTUP_TOOLCHAIN").map(PathBuf::from),
    )
}

/// The toolchain directory `cargo` lies in, when it holds a rustc and its libraries and is
/// rustup's `toolchain` (a name or a path), if rustup chose one.
fn sysroot_beside(cargo: &Path, toolchain: Option<PathBuf>) -> Option<PathBuf> {
    let bin = cargo.parent()?;
    let root = bin.parent()?;
    if let Some(toolchain) = toolchain {
        let same = if toolchain.is_absolute() {
            toolchain == root
        } else {
            root.file_name() == Some(toolchain.as_os_str())
        };
        if !same {
            return None;
        }
    }
    (bin.join("rustc").is_file() && root.join("lib").join("rustlib").is_dir())
        .then(|| root.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sysroot_is_cargos_toolchain_only_when_it_is_rustups_choice() {
        let root = std::env::temp_dir().join(format!("sysroot-{}", std::process::id()));
        let toolchain = root.join("stable-x86_64-unknown-linux-gnu");
        std::fs::create_dir_all(toolchain.join("bin")).unwrap();
        std::fs::create_dir_all(toolchain.join("lib/rustlib")).unwrap();
        std::fs::write(toolchain.join("bin/rustc"), "").unwrap();
        let cargo = toolchain.join("bin/cargo");
        let found = |chosen: Option<&str>| sysroot_beside(&cargo, chosen.map(PathBuf::from));
        assert_eq!(found(None), Some(toolchain.clone()), "no rustup");
        assert_eq!(
            found(Some("stable-x86_64-unknown-linux-gnu")),
            Some(toolchain.clone())
        );
        assert_eq!(found(toolchain.to_str()), Some(toolchain.clone()), "a path");
        assert_eq!(found(Some("my-linked")), None, "another toolchain's rustc");
        std::fs::remove_file(toolchain.join("bin/rustc")).unwrap();
        assert_eq!(found(None), None, "no rustc beside cargo");
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn host() -> Vec<(String, String)> {
        [
            ("PATH", "/bin"),
            ("SECRET_TOKEN", "s3cr3t"),
            ("MY_A", "1"),
            ("MY_B", "2"),
            ("DATABASE_URL", "pg://"),
            ("RUST_LOG", "debug"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn hermetic_by_default() {
        let binary = BinaryEnv {
            vars: vec![("CARGO_PKG_NAME".into(), "x".into())],
            cwd: "/".into(),
            workspace_root: "/".into(),
            target_dir: "/target".into(),
            shown_at: Vec::new(),
        };
        let env: BTreeMap<String, String> = for_test(&binary, &host(), &EnvSettings::default(), 7)
            .into_iter()
            .collect();
        assert_eq!(env.get("TZ").map(String::as_str), Some("UTC"));
        assert_eq!(env.get("HOME").map(String::as_str), Some(SANDBOX_HOME));
        assert_eq!(env.get("PATH").map(String::as_str), Some("/bin"));
        assert_eq!(env.get("RUST_LOG").map(String::as_str), Some("debug"));
        assert_eq!(env.get("SANDBOX_SEED").map(String::as_str), Some("7"));
        assert_eq!(env.get("CARGO_PKG_NAME").map(String::as_str), Some("x"));
        assert!(!env.contains_key("SECRET_TOKEN"));
        assert!(!env.contains_key("DATABASE_URL"));

        let settings = EnvSettings {
            pass: vec!["MY_*".into(), "DATABASE_URL".into()],
            set: [("EXTRA".to_string(), "yes".to_string())].into(),
            inherit: false,
        };
        let env: BTreeMap<String, String> = for_test(&binary, &host(), &settings, 7)
            .into_iter()
            .collect();
        assert_eq!(env.get("MY_A").map(String::as_str), Some("1"));
        assert_eq!(env.get("MY_B").map(String::as_str), Some("2"));
        assert_eq!(env.get("DATABASE_URL").map(String::as_str), Some("pg://"));
        assert_eq!(env.get("EXTRA").map(String::as_str), Some("yes"));
        assert!(!env.contains_key("SECRET_TOKEN"));
    }

    /// Whether each pattern passes each name, as each row says.
    fn assert_globs(cases: &[(&str, &str, bool)]) {
        for (pattern, name, passes) in cases {
            let passed = Passed::new(&[pattern.to_string()]).passes(name);
            assert_eq!(passed, *passes, "{pattern:?} on {name:?}");
        }
    }

    /// The documented dialect (`*` matches any run of characters, everything else is
    /// literal), also where it differs from globset's defaults or a path glob's habits.
    #[test]
    fn only_the_star_is_special() {
        assert_globs(&[
            ("MY_*", "MY_A", true),
            ("*_URL", "DATABASE_URL", true),
            ("A*B*C", "AxxBxxC", true),
            ("MY_*", "YOUR_A", false),
            ("EXACT", "EXACT", true),
            ("EXACT", "EXACTLY", false),
            // `*` matches any run, the empty one and `/` too (names are not paths).
            ("MY_*", "MY_", true),
            ("A*", "A/B", true),
            ("A*C", "A/B/C", true),
            ("*", "", true),
            ("*", "ANY", true),
            ("A*B", "A\nB", true),
            // Several stars are one.
            ("A**B", "AB", true),
            ("A**B", "AxyB", true),
            ("**", "X", true),
            // The parts around a star do not overlap.
            ("A*A", "A", false),
            ("A*A", "AA", true),
            // Case counts.
            ("my_*", "MY_A", false),
            // What other dialects make special is literal.
            ("A?", "A?", true),
            ("A?", "AB", false),
            ("[AB]", "[AB]", true),
            ("[AB]", "A", false),
            ("{A,B}", "{A,B}", true),
            ("{A,B}", "A", false),
            ("A\\*", "A\\xyz", true),
            ("A\\*", "A*", false),
            ("[!A]*", "[!A]B", true),
            ("[!A]*", "B", false),
            ("!A", "!A", true),
            // An empty pattern passes only an empty name.
            ("", "", true),
            ("", "A", false),
        ]);
    }
}
