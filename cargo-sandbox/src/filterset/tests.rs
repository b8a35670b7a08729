//! End-to-end tests: expressions parsed against a small workspace and evaluated on its tests.

use super::*;

/// a depends on b, b on c; basic stands alone.
fn graph() -> PackageGraph {
    PackageGraph::new([
        ("a".to_owned(), vec!["b".to_owned()]),
        ("b".to_owned(), vec!["c".to_owned(), "serde".to_owned()]),
        ("c".to_owned(), vec![]),
        ("basic".to_owned(), vec![]),
    ])
}

/// (package, binary_id, binary_name, kind, platform, test_name); test names are unique.
const TESTS: &[(&str, &str, &str, &str, Platform, &str)] = &[
    ("a", "a", "a", "lib", Platform::Target, "a_unit::adds"),
    (
        "a",
        "a::it",
        "it",
        "test",
        Platform::Target,
        "it::android_works",
    ),
    ("b", "b", "b", "lib", Platform::Target, "b_unit::subtracts"),
    (
        "b",
        "b::bin/b-cli",
        "b-cli",
        "bin",
        Platform::Target,
        "cli::parses",
    ),
    (
        "c",
        "c",
        "c",
        "proc-macro",
        Platform::Host,
        "c_unit::expands",
    ),
    (
        "c",
        "c",
        "c",
        "doctest",
        Platform::Target,
        "src/lib.rs - add (line 3)",
    ),
    (
        "basic",
        "basic::bench/speed",
        "speed",
        "bench",
        Platform::Target,
        "bench_fast",
    ),
    (
        "basic",
        "basic::example/demo",
        "demo",
        "example",
        Platform::Target,
        "demo::and_or_not",
    ),
];

fn queries() -> impl Iterator<Item = TestQuery<'static>> {
    TESTS.iter().map(
        |&(package, binary_id, binary_name, kind, platform, test_name)| TestQuery {
            package,
            binary_id,
            binary_name,
            kind,
            platform,
            test_name,
        },
    )
}

fn parse(expr: &str) -> Filterset {
    match Filterset::parse(expr, &graph()) {
        Ok(f) => f,
        Err(e) => panic!("{expr:?} failed to parse:\n{e}"),
    }
}

/// The names of the tests `expr` selects.
fn selected(expr: &str) -> Vec<&'static str> {
    let filterset = parse(expr);
    queries()
        .filter(|q| filterset.matches(q))
        .map(|q| q.test_name)
        .collect()
}

fn error(expr: &str) -> String {
    match Filterset::parse(expr, &graph()) {
        Ok(f) => panic!("{expr:?} unexpectedly parsed: {f:?}"),
        Err(e) => e.to_string(),
    }
}

/// Just the `error: …` lines, for cases where only the message matters.
fn messages(expr: &str) -> Vec<String> {
    error(expr)
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .map(str::to_owned)
        .collect()
}

const ALL: [&str; 8] = [
    "a_unit::adds",
    "it::android_works",
    "b_unit::subtracts",
    "cli::parses",
    "c_unit::expands",
    "src/lib.rs - add (line 3)",
    "bench_fast",
    "demo::and_or_not",
];

#[test]
fn all_and_none() {
    assert_eq!(selected("all()"), ALL);
    assert_eq!(selected("none()"), Vec::<&str>::new());
    assert_eq!(selected(" all( ) "), ALL);
}

#[test]
fn test_defaults_to_contains() {
    assert_eq!(
        selected("test(unit)"),
        ["a_unit::adds", "b_unit::subtracts", "c_unit::expands"]
    );
    assert_eq!(selected("test(=bench_fast)"), ["bench_fast"]);
    assert_eq!(selected("test(=bench)"), Vec::<&str>::new());
    assert_eq!(selected("test(~parse)"), ["cli::parses"]);
    assert_eq!(selected("test(/^b_unit/)"), ["b_unit::subtracts"]);
    assert_eq!(selected("test(#*::expands)"), ["c_unit::expands"]);
    assert_eq!(selected("test(#expands)"), Vec::<&str>::new());
}

#[test]
fn package_defaults_to_glob() {
    assert_eq!(
        selected("package(a)"),
        ["a_unit::adds", "it::android_works"]
    );
    assert_eq!(
        selected("package(b*)"),
        [
            "b_unit::subtracts",
            "cli::parses",
            "bench_fast",
            "demo::and_or_not"
        ]
    );
    assert_eq!(
        selected("package(=b)"),
        ["b_unit::subtracts", "cli::parses"]
    );
    assert_eq!(
        selected("package(~asi)"),
        ["bench_fast", "demo::and_or_not"]
    );
    assert_eq!(
        selected("package(/^[ac]$/)"),
        [
            "a_unit::adds",
            "it::android_works",
            "c_unit::expands",
            "src/lib.rs - add (line 3)"
        ]
    );
}

#[test]
fn deps_include_transitive_dependencies() {
    assert_eq!(selected("deps(a)"), ALL[..6]);
    assert_eq!(selected("deps(b)"), ALL[2..6]);
    assert_eq!(selected("deps(c)"), ALL[4..6]);
    assert_eq!(selected("deps(=basic)"), ALL[6..]);
}

#[test]
fn rdeps_include_transitive_dependents() {
    assert_eq!(selected("rdeps(c)"), ALL[..6]);
    assert_eq!(selected("rdeps(b)"), ALL[..4]);
    assert_eq!(selected("rdeps(a)"), ALL[..2]);
    assert_eq!(
        selected("rdeps(a) | rdeps(basic)"),
        [
            "a_unit::adds",
            "it::android_works",
            "bench_fast",
            "demo::and_or_not"
        ]
    );
}

#[test]
fn binary_and_binary_id_default_to_glob() {
    assert_eq!(selected("binary(it)"), ["it::android_works"]);
    assert_eq!(selected("binary(b*)"), ["b_unit::subtracts", "cli::parses"]);
    assert_eq!(selected("binary(=speed)"), ["bench_fast"]);
    assert_eq!(selected("binary_id(b)"), ["b_unit::subtracts"]);
    assert_eq!(selected("binary_id(a::*)"), ["it::android_works"]);
    // `*` crosses both `::` and `/`: names are not paths.
    assert_eq!(selected("binary_id(*/b-cli)"), ["cli::parses"]);
    assert_eq!(
        selected("binary_id(basic::*)"),
        ["bench_fast", "demo::and_or_not"]
    );
    assert_eq!(selected("binary_id(~bench/)"), ["bench_fast"]);
    assert_eq!(selected("binary_id(/::bin\\//)"), ["cli::parses"]);
}

#[test]
fn kind_defaults_to_equal() {
    assert_eq!(selected("kind(lib)"), ["a_unit::adds", "b_unit::subtracts"]);
    assert_eq!(selected("kind(li)"), Vec::<&str>::new());
    assert_eq!(selected("kind(doctest)"), ["src/lib.rs - add (line 3)"]);
    assert_eq!(selected("kind(proc-macro)"), ["c_unit::expands"]);
    assert_eq!(
        selected("kind(=bench) + kind(example)"),
        ["bench_fast", "demo::and_or_not"]
    );
    assert_eq!(
        selected("kind(~b)"),
        [
            "a_unit::adds",
            "b_unit::subtracts",
            "cli::parses",
            "bench_fast"
        ]
    );
    assert_eq!(
        selected("kind(#*o*)"),
        ["c_unit::expands", "src/lib.rs - add (line 3)"]
    );
}

#[test]
fn platform() {
    assert_eq!(selected("platform(host)"), ["c_unit::expands"]);
    assert_eq!(selected("platform(=host)"), ["c_unit::expands"]);
    assert_eq!(selected("platform(target)").len(), 7);
    assert_eq!(selected("platform( target )").len(), 7);
}

#[test]
fn precedence() {
    // `&` binds tighter than `|`.
    assert_eq!(selected("all() | none() & none()"), ALL);
    assert_eq!(
        selected("package(a) | package(b) & kind(bin)"),
        ["a_unit::adds", "it::android_works", "cli::parses"]
    );
    // `not` binds tighter than `&`.
    assert_eq!(selected("not none() & none()"), Vec::<&str>::new());
    assert_eq!(selected("not all() | all()"), ALL);
    // `-` is left-associative and at the level of `&`.
    assert_eq!(selected("all() - none() - all()"), Vec::<&str>::new());
    assert_eq!(selected("all() - all() & none()"), Vec::<&str>::new());
    assert_eq!(
        selected("deps(a) - package(c) - kind(test)"),
        ["a_unit::adds", "b_unit::subtracts", "cli::parses"]
    );
    // `+` is `|`.
    assert_eq!(selected("none() + all()"), ALL);
    // Parentheses override.
    assert_eq!(selected("(all() | none()) & none()"), Vec::<&str>::new());
    assert_eq!(selected("not (all() | all())"), Vec::<&str>::new());
    assert_eq!(
        selected("(package(a) | package(b)) & kind(bin)"),
        ["cli::parses"]
    );
    assert_eq!(selected("!!((all()))"), ALL);
}

#[test]
fn word_operators_need_word_boundaries() {
    assert_eq!(selected("test(android)"), ["it::android_works"]);
    assert_eq!(
        selected("test(and)"),
        ["it::android_works", "c_unit::expands", "demo::and_or_not"]
    );
    assert_eq!(
        selected("test(or) or test(not)"),
        ["it::android_works", "demo::and_or_not"]
    );
    assert_eq!(selected("test(_or_) or test(not)"), ["demo::and_or_not"]);
    assert_eq!(
        selected("test(android) and kind(test)"),
        ["it::android_works"]
    );
    assert_eq!(
        selected("test(android)and(kind(test))"),
        ["it::android_works"]
    );
    assert_eq!(
        selected("not test(_) and not test(::)"),
        ["src/lib.rs - add (line 3)"]
    );
    assert_eq!(selected("not(test(unit))").len(), 5);
    assert_eq!(messages("nottest(a)"), ["unknown predicate `nottest`"]);
    assert_eq!(messages("test(a) android"), ["unknown operator `android`"]);
    assert_eq!(messages("test(a) andtest(b)"), ["expected operator"]);
    assert_eq!(messages("test(a) AND test(b)"), ["unknown operator `AND`"]);
    assert_eq!(
        messages("test(a) andé test(b)"),
        ["unknown operator `andé`"]
    );
}

#[test]
fn escapes_and_whitespace_in_matchers() {
    assert_eq!(
        selected("test(=src/lib.rs - add (line 3\\))"),
        ["src/lib.rs - add (line 3)"]
    );
    assert_eq!(
        selected("test(/\\(line \\d+\\)$/)"),
        ["src/lib.rs - add (line 3)"]
    );
    assert_eq!(selected("test(/(line 3)/)"), ["src/lib.rs - add (line 3)"]);
    assert_eq!(selected("test(/src\\/lib/)"), ["src/lib.rs - add (line 3)"]);
    assert_eq!(selected("test(\\u{61}dds)"), ["a_unit::adds"]);
    assert_eq!(selected("test( adds )"), ["a_unit::adds"]);
    assert_eq!(selected("test(= bench_fast )"), ["bench_fast"]);
    assert_eq!(selected("  test ( adds )  "), ["a_unit::adds"]);
    assert_eq!(selected("test(a\\,b)"), Vec::<&str>::new());
    assert_eq!(
        selected("test(#src/*[(]line 3[\\)])"),
        ["src/lib.rs - add (line 3)"]
    );
    assert_eq!(selected("test(\tadds\n)|\nnone()"), ["a_unit::adds"]);
}

fn parse_all(exprs: &[String]) -> Filtersets {
    match Filtersets::parse_all(exprs, &graph()) {
        Ok(f) => f,
        Err(e) => panic!("{exprs:?} failed to parse:\n{e}"),
    }
}

#[test]
fn filtersets_are_or_ed_and_empty_selects_everything() {
    let none = parse_all(&[]);
    assert!(none.is_empty());
    assert!(queries().all(|q| none.matches(&q)));

    let exprs = ["test(adds)".to_owned(), "package(b)".to_owned()];
    let some = parse_all(&exprs);
    assert!(!some.is_empty());
    let picked: Vec<_> = queries()
        .filter(|q| some.matches(q))
        .map(|q| q.test_name)
        .collect();
    assert_eq!(picked, ["a_unit::adds", "b_unit::subtracts", "cli::parses"]);
}

#[test]
fn filtersets_report_every_bad_expression() {
    let exprs = ["test(a".to_owned(), "all()".to_owned(), "kind()".to_owned()];
    let Err(e) = Filtersets::parse_all(&exprs, &graph()) else {
        panic!("parsed");
    };
    assert_eq!(
        e.to_string(),
        "error: expected close parenthesis\n  test(a\n        ^ missing `)`\n\n\
         error: expected name matcher\n  kind()\n       ^ missing name"
    );
    assert_eq!(e.diagnostics().count(), 2);
}

#[test]
fn error_unknown_predicate() {
    assert_eq!(messages("binary-id(x)"), ["unknown predicate `binary-id`"]);
    assert_eq!(messages("tést(x)"), ["unknown predicate `tést`"]);
    assert_eq!(messages("default()"), ["unknown predicate `default`"]);
    assert_eq!(
        error("tset(foo)"),
        "error: unknown predicate `tset`\n  tset(foo)\n  ^^^^ expected one of all, none, test, \
         package, deps, rdeps, binary, binary_id, kind, platform"
    );
}

#[test]
fn error_missing_close_parenthesis() {
    assert_eq!(
        error("test(foo"),
        "error: expected close parenthesis\n  test(foo\n          ^ missing `)`"
    );
    assert_eq!(
        error("(test(a) | test(b)"),
        "error: expected close parenthesis\n  (test(a) | test(b)\n                    ^ missing `)`"
    );
    assert_eq!(
        error("test(/a/ b)"),
        "error: expected close parenthesis\n  test(/a/ b)\n           ^ missing `)`"
    );
}

#[test]
fn error_invalid_regex() {
    assert_eq!(
        error("test(/[a/)"),
        "error: invalid regex\n  test(/[a/)\n        ^^ unclosed character class"
    );
}

#[test]
fn error_invalid_glob() {
    assert_eq!(
        error("package(#a[b)"),
        "error: invalid glob\n  package(#a[b)\n           ^^^ unclosed character class; missing ']'"
    );
}

#[test]
fn error_invalid_platform() {
    assert_eq!(
        error("platform(foo)"),
        "error: invalid argument for platform\n  platform(foo)\n           ^^^ expected `host` or `target`"
    );
    assert_eq!(
        messages("platform(~host)"),
        ["invalid argument for platform"]
    );
    assert_eq!(messages("platform()"), ["invalid argument for platform"]);
}

#[test]
fn error_empty_matcher() {
    assert_eq!(
        error("test()"),
        "error: expected name matcher\n  test()\n       ^ missing name"
    );
    assert_eq!(
        error("package( = )"),
        "error: expected name matcher\n  package( = )\n             ^ missing name"
    );
}

#[test]
fn error_trailing_input() {
    assert_eq!(
        error("test(a) xor test(b)"),
        "error: unknown operator `xor`\n  test(a) xor test(b)\n          ^^^ expected `and`, `or`, `&`, `|`, `+` or `-`"
    );
    assert_eq!(
        error("test(a) test(b)"),
        "error: expected operator\n  test(a) test(b)\n          ^^^^ expected an operator such as `&` or `|` before this"
    );
    assert_eq!(
        error("test(a))"),
        "error: unmatched close parenthesis\n  test(a))\n         ^ no `(` to close"
    );
    assert_eq!(messages("test(a) ^ test(b)"), ["unknown operator `^`"]);
    assert_eq!(messages("test(a) (test(b))"), ["expected operator"]);
}

#[test]
fn error_missing_expression() {
    assert_eq!(
        error(""),
        "error: expected expression\n  \n  ^ missing expression"
    );
    assert_eq!(
        error("test(a) &"),
        "error: expected expression\n  test(a) &\n           ^ missing expression"
    );
    assert_eq!(
        error("test(a) && test(b)"),
        "error: expected expression\n  test(a) && test(b)\n           ^ missing expression"
    );
    assert_eq!(messages("not"), ["expected expression"]);
    assert_eq!(messages("()"), ["expected expression"]);
    assert_eq!(messages("test(a) - - test(b)"), ["expected expression"]);
}

#[test]
fn error_arguments() {
    assert_eq!(
        error("all(x)"),
        "error: unexpected argument\n  all(x)\n      ^ `all()` takes no argument"
    );
    assert_eq!(
        error("test(a, b)"),
        "error: unexpected comma\n  test(a, b)\n        ^ `test()` takes a single argument"
    );
    assert_eq!(messages("test"), ["expected open parenthesis"]);
    assert_eq!(messages("test(/abc)"), ["expected close regex"]);
}

#[test]
fn error_invalid_escape() {
    assert_eq!(
        error("test(a\\qb)"),
        "error: invalid escape sequence\n  test(a\\qb)\n        ^^ expected one of \\n \\r \\t \\\\ \\/ \\) \\, \\u{…}"
    );
}

#[test]
fn error_no_package_matched() {
    assert_eq!(
        error("package(zzz) | deps(=aa) | rdeps(/^q/)"),
        "error: no workspace package matched\n  package(zzz) | deps(=aa) | rdeps(/^q/)\n          ^^^ no package matched this\n\n\
         error: no workspace package matched\n  package(zzz) | deps(=aa) | rdeps(/^q/)\n                      ^^^ no package matched this\n\n\
         error: no workspace package matched\n  package(zzz) | deps(=aa) | rdeps(/^q/)\n                                   ^^^^ no package matched this"
    );
}

#[test]
fn every_bad_matcher_is_reported() {
    assert_eq!(
        messages("test(/[/) | not (package(#[) & kind()) | platform(x)"),
        [
            "invalid regex",
            "invalid glob",
            "expected name matcher",
            "invalid argument for platform"
        ]
    );
}
