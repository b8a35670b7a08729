//! The sandbox-harness test front (`fixtures/harness-front`): the same trials, with the limits
//! they declare, enforced under plain `cargo test`, `cargo nextest run` and `cargo sandbox test`.

use e2e::*;

/// What each misbehaving trial's failure or warning says, under every runner.
const MESSAGES: [&str; 4] = [
    "OOM: killed by the memory cap (64.0 MiB)",
    "FORK BOMB contained: the pids cap (16) refused",
    "TIMED OUT after 1s and killed",
    "LEAKED: `leaks_a_sleeper` left 1 process(es) behind, killed:",
];

fn assert_limits_enforced(runner: &str, text: &str) {
    for expected in MESSAGES {
        assert!(
            text.contains(expected),
            "{runner}: `{expected}` in:\n{text}"
        );
    }
}

#[test]
fn plain_cargo_test_runs_each_trial_in_its_own_sandbox() {
    skip_unless_privileged!();
    let (code, text) = cargo_in_fixtures(&["test", "-p", "harness-front"], &[]);
    assert_eq!(code, Some(101), "three trials fail:\n{text}");
    let lines = squeezed(&text);
    for line in [
        "test passes ... ok",
        "test bomb_is_contained ... FAILED",
        "test hog_is_oom_killed ... FAILED",
        "test hangs_past_its_timeout ... FAILED",
        // A leak is reported, and the leaked process killed, but libtest has no word for it.
        "test leaks_a_sleeper ... ok",
        "test result: FAILED. 2 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out;",
    ] {
        assert!(lines.contains(line), "`{line}` in:\n{text}");
    }
    assert!(text.contains("killed: 3 sleep 300"), "{text}");
    assert_limits_enforced("cargo test", &text);
}

#[test]
fn cargo_nextest_runs_each_trial_in_its_own_sandbox() {
    skip_unless_privileged!();
    let (code, text) = cargo_nextest_in_fixtures(
        // nextest hides a passing test's output; the leak warning is on one.
        &[
            "run",
            "-p",
            "harness-front",
            "--no-fail-fast",
            "--success-output",
            "final",
        ],
    );
    assert_eq!(code, Some(100), "{text}");
    assert_limits_enforced("cargo nextest", &text);
}

#[test]
fn cargo_sandbox_test_applies_the_declared_limits_itself() {
    skip_unless_privileged!();
    let run = fixtures_test(&["-p", "harness-front"]);
    assert_eq!(run.code, 100, "{}", run.stderr);
    let limits = |name: &str| {
        let test = run.test(name);
        (
            test["outcome"].as_str().unwrap_or_default().to_owned(),
            test["spec"]["limits"].clone(),
            test["spec"]["timeout"].clone(),
        )
    };
    let (outcome, hog, timeout) = limits("hog_is_oom_killed");
    assert_eq!(
        (outcome.as_str(), hog["memory_bytes"].as_u64()),
        ("oom", Some(64 << 20))
    );
    assert_eq!(timeout, 30_000, "the harness's default timeout");
    let (outcome, bomb, _) = limits("bomb_is_contained");
    assert_eq!(
        (
            outcome.as_str(),
            bomb["pids"].as_u64(),
            bomb["memory_bytes"].as_u64()
        ),
        ("fork-bomb", Some(16), Some(256 << 20))
    );
    let (outcome, _, timeout) = limits("hangs_past_its_timeout");
    assert_eq!((outcome.as_str(), timeout), ("timed-out", 1_000.into()));
    let leak = run.test("leaks_a_sleeper");
    assert_eq!(leak["outcome"], "leaked", "{leak}");
    assert_eq!(leak["leaked_total"], 1, "{leak}");
    // The command line still wins over what a test declares.
    let run = fixtures_test(&["-p", "harness-front", "--memory", "512M", "passes"]);
    assert_eq!(
        run.report["tests"][0]["spec"]["limits"]["memory_bytes"],
        512u64 << 20
    );
}
