//! nextest filtersets (`-E`) selecting over the fixtures, and in the configuration's overrides.

use e2e::*;

/// `binary_id name` of each test that ran or was reported, sorted.
fn selected(args: &[&str]) -> Vec<String> {
    let run = fixtures_test(args);
    assert!(
        run.code == 0 || run.code == 100,
        "{args:?} exited {}: {}",
        run.code,
        run.stderr
    );
    run.outcomes()
        .into_keys()
        .map(|(binary, name)| format!("{binary} {name}"))
        .collect()
}

#[test]
fn filtersets_select_as_nextest_does() {
    skip_unless_privileged!();
    let e = |expr: &'static str| vec!["-E", expr];
    assert_eq!(
        selected(&e("package(basic) & test(=tests::passes)")),
        ["basic tests::passes"]
    );
    // Default test() matcher: contains; `|`, `+` and `or` are the same.
    for or in ["|", "+", "or"] {
        let expr = format!("package(basic) & (test(=tests::passes) {or} binary_id(basic::env))");
        assert_eq!(
            selected(&["-E", &expr]),
            ["basic tests::passes", "basic::env sees_cargo_env"],
            "{expr}"
        );
    }
    // kind(): integration tests only; difference; globs and regexes.
    assert_eq!(
        selected(&e("kind(test) - binary(bin_exe) & package(basic)")),
        ["basic::env sees_cargo_env"]
    );
    assert_eq!(
        selected(&e("binary_id(#basic::*) and test(/^sees_/)")),
        ["basic::env sees_cargo_env"]
    );
    // rdeps(guard): the packages that depend on the guard crate (and guard itself).
    let names = selected(&e("rdeps(guard) & test(=tests::passes)"));
    assert_eq!(names, ["hostile tests::passes"]);
    // Doc tests are kind(doctest).
    let names = selected(&e("kind(doctest) & package(doctests) & test(add)"));
    assert_eq!(
        names,
        ["doctests::doctest/doctests doctests/src/lib.rs - add (line 10)"]
    );
    // Several -E are or-ed; FILTERs narrow them further.
    assert_eq!(
        selected(&[
            "-E",
            "package(basic) & kind(lib)",
            "-E",
            "package(hostile)",
            "passes"
        ]),
        [
            "basic tests::passes",
            "basic tests::should_panic_passes",
            "hostile tests::passes"
        ]
    );
    assert_eq!(selected(&e("none()")), Vec::<String>::new());
}

#[test]
fn a_bad_filterset_is_shown_with_a_caret_and_exit_2() {
    let run = fixtures_test(&["-p", "basic", "--no-fail-fast", "-E", "test(a) & pakage(b)"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "error: unknown predicate `pakage`\n  test(a) & pakage(b)\n            ^^^^^^"
        ),
        "{}",
        run.stderr
    );
    let run = fixtures_test(&["-p", "basic", "-E", "package(nope)"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
}

/// An override's `filter` gives the tests it selects their own settings: here a memory cap
/// that the selected test then exceeds, while the same test elsewhere does not.
#[test]
fn overrides_apply_by_filterset() {
    skip_unless_privileged!();
    let dir = temp_dir_of_checkout("e2e-filterset-override");
    let test = "#[test]\nfn big() { let v = vec![1u8; 64 << 20]; assert!(v.iter().all(|b| *b == 1)); }\n\
                #[test]\nfn other_big() { let v = vec![1u8; 64 << 20]; assert!(v.iter().all(|b| *b == 1)); }\n";
    let manifest = scratch_crate(
        &dir,
        "filtered",
        "",
        &[
            ("src/lib.rs", test),
            (
                ".config/sandbox.toml",
                "[[profile.default.overrides]]\nfilter = 'test(=big) & kind(lib)'\nmemory = \"16M\"\n",
            ),
        ],
    );
    let run = sandbox_test(&manifest, &[]);
    assert_eq!(
        run.name_outcomes(),
        ["big oom", "other_big passed"],
        "{}",
        run.stderr
    );

    // A bad filter is a configuration error naming its place.
    std::fs::write(
        dir.join(".config/sandbox.toml"),
        "[[profile.default.overrides]]\nfilter = 'test(big'\nmemory = \"16M\"\n",
    )
    .unwrap();
    let run = sandbox_test(&manifest, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("profile.default.overrides[0]"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
