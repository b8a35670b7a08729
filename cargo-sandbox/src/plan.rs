//! Turns what was built and listed into the run's jobs: the user's filters and filtersets, the
//! configuration's settings per test, `--partition`, isolation grouping and repeats. Each
//! binary is planned on its own, as its listing comes in: while cargo still builds the others
//! (see `pipeline`), or all in report order once the build is done.

use crate::build::{self, BinaryKind, TestBinary};
use crate::cli::NoTests;
use crate::config::{Config, Isolation, Layer, Resolved};
use crate::doctest;
use crate::env;
use crate::event::{Event, TestId, TestRecord};
use crate::filter::{Partition, TestFilter};
use crate::filterset::{Filtersets, TestQuery};
use crate::job::{BinaryContext, Job, RunsAs, SelectedTest, Selection};
use crate::list::{self, Listing};
use crate::outcome::Outcome;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a test's settings come from, lowest first: the configuration's profiles, the limits a
/// test declares itself (sandbox-harness trials), the profile's overrides, the command line.
#[derive(Clone, Copy)]
pub struct Layers<'a> {
    pub config: &'a Config,
    pub profile: &'a str,
    /// The command line's flags, above everything else.
    pub cli: &'a Layer,
}

impl Layers<'_> {
    /// Settings for a package, binary and test (empty names: the run's base), with what the
    /// test declares itself.
    pub fn resolve(
        &self,
        package: &str,
        binary: &str,
        test: &str,
        declared: Option<&Layer>,
        query: Option<&TestQuery>,
    ) -> Resolved {
        let mut layers = self
            .config
            .layers_for(self.profile, package, binary, test, query);
        if let Some(declared) = declared {
            let first_override = layers
                .iter()
                .position(|(_, origin)| origin.contains(".overrides["))
                .unwrap_or(layers.len());
            layers.insert(
                first_override,
                (declared, "declared by the test".to_owned()),
            );
        }
        layers.push((self.cli, "command line".to_owned()));
        Resolved::from_layers(layers).0
    }
}

/// How a binary's tests are found.
pub enum Runs {
    /// Run whole, libtest selecting: its output names the tests.
    Whole(Resolved),
    /// Listed first (in a sandbox: listing runs its code).
    Listed(Resolved),
}

/// What the plan of every binary shares.
pub struct Planner<'a> {
    pub layers: Layers<'a>,
    pub filter: &'a TestFilter,
    pub filtersets: &'a Filtersets,
    pub partition: Option<Partition>,
    /// `--list`: every binary is listed, none run whole.
    pub listing_only: bool,
}

/// A part of the run's plan (one binary's, or the doc tests'), and how it counts.
#[derive(Debug, Default)]
pub struct Planned {
    /// Every attempt its own job (`--repeat`), in listing order.
    pub jobs: Vec<Job>,
    /// Tests reported without a sandbox: ignored, in another partition, settled by rustdoc,
    /// a binary that could not list (its `<listing>` pseudo-test).
    pub not_run: Vec<TestRecord>,
    /// Tests to run (named up front; an unlisted binary's are counted as they report).
    pub tests: usize,
    pub binaries_with_tests: usize,
    pub unlisted_binaries: usize,
}

impl Planned {
    pub fn add(&mut self, other: Planned) {
        self.jobs.extend(other.jobs);
        self.not_run.extend(other.not_run);
        self.tests += other.tests;
        self.binaries_with_tests += other.binaries_with_tests;
        self.unlisted_binaries += other.unlisted_binaries;
    }

    /// Tests the run starts with: those to run and those settled without a sandbox.
    pub fn counted(&self) -> usize {
        self.tests
            + self
                .not_run
                .iter()
                .filter(|r| !matches!(r.outcome, Outcome::Ignored | Outcome::SkippedByPartition))
                .count()
    }

    pub fn ignored(&self) -> usize {
        self.not_run
            .iter()
            .filter(|r| r.outcome == Outcome::Ignored)
            .count()
    }

    /// The run's start as the terminal announces it.
    pub fn run_started(&self, seed: u64, profile: &str, jobs: usize) -> Event {
        Event::RunStarted {
            tests: self.counted(),
            binaries: self.binaries_with_tests,
            unlisted_binaries: self.unlisted_binaries,
            ignored: self.ignored(),
            seed,
            profile: profile.to_owned(),
            jobs,
        }
    }

    /// `--no-tests`: whether a plan with nothing to run ends the run here (it said why).
    pub fn no_tests_end_the_run(&self, policy: NoTests) -> bool {
        if self.tests > 0 || self.unlisted_binaries > 0 {
            return false;
        }
        match policy {
            NoTests::Pass => false,
            NoTests::Warn => {
                say!("cargo-sandbox: warning: no tests to run");
                false
            }
            NoTests::Fail => {
                say!("cargo-sandbox: error: no tests to run (--no-tests fail)");
                true
            }
        }
    }
}

impl Planner<'_> {
    /// How a binary's tests are found, and the binary's settings: it runs whole without being
    /// listed first under `--isolation binary` when nothing may give one of its tests settings
    /// of its own.
    pub fn runs_whole(&self, ctx: &BinaryContext, package: &cargo_metadata::Package) -> Runs {
        let settings = self
            .layers
            .resolve(&package.name, &ctx.binary.id, "", None, None);
        let whole = !self.listing_only
            && settings.isolation == Isolation::Binary
            && settings.repeat == 1
            && self.partition.is_none()
            // A filterset may name tests, which only the listing tells.
            && self.filtersets.is_empty()
            && !self
                .layers
                .config
                .has_test_overrides(self.layers.profile, &package.name, &ctx.binary.id)
            // sandbox-harness trials may declare limits of their own, which only the listing
            // tells.
            && !package.dependencies.iter().any(|d| d.name == "sandbox-harness");
        if whole {
            Runs::Whole(settings)
        } else {
            Runs::Listed(settings)
        }
    }

    /// A binary run whole: libtest selects, its output names the tests.
    pub fn unlisted(&self, ctx: &Arc<BinaryContext>, settings: Resolved) -> Planned {
        Planned {
            jobs: vec![job(
                ctx,
                Selection::Unlisted { only: None },
                Arc::new(settings),
            )],
            unlisted_binaries: 1,
            ..Planned::default()
        }
    }

    /// A listed binary's jobs. `position`: of its first test in report order, counted on
    /// (`--partition slice`).
    pub fn listed(
        &self,
        ctx: &Arc<BinaryContext>,
        package: &str,
        listing: Result<Listing, Box<TestRecord>>,
        position: &mut usize,
    ) -> Planned {
        let mut planned = Planned::default();
        let listing = match listing {
            Ok(listing) => listing,
            Err(record) => {
                planned.not_run.push(with_kind(*record, ctx.binary.kind));
                return planned;
            }
        };
        let names = listing.names();
        let tests = &listing.tests;
        let mut selected = list::select(tests, self.filter);
        selected.retain(|(name, _, _)| {
            self.filtersets
                .matches(&ctx.binary.filter_query(package, name))
        });
        let mut whole_binary = selected.len() == tests.len();
        if let Some(partition) = self.partition {
            let before = selected.len();
            planned.not_run = partitioned(partition, &ctx.binary, &mut selected, position);
            whole_binary &= selected.len() == before;
        }
        let listed = |tests, whole_binary| Selection::Listed {
            tests,
            whole_binary,
            listing: names.clone(),
        };
        let mut groups: Vec<(Arc<Resolved>, Vec<SelectedTest>)> = Vec::new();
        for (name, is_ignored, plan) in &selected {
            if *plan == list::Plan::Ignore {
                let record =
                    TestRecord::not_run(test_id(&ctx.binary, name), Outcome::Ignored, false);
                planned.not_run.push(with_kind(record, ctx.binary.kind));
                continue;
            }
            let settings = self.test_settings(ctx, package, tests, name);
            let test = SelectedTest {
                name: name.clone(),
                ignored: *is_ignored,
            };
            planned.tests += 1;
            match settings.isolation {
                Isolation::Test => {
                    let selection = listed(vec![test], false);
                    planned.jobs.push(job(ctx, selection, Arc::new(settings)));
                }
                // Tests of one binary with the same settings share a sandbox.
                Isolation::Binary => match groups.iter_mut().find(|(s, _)| **s == settings) {
                    Some((_, group)) => group.push(test),
                    None => groups.push((Arc::new(settings), vec![test])),
                },
            }
        }
        let single_group = groups.len() == 1;
        for (settings, tests) in groups {
            let selection = listed(tests, whole_binary && single_group);
            planned.jobs.push(job(ctx, selection, settings));
        }
        if selected.iter().any(|(_, _, plan)| *plan == list::Plan::Run) {
            planned.binaries_with_tests = 1;
        }
        planned.jobs = repeated(planned.jobs);
        planned
    }

    /// A listed test's settings, with what it declares itself (sandbox-harness trials).
    fn test_settings(
        &self,
        ctx: &BinaryContext,
        package: &str,
        tests: &[list::ListedTest],
        name: &str,
    ) -> Resolved {
        let declared = tests
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.declared)
            .map(Layer::declared);
        let query = ctx.binary.filter_query(package, name);
        self.layers.resolve(
            package,
            &ctx.binary.id,
            name,
            declared.as_ref(),
            Some(&query),
        )
    }

    /// Each selected doc test a job of its own (one sandbox per doc test, whatever the
    /// isolation), under the settings of its package, `pkg::doctest/lib` and its name.
    /// `position`: after the other binaries' tests (`--partition slice`; rustdoc reports them
    /// in the order they finish, so they take theirs in report order).
    pub fn doc_tests(
        &self,
        collected: &doctest::Collected,
        built: &build::Build,
        host_env: &[(String, String)],
        position: &mut usize,
    ) -> Planned {
        let mut planned = Planned::default();
        let package_name = |id: &cargo_metadata::PackageId| {
            built
                .packages
                .get(id)
                .map(|p| p.name.to_string())
                .unwrap_or_default()
        };
        let others = self.doc_tests_of_other_shards(collected, &package_name, position);
        for id in &others {
            planned.not_run.push(doc_record(TestRecord::not_run(
                id.clone(),
                Outcome::SkippedByPartition,
                false,
            )));
        }
        // A doc test's package and binary, when the user's selection and this shard take it.
        // libtest's filters see rustdoc's names without the mode cargo shows after them.
        let chosen = |package_id, lib_name: &str, name: &str, path| {
            let package = package_name(package_id);
            let binary = TestBinary::doctest(&package, package_id, lib_name, path);
            let selected = self.filter.matches(doctest::libtest_name(name))
                && self
                    .filtersets
                    .matches(&binary.filter_query(&package, name));
            (selected && !others.contains(&test_id(&binary, name))).then_some((package, binary))
        };
        let mut libraries = std::collections::BTreeSet::new();
        for test in &collected.tests {
            let path = test.binary.clone();
            let Some((package, binary)) =
                chosen(&test.package_id, &test.lib_name, &test.name, path)
            else {
                continue;
            };
            libraries.insert(binary.id.clone());
            planned.tests += 1;
            planned
                .jobs
                .push(self.doc_test_job(test, binary, &package, built, host_env));
        }
        planned.binaries_with_tests = libraries.len();
        for settled in &collected.settled {
            // Settled without a binary to run.
            let path = PathBuf::new();
            let Some((_, binary)) =
                chosen(&settled.package_id, &settled.lib_name, &settled.name, path)
            else {
                continue;
            };
            let record = settled_record(test_id(&binary, &settled.name), &settled.verdict);
            planned.not_run.push(doc_record(record));
        }
        planned.jobs = repeated(planned.jobs);
        planned
    }

    /// One doc test's job: its own sandbox, whatever the isolation.
    fn doc_test_job(
        &self,
        test: &doctest::DocTest,
        binary: TestBinary,
        package: &str,
        built: &build::Build,
        host_env: &[(String, String)],
    ) -> Job {
        let mut env = env::for_binary(&binary, built, host_env);
        env.vars.extend(test.env());
        let query = binary.filter_query(package, &test.name);
        let settings = Resolved {
            isolation: Isolation::Test,
            ..self
                .layers
                .resolve(package, &binary.id, &test.name, None, Some(&query))
        };
        let selection = Selection::Listed {
            tests: vec![SelectedTest {
                name: test.name.clone(),
                ignored: false,
            }],
            whole_binary: true,
            listing: Arc::from([test.name.clone()]),
        };
        let ctx = Arc::new(BinaryContext {
            binary,
            env,
            runs_as: RunsAs::DocTest {
                should_panic: test.should_panic,
            },
        });
        job(&ctx, selection, Arc::new(settings))
    }

    /// `--partition`: the doc tests that belong to other shards.
    fn doc_tests_of_other_shards(
        &self,
        collected: &doctest::Collected,
        package_name: &dyn Fn(&cargo_metadata::PackageId) -> String,
        position: &mut usize,
    ) -> std::collections::BTreeSet<TestId> {
        let mut others = std::collections::BTreeSet::new();
        let Some(partition) = self.partition else {
            return others;
        };
        let mut all: Vec<TestId> = collected
            .tests
            .iter()
            .map(|t| (&t.package_id, &t.lib_name, &t.name))
            .chain(
                collected
                    .settled
                    .iter()
                    .map(|t| (&t.package_id, &t.lib_name, &t.name)),
            )
            .map(|(package_id, lib, name)| TestId {
                binary_id: build::binary_id(&package_name(package_id), BinaryKind::Doctest, lib),
                name: name.clone(),
            })
            .collect();
        all.sort();
        for id in all {
            *position += 1;
            if !partition.includes(*position - 1, &id.binary_id, &id.name) {
                others.insert(id);
            }
        }
        others
    }
}

/// `--partition`: keeps this shard's tests of `selected`; the others' records. `position`: of
/// the first in report order, counted on.
fn partitioned(
    partition: Partition,
    binary: &TestBinary,
    selected: &mut Vec<(String, bool, list::Plan)>,
    position: &mut usize,
) -> Vec<TestRecord> {
    let mut others = Vec::new();
    selected.retain(|(name, _, _)| {
        *position += 1;
        let mine = partition.includes(*position - 1, &binary.id, name);
        if !mine {
            let record =
                TestRecord::not_run(test_id(binary, name), Outcome::SkippedByPartition, false);
            others.push(with_kind(record, binary.kind));
        }
        mine
    });
    others
}

/// Repeats go on the queue up front, each attempt its own job.
fn repeated(jobs: Vec<Job>) -> Vec<Job> {
    jobs.into_iter()
        .flat_map(|job| {
            (0..job.settings.repeat).map(move |attempt| Job {
                attempt,
                ..job.clone()
            })
        })
        .collect()
}

fn job(ctx: &Arc<BinaryContext>, selection: Selection, settings: Arc<Resolved>) -> Job {
    Job {
        binary: ctx.clone(),
        selection,
        settings,
        attempt: 0,
        retry: 0,
        order: None,
    }
}

fn test_id(binary: &TestBinary, name: &str) -> TestId {
    TestId {
        binary_id: binary.id.clone(),
        name: name.to_owned(),
    }
}

fn with_kind(record: TestRecord, kind: BinaryKind) -> TestRecord {
    TestRecord {
        kind: kind.word().to_owned(),
        ..record
    }
}

/// A doc test rustdoc judged while compiling it: its record without a sandbox.
fn settled_record(id: TestId, verdict: &doctest::SettledVerdict) -> TestRecord {
    match verdict {
        doctest::SettledVerdict::Ignored => TestRecord::not_run(id, Outcome::Ignored, false),
        doctest::SettledVerdict::Passed => TestRecord::not_run(id, Outcome::Passed, false),
        doctest::SettledVerdict::Failed(output) => TestRecord {
            output: Some(harness::CapturedOutput {
                head: output.clone(),
                ..Default::default()
            }),
            ..TestRecord::not_run(id, Outcome::Failed, true)
        },
    }
}

fn doc_record(record: TestRecord) -> TestRecord {
    with_kind(record, BinaryKind::Doctest)
}
