//! The reports a fixtures run leaves behind, for real: the JSON report validated against
//! `cargo-sandbox/report.schema.json` (with Python's jsonschema), the JUnit XML read by a real
//! JUnit parser (Python's junitparser), GitHub annotations and job summary, all snapshotted with
//! volatile values redacted; the outcome digest stable across runs; `report` and `report --diff`.

use e2e::*;
use regex::Regex;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct FixturesRun {
    dir: PathBuf,
    code: i32,
    stdout: String,
    stderr: String,
}

impl FixturesRun {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    fn report(&self) -> Value {
        serde_json::from_str(&self.read("report.json")).expect("report.json is JSON")
    }
}

/// One run of the whole fixtures workspace with every reporter on, shared by the tests here.
fn fixtures_run(name: &str) -> FixturesRun {
    let dir = bin_dir().join(format!("e2e-reports-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = sandbox_test_command(&fixtures_manifest())
        .args(FIXTURE_CAPS)
        .arg("--report-json")
        .arg(dir.join("report.json"))
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("GITHUB_WORKSPACE", workspace_root())
        .args(["--seed", "1"])
        .env("NO_COLOR", "1")
        .output()
        .expect("running cargo sandbox test");
    FixturesRun {
        dir,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn shared() -> Option<&'static FixturesRun> {
    static RUN: OnceLock<FixturesRun> = OnceLock::new();
    if !privileged() {
        return None;
    }
    Some(RUN.get_or_init(|| fixtures_run("first")))
}

/// Runs a Python snippet with the given file; the modules come from PyPI (scripts/test
/// installs them).
fn python(script: &str, arg: &Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(arg)
        .output()
        .expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "this test needs Python's jsonschema and junitparser: `python3 -m pip install jsonschema junitparser` \
         (scripts/test installs them):\n{stderr}"
    );
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn redact(text: &str) -> String {
    let root = workspace_root().display().to_string();
    let text = text.replace(&root, "[root]");
    let hash = Regex::new(r"/deps/([A-Za-z0-9_]+)-[0-9a-f]{16}").unwrap();
    let text = hash.replace_all(&text, "/deps/$1-[hash]");
    // A run's kept doc-test binaries: `<runner pid>-<time>/<collector pid>-<time>`.
    let doctests = Regex::new(r"/sandbox/doctests/[0-9]+-[0-9]+/(merged-)?[0-9]+-[0-9]+").unwrap();
    doctests
        .replace_all(&text, "/sandbox/doctests/[run]/${1}[binary]")
        .into_owned()
}

/// Replaces what may differ between runs and machines: timings, sizes, CPU, pids peaks,
/// output (libtest prints timings), env, kernel and paths.
fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let volatile = matches!(
                    key.as_str(),
                    "duration_ms"
                        | "cpu_user_ms"
                        | "cpu_system_ms"
                        | "memory_peak_bytes"
                        | "pids_peak"
                        | "kernel"
                        | "tool_version"
                        | "cgroup_version"
                        | "env"
                        | "output"
                        | "pid"
                        | "rustc_version"
                        | "binaries"
                        | "io_read_bytes"
                        | "io_write_bytes"
                        | "oom_victims"
                        | "order"
                        | "beside"
                );
                if volatile && !v.is_null() {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(s) => *s = redact(s),
        _ => {}
    }
}

#[test]
fn json_report_matches_its_schema_and_snapshot() {
    let Some(run) = shared() else { return };
    assert_eq!(run.code, 100, "{}", run.stderr);
    assert_valid_report(&run.file("report.json"));

    let mut report = run.report();
    assert_eq!(report["schema_version"], 1);
    let names: Vec<(String, String)> = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["binary_id"].as_str().unwrap().to_owned(),
                t["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "tests are listed in report order");
    // The order the tests ran in depends on the history and on when cargo linked each
    // binary; every test that ran has its own place in it.
    let mut orders: Vec<u64> = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["order"].as_u64())
        .collect();
    let ran = orders.len();
    orders.sort();
    orders.dedup();
    assert_eq!(orders.len(), ran, "each test its own place: {orders:?}");
    assert!(
        orders.iter().all(|o| (*o as usize) < ran + 16),
        "{orders:?}"
    );
    redact_json(&mut report);
    insta::assert_snapshot!(
        "report_json",
        serde_json::to_string_pretty(&report).unwrap()
    );
}

#[test]
fn junit_parses_in_a_real_junit_reader() {
    let Some(run) = shared() else { return };
    let parsed = python(
        "import sys, junitparser\n\
         xml = junitparser.JUnitXml.fromfile(sys.argv[1])\n\
         for suite in xml:\n\
         \x20   for case in suite:\n\
         \x20       kinds = [type(r).__name__ for r in case.result] or ['Passed']\n\
         \x20       props = {p.name: p.value for ps in case.iterchildren(junitparser.Properties) for p in ps}\n\
         \x20       print(suite.name, case.name, ','.join(kinds), props.get('outcome', '-'))",
        &run.file("junit.xml"),
    );
    insta::assert_snapshot!("junit_parsed", parsed);
    let time = Regex::new(r#"time="[0-9.]+""#).unwrap();
    let figures = Regex::new(
        r#"(name="(memory_peak_bytes|cpu_user_ms|cpu_system_ms|pids_peak|io_read_bytes|io_write_bytes|oom_victims)" value=)"[^"]*""#,
    )
    .unwrap();
    let bodies = Regex::new(r"(?s)(<(failure|error)[^>]*>).*?(</(failure|error)>)").unwrap();
    let attrs = Regex::new(r#"(message)="[^"]*""#).unwrap();
    let xml = run.read("junit.xml");
    let xml = time.replace_all(&xml, r#"time="[t]""#);
    let xml = figures.replace_all(&xml, r#"$1"[n]""#);
    let xml = bodies.replace_all(&xml, "$1[output]$3");
    let xml = attrs.replace_all(&xml, r#"$1="[message]""#);
    insta::assert_snapshot!("junit_xml", redact(&xml));
}

#[test]
fn github_annotations_and_summary() {
    let Some(run) = shared() else { return };
    // OOM victims are named by their comm: a test binary's name, cut to 15 characters
    // (`hostile-fbb7eaa`), with its build hash.
    let victim_hash = Regex::new(r"(OOM kill\(s\): [A-Za-z_]+)-[0-9a-f]+").unwrap();
    let annotations = victim_hash.replace_all(&run.stdout, "$1-[hash]");
    insta::assert_snapshot!("github_annotations", redact(&annotations));
    let summary = run.read("summary.md");
    assert!(summary.len() < 1 << 20, "under GitHub's 1 MiB limit");
    let (head, tops) = summary
        .split_once("### Top 10 by peak memory")
        .expect("top-10 section");
    let secs = Regex::new(r"[0-9]+\.[0-9]+s").unwrap();
    let sizes = Regex::new(r"[0-9]+(\.[0-9]+)? (B|KiB|MiB|GiB)").unwrap();
    let head = sizes
        .replace_all(&secs.replace_all(head, "[t]"), "[size]")
        .into_owned();
    insta::assert_snapshot!("github_summary_head", head);
    assert!(tops.contains("```mermaid\nxychart-beta"), "{tops}");
    assert!(tops.contains("### Top 10 by CPU time"));
    let memory_rows = tops
        .split("### Top 10 by CPU time")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| `"))
        .count();
    assert_eq!(memory_rows, 10);
    assert!(
        tops.contains("| `hostile tests::memory_hog` | 256.0 MiB"),
        "the hog leads: {tops}"
    );
}

#[test]
fn outcome_digest_is_the_same_on_a_second_run() {
    let Some(first) = shared() else { return };
    let second = fixtures_run("second");
    assert_eq!(
        first.report()["outcome_digest"],
        second.report()["outcome_digest"]
    );
    assert_ne!(
        first.report()["duration_ms"],
        second.report()["duration_ms"],
        "only timings differ"
    );
}

#[test]
fn report_rerenders_a_saved_report() {
    let Some(run) = shared() else { return };
    let out = Command::new(cargo_sandbox())
        .args(["sandbox", "report"])
        .arg(run.file("report.json"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = |text: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with("Summary"))
            .map(str::to_owned)
    };
    assert_eq!(
        summary(&stderr),
        summary(&run.stderr),
        "the same summary as the run printed"
    );
    assert!(
        stderr.contains("FAIL [") && stderr.contains("OOM ["),
        "{stderr}"
    );
}

#[test]
fn report_diff_flags_outcome_changes_and_growth() {
    let Some(run) = shared() else { return };
    let old = run.file("report.json");
    let mut changed = run.report();
    for test in changed["tests"].as_array_mut().unwrap() {
        if test["name"] == "tests::passes" && test["binary_id"] == "basic" {
            test["outcome"] = "failed".into();
            test["failure"] = true.into();
        }
        if test["name"] == "tests::loopback_tcp" {
            test["memory_peak_bytes"] = (200u64 << 20).into();
        }
    }
    let new = run.file("report-changed.json");
    std::fs::write(&new, serde_json::to_string(&changed).unwrap()).unwrap();
    let diff = |a: &Path, b: &Path| {
        Command::new(cargo_sandbox())
            .args([
                "sandbox",
                "report",
                "--fail-on-regression",
                "--threshold",
                "20%",
                "--diff",
            ])
            .args([a, b])
            .output()
            .unwrap()
    };
    let same = diff(&old, &old);
    assert_eq!(same.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&same.stdout).contains("No outcome changed"));
    let out = diff(&old, &new);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(100), "{text}");
    assert!(
        text.contains("basic tests::passes: passed -> failed"),
        "{text}"
    );
    assert!(
        text.contains("basic tests::loopback_tcp:") && text.contains("-> 200.0 MiB"),
        "{text}"
    );

    let bad = Command::new(cargo_sandbox())
        .args(["sandbox", "report"])
        .arg(run.file("junit.xml"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a cargo-sandbox JSON report"));
}

#[test]
fn shards_cover_every_test_once_and_merge_to_the_unsharded_digest() {
    let Some(whole) = shared() else { return };
    let mut shard_reports = Vec::new();
    for k in 1..=3 {
        let path = whole.dir.join(format!("shard-{k}.json"));
        let out = sandbox_test_command(&fixtures_manifest())
            .args(FIXTURE_CAPS)
            .args([
                "--seed",
                "1",
                "--partition",
                &format!("hash:{k}/3"),
                "--report-json",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            path.exists(),
            "shard {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        shard_reports.push(path);
    }
    let ran_in = |name: &str, binary: &str| -> usize {
        shard_reports
            .iter()
            .filter(|p| {
                let report: Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                report["tests"].as_array().unwrap().iter().any(|t| {
                    t["name"] == name
                        && t["binary_id"] == binary
                        && t["outcome"] != "skipped-by-partition"
                })
            })
            .count()
    };
    for test in whole.report()["tests"].as_array().unwrap() {
        let (binary, name) = (
            test["binary_id"].as_str().unwrap(),
            test["name"].as_str().unwrap(),
        );
        assert_eq!(
            ran_in(name, binary),
            1,
            "{binary} {name} runs in exactly one shard"
        );
    }
    let merged = merge_reports(&shard_reports, &whole.dir.join("merged.json"));
    assert_eq!(merged["outcome_digest"], whole.report()["outcome_digest"]);
    assert_eq!(merged["totals"], whole.report()["totals"]);
}

/// The fingerprint's digest of each test binary is the file's sha256, whether read this run or
/// kept from an earlier one (`binary-hashes.json`, for binaries unchanged since), and follows
/// a rebuild.
#[test]
fn the_fingerprint_has_each_binarys_sha256_kept_or_read_again() {
    if !privileged() {
        return;
    }
    let dir = temp_dir_of_checkout("cargo-sandbox-e2e-hashes");
    // A test that takes a while: the run's lines go on after the digests are done.
    let lib = |answer: u32| {
        format!(
            "#[test]\nfn answers() {{ assert_eq!({answer}, {answer}); }}\n\
             #[test]\nfn takes_a_while() {{ std::thread::sleep(std::time::Duration::from_millis(300)); }}\n"
        )
    };
    let manifest = scratch_crate(&dir, "hashed", "", &[("src/lib.rs", &lib(1))]);
    let kept = dir.join("target/cargo-sandbox/binary-hashes.json");
    let digest = |run: &TestRun| {
        let binaries = run.report["fingerprint"]["binaries"].as_object().unwrap();
        assert_eq!(binaries.len(), 1, "{}", run.stderr);
        assert_eq!(run.tests().len(), 2, "{}", run.stderr);
        let binary = run.tests()[0]["spec"]["argv"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, digest) = binaries.iter().next().unwrap();
        let out = succeeded(Command::new("sha256sum").arg(&binary).output().unwrap());
        let real = String::from_utf8_lossy(&out.stdout)[..64].to_owned();
        assert_eq!(digest.as_str(), Some(real.as_str()), "{binary}");
        real
    };

    // Just built: hashed, and not kept (a change within the clock's tick would go unseen).
    let first = sandbox_test(&manifest, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let built = digest(&first);
    assert!(!kept.exists(), "a binary changed a moment ago is not kept");
    // Once settled, kept; then served from what was kept.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = sandbox_test(&manifest, &[]);
    assert_eq!(digest(&second), built);
    let text = std::fs::read_to_string(&kept).expect("the digests kept");
    assert!(text.contains(&built), "{text}");
    assert_eq!(digest(&sandbox_test(&manifest, &[])), built);

    // Rebuilt: the new binary's digest, not the kept one.
    write_files(&dir, &[("src/lib.rs", &lib(2))]);
    let rebuilt = sandbox_test(&manifest, &[]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    let rebuilt_digest = digest(&rebuilt);
    assert_ne!(rebuilt_digest, built);

    // Where the digests cannot be kept (a directory in the file's place), the run says so
    // after its tests' lines, before its summary, and still reports the digest.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let _ = std::fs::remove_file(&kept);
    std::fs::create_dir_all(kept.join("in-the-way")).unwrap();
    let unkept = sandbox_test(&manifest, &[]);
    assert_eq!(unkept.code, 0, "{}", unkept.stderr);
    assert_eq!(digest(&unkept), rebuilt_digest);
    let lines: Vec<&str> = unkept.stderr.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .rposition(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{}", unkept.stderr))
    };
    let warned = at("warning: the test binaries' digests were not kept");
    assert!(
        at("PASS") < warned && warned < at("Summary"),
        "{}",
        unkept.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
