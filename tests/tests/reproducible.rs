//! Reproducible by default: the hermetic environment, seeds and shuffling, repeats and flakiness,
//! replay of a recorded test, and configuration (profiles, overrides, errors).

use e2e::*;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_environment_is_built_not_inherited() {
    skip_unless_privileged!();
    // The variables reach the runner through its own environment; only the passed one may
    // reach the test.
    std::env::set_var("CARGO_SANDBOX_E2E_SECRET", "s3cr3t");
    std::env::set_var("CARGO_SANDBOX_E2E_PASSED", "yes");
    let run = fixtures_test(&[
        "-p",
        "basic",
        "reports_environment",
        "--env",
        "CARGO_SANDBOX_E2E_PASSED",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.output("tests::reports_environment");
    for line in [
        "env TZ=UTC",
        "env HOME=/tmp/home",
        "env TMPDIR=/tmp",
        "env LANG=C.UTF-8",
        "env LC_ALL=C.UTF-8",
        "env USER=root",
        "env TERM=dumb",
        "env CARGO_SANDBOX_E2E_PASSED=yes",
        "env CARGO_SANDBOX_E2E_SECRET=<unset>",
        "hostname=localhost",
        "umask=0022",
        "home-writable=true",
    ] {
        assert!(out.lines().any(|l| l == line), "`{line}` in:\n{out}");
    }
    let seed_line = out
        .lines()
        .find(|l| l.starts_with("env SANDBOX_SEED="))
        .unwrap();
    let test = &run.report["tests"][0];
    assert_eq!(
        seed_line,
        format!("env SANDBOX_SEED={}", test["seed"]),
        "the report records the test's seed"
    );

    let inherited = fixtures_test(&["-p", "basic", "reports_environment", "--inherit-env"]);
    assert!(
        inherited
            .output("tests::reports_environment")
            .contains("env CARGO_SANDBOX_E2E_SECRET=s3cr3t"),
        "--inherit-env loosens it"
    );
}

fn execution_order(run: &TestRun) -> Vec<String> {
    let mut tests: Vec<(u64, String)> = run
        .tests()
        .iter()
        .filter_map(|t| Some((t["order"].as_u64()?, t["name"].as_str()?.to_owned())))
        .collect();
    tests.sort();
    tests.into_iter().map(|(_, name)| name).collect()
}

#[test]
fn the_same_seed_shuffles_into_the_same_order() {
    skip_unless_privileged!();
    let args = ["-p", "basic", "--lib", "-j", "1", "--shuffle", "--seed"];
    let first = fixtures_test(&[&args[..], &["42"]].concat());
    let second = fixtures_test(&[&args[..], &["42"]].concat());
    let other = fixtures_test(&[&args[..], &["43"]].concat());
    assert_eq!(first.report["seed"], 42);
    assert_eq!(execution_order(&first), execution_order(&second));
    assert_ne!(
        execution_order(&first),
        execution_order(&other),
        "another seed, another order"
    );
    let sorted = {
        let mut names = execution_order(&first);
        names.sort();
        names
    };
    assert_ne!(
        execution_order(&first),
        sorted,
        "shuffled, not alphabetical"
    );
    assert_eq!(
        first.report["outcome_digest"],
        second.report["outcome_digest"]
    );
}

#[test]
fn repeating_the_fixtures_marks_the_flaky_one_flaky_and_nothing_else() {
    skip_unless_privileged!();
    let run = fixtures_test(&[
        "--memory",
        "256M",
        "--pids",
        "64",
        "--tmp-size",
        "64M",
        "--repeat",
        "20",
        "--",
        "--skip",
        "hang_ignoring_sigterm",
    ]);
    let expected = expected_outcomes();
    for ((binary, name), outcome) in run.outcomes() {
        let want = &expected[&(binary.clone(), name.clone())];
        if want == "flaky" {
            assert_eq!(outcome, "flaky", "{binary} {name}");
        } else {
            assert_eq!(
                &outcome, want,
                "{binary} {name} must not be flaky over 20 runs"
            );
        }
    }
    let flaky = run
        .tests()
        .iter()
        .find(|t| t["outcome"] == "flaky")
        .unwrap();
    assert_eq!(flaky["attempts"], 20);
    let passes = flaky["passes"].as_u64().unwrap();
    assert!(passes > 0 && passes < 20, "{passes} of 20 passed");
    assert_eq!(flaky["failure"], false, "flaky passes by default");
    assert_eq!(run.report["totals"]["flaky"], 1);
}

#[test]
fn retries_turn_a_late_pass_into_flaky() {
    skip_unless_privileged!();
    let run = fixtures_test(&[
        "-p",
        "basic",
        "tests::flaky",
        "--retries",
        "30",
        "--flaky",
        "fail",
        // With this seed the first attempt fails and a retry passes.
        "--seed",
        "2",
    ]);
    let test = &run.report["tests"][0];
    assert!(
        test["attempts"].as_u64().unwrap() > 1,
        "a retry ran: {test}"
    );
    assert_eq!(test["passes"], 1, "{test}");
    assert_eq!(test["outcome"], "flaky", "{test}");
    assert_eq!(run.code, 100, "--flaky fail fails the run");
}

#[test]
fn replay_reproduces_recorded_failures() {
    skip_unless_privileged!();
    let report = bin_dir().join("e2e-replay-report.json");
    let run = sandbox_test_command(&fixtures_manifest())
        .args(["--memory", "256M", "--report-json"])
        .arg(&report)
        .args(["tests::fails", "tests::memory_hog", "tests::passes"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(100));
    let replay = |test: &str| {
        Command::new(cargo_sandbox())
            .args(["sandbox", "replay"])
            .arg(&report)
            .arg(test)
            .output()
            .unwrap()
    };
    for (test, word) in [
        ("basic tests::fails", "failed"),
        ("tests::memory_hog", "oom"),
        ("hostile tests::passes", "passed"),
    ] {
        let out = replay(test);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("recorded {word}, now {word} — reproduced")),
            "{stdout}"
        );
    }
    let ambiguous = replay("tests::passes");
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("pick one with --binary"));
}

/// A scratch workspace with three passing tests and the given `.config/sandbox.toml`.
fn workspace_with_config(name: &str, config: &str) -> PathBuf {
    let dir = bin_dir().join(format!("e2e-config-{name}"));
    let tests =
        "#[test]\nfn parser_small() {}\n#[test]\nfn parser_big() {}\n#[test]\nfn lexer() {}\n";
    scratch_crate(
        &dir,
        "configured",
        "",
        &[("src/lib.rs", tests), (".config/sandbox.toml", config)],
    );
    dir
}

/// cargo-sandbox's message for `sandbox test ARGS` over the workspace `name` configured with
/// `config`, which must be refused as a bad configuration.
fn config_error(name: &str, config: &str, args: &[&str]) -> String {
    let dir = workspace_with_config(name, config);
    let out = sandbox_test_command(&dir.join("Cargo.toml"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad configuration exits 2");
    ours_only(&out.stderr).replace(&dir.display().to_string(), "[workspace]")
}

/// The configuration is read while cargo builds and a bad one is reported when the build ends:
/// cargo's own lines come first. Only cargo-sandbox's message, which is last, is compared.
fn ours_only(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let ours = text.find("cargo-sandbox:").unwrap_or(0);
    text[ours..].to_owned()
}

#[test]
fn configuration_errors_name_file_line_and_key() {
    let errors = [
        (
            "unknown-key",
            "[profile.default]\nmemory = \"1G\"\nmemroy = \"2G\"\n",
        ),
        ("wrong-type", "[profile.default]\nretries = \"three\"\n"),
        ("bad-value", "[profile.default]\npids = 1\n"),
        (
            "bad-filter",
            "[[profile.default.overrides]]\ntest = \"regex:parser(\"\nmemory = \"1G\"\n",
        ),
        (
            "no-filter",
            "[profile.default]\n\n[[profile.default.overrides]]\nmemory = \"1G\"\n",
        ),
        (
            "filter-in-profile",
            "[profile.default]\ntest = \"parser\"\n",
        ),
    ];
    let mut all = String::new();
    for (name, config) in errors {
        all.push_str(&format!("== {name}\n{}\n", config_error(name, config, &[])));
    }
    all.push_str(&format!(
        "== unknown-profile\n{}",
        config_error("no-profile", "", &["-P", "nightly"])
    ));
    insta::assert_snapshot!("config_errors", all);
}

#[test]
fn overrides_beat_profiles_and_flags_beat_overrides() {
    let config = "[profile.default]\nmemory = \"1G\"\ntimeout = \"30s\"\n\n\
                  [profile.ci]\nretries = 2\n\n\
                  [[profile.default.overrides]]\ntest = \"glob:parser_*\"\nmemory = \"2G\"\nnetwork = \"none\"\n\n\
                  [[profile.ci.overrides]]\ntest = \"exact:parser_big\"\nmemory = \"3G\"\n";
    let dir = workspace_with_config("layers", config);
    let show = |args: &[&str]| {
        let out = Command::new(cargo_sandbox())
            .args(["sandbox", "config", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .args(args)
            .output()
            .unwrap();
        let out = succeeded(out);
        String::from_utf8_lossy(&out.stdout).replace(&dir.display().to_string(), "[workspace]")
    };
    insta::assert_snapshot!(
        "config_parser_big_ci",
        show(&[
            "-P",
            "ci",
            "-p",
            "configured",
            "--binary",
            "configured",
            "parser_big"
        ])
    );
    assert!(show(&["lexer"]).contains("memory = \"1.0 GiB\"    # profile.default"));

    skip_unless_privileged!();
    let run = sandbox_test(
        &dir.join("Cargo.toml"),
        &["-P", "ci", "--memory", "512M", "parser_small"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let spec = &run.report["tests"][0]["spec"];
    assert_eq!(
        spec["limits"]["memory_bytes"],
        512u64 << 20,
        "the flag beats the override"
    );
    assert_eq!(spec["timeout"], 30_000, "the profile's timeout");
    assert_eq!(spec["loopback"], false, "the override's network = none");
    assert_eq!(run.report["profile"], "ci");
}
