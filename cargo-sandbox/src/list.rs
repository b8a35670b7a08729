//! Which tests there are and which of them to run: each binary is asked for its tests (inside a
//! sandbox too: listing runs the binary's code), then the user's filters select as `cargo test`
//! would.

use crate::config::{Cap, Resolved};
use crate::event::{TestId, TestRecord};
use crate::filter::{IgnoredMode, TestFilter};
use crate::job::BinaryContext;
use crate::outcome::{classify, Outcome};
use harness::{Engine, Exit};
use std::path::Path;
use std::time::{Duration, Instant};

/// The pseudo-test a binary that cannot list its tests is reported as.
pub const LISTING: &str = "<listing>";
/// The name an unlisted binary's run goes by until its tests are known (`--isolation binary`).
pub const WHOLE_BINARY: &str = "(all tests)";

/// Whether a record stands for a binary rather than one of its tests (never retried).
pub fn is_pseudo_test(name: &str) -> bool {
    name == LISTING || name == WHOLE_BINARY
}

/// One test of one binary, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTest {
    pub name: String,
    pub ignored: bool,
    /// Settings the test declares itself (sandbox-harness trials).
    pub declared: Option<harness::TrialSettings>,
}

/// Parses `--list --format terse` output: `name: test` lines (benchmarks are left out).
pub fn parse_terse(output: &str) -> Vec<String> {
    names_of_kind(output, &[": test"])
}

/// The benchmarks of `--list --format terse` output: `name: benchmark` (libtest) or
/// `name: bench` (libtest-mimic) lines.
fn parse_benches(output: &str) -> Vec<String> {
    names_of_kind(output, &[": benchmark", ": bench"])
}

fn names_of_kind(output: &str, suffixes: &[&str]) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| suffixes.iter().find_map(|s| line.strip_suffix(s)))
        .map(str::to_owned)
        .collect()
}

/// What a binary lists: its tests, and the names of its benchmarks, which a run of some of its
/// tests must skip (a harness runs benchmarks once as tests unless they are filtered out).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub tests: Vec<ListedTest>,
    pub benches: Vec<String>,
}

impl Listing {
    /// Every name the binary lists, tests and benchmarks (see `schedule::selection_args`).
    pub fn names(&self) -> std::sync::Arc<[String]> {
        self.tests
            .iter()
            .map(|t| t.name.clone())
            .chain(self.benches.iter().cloned())
            .collect()
    }

    /// The tests (with the settings they declare) and benchmarks of a binary's two listings.
    fn read(listing: &str, ignored: &str) -> Listing {
        let ignored = parse_terse(ignored);
        let mut tests = combine(parse_terse(listing), &ignored);
        for (name, limits) in parse_declared_settings(listing) {
            if let Some(test) = tests.iter_mut().find(|t| t.name == name) {
                test.declared = Some(limits);
            }
        }
        Listing {
            tests,
            benches: parse_benches(listing),
        }
    }
}

/// Settings a `sandbox-harness` binary declares for its trials (`cargo-sandbox-limits` lines,
/// printed when the listing asks for them).
pub fn parse_declared_settings(output: &str) -> Vec<(String, harness::TrialSettings)> {
    output
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            (parts.next()? == harness::front::LIMITS_LINE).then_some(())?;
            let name = parts.next()?.to_owned();
            Some((name, serde_json::from_str(parts.next()?).ok()?))
        })
        .collect()
}

/// Combines the full listing with the `--ignored` listing.
pub fn combine(all: Vec<String>, ignored: &[String]) -> Vec<ListedTest> {
    let mut tests: Vec<ListedTest> = all
        .into_iter()
        .map(|name| ListedTest {
            ignored: ignored.contains(&name),
            name,
            declared: None,
        })
        .collect();
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    tests.dedup();
    tests
}

/// What to do with each selected test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Run,
    /// Reported as ignored without running.
    Ignore,
}

pub fn select(tests: &[ListedTest], filter: &TestFilter) -> Vec<(String, bool, Plan)> {
    tests
        .iter()
        .filter(|t| filter.matches(&t.name))
        .filter_map(|t| {
            let plan = match (filter.ignored, t.ignored) {
                (IgnoredMode::Only, false) => return None,
                (IgnoredMode::Skip, true) => Plan::Ignore,
                _ => Plan::Run,
            };
            Some((t.name.clone(), t.ignored, plan))
        })
        .collect()
}

/// The shell that runs a binary's two listings in one sandbox.
const SHELL: &str = "/bin/sh";
/// Printed between them; no test name contains it.
const LISTING_SEPARATOR: &str = "@@ cargo-sandbox: ignored tests follow @@";

/// Lists a binary's tests in a sandbox; a binary that cannot list is reported as a failed
/// pseudo-test named `<listing>`.
pub fn in_sandbox(
    engine: &Engine,
    ctx: &BinaryContext,
    settings: &Resolved,
    host_env: &[(String, String)],
    seed: u64,
) -> Result<Listing, Box<TestRecord>> {
    let mut settings = settings.clone();
    settings.timeout = Cap::Max(settings.timeout.value().unwrap_or(Duration::from_secs(60)));
    let lister = Lister {
        engine,
        ctx,
        settings: &settings,
        host_env,
        seed,
        binary: ctx.binary.path.display().to_string(),
    };
    let (listing, ignored) = match lister.both() {
        Some(both) => both,
        None => lister.one_by_one()?,
    };
    Ok(Listing::read(&listing, &ignored))
}

/// What listing one binary takes: the sandbox it lists in and the binary's path.
struct Lister<'a> {
    engine: &'a Engine,
    ctx: &'a BinaryContext,
    settings: &'a Resolved,
    host_env: &'a [(String, String)],
    seed: u64,
    binary: String,
}

impl Lister<'_> {
    /// Both listings (all tests, then the ignored ones) in one sandbox, when there is a shell
    /// to run them one after the other and all of the text was kept.
    fn both(&self) -> Option<(String, String)> {
        if !Path::new(SHELL).exists() {
            return None;
        }
        let (text, whole) = self
            .run(vec![
                SHELL.to_owned(),
                "-c".to_owned(),
                format!(
                    "\"$0\" --list --format terse && echo '{LISTING_SEPARATOR}' && \
                     exec \"$0\" --list --format terse --ignored"
                ),
                self.binary.clone(),
            ])
            .ok()?;
        let (all, ignored) = text
            .split_once(&format!("\n{LISTING_SEPARATOR}\n"))
            .filter(|_| whole)?;
        Some((format!("{all}\n"), ignored.to_owned()))
    }

    /// Each listing in a sandbox of its own, so that a failure is reported as the binary's own.
    fn one_by_one(&self) -> Result<(String, String), Box<TestRecord>> {
        let list = |extra: &[&str]| -> Vec<String> {
            [self.binary.as_str(), "--list", "--format", "terse"]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect()
        };
        Ok((self.run(list(&[]))?.0, self.run(list(&["--ignored"]))?.0))
    }

    /// The listing's text, and whether all of it was kept.
    fn run(&self, argv: Vec<String>) -> Result<(String, bool), Box<TestRecord>> {
        let (ctx, settings) = (self.ctx, self.settings);
        let mut spec = crate::sandbox_spec::spec(settings, argv, ctx, self.host_env, self.seed);
        // sandbox-harness binaries then print the limits their trials declare.
        spec.env
            .push((harness::front::LIST_LIMITS_VAR.to_owned(), "1".to_owned()));
        let spec = std::sync::Arc::new(spec);
        let started = Instant::now();
        let id = TestId {
            binary_id: ctx.binary.id.clone(),
            name: LISTING.to_owned(),
        };
        match self.engine.run(&spec, None) {
            Ok(result) if result.exit == Exit::Code(0) => Ok(result
                .output
                .map(|o| (o.text(), o.truncated_bytes == 0))
                .unwrap_or_default()),
            Ok(result) => {
                let outcome = classify(&result, true, settings.policies());
                Err(Box::new(TestRecord {
                    error: Some("listing the binary's tests failed".into()),
                    ..TestRecord::ran(id, outcome, true, started.elapsed(), &result, &spec)
                }))
            }
            Err(e) => Err(Box::new(TestRecord {
                spec: Some(spec.clone()),
                error: Some(e.to_string()),
                ..TestRecord::not_run(id, Outcome::SandboxError, true)
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Partition;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_filter_becomes_libtests_own_arguments() {
        let f = TestFilter::new(
            &s(&["a"]),
            &s(&[
                "b",
                "--exact",
                "--skip=c",
                "--skip",
                "d",
                "--include-ignored",
            ]),
        )
        .unwrap();
        assert_eq!(
            f.libtest_args(),
            s(&[
                "a",
                "b",
                "--exact",
                "--skip",
                "c",
                "--skip",
                "d",
                "--include-ignored"
            ])
        );
        assert_eq!(TestFilter::default().libtest_args(), Vec::<String>::new());
    }

    #[test]
    fn partitions_cover_every_test_once() {
        let tests: Vec<(String, String)> = (0..100)
            .map(|i| (format!("b{}", i % 7), format!("t{i}")))
            .collect();
        for kind in ["hash", "slice"] {
            let shards: Vec<Partition> = (1..=3)
                .map(|k| format!("{kind}:{k}/3").parse().unwrap())
                .collect();
            for (i, (b, n)) in tests.iter().enumerate() {
                assert_eq!(
                    shards.iter().filter(|p| p.includes(i, b, n)).count(),
                    1,
                    "{kind} {b} {n}"
                );
            }
        }
        assert!("hash:0/3".parse::<Partition>().is_err());
        assert!("hash:4/3".parse::<Partition>().is_err());
        assert!("mod:1/3".parse::<Partition>().is_err());
    }

    #[test]
    fn parses_terse_listings() {
        let out = "tests::a: test\ntests::b: test\nbench_x: benchmark\nmimic_y: bench\n";
        assert_eq!(parse_terse(out), s(&["tests::a", "tests::b"]));
        assert_eq!(parse_benches(out), s(&["bench_x", "mimic_y"]));
        // A run of some tests skips the benchmarks too: harnesses run them once as tests.
        let listing = Listing {
            tests: combine(parse_terse(out), &[]),
            benches: parse_benches(out),
        };
        assert_eq!(
            &*listing.names(),
            &s(&["tests::a", "tests::b", "bench_x", "mimic_y"])[..]
        );
    }

    #[test]
    fn filters_like_libtest() {
        let f = TestFilter::new(
            &s(&["parser"]),
            &s(&["--skip", "slow", "--include-ignored"]),
        )
        .unwrap();
        assert!(f.matches("parser::fast"));
        assert!(!f.matches("parser::slow"));
        assert!(!f.matches("lexer::x"));
        assert_eq!(f.ignored, IgnoredMode::Include);
        let exact = TestFilter::new(&[], &s(&["--exact", "a::b"])).unwrap();
        assert!(exact.matches("a::b"));
        assert!(!exact.matches("a::bc"));
        assert!(TestFilter::new(&[], &s(&["--bogus"])).is_err());
    }

    #[test]
    fn ignored_tests_follow_the_mode() {
        let tests = combine(s(&["a", "b"]), &s(&["b"]));
        let plans = |mode| {
            let f = TestFilter {
                ignored: mode,
                ..TestFilter::default()
            };
            select(&tests, &f)
                .into_iter()
                .map(|(n, _, p)| (n, p))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            plans(IgnoredMode::Skip),
            vec![("a".into(), Plan::Run), ("b".into(), Plan::Ignore)]
        );
        assert_eq!(plans(IgnoredMode::Only), vec![("b".into(), Plan::Run)]);
        assert_eq!(
            plans(IgnoredMode::Include),
            vec![("a".into(), Plan::Run), ("b".into(), Plan::Run)]
        );
    }
}
