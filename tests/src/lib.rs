//! Support for the end-to-end tests: find the real binaries, run `cargo-sandbox exec`, and look
//! for anything a run left behind on the host.
//!
//! These tests need root (namespaces and cgroups are real). Without it they fail with a clear
//! message; set `CARGO_SANDBOX_SKIP_PRIVILEGED=1` to skip them explicitly instead.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The directory holding this profile's binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_owned()
}

/// The cargo-sandbox binary, built once per test process (cargo only builds a package's binaries
/// for that package's own integration tests).
pub fn cargo_sandbox() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "cargo-sandbox"])
                .current_dir(workspace_root())
                .status()
                .expect("running cargo build");
            assert!(status.success(), "building cargo-sandbox failed");
            let path = bin_dir().join("cargo-sandbox");
            assert!(path.exists(), "{} missing after the build", path.display());
            path
        })
        .clone()
}

/// The misbehaving probe program (`tests/src/bin/sandbox-probe.rs`).
pub fn probe() -> PathBuf {
    bin_dir().join("sandbox-probe")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `name` under the system's temporary directory, suffixed with this checkout's path: the
/// e2e tests of two checkouts (git worktrees) may run at once, and must not empty each other's
/// scratch directories.
pub fn temp_dir_of_checkout(name: &str) -> PathBuf {
    let checkout = workspace_root().display().to_string();
    let tag = checkout.trim_matches('/').replace('/', "-");
    std::env::temp_dir().join(format!("{name}-{tag}"))
}

/// Returns false (and says why) when privileged tests were explicitly switched off; panics with
/// the remedy when they cannot run and were not.
pub fn privileged() -> bool {
    if std::env::var_os("CARGO_SANDBOX_SKIP_PRIVILEGED").is_some_and(|v| v == "1") {
        eprintln!("skipped: CARGO_SANDBOX_SKIP_PRIVILEGED=1");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "these tests run real sandboxes and need root: run them as root, or set \
         CARGO_SANDBOX_SKIP_PRIVILEGED=1 to skip them"
    );
    true
}

/// Returns from the calling test when privileged tests were switched off: the first line of
/// every test that runs real sandboxes (see [`privileged`]).
#[macro_export]
macro_rules! skip_unless_privileged {
    () => {
        if !$crate::privileged() {
            return;
        }
    };
}

/// A marker unique to one test, put on probe command lines so survivors can be found.
pub fn token(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("e2e-{name}-{}-{nanos}", std::process::id())
}

/// The PIDs of every process on the host (none when `/proc` cannot be read).
fn host_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
}

/// Host PIDs of processes whose command line contains `token`.
pub fn survivors(token: &str) -> Vec<i32> {
    host_pids()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmdline).contains(token)
        })
        .collect()
}

/// Checks `done` every 20 ms until it holds or `limit` has passed; returns whether it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `limit` for `token`'s processes to be gone; returns any still alive.
pub fn survivors_after(token: &str, limit: Duration) -> Vec<i32> {
    let mut alive = Vec::new();
    wait_until(limit, || {
        alive = survivors(token);
        alive.is_empty()
    });
    alive
}

/// Asserts that every process marked with `token` is gone within `limit` (`what` says whose
/// processes they are).
#[track_caller]
pub fn assert_no_survivors(token: &str, limit: Duration, what: &str) {
    assert_eq!(survivors_after(token, limit), Vec::<i32>::new(), "{what}");
}

/// Sends `signal` to the process `pid`, a child the calling test started.
#[track_caller]
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions; `pid` is the caller's own child.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0, "kill {pid}");
}

/// Cgroup directories left by the runner with host PID `pid` (named `cargo-sandbox.<pid>.*`).
pub fn cgroups_of_runner(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("cargo-sandbox.{pid}.");
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry
                .file_type()
                .is_ok_and(|t| t.is_dir() && !t.is_symlink())
            {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    found.push(entry.path());
                } else if stack.len() < 10_000 {
                    stack.push(entry.path());
                }
            }
        }
    }
    found
}

/// Asserts that the runner with host PID `pid` left no cgroup behind.
#[track_caller]
pub fn assert_no_cgroups_left(pid: u32) {
    assert_eq!(
        cgroups_of_runner(pid),
        Vec::<PathBuf>::new(),
        "the run left cgroups behind"
    );
}

/// The result of one `cargo-sandbox exec --json` run.
pub struct Exec {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
    pub runner_pid: u32,
    pub elapsed: Duration,
}

impl Exec {
    pub fn result(&self) -> &Value {
        &self.json["result"]
    }
    pub fn usage(&self, key: &str) -> u64 {
        self.result()["usage"][key]
            .as_u64()
            .unwrap_or_else(|| panic!("usage.{key} in {}", self.json))
    }
}

/// Runs `cargo-sandbox exec --json <flags> -- <command>` and checks it left no cgroup behind.
pub fn exec(flags: &[&str], command: &[&str]) -> Exec {
    exec_in(&std::env::current_dir().expect("cwd"), flags, command)
}

/// [`exec`] from the working directory `dir`, which the sandbox keeps reachable (a path named
/// only inside a shell script is not, when it lies under `/tmp`).
pub fn exec_in(dir: &Path, flags: &[&str], command: &[&str]) -> Exec {
    let start = Instant::now();
    let child = Command::new(cargo_sandbox())
        .current_dir(dir)
        .arg("exec")
        .arg("--json")
        .args(flags)
        .arg("--")
        .args(command)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting cargo-sandbox");
    let runner_pid = child.id();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("waiting for cargo-sandbox");
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let json = serde_json::from_slice(&stdout).unwrap_or(Value::Null);
    assert_no_cgroups_left(runner_pid);
    Exec {
        code: status.code().unwrap_or(-1),
        json,
        stderr,
        runner_pid,
        elapsed,
    }
}

pub const MIB: u64 = 1 << 20;

/// The caps `fixtures/expected-outcomes.txt` is written for (a short timeout keeps runs fast).
pub const FIXTURE_CAPS: &[&str] = &[
    "--memory",
    "256M",
    "--pids",
    "64",
    "--timeout",
    "3s",
    "--grace",
    "500ms",
    "--tmp-size",
    "64M",
];

/// Runs `cargo ARGS` in the fixtures' workspace (plain cargo: `test`, `nextest run`), returning
/// its exit code and its stdout and stderr together.
pub fn cargo_in_fixtures(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root().join("fixtures"))
        .output()
        .expect("cargo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// [`cargo_in_fixtures`] for `cargo nextest ARGS`, failing with the remedy when cargo-nextest
/// is not installed.
pub fn cargo_nextest_in_fixtures(args: &[&str]) -> (Option<i32>, String) {
    let (code, text) = cargo_in_fixtures(&[&["nextest"], args].concat(), &[]);
    assert!(
        !text.contains("no such command"),
        "cargo-nextest is needed for this test (`cargo install cargo-nextest`):\n{text}"
    );
    (code, text)
}

/// The fixtures workspace's manifest.
pub fn fixtures_manifest() -> PathBuf {
    workspace_root().join("fixtures/Cargo.toml")
}

/// The result of one `cargo sandbox test` run.
pub struct TestRun {
    pub code: i32,
    pub stderr: String,
    /// The `--report-json` document.
    pub report: Value,
}

impl TestRun {
    /// The report's record of the test named `name` (panics, naming it, when there is none).
    pub fn test(&self, name: &str) -> &Value {
        self.report["tests"]
            .as_array()
            .and_then(|tests| tests.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("{name} in the report: {}", self.stderr))
    }

    /// Every test's record in the report (panics when the run wrote no report).
    pub fn tests(&self) -> &[Value] {
        self.report["tests"]
            .as_array()
            .unwrap_or_else(|| panic!("no tests in the report: {}", self.stderr))
    }

    /// How many of the report's tests failed the run.
    pub fn failures(&self) -> usize {
        self.tests().iter().filter(|t| t["failure"] == true).count()
    }

    /// What the test named `name` printed, as the report keeps it (head and tail).
    pub fn output(&self, name: &str) -> String {
        let output = &self.test(name)["output"];
        format!(
            "{}{}",
            output["head"].as_str().unwrap_or_default(),
            output["tail"].as_str().unwrap_or_default()
        )
    }

    /// `(binary id, test name) → outcome word` from the report.
    pub fn outcomes(&self) -> std::collections::BTreeMap<(String, String), String> {
        self.report["tests"]
            .as_array()
            .map(|tests| {
                tests
                    .iter()
                    .map(|t| {
                        let s = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                        ((s("binary_id"), s("name")), s("outcome"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `binary name outcome` of every test, in report order.
    pub fn outcome_lines(&self) -> Vec<String> {
        self.outcomes()
            .into_iter()
            .map(|((binary, name), outcome)| format!("{binary} {name} {outcome}"))
            .collect()
    }

    /// `name outcome` of every test, in report order.
    pub fn name_outcomes(&self) -> Vec<String> {
        self.outcomes()
            .into_iter()
            .map(|((_, name), outcome)| format!("{name} {outcome}"))
            .collect()
    }
}

/// Whether a test that ended with `got` ended as `fixtures/expected-outcomes.txt` says (`want`):
/// a flaky test may pass or fail in any one run.
pub fn ends_as_written(want: &str, got: &str) -> bool {
    if want == "flaky" {
        got == "passed" || got == "failed"
    } else {
        got == want
    }
}

/// `cargo-sandbox sandbox test --manifest-path <manifest>`, for the caller to add to and run.
pub fn sandbox_test_command(manifest: &Path) -> Command {
    let mut cmd = Command::new(cargo_sandbox());
    cmd.args(["sandbox", "test", "--manifest-path"])
        .arg(manifest);
    cmd
}

/// Runs `cargo sandbox test --manifest-path <manifest> <args>` with a JSON report, and checks
/// the run left no cgroup behind.
pub fn sandbox_test(manifest: &Path, args: &[&str]) -> TestRun {
    run_sandbox_test(sandbox_test_command(manifest), args)
}

/// [`sandbox_test`] over the fixtures workspace.
pub fn fixtures_test(args: &[&str]) -> TestRun {
    sandbox_test(&fixtures_manifest(), args)
}

/// [`sandbox_test`] from the directory `cwd`, with no manifest given (runs from an archive).
pub fn sandbox_test_in(cwd: &Path, args: &[&str]) -> TestRun {
    let mut cmd = Command::new(cargo_sandbox());
    cmd.args(["sandbox", "test"]).current_dir(cwd);
    run_sandbox_test(cmd, args)
}

/// [`sandbox_test`] with the command set up by the caller (`sandbox test` and its cwd).
pub fn run_sandbox_test(mut cmd: Command, args: &[&str]) -> TestRun {
    let report_path = std::env::temp_dir().join(format!("e2e-report-{}.json", token("r")));
    let child = cmd
        .arg("--report-json")
        .arg(&report_path)
        // A fixed seed makes the flaky fixture's outcome, and so the whole run, repeatable.
        .args(if args.contains(&"--seed") {
            &[][..]
        } else {
            &["--seed", "1"][..]
        })
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting cargo sandbox test");
    let runner_pid = child.id();
    let out = child
        .wait_with_output()
        .expect("waiting for cargo sandbox test");
    assert_no_cgroups_left(runner_pid);
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_file(&report_path);
    TestRun {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    }
}

/// `text` with every run of whitespace made one space: libtest and libtest-mimic pad names
/// into columns whose width depends on the longest name.
pub fn squeezed(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fixtures' expected outcomes (`fixtures/expected-outcomes.txt`).
pub fn expected_outcomes() -> std::collections::BTreeMap<(String, String), String> {
    let text = std::fs::read_to_string(workspace_root().join("fixtures/expected-outcomes.txt"))
        .expect("fixtures/expected-outcomes.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split('\t');
            let mut next = || parts.next().expect("three tab-separated fields").to_owned();
            ((next(), next()), next())
        })
        .collect()
}

/// Host processes whose executable lives in the fixtures' target directory (a test of theirs
/// that survived its sandbox), or that are the fixtures' leaked `sleep 1000`.
pub fn fixture_survivors() -> Vec<String> {
    let target = workspace_root().join("fixtures/target");
    host_pids()
        .filter_map(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            let cmdline =
                String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).ok()?)
                    .replace('\0', " ");
            (exe.starts_with(&target) || cmdline.trim() == "sleep 1000")
                .then(|| format!("{pid} {cmdline}"))
        })
        .collect()
}

/// A one-package workspace at `dir` (emptied first): `name`'s manifest with `manifest_extra`
/// appended, and `files` (path relative to `dir`, contents). Returns the manifest's path.
pub fn scratch_crate(
    dir: &Path,
    name: &str,
    manifest_extra: &str,
    files: &[(&str, &str)],
) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let manifest = format!("{}[workspace]\n{manifest_extra}", package_manifest(name));
    write_files(dir, &[("Cargo.toml", manifest.as_str())]);
    write_files(dir, files);
    dir.join("Cargo.toml")
}

/// A workspace at `dir` (emptied first) with the member crates `members`: (name, files), each
/// file's path relative to its crate. Returns the workspace manifest's path.
pub fn scratch_workspace(dir: &Path, members: &[(&str, &[(&str, &str)])]) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let names: Vec<String> = members.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let manifest = format!(
        "[workspace]\nmembers = [{}]\nresolver = \"2\"\n",
        names.join(", ")
    );
    write_files(dir, &[("Cargo.toml", manifest.as_str())]);
    for (name, files) in members {
        let member = dir.join(name);
        write_files(&member, &[("Cargo.toml", package_manifest(name).as_str())]);
        write_files(&member, files);
    }
    dir.join("Cargo.toml")
}

/// The `[package]` table of a scratch crate named `name`.
fn package_manifest(name: &str) -> String {
    format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
}

/// Writes `files` (path relative to `dir`, contents), making the directories they need.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in a directory")).unwrap();
        std::fs::write(&path, contents).unwrap();
    }
}

/// What `engine-batch` prints when every made-ahead sandbox kept its protections (see
/// `src/bin/engine-batch.rs`).
pub const ENGINE_BATCH_EXPECTED: &str = "zygote true\ntook_the_one_being_made 1\n\
    fresh 20\nnetworks_used_again 1\nloopback_exit 0\nas_new_after_loopback 12\n\
    tried_the_network 1\nas_new_after_an_attempt 12\nprivileged_set_mtu 1280\n\
    mtu_unchanged_after 12\nmade_ahead 1\n\
    confined seccomp 2 no_new_privs 1 sys_admin 0\nconfined seccomp 2 no_new_privs 1 sys_admin 0\n\
    privileged seccomp 0 no_new_privs 0 sys_admin 1\nprivileged seccomp 0 no_new_privs 0 sys_admin 1\n\
    tmp_cwd 2\noutput_whole 1\nhog_exit 137\nhog_oom_kills 1\nbomb_refused 1\nbomb_peak 16\n";

/// `out` of a command that must have exited 0 (else panics with its stderr).
pub fn succeeded(out: Output) -> Output {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `cargo sandbox report --merge REPORTS -o merged`: the merged report.
pub fn merge_reports(reports: &[PathBuf], merged: &Path) -> Value {
    succeeded(
        Command::new(cargo_sandbox())
            .args(["sandbox", "report", "--merge"])
            .args(reports)
            .arg("-o")
            .arg(merged)
            .output()
            .expect("cargo sandbox report --merge"),
    );
    serde_json::from_str(&std::fs::read_to_string(merged).expect("the merged report"))
        .expect("the merged report is JSON")
}

/// Checks the JSON report at `path` against `cargo-sandbox/report.schema.json` with a real
/// JSON Schema reader (Python's jsonschema).
pub fn assert_valid_report(path: &Path) {
    let verdict = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))\n\
             print('valid')",
        )
        .arg(workspace_root().join("cargo-sandbox/report.schema.json"))
        .arg(path)
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&verdict.stdout).trim(),
        "valid",
        "{}",
        String::from_utf8_lossy(&verdict.stderr)
    );
}
