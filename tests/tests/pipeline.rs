//! Tests run while cargo still builds, and a run ordered by the last one's durations: a build
//! error after some tests ran, Ctrl-C in the middle of a build, the history's order.

use e2e::*;
use std::time::{Duration, Instant};

/// A build script that keeps cargo busy for `seconds` before the crate compiles.
fn slow_build_script(seconds: u32) -> String {
    format!("fn main() {{ std::thread::sleep(std::time::Duration::from_secs({seconds})); }}\n")
}

const QUICK_TESTS: &str = "#[test]\nfn passes() {}\n#[test]\nfn also_passes() {}\n";

#[test]
fn a_build_error_fails_the_run_and_reports_the_tests_that_already_ran() {
    skip_unless_privileged!();
    let token = token("pipeline-broken");
    let script = slow_build_script(4);
    let manifest = scratch_workspace(
        &bin_dir().join(&token),
        &[
            ("quick", &[("src/lib.rs", QUICK_TESTS)]),
            (
                "broken",
                &[
                    ("build.rs", &script),
                    (
                        "src/lib.rs",
                        "#[test]\nfn t() { let x: u32 = \"not a number\"; }\n",
                    ),
                ],
            ),
        ],
    );
    let run = sandbox_test(&manifest, &["--workspace"]);
    assert_eq!(run.code, 101, "cargo's exit code: {}", run.stderr);
    assert!(run.stderr.contains("mismatched types"), "{}", run.stderr);
    assert!(run.stderr.contains("the build failed"), "{}", run.stderr);
    // The quick crate's tests ran while cargo waited for the broken crate's build script.
    for name in ["passes", "also_passes"] {
        assert_eq!(run.test(name)["outcome"], "passed", "{}", run.stderr);
        assert_eq!(run.test(name)["binary_id"], "quick");
    }
    assert_no_survivors(
        &token,
        Duration::from_secs(3),
        "the build and the tests are gone",
    );
}

#[test]
fn a_bad_configuration_is_reported_once_a_failing_build_ends() {
    skip_unless_privileged!();
    // The configuration is read while cargo builds and reported when cargo is done; a build
    // that fails then must still end the run.
    let manifest = scratch_crate(
        &bin_dir().join("e2e-pipeline-bad-config"),
        "badconfig",
        "",
        &[
            ("src/lib.rs", "#[test]\nfn t() { let x: u32 = \"no\"; }\n"),
            (".config/sandbox.toml", "not = valid = toml\n"),
        ],
    );
    let start = Instant::now();
    let run = sandbox_test(&manifest, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("mismatched types"), "{}", run.stderr);
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn ctrl_c_during_a_pipelined_build_stops_cargo_and_the_sandboxes() {
    skip_unless_privileged!();
    let token = token("pipeline-ctrl-c");
    let script = slow_build_script(120);
    let manifest = scratch_workspace(
        &bin_dir().join(&token),
        &[
            (
                "quick",
                &[(
                    "src/lib.rs",
                    "#[test]\nfn waits() { std::thread::sleep(std::time::Duration::from_secs(120)); }\n",
                )],
            ),
            ("slow", &[("build.rs", &script), ("src/lib.rs", "")]),
        ],
    );
    let child = sandbox_test_command(&manifest)
        .arg("--workspace")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    let running = |what: &str| {
        survivors(&token).iter().any(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(what)
        })
    };
    // The test runs in its sandbox while the other crate's build script still sleeps.
    let beside_the_build = || running("--exact") && running("build-script-build");
    assert!(
        wait_until(Duration::from_secs(90), beside_the_build),
        "the test never ran beside the build"
    );
    signal(pid, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(60), "{stderr}");
    assert_no_survivors(
        &token,
        Duration::from_secs(3),
        &format!("cargo, its build script and the sandboxes are gone: {stderr}"),
    );
    assert_no_cgroups_left(pid);
}

/// The order the run gave each test (`order` in the report).
fn orders(run: &TestRun) -> Vec<(String, u64)> {
    let mut orders: Vec<(String, u64)> = run
        .tests()
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap().to_owned();
            (name, t["order"].as_u64().unwrap())
        })
        .collect();
    orders.sort_by_key(|(_, order)| *order);
    orders
}

#[test]
fn a_run_starts_the_tests_the_last_one_found_slowest() {
    skip_unless_privileged!();
    let dir = bin_dir().join("e2e-history");
    // c_slow computes: one that sleeps would run beside the -j, in no fixed order.
    let tests = "#[test]\nfn a_quick() {}\n#[test]\nfn b_quick() {}\n\
                 #[test]\nfn c_slow() { spin(300) }\n\
                 fn spin(ms: u64) {\n    let start = std::time::Instant::now();\n    \
                 while start.elapsed().as_millis() < ms as u128 { std::hint::black_box(0); }\n}\n";
    let manifest = scratch_crate(&dir, "history", "", &[("src/lib.rs", tests)]);
    let first = sandbox_test(&manifest, &["-j", "1"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let names =
        |run: &TestRun| -> Vec<String> { orders(run).into_iter().map(|(n, _)| n).collect() };
    assert_eq!(
        names(&first),
        ["a_quick", "b_quick", "c_slow"],
        "no history: listing order"
    );
    let history = dir.join("target/cargo-sandbox/history.json");
    assert!(history.exists(), "the run kept its durations");

    let second = sandbox_test(&manifest, &["-j", "1"]);
    assert_eq!(names(&second)[0], "c_slow", "the slowest first");
    assert_eq!(second.outcomes(), first.outcomes());
    assert_eq!(
        second.report["outcome_digest"],
        first.report["outcome_digest"]
    );

    // A run of the binary whole gives every test the binary's time: it says nothing of each
    // test, so the next run's order is still the per-test one.
    let whole = sandbox_test(&manifest, &["-j", "1", "--isolation", "binary"]);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    assert!(
        whole.tests().iter().all(|t| t["shared_sandbox"] == true),
        "{}",
        whole.report
    );
    assert_eq!(second.tests()[0]["shared_sandbox"], false);
    let after_whole = sandbox_test(&manifest, &["-j", "1"]);
    assert_eq!(names(&after_whole)[0], "c_slow", "{}", after_whole.stderr);

    // A test never seen before goes first of all (it may be the slowest).
    let tests_with_new = format!("{tests}#[test]\nfn d_new() {{}}\n");
    std::fs::write(dir.join("src/lib.rs"), tests_with_new).unwrap();
    let third = sandbox_test(&manifest, &["-j", "1"]);
    assert_eq!(names(&third)[..2], ["d_new", "c_slow"]);

    // --shuffle orders by the seed alone.
    let shuffled = sandbox_test(&manifest, &["-j", "1", "--shuffle", "--seed", "7"]);
    std::fs::remove_file(&history).unwrap();
    let shuffled_without = sandbox_test(&manifest, &["-j", "1", "--shuffle", "--seed", "7"]);
    assert_eq!(names(&shuffled), names(&shuffled_without));

    // A report of an earlier run seeds the order where no history is kept.
    std::fs::remove_file(&history).unwrap();
    let report = dir.join("second.json");
    std::fs::write(&report, second.report.to_string()).unwrap();
    let seeded = sandbox_test(
        &manifest,
        &["-j", "1", "--history-from", report.to_str().unwrap()],
    );
    assert_eq!(
        names(&seeded)[..2],
        ["d_new", "c_slow"],
        "{}",
        seeded.stderr
    );
}

#[test]
fn tests_that_mostly_waited_last_run_run_beside_the_j() {
    skip_unless_privileged!();
    let dir = bin_dir().join("e2e-beside");
    let sleeper = |name: &str| {
        format!("#[test]\nfn {name}() {{ std::thread::sleep(std::time::Duration::from_millis(400)); }}\n")
    };
    let tests = format!(
        "#[test]\nfn computes() {{\n    let start = std::time::Instant::now();\n    \
         while start.elapsed().as_millis() < 300 {{ std::hint::black_box(0); }}\n}}\n{}{}{}",
        sleeper("sleeps_a"),
        sleeper("sleeps_b"),
        sleeper("sleeps_c")
    );
    let manifest = scratch_crate(&dir, "beside", "", &[("src/lib.rs", &tests)]);
    let beside = |run: &TestRun| -> Vec<String> {
        let mut names: Vec<String> = (run.tests().iter())
            .filter(|t| t["beside"].as_bool().unwrap())
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    // The sum of the tests' own times against the run's: more than one at a time.
    let overlap = |run: &TestRun| -> f64 {
        let tests: f64 = (run.tests().iter())
            .map(|t| t["duration_ms"].as_f64().unwrap())
            .sum();
        tests / run.report["duration_ms"].as_f64().unwrap()
    };
    let first = sandbox_test(&manifest, &["-j", "1"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(beside(&first).is_empty(), "no history: none known to wait");
    assert!(
        overlap(&first) < 1.05,
        "-j 1: one at a time ({})",
        overlap(&first)
    );

    let second = sandbox_test(&manifest, &["-j", "1"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(beside(&second), ["sleeps_a", "sleeps_b", "sleeps_c"]);
    assert!(
        overlap(&second) > 1.4,
        "the sleepers ran beside the one that computes ({})",
        overlap(&second)
    );
    assert_eq!(
        second.report["outcome_digest"],
        first.report["outcome_digest"]
    );

    let strict = sandbox_test(&manifest, &["-j", "1", "--strict-jobs"]);
    assert_eq!(strict.code, 0, "{}", strict.stderr);
    assert!(beside(&strict).is_empty());
    assert!(
        overlap(&strict) < 1.05,
        "--strict-jobs: -j 1 means one ({})",
        overlap(&strict)
    );
    let shuffled = sandbox_test(&manifest, &["-j", "1", "--shuffle"]);
    assert!(
        beside(&shuffled).is_empty(),
        "--shuffle ignores the history"
    );
    let shown = sandbox_test(&manifest, &["-j", "1", "--no-capture"]);
    assert!(
        beside(&shown).is_empty(),
        "output as it comes: one at a time"
    );
}
