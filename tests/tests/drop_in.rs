//! `cargo sandbox test` as a drop-in for `cargo test` and `cargo nextest run`: the flags their
//! users type, each checked over the fixtures for what ran, the counts and the exit code.

use e2e::*;
use std::collections::BTreeMap;

/// Outcome word → how many tests ended with it.
fn counts(run: &TestRun) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for outcome in run.outcomes().into_values() {
        *counts.entry(outcome).or_insert(0) += 1;
    }
    counts
}

/// `basic`'s unit tests, one sandbox at a time.
const ONE_AT_A_TIME: &[&str] = &["-p", "basic", "--lib", "-j", "1"];

/// The library of `basic` fails several tests (fails, panics, floods_stdout): one sandbox at a
/// time, `--fail-fast` stops at the first and `--max-fail 2` at the second; the rest are
/// reported as not run, and counted in the summary.
#[test]
fn fail_fast_and_max_fail_stop_starting_tests() {
    skip_unless_privileged!();
    let all = fixtures_test(ONE_AT_A_TIME);
    let lib_tests = all.outcomes().len();
    assert!(counts(&all).get("failed").copied().unwrap_or(0) >= 3);

    for (flags, failures) in [(&["--fail-fast"][..], 1), (&["--max-fail", "2"][..], 2)] {
        let run = fixtures_test(&[ONE_AT_A_TIME, flags].concat());
        assert_eq!(run.code, 100, "{flags:?}: {}", run.stderr);
        assert_eq!(run.failures(), failures, "{flags:?}: {}", run.stderr);
        let not_run = counts(&run).get("not-run").copied().unwrap_or(0);
        assert!(not_run > 0, "{flags:?}: nothing was left unrun");
        assert_eq!(run.outcomes().len(), lib_tests, "every test has a record");
        assert!(
            run.stderr.contains(&format!("{not_run} not run")),
            "{flags:?}: {}",
            run.stderr
        );
    }

    // `--no-fail-fast` (what CI scripts pass to cargo test) runs everything, as by default;
    // the later of `--fail-fast` and `--no-fail-fast` wins.
    for flags in [&["--no-fail-fast"][..], &["--fail-fast", "--no-fail-fast"]] {
        let run = fixtures_test(&[ONE_AT_A_TIME, flags].concat());
        assert_eq!(run.code, 100);
        assert_eq!(counts(&run), counts(&all), "{flags:?}");
    }
    // A repeated test with attempts left gets one record, not one per attempt.
    let run = fixtures_test(&[ONE_AT_A_TIME, &["--fail-fast", "--repeat", "2"]].concat());
    assert_eq!(run.tests().len(), lib_tests, "{}", run.stderr);
    let run = fixtures_test(&["-p", "basic", "--max-fail", "all"]);
    assert_eq!(counts(&run).get("not-run"), None);

    for bad in ["0", "x", "2:immediate"] {
        let run = fixtures_test(&["--max-fail", bad]);
        assert_eq!(run.code, 2, "--max-fail {bad}: {}", run.stderr);
    }
}

#[test]
fn no_run_builds_and_runs_nothing() {
    let run = fixtures_test(&["-p", "basic", "--no-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("--no-run: none run"), "{}", run.stderr);
    assert_eq!(
        run.report,
        serde_json::Value::Null,
        "no report: nothing ran"
    );
}

#[test]
fn run_ignored_is_libtests_ignored_flags() {
    skip_unless_privileged!();
    for (which, libtest) in [("only", "--ignored"), ("all", "--include-ignored")] {
        let ours = fixtures_test(&["-p", "basic", "--lib", "--run-ignored", which]);
        let theirs = fixtures_test(&["-p", "basic", "--lib", "--", libtest]);
        assert_eq!(
            ours.outcome_lines(),
            theirs.outcome_lines(),
            "--run-ignored {which}"
        );
    }
    let ours = fixtures_test(&["-p", "basic", "--lib", "--run-ignored", "default"]);
    let plain = fixtures_test(&["-p", "basic", "--lib"]);
    assert_eq!(ours.outcome_lines(), plain.outcome_lines());
}

/// `-j`, nextest's `--test-threads` and libtest's `-- --test-threads` all set how many sandboxes
/// run at once (the run's first line says it).
#[test]
fn jobs_and_test_threads_set_the_sandboxes_at_once() {
    skip_unless_privileged!();
    for flags in [
        &["--test-threads", "1"][..],
        &["-j", "1"],
        &["--", "--test-threads=1"],
        &["--", "--test-threads", "1"],
    ] {
        let run = fixtures_test(&[&["-p", "basic", "--lib", "--no-fail-fast"], flags].concat());
        assert_eq!(run.code, 100, "{flags:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(", jobs 1)"),
            "{flags:?}: {}",
            run.stderr
        );
    }
    for flags in [&["-j", "num-cpus"][..], &["-j", "-1"]] {
        let run = fixtures_test(&[&["-p", "basic", "passes"], flags].concat());
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
    }
    for bad in [&["-j", "0"][..], &["--", "--test-threads=0"]] {
        let run = fixtures_test(bad);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
    }
}

/// `--no-capture`: the test's own output reaches the terminal as it runs, not a copy
/// afterwards; libtest's line for it is on stdout, where the test wrote it.
#[test]
fn no_capture_passes_output_through() {
    skip_unless_privileged!();
    for flags in [
        &["--no-capture"][..],
        &["--nocapture"],
        &["--", "--nocapture"],
    ] {
        let out = sandbox_test_command(&fixtures_manifest())
            .args(["-p", "basic", "--lib", "tests::passes"])
            .args(flags)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {stderr}");
        assert!(
            stdout.contains("test tests::passes ... ok"),
            "{flags:?}: the test's output did not pass through: {stdout}"
        );
        assert!(stderr.contains("PASS"), "{stderr}");
    }
}

#[test]
fn status_levels_choose_the_lines_shown() {
    skip_unless_privileged!();
    let lines = |run: &TestRun, word: &str| {
        run.stderr
            .lines()
            .filter(|l| l.trim_start().starts_with(word))
            .count()
    };
    let run = fixtures_test(&["-p", "basic", "--lib", "--status-level", "none"]);
    assert_eq!(lines(&run, "PASS"), 0, "{}", run.stderr);
    assert_eq!(lines(&run, "FAIL"), 0, "{}", run.stderr);
    let run = fixtures_test(&["-p", "basic", "--lib", "--status-level", "fail"]);
    assert_eq!(lines(&run, "PASS"), 0, "{}", run.stderr);
    let failing = run.failures();
    assert_eq!(lines(&run, "FAIL"), failing, "{}", run.stderr);
    // The final list repeats them after the run.
    let run = fixtures_test(&[
        "-p",
        "basic",
        "--lib",
        "--status-level",
        "none",
        "--final-status-level",
        "fail",
    ]);
    assert_eq!(lines(&run, "FAIL"), failing, "{}", run.stderr);
    let summary = run.stderr.find("Summary").unwrap();
    let last_fail = run.stderr.rfind("FAIL [").unwrap();
    assert!(last_fail < summary, "{}", run.stderr);
    let run = fixtures_test(&["--status-level", "loud"]);
    assert_eq!(run.code, 2);
}

/// Cargo's own flags reach cargo: a bad `--config` or a `-Z` on stable fails the build with
/// cargo's message and code; `--message-format json` puts cargo's messages on stdout;
/// `--timings` writes cargo's report.
#[test]
fn cargo_flags_pass_through_to_the_build() {
    let manifest = fixtures_manifest();
    let run = fixtures_test(&["-p", "basic", "--no-run", "--config", "=bad"]);
    assert_eq!(run.code, 101, "{}", run.stderr);
    assert!(run.stderr.contains("--config"), "{}", run.stderr);
    let run = fixtures_test(&["-p", "basic", "--no-run", "-Z", "no-such-flag"]);
    assert_eq!(run.code, 101, "{}", run.stderr);
    assert!(run.stderr.contains("-Z"), "{}", run.stderr);
    let run = fixtures_test(&["-p", "basic", "--no-run", "--config", "net.retry=3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let out = sandbox_test_command(&manifest)
        .args(["-p", "basic", "--no-run", "--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("\"reason\":\"compiler-artifact\"")),
        "{stdout}"
    );
    let run = fixtures_test(&["--message-format", "libtest-json"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--report-json"), "{}", run.stderr);

    let timings = workspace_root().join("fixtures/target/cargo-timings/cargo-timing.html");
    let _ = std::fs::remove_file(&timings);
    let run = fixtures_test(&["-p", "basic", "--no-run", "--timings"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(timings.exists(), "--timings wrote no report");
}

/// nextest's reporter flags: when output is shown, what a run without tests does; and its
/// flags that cannot apply are refused with the alternative.
#[test]
fn nextest_reporter_flags_and_refusals() {
    skip_unless_privileged!();
    let marker = "--- FAILED basic tests::fails ---";
    let run = fixtures_test(&["-p", "basic", "--lib", "tests::fails"]);
    assert!(run.stderr.contains(marker), "{}", run.stderr);
    let run = fixtures_test(&[
        "-p",
        "basic",
        "--lib",
        "tests::fails",
        "--failure-output",
        "never",
    ]);
    assert!(!run.stderr.contains(marker), "{}", run.stderr);
    assert_eq!(run.code, 100);
    // A passing test's output, right after its line.
    let run = fixtures_test(&[
        "-p",
        "basic",
        "--lib",
        "tests::passes",
        "--success-output",
        "immediate",
    ]);
    assert!(
        run.stderr.contains("test tests::passes ... ok"),
        "{}",
        run.stderr
    );
    let run = fixtures_test(&["-p", "basic", "--lib", "tests::passes"]);
    assert!(!run.stderr.contains("test tests::passes ... ok"));

    for (action, code) in [("pass", 0), ("warn", 0), ("fail", 4)] {
        let run = fixtures_test(&["-p", "basic", "--no-tests", action, "no_such_test"]);
        assert_eq!(run.code, code, "--no-tests {action}: {}", run.stderr);
    }
    for (flag, alternative) in [
        (&["--stress-count", "3"][..], "--repeat"),
        (&["-R", "latest"], "cargo sandbox replay"),
        (&["--archive-file", "a.tar.zst"], "--partition"),
        (&["--platform-filter", "host"], "platform(host)"),
        (&["--debugger", "gdb"], "cargo sandbox exec"),
    ] {
        let run = fixtures_test(flag);
        assert_eq!(run.code, 2, "{flag:?}");
        assert!(run.stderr.contains(alternative), "{flag:?}: {}", run.stderr);
    }
    let run = fixtures_test(&[
        "-p",
        "basic",
        "passes",
        "--no-input-handler",
        "--no-output-indent",
        "--hide-progress-bar",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
