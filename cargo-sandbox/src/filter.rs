//! The user's test selection as libtest takes it: filters, `--exact`, `--skip`, the ignored
//! mode, `--test-threads`, `--nocapture`, `--list` after `--`; and `--partition`.

use anyhow::bail;

/// `--run-ignored`, nextest's spelling of libtest's `--ignored` / `--include-ignored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunIgnored {
    Default,
    #[value(alias = "ignored-only")]
    Only,
    All,
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
    pub fn run_ignored(&mut self, which: RunIgnored) {
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
