//! Which tests there are and which of them to run: each binary is asked for its tests (inside a
//! sandbox too: listing runs the binary's code), then the user's filters select as `cargo test`
//! would.

use anyhow::bail;

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
                "--nocapture" | "--no-capture" | "--show-output" | "--quiet" | "-q" => {}
                "--test-threads" | "--color" | "--format" => {
                    args.next();
                }
                other if other.starts_with("--skip=") => {
                    f.skip.push(other["--skip=".len()..].to_owned())
                }
                other if other.starts_with("--test-threads=") || other.starts_with("--color=") => {}
                other if other.starts_with('-') => bail!(
                    "the libtest flag `{other}` is not supported by cargo sandbox test (supported: \
                     --ignored, --include-ignored, --exact, --skip NAME and test-name filters)"
                ),
                filter => f.filters.push(filter.to_owned()),
            }
        }
        Ok(f)
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

/// One test of one binary, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTest {
    pub name: String,
    pub ignored: bool,
}

/// Parses `--list --format terse` output: `name: test` lines (benchmarks are left out).
pub fn parse_terse(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// Combines the full listing with the `--ignored` listing.
pub fn combine(all: Vec<String>, ignored: &[String]) -> Vec<ListedTest> {
    let mut tests: Vec<ListedTest> = all
        .into_iter()
        .map(|name| ListedTest {
            ignored: ignored.contains(&name),
            name,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_terse_listings() {
        let out = "tests::a: test\ntests::b: test\nbench_x: benchmark\n";
        assert_eq!(parse_terse(out), s(&["tests::a", "tests::b"]));
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
