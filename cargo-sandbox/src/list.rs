//! Which tests there are and which of them to run: each binary is asked for its tests (inside a
//! sandbox too: listing runs the binary's code), then the user's filters select as `cargo test`
//! would.

use crate::config::{Cap, Resolved};
use crate::event::{TestId, TestRecord};
use crate::job::BinaryContext;
use crate::outcome::{classify, Outcome};
use anyhow::bail;
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

/// How ignored tests are treated (`--ignored`, `--include-ignored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IgnoredMode {
    /// Run the others; report ignored ones as ignored.
    #[default]
    Skip,
    /// Run only the ignored ones.
    Only,
    /// Run them all.
    Include,
}

/// Test selection, from the positional filters and the libtest flags after `--`.
#[derive(Debug, Clone, Default)]
pub struct TestFilter {
    pub filters: Vec<String>,
    pub skip: Vec<String>,
    pub exact: bool,
    pub ignored: IgnoredMode,
    /// libtest's `--test-threads N`: how many sandboxes at once, when `-j` does not say.
    pub test_threads: Option<usize>,
    /// libtest's `--nocapture`: as `--no-capture`.
    pub nocapture: bool,
    /// libtest's `--list`: as `--list`.
    pub list: bool,
}

impl TestFilter {
    /// Parses libtest's flags the way libtest does; flags that only make sense for libtest's own
    /// runner are accepted and ignored, anything else is an error.
    pub fn new(filters: &[String], libtest: &[String]) -> anyhow::Result<TestFilter> {
        let mut f = TestFilter {
            filters: filters.to_vec(),
            ..TestFilter::default()
        };
        let mut args = libtest.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--ignored" => f.ignored = IgnoredMode::Only,
                "--include-ignored" => f.ignored = IgnoredMode::Include,
                "--exact" => f.exact = true,
                "--skip" => match args.next() {
                    Some(name) => f.skip.push(name.clone()),
                    None => bail!("`--skip` needs a test name after it"),
                },
                "--nocapture" | "--no-capture" => f.nocapture = true,
                "--list" => f.list = true,
                "--show-output" | "--quiet" | "-q" => {}
                "--test-threads" => match args.next() {
                    Some(n) => f.test_threads = Some(test_threads(n)?),
                    None => bail!("`--test-threads` needs a number after it"),
                },
                "--color" | "--format" => {
                    args.next();
                }
                other if other.starts_with("--skip=") => {
                    f.skip.push(other["--skip=".len()..].to_owned())
                }
                other if other.starts_with("--test-threads=") => {
                    f.test_threads = Some(test_threads(&other["--test-threads=".len()..])?)
                }
                other if other.starts_with("--color=") || other.starts_with("--format=") => {}
                other if other.starts_with('-') => bail!(
                    "the libtest flag `{other}` is not supported by cargo sandbox test (supported: \
                     --ignored, --include-ignored, --exact, --skip NAME, --list and test-name filters)"
                ),
                filter => f.filters.push(filter.to_owned()),
            }
        }
        Ok(f)
    }

    /// `--run-ignored`, which overrides `--ignored` / `--include-ignored`.
    pub fn run_ignored(&mut self, which: crate::cli::RunIgnored) {
        use crate::cli::RunIgnored;
        self.ignored = match which {
            RunIgnored::Default => IgnoredMode::Skip,
            RunIgnored::Only => IgnoredMode::Only,
            RunIgnored::All => IgnoredMode::Include,
        };
    }

    /// The selection as libtest's own arguments, for a binary that selects its tests itself.
    pub fn libtest_args(&self) -> Vec<String> {
        let mut args = self.filters.clone();
        if self.exact {
            args.push("--exact".to_owned());
        }
        for name in &self.skip {
            args.extend(["--skip".to_owned(), name.clone()]);
        }
        args.extend(self.ignored_flag().map(str::to_owned));
        args
    }

    /// libtest's flag for the ignored mode, if any.
    pub fn ignored_flag(&self) -> Option<&'static str> {
        match self.ignored {
            IgnoredMode::Skip => None,
            IgnoredMode::Only => Some("--ignored"),
            IgnoredMode::Include => Some("--include-ignored"),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        let hit = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(hit)) && !self.skip.iter().any(hit)
    }
}

/// libtest's `--test-threads` value: a positive count.
fn test_threads(text: &str) -> anyhow::Result<usize> {
    match text.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("`--test-threads {text}`: the number of threads must be a positive integer"),
    }
}

/// `--partition hash:K/N` or `slice:K/N`: which shard of the selected tests this run takes.
/// `hash` is stable (a test's shard depends only on its binary id and name); `slice` deals the
/// tests, in report order, round-robin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Hash { shard: u64, of: u64 },
    Slice { shard: u64, of: u64 },
}

impl std::str::FromStr for Partition {
    type Err = String;

    fn from_str(text: &str) -> Result<Partition, String> {
        let bad = || format!("`{text}` is not a partition (examples: hash:1/3, slice:2/4)");
        let (kind, fraction) = text.split_once(':').ok_or_else(bad)?;
        let (shard, of) = fraction.split_once('/').ok_or_else(bad)?;
        let (shard, of): (u64, u64) = (
            shard.parse().map_err(|_| bad())?,
            of.parse().map_err(|_| bad())?,
        );
        if of == 0 || shard == 0 || shard > of {
            return Err(format!(
                "`{text}`: the shard must be between 1 and the number of shards"
            ));
        }
        match kind {
            "hash" => Ok(Partition::Hash { shard, of }),
            "slice" => Ok(Partition::Slice { shard, of }),
            _ => Err(bad()),
        }
    }
}

impl Partition {
    /// Whether the `index`-th selected test (in report order) belongs to this shard.
    pub fn includes(&self, index: usize, binary_id: &str, name: &str) -> bool {
        match *self {
            Partition::Slice { shard, of } => index as u64 % of == shard - 1,
            Partition::Hash { shard, of } => {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in binary_id.bytes().chain([0]).chain(name.bytes()) {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
                h % of == shard - 1
            }
        }
    }
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
    // The listing's text, and whether all of it was kept.
    let run = |argv: Vec<String>| -> Result<(String, bool), Box<TestRecord>> {
        let mut spec = crate::sandbox_spec::spec(&settings, argv, ctx, host_env, seed);
        // sandbox-harness binaries then print the limits their trials declare.
        spec.env
            .push((harness::front::LIST_LIMITS_VAR.to_owned(), "1".to_owned()));
        let spec = std::sync::Arc::new(spec);
        let started = Instant::now();
        let id = TestId {
            binary_id: ctx.binary.id.clone(),
            name: LISTING.to_owned(),
        };
        match engine.run(&spec, None) {
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
    };
    let binary = ctx.binary.path.display().to_string();
    let list = |extra: &[&str]| -> Vec<String> {
        [binary.as_str(), "--list", "--format", "terse"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    // Both listings in one sandbox when there is a shell to run them one after the other. When
    // that fails, each runs on its own, so a failure is reported as the binary's own.
    let both = Path::new(SHELL)
        .exists()
        .then(|| {
            run(vec![
                SHELL.to_owned(),
                "-c".to_owned(),
                format!(
                    "\"$0\" --list --format terse && echo '{LISTING_SEPARATOR}' && \
                     exec \"$0\" --list --format terse --ignored"
                ),
                binary.clone(),
            ])
            .ok()
        })
        .flatten();
    let (listing, ignored) = match both
        .as_ref()
        .filter(|(_, whole)| *whole)
        .and_then(|(b, _)| b.split_once(&format!("\n{LISTING_SEPARATOR}\n")))
    {
        Some((all, ignored)) => (format!("{all}\n"), ignored.to_owned()),
        None => (run(list(&[]))?.0, run(list(&["--ignored"]))?.0),
    };
    let ignored = parse_terse(&ignored);
    let mut tests = combine(parse_terse(&listing), &ignored);
    for (name, limits) in parse_declared_settings(&listing) {
        if let Some(test) = tests.iter_mut().find(|t| t.name == name) {
            test.declared = Some(limits);
        }
    }
    Ok(Listing {
        tests,
        benches: parse_benches(&listing),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
