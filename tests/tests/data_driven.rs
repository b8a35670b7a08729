//! A data-driven libtest-mimic suite run by sandbox-harness (`fixtures/data-driven`, one trial per
//! case file, switched by its `use` line): the same trials, kinds, counts and messages under
//! plain `cargo test`, `cargo nextest run` and `cargo sandbox test`, each trial in a sandbox.

use e2e::*;

/// What the failing trials say, under every runner: an `Err(Failed)`, a panic, and the memory
/// cap the hog's case file declares.
const MESSAGES: [&str; 3] = [
    "2 + 2: expected 5, got 4",
    "test panicked: attempt to add with overflow",
    "OOM: killed by the memory cap (64.0 MiB)",
];

fn assert_messages(runner: &str, text: &str) {
    for message in MESSAGES {
        assert!(text.contains(message), "{runner}: `{message}` in:\n{text}");
    }
}

#[test]
fn plain_cargo_test_runs_each_case_in_its_own_sandbox() {
    skip_unless_privileged!();
    let (code, text) = cargo_in_fixtures(&["test", "-p", "data-driven", "--test", "corpus"], &[]);
    assert_eq!(code, Some(101), "{text}");
    let lines = squeezed(&text);
    for line in [
        "test [arith] add ... ok",
        "test [arith] mul ... ok",
        "test [arith] division ... ignored",
        "test [arith] wrong ... FAILED",
        "test [arith] overflow ... FAILED",
        "test [stress] hog ... FAILED",
        "test result: FAILED. 2 passed; 3 failed; 1 ignored; 0 measured; 0 filtered out;",
    ] {
        assert!(lines.contains(line), "`{line}` in:\n{text}");
    }
    assert_messages("cargo test", &text);
}

#[test]
fn cargo_nextest_lists_and_runs_each_trial_alone() {
    skip_unless_privileged!();
    let (code, text) = cargo_nextest_in_fixtures(&["run", "-p", "data-driven", "--no-fail-fast"]);
    assert_eq!(code, Some(100), "{text}");
    assert!(
        text.contains("5 tests run: 2 passed, 3 failed, 1 skipped"),
        "{text}"
    );
    for name in ["[arith] wrong", "[arith] overflow", "[stress] hog"] {
        let failed = text
            .lines()
            .any(|l| l.contains("FAIL [") && l.ends_with(&format!("data-driven::corpus {name}")));
        assert!(failed, "{name} failed in:\n{text}");
    }
    assert_messages("cargo nextest", &text);
}

#[test]
fn cargo_sandbox_test_runs_the_trials_with_their_declared_settings() {
    skip_unless_privileged!();
    let run = fixtures_test(&["-p", "data-driven"]);
    assert_eq!(run.code, 100, "{}", run.stderr);
    let expected: Vec<_> = expected_outcomes()
        .into_iter()
        .filter(|((binary, _), _)| binary == "data-driven::corpus")
        .collect();
    assert_eq!(expected.len(), 6);
    let outcomes = run.outcomes();
    for ((binary, name), outcome) in &expected {
        assert_eq!(
            outcomes.get(&(binary.clone(), name.clone())),
            Some(outcome),
            "{name}: {}",
            run.stderr
        );
    }
    assert_eq!(
        run.test("[stress] hog")["spec"]["limits"]["memory_bytes"],
        64u64 << 20,
        "the case file's own memory cap"
    );
    assert!(run.output("[arith] wrong").contains(MESSAGES[0]));
    assert!(run.output("[arith] overflow").contains(MESSAGES[1]));
}

#[test]
fn a_trial_list_that_changes_between_runs_fails_with_the_reason() {
    skip_unless_privileged!();
    let (code, text) = cargo_in_fixtures(
        &[
            "test",
            "-p",
            "data-driven",
            "--test",
            "corpus",
            "made_by_pid",
        ],
        &[("CORPUS_UNSTABLE_NAME", "1")],
    );
    assert_eq!(code, Some(101), "{text}");
    assert!(
        text.contains("the trial list changed between runs of this binary")
            && text.contains("must build the same trials in the same order"),
        "{text}"
    );
    assert!(
        text.contains("0 passed; 1 failed"),
        "never the wrong trial:\n{text}"
    );
}
