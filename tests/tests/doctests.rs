//! Doc tests under `cargo sandbox test`: each kind rustdoc knows, in edition 2021 (a binary per
//! doc test) and 2024 (merged), each run in its own sandbox, counted as `cargo test` counts
//! them, and named as it names them.

use e2e::*;
use std::collections::BTreeMap;
use std::process::Command;

const DOC_PACKAGES: &[&str] = &["-p", "doctests", "-p", "doctests-2024"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    FIXTURE_CAPS
        .iter()
        .chain(DOC_PACKAGES)
        .chain(extra)
        .copied()
        .collect()
}

/// `cargo test --doc`'s own totals over the same packages: (passed, failed, ignored).
fn cargo_test_totals(extra: &[&str]) -> (usize, usize, usize) {
    let out = Command::new("cargo")
        .args(["test", "--doc", "--no-fail-fast", "--manifest-path"])
        .arg(fixtures_manifest())
        .args(DOC_PACKAGES)
        .args(extra)
        .output()
        .expect("running cargo test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut totals = (0, 0, 0);
    for line in stdout.lines().filter(|l| l.starts_with("test result: ")) {
        let count = |word: &str| -> usize {
            line.split([';', '.'])
                .find_map(|part| part.trim().strip_suffix(word))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        totals.0 += count(" passed");
        totals.1 += count(" failed");
        totals.2 += count(" ignored");
    }
    totals
}

/// (passing, failing, ignored) in a report, the way cargo counts: a leak still passes.
fn our_totals(run: &TestRun) -> (usize, usize, usize) {
    let mut totals = (0, 0, 0);
    for test in run.tests() {
        if test["outcome"] == "ignored" {
            totals.2 += 1;
        } else if test["failure"] == true {
            totals.1 += 1;
        } else {
            totals.0 += 1;
        }
    }
    totals
}

#[test]
fn doc_tests_run_in_sandboxes_and_count_as_cargo_test_counts_them() {
    skip_unless_privileged!();
    let run = fixtures_test(&args(&[]));
    assert_eq!(run.code, 100, "{}", run.stderr);
    let expected: BTreeMap<(String, String), String> = expected_outcomes()
        .into_iter()
        .filter(|((binary, _), _)| binary.contains("::doctest/"))
        .collect();
    assert_eq!(
        expected.len(),
        16,
        "fixtures/expected-outcomes.txt lists 16 doc tests"
    );
    assert_eq!(run.outcomes(), expected);
    assert_eq!(our_totals(&run), cargo_test_totals(&[]));

    let tests = run.tests();
    assert!(tests.iter().all(|t| t["kind"] == "doctest"));
    // The leaked daemon was seen, named, and killed with its sandbox.
    for leaked in tests.iter().filter(|t| t["outcome"] == "leaked") {
        let processes = leaked["leaked_processes"].as_array().unwrap();
        assert!(processes.iter().any(|p| p["comm"] == "sleep"), "{leaked:#}");
    }
    // Each doc test that runs had a sandbox of its own, with the caps.
    let sandboxed: Vec<_> = tests.iter().filter(|t| !t["spec"].is_null()).collect();
    assert_eq!(sandboxed.len(), 10, "5 doc tests run per crate");
    for t in sandboxed {
        assert_eq!(t["spec"]["limits"]["memory_bytes"], 256 << 20, "{t:#}");
        assert_eq!(t["spec"]["limits"]["pids"], 64, "{t:#}");
    }
}

#[test]
fn doc_flag_runs_only_doc_tests_and_target_flags_none() {
    skip_unless_privileged!();
    let kinds = |run: &TestRun| -> Vec<String> {
        let mut kinds: Vec<String> = run
            .tests()
            .iter()
            .map(|t| t["kind"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    };
    let run = fixtures_test(&["-p", "basic", "-p", "doctests", "--doc"]);
    assert_eq!(kinds(&run), ["doctest"], "{}", run.stderr);
    assert_eq!(run.outcomes().len(), 8);
    let run = fixtures_test(&["-p", "basic", "-p", "doctests"]);
    assert_eq!(kinds(&run), ["doctest", "lib", "test"], "{}", run.stderr);
    for flag in ["--lib", "--tests", "--all-targets"] {
        let run = fixtures_test(&["-p", "basic", "-p", "doctests", flag]);
        assert!(!kinds(&run).contains(&"doctest".to_owned()), "{flag}");
    }
}

#[test]
fn filters_and_ignored_flags_select_doc_tests_as_cargo_test_does() {
    skip_unless_privileged!();
    let run = fixtures_test(&["-p", "doctests", "add"]);
    assert_eq!(
        run.name_outcomes(),
        ["doctests/src/lib.rs - add (line 10) passed"]
    );
    let run = fixtures_test(&[
        "-p",
        "doctests",
        "--",
        "--exact",
        "doctests/src/lib.rs - boom (line 26)",
    ]);
    assert_eq!(
        run.name_outcomes(),
        ["doctests/src/lib.rs - boom (line 26) passed"]
    );
    // An `ignore` block is compiled when ignored tests are asked for; this one is no Rust.
    let run = fixtures_test(&args(&["--run-ignored", "only"]));
    assert_eq!(
        our_totals(&run),
        cargo_test_totals(&["--", "--ignored"]),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, 100);
}

#[test]
fn a_runs_kept_doc_test_binaries_are_removed_when_it_ends() {
    skip_unless_privileged!();
    let child = sandbox_test_command(&fixtures_manifest())
        .args(["-p", "doctests", "--doc"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(100));
    let store = workspace_root().join("fixtures/target/sandbox/doctests");
    let left: Vec<String> = std::fs::read_dir(&store)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&format!("{pid}-")))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(left, Vec::<String>::new());
}

/// With `--doc` nothing else builds the library: its compile error is cargo's, shown, with
/// cargo's exit code.
#[test]
fn a_library_that_does_not_build_fails_doc_only_runs_with_cargos_code() {
    let dir = temp_dir_of_checkout("e2e-doc-build-failure");
    let manifest = scratch_crate(
        &dir,
        "broken",
        "",
        &[("src/lib.rs", "pub fn f() -> u32 { \"not a number\" }\n")],
    );
    let run = sandbox_test(&manifest, &["--doc"]);
    assert_eq!(run.code, 101, "{}", run.stderr);
    assert!(run.stderr.contains("mismatched types"), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
