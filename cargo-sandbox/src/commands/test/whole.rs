//! A run that needs every binary before its first test (`--list`, `--shuffle`, `--partition
//! slice:`, `--no-pipeline`, archives): build, then list all, then plan all in report order.

use super::listing;
use super::runner::{Ending, Runner, Then};
use super::settle::Settled;
use super::source::Tests;
use crate::build;
use crate::cli::NoTests;
use crate::config::Resolved;
use crate::doctest;
use crate::env;
use crate::event::{Event, TestRecord};
use crate::exit;
use crate::job::{BinaryContext, RunsAs};
use crate::list::{self, Listing};
use crate::outcome::Outcome;
use crate::plan::{Planned, Runs};
use crate::report::InBackground;
use crate::schedule;
use std::sync::Arc;

/// A binary's listing, or the record of why it could not list.
type ListingOrRecord = Result<Listing, Box<TestRecord>>;

impl Runner<'_> {
    /// Every binary built before the first test: listed all at once (beside the doc tests'
    /// collection), planned in report order.
    pub(super) fn whole(&self, tests: Tests) -> anyhow::Result<Ending> {
        let Tests {
            built,
            config,
            archived_doctests,
            unpacked,
        } = tests;
        let mut settled = match self.settle(config, &built) {
            Ok(settled) => settled,
            Err(code) => return Ok(Ending::Exit(code)),
        };
        let host_env = &settled.host_env;
        let contexts: Vec<Arc<BinaryContext>> = built
            .binaries
            .iter()
            .map(|binary| {
                Arc::new(BinaryContext {
                    binary: binary.clone(),
                    env: env::for_binary(binary, &built, host_env),
                    runs_as: RunsAs::Libtest,
                })
            })
            .collect();
        // The JSON report's fingerprint hashes every test binary, while the tests run.
        let fingerprint = self.args.report_json.is_some().then(|| {
            InBackground::start(
                self.engine.cgroup_version(),
                contexts.clone(),
                settled.target_dir.clone(),
            )
        });
        // The doc tests' binaries are kept until the last test ran.
        let (mut planned, _doctests) =
            match self.plan_whole(&settled, &built, &contexts, archived_doctests) {
                Ok(planned) => planned,
                Err(code) => return code.map(Ending::Exit),
            };
        let mut jobs = std::mem::take(&mut planned.jobs);
        if self.args.shuffle {
            schedule::shuffle(&mut jobs, settled.run_seed);
        }
        let feed = self.feed(&settled);
        feed.push(jobs);
        feed.close();
        let started = planned.run_started(settled.run_seed, self.profile, self.workers);
        // Those settled without a sandbox first (doc tests rustdoc judged, binaries that could
        // not list), then those skipped.
        let (skipped, settled_now): (Vec<_>, Vec<_>) = planned
            .not_run
            .into_iter()
            .partition(|r| matches!(r.outcome, Outcome::Ignored | Outcome::SkippedByPartition));
        let before = std::iter::once(started)
            .chain(
                settled_now
                    .into_iter()
                    .chain(skipped)
                    .map(|r| Event::TestFinished(Box::new(r))),
            )
            .collect();
        let records = self.execute(&settled, &feed, None, before, |_| {});
        let fingerprint = fingerprint.map(InBackground::finish).unwrap_or_default();
        drop(feed);
        Ok(self
            .finish(
                &mut settled,
                records?,
                fingerprint,
                &built.workspace_root,
                Then::Outcome,
            )
            .keeping(unpacked))
    }

    /// Every binary listed at once (the doc tests collected beside them, and returned: their
    /// binaries live as long as that), then planned in report order. `Err` ends the run here
    /// with that result: `--list` printed, nothing to run, a cancellation, a doc test build
    /// that failed.
    fn plan_whole(
        &self,
        settled: &Settled,
        built: &build::Build,
        contexts: &[Arc<BinaryContext>],
        archived_doctests: Option<doctest::Collected>,
    ) -> Result<(Planned, Option<doctest::Collected>), anyhow::Result<i32>> {
        let planner = self.planner(settled);
        let mut unlisted = Planned::default();
        let mut listed = Vec::new();
        for ctx in contexts {
            match planner.runs_whole(ctx, &built.packages[&ctx.binary.package_id]) {
                Runs::Whole(settings) => unlisted.add(planner.unlisted(ctx, settings)),
                Runs::Listed(settings) => listed.push((ctx, settings)),
            }
        }
        // The sandboxes of tests without settings of their own are started now, before
        // listing: one per listing and per unlisted binary, and when some are listed, an
        // unknown number of tests after them (said once known).
        let known_uses = listed.is_empty().then_some(unlisted.jobs.len());
        self.engine.prepare(&settled.base_spec, known_uses);
        // Doc tests are compiled (outside any sandbox) while the other binaries are listed.
        // An archive's were collected when it was made.
        let doc_request = archived_doctests
            .is_none()
            .then(|| self.args.cargo.doctest_request(built, self.filter))
            .flatten();
        let (listings, collected) = self.list_all(settled, &listed, doc_request.as_ref());
        if self.cancel.is_cancelled() {
            say!("cargo-sandbox: interrupted while listing tests");
            return Err(Ok(exit::INTERRUPTED));
        }
        let collected = match collected.transpose() {
            Ok(collected) => collected.or(archived_doctests),
            Err(e) => return Err(build::failure_code(e, "collecting the doc tests")),
        };
        // Position of each selected test in report order, for `--partition slice`.
        let mut position = 0usize;
        let mut planned = Planned::default();
        for ((ctx, _), listing) in listed.iter().zip(listings) {
            let package = &built.packages[&ctx.binary.package_id].name;
            planned.add(planner.listed(ctx, package, listing, &mut position));
        }
        if let Some(collected) = &collected {
            planned.add(planner.doc_tests(collected, built, &settled.host_env, &mut position));
        }
        // Binaries run whole come last, as they always did.
        planned.add(unlisted);
        if planned.no_tests_end_the_run(self.args.no_tests.unwrap_or(NoTests::Pass)) {
            return Err(Ok(exit::NO_TESTS));
        }
        if self.args.list || self.filter.list {
            listing::print(&planned.jobs, &planned.not_run);
            return Err(Ok(0));
        }
        if !listed.is_empty() {
            self.engine
                .prepare(&settled.base_spec, Some(planned.jobs.len()));
        }
        Ok((planned, collected))
    }

    /// The listed binaries' tests, each asked of its binary in a sandbox, `-j` at once; the doc
    /// tests compiled (outside any sandbox) meanwhile.
    fn list_all(
        &self,
        settled: &Settled,
        listed: &[(&Arc<BinaryContext>, Resolved)],
        doc_request: Option<&doctest::Request>,
    ) -> (
        Vec<ListingOrRecord>,
        Option<anyhow::Result<doctest::Collected>>,
    ) {
        std::thread::scope(|scope| {
            let collecting = doc_request.map(|request| scope.spawn(|| doctest::collect(request)));
            let listings = schedule::parallel_map(listed, self.workers, |(ctx, settings)| {
                list::in_sandbox(
                    self.engine,
                    ctx,
                    settings,
                    &settled.host_env,
                    settled.run_seed,
                )
            });
            let collected = collecting.map(|c| {
                c.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("collecting doc tests panicked")))
            });
            (listings, collected)
        })
    }
}
