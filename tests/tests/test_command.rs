//! `cargo sandbox test` over the fixtures workspace, for real: every fixture's outcome as written
//! down in `fixtures/expected-outcomes.txt`, the terminal summary (snapshotted), selection flags,
//! policies, build failures, usage errors and interruption.

use e2e::*;
use std::time::Duration;

fn with_caps<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    FIXTURE_CAPS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

/// Status lines sorted by test, with durations and sizes replaced, then the summary line
/// without its time: what must not change from run to run.
fn stable_terminal(stderr: &str) -> String {
    let mut status: Vec<String> = stderr
        .lines()
        // `WORD [ 0.012s] ...`: test names may hold brackets (`[kind] name`) too.
        .filter_map(|l| {
            let (word, rest) = l.trim_start().split_once(" [")?;
            let (time, after) = rest.split_once("s] ")?;
            time.trim().parse::<f64>().ok()?;
            Some((word, after))
        })
        .filter(|(word, _)| *word != "Summary")
        .map(|(word, after)| {
            let after = after.trim_start();
            // after = "<size> <unit> <binary> <name>", or "<binary> <name>" for tests that ran
            // in no sandbox (ignored, or doc tests rustdoc settled); names may hold spaces.
            let parts: Vec<&str> = after.split_whitespace().collect();
            let sized = parts
                .get(1)
                .is_some_and(|unit| ["B", "KiB", "MiB", "GiB", "TiB"].contains(unit));
            let id = if sized {
                parts[2..].join(" ")
            } else {
                parts.join(" ")
            };
            format!("{word:>10} {id}")
        })
        .collect();
    status.sort_by(|a, b| a[11..].cmp(&b[11..]));
    let summary = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Summary"))
        .map(|l| l.split_once("s] ").map_or(l, |(_, rest)| rest).to_owned())
        .unwrap_or_default();
    format!("{}\n{summary}\n", status.join("\n"))
}

#[test]
fn every_fixture_ends_as_written_down() {
    skip_unless_privileged!();
    let git_status = || {
        let out = std::process::Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all", "."])
            .current_dir(workspace_root().join("fixtures"))
            .output()
            .expect("git status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = git_status();
    // Marked, so the check for survivors below looks at this run's processes only: other tests
    // of this file run the same fixtures at the same time.
    let marker = token("every-fixture");
    let mark = format!("RUN_MARKER={marker}");
    let run = fixtures_test(&with_caps(&["--env", &mark]));
    assert_eq!(run.code, 100, "tests failed, so exit 100:\n{}", run.stderr);
    assert_eq!(
        git_status(),
        before,
        "the fixtures' tree is as it was: writes stayed in the sandboxes"
    );
    let files = workspace_root().join("fixtures/files");
    assert!(
        files.join("data/deletable.txt").exists() && !files.join("written-by-test.txt").exists()
    );
    let expected = expected_outcomes();
    let actual = run.outcomes();
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same tests, listed in report order"
    );
    for (id, want) in &expected {
        let got = &actual[id];
        assert!(
            ends_as_written(want, got),
            "{} {}: expected {want}, got {got}",
            id.0,
            id.1
        );
    }
    assert_eq!(
        marked_survivors(&marker),
        Vec::<String>::new(),
        "nothing outlives its sandbox"
    );

    let test = |name: &str| run.test(name);
    let flood = test("tests::floods_stdout");
    assert!(
        flood["output"]["truncated_bytes"].as_u64().unwrap() > 60 << 20,
        "64 MiB flood kept bounded"
    );
    let daemon = test("tests::leaks_setsid_daemon");
    assert_eq!(daemon["leaked_total"], 1);
    let written = test("tests::writes_manifest_dir");
    assert_eq!(written["files_written"][0]["kind"], "created");
    assert!(written["files_written"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("fixtures/files/written-by-test.txt"));
    let deleted = test("tests::deletes_source_file");
    assert_eq!(deleted["files_written"][0]["kind"], "deleted");
    assert!(deleted["files_written"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("fixtures/files/data/deletable.txt"));
    for quiet in ["tests::writes_home", "uses_target_tmpdir"] {
        assert_eq!(
            test(quiet)["files_written_total"],
            0,
            "{quiet} writes only scratch space"
        );
    }
    let hog = test("tests::memory_hog");
    assert!(hog["oom_kills"].as_u64().unwrap() >= 1);
    let bomb = test("tests::fork_bomb");
    assert_eq!(bomb["pids_peak"], 64);
    let spec = &test("tests::passes")["spec"];
    assert_eq!(spec["argv"][1], "--exact");
    assert!(
        spec["cwd"].as_str().unwrap().ends_with("fixtures/basic")
            || spec["cwd"].as_str().unwrap().ends_with("fixtures/hostile")
    );

    insta::assert_snapshot!("fixtures_terminal", stable_terminal(&run.stderr));
}

#[test]
fn selection_flags_select_like_cargo_test() {
    skip_unless_privileged!();
    let run = fixtures_test(&["-p", "basic", "passes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.outcome_lines(),
        [
            "basic tests::passes passed",
            "basic tests::should_panic_passes passed"
        ]
    );

    let run = fixtures_test(&["-p", "basic", "--", "--exact", "tests::passes"]);
    assert_eq!(run.outcome_lines(), ["basic tests::passes passed"]);

    let run = fixtures_test(&[
        "-p",
        "basic",
        "--lib",
        "tests::ignored",
        "--",
        "--include-ignored",
    ]);
    assert_eq!(run.code, 100);
    assert_eq!(
        run.outcome_lines(),
        [
            "basic tests::ignored passed",
            "basic tests::ignored_fails failed"
        ]
    );

    let run = fixtures_test(&["-p", "basic", "--test", "env", "--", "--skip", "nothing"]);
    assert_eq!(run.outcome_lines(), ["basic::env sees_cargo_env passed"]);

    let run = fixtures_test(&["-p", "basic", "--lib", "--", "--ignored"]);
    assert_eq!(
        run.outcome_lines(),
        [
            "basic tests::ignored passed",
            "basic tests::ignored_fails failed"
        ]
    );
}

#[test]
fn policies_decide_whether_leaks_and_network_attempts_fail() {
    skip_unless_privileged!();
    let args = ["-p", "hostile", "leaks_", "network_attempt"];
    let lenient = fixtures_test(&args);
    assert_eq!(
        lenient.code, 0,
        "leaks and network attempts pass by default:\n{}",
        lenient.stderr
    );
    let strict = fixtures_test(
        &[
            &args[..],
            &["--leaks", "fail", "--network-attempts", "fail"],
        ]
        .concat(),
    );
    assert_eq!(strict.code, 100, "{}", strict.stderr);
    assert!(strict.tests().iter().all(|t| t["failure"] == true));
}

#[test]
fn isolation_binary_runs_each_binary_once() {
    skip_unless_privileged!();
    let run = fixtures_test(&["-p", "basic", "--isolation", "binary"]);
    assert_eq!(run.code, 100, "{}", run.stderr);
    let expected = expected_outcomes();
    for (id, got) in run.outcomes() {
        let want = &expected[&id];
        assert!(
            ends_as_written(want, &got),
            "{} {}: expected {want}, got {got}",
            id.0,
            id.1
        );
    }
    let argv: Vec<_> = run
        .tests()
        .iter()
        .filter_map(|t| t["spec"]["argv"].as_array().map(|a| a.len()))
        .collect();
    assert!(
        argv.iter().all(|&n| n == 1),
        "whole binaries run without naming tests: {argv:?}"
    );
}

#[test]
fn isolation_binary_lets_libtest_select_and_lists_only_a_binary_that_crashed() {
    skip_unless_privileged!();
    // Runs one package's unit tests as a whole binary; the one test reported, and the run.
    let only_test = |package: &str, libtest: &[&str], code: i32| {
        let args = [
            &["-p", package, "--lib", "--isolation", "binary", "--"],
            libtest,
        ]
        .concat();
        let run = fixtures_test(&args);
        assert_eq!(run.code, code, "{}", run.stderr);
        let got: Vec<_> = run.outcomes().into_iter().collect();
        assert_eq!(got.len(), 1, "{got:?}\n{}", run.stderr);
        let ((binary, name), outcome) = got[0].clone();
        assert_eq!(binary, package);
        (name, outcome, run)
    };
    // libtest applies the filter itself: only the matching tests are reported, each with its
    // own line's outcome.
    let (name, outcome, run) = only_test("basic", &["tests::pa", "--skip", "tests::panics"], 0);
    assert_eq!(
        (name.as_str(), outcome.as_str()),
        ("tests::passes", "passed")
    );
    assert!(
        run.stderr.contains("the tests of 1 binary, each run whole"),
        "{}",
        run.stderr
    );
    // A binary that dies before reporting its tests is listed afterwards: the tests it never
    // reported get the crash.
    let (name, outcome, _) = only_test("hostile", &["--exact", "tests::segfault"], 100);
    assert_eq!(
        (name.as_str(), outcome.as_str()),
        ("tests::segfault", "signal:SIGSEGV")
    );
}

#[test]
fn isolation_binary_lists_and_requeues_a_binary_whose_harness_never_started() {
    skip_unless_privileged!();
    // A custom harness that says nothing unless its tests are named: run whole it prints no
    // `running` line, so the run lists it and puts its selected tests back on the queue, named.
    let custom = r#"fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            print!("alpha: test\nbeta: test\n");
        }
        return;
    }
    if !args.iter().any(|a| a == "--exact") {
        return;
    }
    let names: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    println!("running {} tests", names.len());
    for name in &names {
        println!("test {name} ... ok");
    }
    println!("\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out", names.len());
}
"#;
    let manifest = scratch_crate(
        &bin_dir().join("e2e-binary-requeued"),
        "requeued",
        "[[test]]\nname = \"custom\"\nharness = false\n",
        &[("src/lib.rs", ""), ("tests/custom.rs", custom)],
    );
    let run = sandbox_test(
        &manifest,
        &["--test", "custom", "--isolation", "binary", "alpha"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = run.outcomes();
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        [(
            ("requeued::custom".to_owned(), "alpha".to_owned()),
            "passed".to_owned()
        )],
        "{}",
        run.stderr
    );
    // The record is the named run's: the one after the listing.
    let argv = &run.test("alpha")["spec"]["argv"];
    assert_eq!(
        argv.as_array().map(|a| a[1..].to_vec()),
        Some(vec!["--exact".into(), "alpha".into()]),
        "{argv}"
    );
}

#[test]
fn isolation_binary_reports_a_failure_that_no_test_carries() {
    skip_unless_privileged!();
    // Every test passes and libtest prints its summary; then the binary aborts on its way out
    // (an exit handler a test registered). And a custom harness fails without running anything
    // it would list. Neither failure belongs to a test: each is the binary's own record.
    let lib = r#"
extern "C" {
    fn atexit(f: extern "C" fn()) -> i32;
    fn abort() -> !;
}
extern "C" fn die() {
    unsafe { abort() }
}
#[test]
fn passes() {}
#[test]
fn registers_an_exit_handler_that_aborts() {
    assert_eq!(unsafe { atexit(die) }, 0);
}
"#;
    let custom = "fn main() {\n    if std::env::args().any(|a| a == \"--list\") {\n        return;\n    }\n    \
                  std::process::exit(1);\n}\n";
    let manifest = scratch_crate(
        &bin_dir().join("e2e-binary-failures"),
        "binfail",
        "[[test]]\nname = \"custom\"\nharness = false\n",
        &[("src/lib.rs", lib), ("tests/custom.rs", custom)],
    );
    let run = sandbox_test(&manifest, &["--isolation", "binary"]);
    assert_eq!(run.code, 100, "{}", run.stderr);
    let got = run.outcomes();
    let outcome = |binary: &str, name: &str| got[&(binary.to_owned(), name.to_owned())].clone();
    assert_eq!(outcome("binfail", "passes"), "passed", "{got:?}");
    assert_eq!(
        outcome("binfail", "(all tests)"),
        "signal:SIGABRT",
        "{got:?}"
    );
    assert_eq!(
        outcome("binfail::custom", "(all tests)"),
        "failed",
        "{got:?}"
    );
    assert_eq!(got.len(), 4, "{got:?}");
}

/// A custom harness that, like libtest-mimic, takes one test name at most (and any number of
/// `--skip`): "one" passes, "two" and "three" fail.
const ONE_NAME_HARNESS: &str = r#"
const TESTS: [(&str, bool); 3] = [("one", true), ("two", false), ("three", false)];
fn main() {
    let mut args = std::env::args().skip(1);
    let (mut exact, mut list, mut names, mut skip) = (false, false, Vec::new(), Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exact" => exact = true,
            "--list" => list = true,
            "--skip" => skip.extend(args.next()),
            "--format" | "--test-threads" | "--color" => drop(args.next()),
            "--ignored" => return,
            flag if flag.starts_with("--") => {}
            _ => names.push(arg),
        }
    }
    if names.len() > 1 {
        eprintln!("error: unexpected argument '{}' found", names[1]);
        std::process::exit(2);
    }
    let matches = |p: &String, n: &str| if exact { p == n } else { n.contains(p.as_str()) };
    let chosen: Vec<_> = TESTS
        .iter()
        .filter(|(n, _)| names.iter().all(|p| matches(p, n)) && !skip.iter().any(|s| matches(s, n)))
        .collect();
    if list {
        for (n, _) in &chosen {
            println!("{n}: test");
        }
        return;
    }
    println!("\nrunning {} tests", chosen.len());
    let failed: Vec<_> = chosen.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).collect();
    for (n, ok) in &chosen {
        println!("test {n} ... {}", if *ok { "ok" } else { "FAILED" });
    }
    println!("\nfailures:\n");
    for n in &failed {
        println!("---- {n} stdout ----\n{n} went wrong\n");
    }
    println!(
        "test result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len(),
        TESTS.len() - chosen.len()
    );
    std::process::exit(if failed.is_empty() { 0 } else { 101 });
}
"#;

#[test]
fn isolation_binary_runs_several_tests_of_a_harness_that_takes_one_name() {
    skip_unless_privileged!();
    // "grouped": an override gives "one" settings of its own, so "two" and "three" share a
    // sandbox of their own, and the binary is listed.
    let config = "[[profile.grouped.overrides]]\ntest = \"exact:one\"\ntimeout = \"30s\"\n";
    let manifest = scratch_crate(
        &bin_dir().join("e2e-one-name-harness"),
        "onename",
        "[[test]]\nname = \"mimic\"\nharness = false\n",
        &[
            ("src/lib.rs", ""),
            ("tests/mimic.rs", ONE_NAME_HARNESS),
            (".config/sandbox.toml", config),
        ],
    );
    for profile in ["grouped", "default"] {
        let run = sandbox_test(
            &manifest,
            &[
                "--test",
                "mimic",
                "--isolation",
                "binary",
                "--retries",
                "1",
                "-P",
                profile,
            ],
        );
        assert_eq!(run.code, 100, "{profile}: {}", run.stderr);
        let tests = run.tests();
        let record = |name: &str| {
            tests
                .iter()
                .find(|t| t["name"] == name)
                .unwrap_or_else(|| panic!("{profile}: no record for {name}: {tests:?}"))
        };
        assert_eq!(record("one")["outcome"], "passed", "{profile}");
        assert_eq!(tests.len(), 3, "{profile}: {tests:?}");
        for name in ["two", "three"] {
            let t = record(name);
            assert_eq!(t["outcome"], "failed", "{profile} {name}: {t}");
            assert_eq!(t["attempts"], 2, "{profile} {name}: {t}");
            // The harness ran the test (rather than rejecting a second name), every attempt.
            let output = t["output"].to_string();
            assert!(
                output.contains(&format!("{name} went wrong")),
                "{profile} {name}: {output}"
            );
            let argv: Vec<&str> = t["spec"]["argv"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|a| a.as_str())
                .collect();
            let want: &[&str] = if profile == "grouped" {
                // Listed: the retry of both skips the test that passed.
                &["--exact", "--skip", "one"]
            } else {
                // Unlisted: each failed test is retried in a sandbox of its own.
                &["--exact", name]
            };
            assert_eq!(&argv[1..], want, "{profile} {name}");
        }
    }
}

#[test]
fn a_build_failure_shows_the_compiler_error_and_exits_with_cargos_code() {
    skip_unless_privileged!();
    let manifest = scratch_crate(
        &bin_dir().join("e2e-broken-crate"),
        "broken",
        "",
        &[(
            "src/lib.rs",
            "#[test]\nfn t() { let x: u32 = \"not a number\"; }\n",
        )],
    );
    let run = sandbox_test(&manifest, &[]);
    assert_eq!(run.code, 101, "{}", run.stderr);
    assert!(
        run.stderr.contains("mismatched types"),
        "the compiler's own message: {}",
        run.stderr
    );
    assert!(run.stderr.contains("the build failed"), "{}", run.stderr);
}

#[test]
fn bad_flags_are_usage_errors() {
    let run = fixtures_test(&["--no-such-flag"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = fixtures_test(&["--", "--no-such-libtest-flag"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not supported"), "{}", run.stderr);
}

#[test]
fn ctrl_c_stops_the_run_and_leaves_nothing_behind() {
    skip_unless_privileged!();
    let marker = token("ctrl-c");
    let (child, start) = start_marked_run(&marker, &["hang_ignoring_sigterm", "leaks_"]);
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.id();
    signal(pid, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("Cancelled"),
        "partial summary printed: {stderr}"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_no_marked_survivors(&marker, Duration::from_secs(3));
    assert_no_cgroups_left(pid);
}

#[test]
fn a_workspace_under_tmp_is_reachable_and_left_intact() {
    skip_unless_privileged!();
    let dir = std::path::PathBuf::from("/tmp").join(token("tmp-workspace"));
    scratch_crate(
        &dir,
        "in_tmp",
        "",
        &[
            ("data.txt", "here\n"),
            (
                "src/lib.rs",
                "#[test]\nfn reads_its_manifest_dir() {\n    let dir = env!(\"CARGO_MANIFEST_DIR\");\n    \
                 assert_eq!(std::fs::read_to_string(format!(\"{dir}/data.txt\")).unwrap(), \"here\\n\");\n}\n",
            ),
        ],
    );
    for fs in ["isolated", "host"] {
        let run = sandbox_test(&dir.join("Cargo.toml"), &["--fs", fs]);
        assert_eq!(run.code, 0, "--fs {fs}: {}", run.stderr);
        assert_eq!(
            run.outcomes().values().collect::<Vec<_>>(),
            ["passed"],
            "--fs {fs}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keep_writes_keeps_each_sandboxs_changes_for_inspection() {
    skip_unless_privileged!();
    let keep = bin_dir().join(token("keep-writes"));
    let run = fixtures_test(&[
        "-p",
        "files",
        "writes_manifest_dir",
        "--keep-writes",
        keep.to_str().unwrap(),
    ]);
    assert_eq!(
        run.outcomes().values().collect::<Vec<_>>(),
        ["file-leak"],
        "{}",
        run.stderr
    );
    let kept = keep.join("files/tests__writes_manifest_dir/0/0/upper/files/written-by-test.txt");
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        "leaked\n",
        "{}",
        kept.display()
    );
    assert!(
        !workspace_root()
            .join("fixtures/files/written-by-test.txt")
            .exists(),
        "still not on the host tree"
    );
    let _ = std::fs::remove_dir_all(&keep);
}

#[test]
fn a_binary_that_crashes_while_listing_is_reported_with_its_own_signal() {
    skip_unless_privileged!();
    // A test binary (harness = false) that aborts whenever it runs, listing included: its
    // listing runs in a sandbox like everything else, and the report says how it ended.
    let manifest = scratch_crate(
        &bin_dir().join("e2e-crashing-lister"),
        "crasher",
        "[[test]]\nname = \"crashes\"\nharness = false\n",
        &[("tests/crashes.rs", "fn main() { std::process::abort(); }\n")],
    );
    let run = sandbox_test(&manifest, &[]);
    assert_eq!(run.code, 100, "{}", run.stderr);
    let tests = run.tests();
    assert_eq!(tests.len(), 1, "{}", run.report);
    assert_eq!(tests[0]["name"], "<listing>");
    assert_eq!(tests[0]["outcome"], "signal:SIGABRT", "{}", tests[0]);
    assert_eq!(
        tests[0]["error"], "listing the binary's tests failed",
        "{}",
        tests[0]
    );
}

/// Starts `cargo sandbox test -p hostile FILTERS` with its tests marked by `marker` (see
/// [`marked_survivors`]), once the fixtures are built, and returns when one of its tests (not a
/// listing) runs, with the time it was started.
fn start_marked_run(marker: &str, filters: &[&str]) -> (std::process::Child, std::time::Instant) {
    // Built first, so the run gets to its tests quickly.
    assert_eq!(fixtures_test(&["-p", "hostile", "tests::passes"]).code, 0);
    let child = sandbox_test_command(&fixtures_manifest())
        .args(["-p", "hostile"])
        .args(filters)
        .args(["--timeout", "60s", "--env", "RUN_MARKER"])
        .env("NO_COLOR", "1")
        .env("RUN_MARKER", marker)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let a_test_runs = || {
        marked_survivors(marker)
            .iter()
            .any(|p| p.contains("--exact") && !p.contains("--list"))
    };
    assert!(
        wait_until(Duration::from_secs(60), a_test_runs),
        "the hang never started"
    );
    (child, start)
}

/// Fixture processes whose environment carries `RUN_MARKER=marker`: one run's own, while other
/// tests of this file run the same fixtures.
fn marked_survivors(marker: &str) -> Vec<String> {
    let wanted = format!("RUN_MARKER={marker}");
    fixture_survivors()
        .into_iter()
        .filter(|p| {
            p.split_whitespace()
                .next()
                .and_then(|pid| std::fs::read(format!("/proc/{pid}/environ")).ok())
                .is_some_and(|env| env.split(|b| *b == 0).any(|var| var == wanted.as_bytes()))
        })
        .collect()
}

/// Asserts that no process of the run marked `marker` is alive once `limit` has passed.
#[track_caller]
fn assert_no_marked_survivors(marker: &str, limit: Duration) {
    wait_until(limit, || marked_survivors(marker).is_empty());
    assert_eq!(marked_survivors(marker), Vec::<String>::new());
}

#[test]
fn a_test_run_killed_with_sigkill_takes_its_sandboxes_along_and_is_swept_later() {
    skip_unless_privileged!();
    let marker = token("sigkill-run");
    // Test runs start sandboxes through a zygote: it, and every init it started, must die with
    // the runner.
    let (mut child, _) = start_marked_run(&marker, &["hang_ignoring_sigterm"]);
    let pid = child.id();
    signal(pid, libc::SIGKILL);
    let _ = child.wait();
    assert_no_marked_survivors(&marker, Duration::from_secs(5));
    // Its cgroups stay until the next runner starts, which sweeps them.
    assert_eq!(exec(&[], &["true"]).code, 0);
    assert_no_cgroups_left(pid);
}
