//! What a job is: one sandbox's worth of work (a test, or a binary's tests that share a
//! sandbox), the binary it runs, and the libtest command line that selects its tests.

use crate::build::TestBinary;
use crate::config::{Isolation, Resolved};
use crate::env::BinaryEnv;
use crate::event::TestId;
use crate::filter::TestFilter;
use std::sync::Arc;

/// A test binary with what it needs to run.
#[derive(Debug)]
pub struct BinaryContext {
    pub binary: TestBinary,
    pub env: BinaryEnv,
    pub runs_as: RunsAs,
}

/// How a binary is run and its result read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsAs {
    /// A libtest (or libtest-compatible) harness: told which tests, and its output read.
    Libtest,
    /// One doc test: run without arguments, judged by its exit status (see `doctest`).
    DocTest { should_panic: bool },
}

#[derive(Debug, Clone)]
pub struct SelectedTest {
    pub name: String,
    pub ignored: bool,
}

/// Which of a binary's tests a job runs, and how libtest is told.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Tests from the binary's listing. `whole_binary`: every test it lists, so libtest's own
    /// selection matches and the tests need not be named. `listing`: every name the binary
    /// lists, from which a run of several of them skips the others (see [`selection_args`]).
    Listed {
        tests: Vec<SelectedTest>,
        whole_binary: bool,
        listing: Arc<[String]>,
    },
    /// A binary run whole without listing it first (`--isolation binary`, when all its tests
    /// share the binary's settings): libtest selects with the user's filter (a retry: exactly
    /// `only`), and the run's own output names the tests. Listing would run the binary twice
    /// more; it happens only when the run's output does not account for every test.
    Unlisted { only: Option<String> },
}

impl Selection {
    /// The tests named up front (none for an unlisted binary).
    pub fn listed(&self) -> &[SelectedTest] {
        match self {
            Selection::Listed { tests, .. } => tests,
            Selection::Unlisted { .. } => &[],
        }
    }

    /// The same tests' retries: only those that failed, named. An unlisted binary's are
    /// retried one per sandbox: without a listing there is nothing to skip, and a harness
    /// other than libtest (libtest-mimic) takes one name at most.
    pub fn retries(&self, failed: &[String]) -> Vec<Selection> {
        if failed.is_empty() {
            return Vec::new();
        }
        match self {
            Selection::Listed { tests, listing, .. } => vec![Selection::Listed {
                tests: tests
                    .iter()
                    .filter(|t| failed.contains(&t.name))
                    .cloned()
                    .collect(),
                whole_binary: false,
                listing: listing.clone(),
            }],
            Selection::Unlisted { .. } => failed
                .iter()
                .map(|name| Selection::Unlisted {
                    only: Some(name.clone()),
                })
                .collect(),
        }
    }
}

/// One sandbox's worth of work: one test, or (`--isolation binary`) a binary's tests that share
/// the same settings.
#[derive(Debug, Clone)]
pub struct Job {
    pub binary: Arc<BinaryContext>,
    pub selection: Selection,
    pub settings: Arc<Resolved>,
    /// 0-based: repeats and retries count up.
    pub attempt: u32,
    /// Retries used so far.
    pub retry: u32,
    /// Position in the run's order: given when a worker first takes it (a retry keeps its
    /// test's).
    pub order: Option<usize>,
}

impl Job {
    /// Whether its sandbox may run more than one test: a binary's tests run whole or in a
    /// group. A doc test, one named test, or a retry of one never does.
    pub fn runs_several(&self) -> bool {
        if let RunsAs::DocTest { .. } = self.binary.runs_as {
            return false;
        }
        match &self.selection {
            Selection::Listed { tests, .. } => tests.len() > 1,
            Selection::Unlisted { only } => only.is_none(),
        }
    }
}

/// The libtest command line for a job.
pub fn libtest_args(job: &Job, filter: &TestFilter) -> Vec<String> {
    let mut args = Vec::new();
    match (&job.selection, job.settings.isolation) {
        (Selection::Listed { tests, .. }, Isolation::Test) => {
            if let Some(test) = tests.first() {
                args.extend([
                    "--exact".to_owned(),
                    test.name.clone(),
                    "--nocapture".to_owned(),
                ]);
                if test.ignored {
                    args.push("--ignored".to_owned());
                }
            }
        }
        (
            Selection::Listed {
                tests,
                whole_binary,
                listing,
            },
            Isolation::Binary,
        ) => {
            if !whole_binary {
                args = selection_args(tests, listing);
            }
            if tests.iter().all(|t| t.ignored) {
                args.push("--ignored".to_owned());
            } else if tests.iter().any(|t| t.ignored) {
                args.push("--include-ignored".to_owned());
            }
        }
        (Selection::Unlisted { only: None }, _) => args = filter.libtest_args(),
        (Selection::Unlisted { only: Some(name) }, _) => {
            args.extend(["--exact".to_owned(), name.clone()]);
            args.extend(filter.ignored_flag().map(str::to_owned));
        }
    }
    args
}

/// How many bytes of test names a run skips at most to select several tests (see
/// [`selection_args`]): far below the kernel's limit on a command line (`ARG_MAX`, 2 MiB with
/// the usual 8 MiB stack).
const SKIP_BUDGET: usize = 256 * 1024;

/// libtest flags that run exactly `tests` of a binary whose tests are `listing`. One test is
/// named; several are selected by skipping every other test, since libtest-mimic (and other
/// harnesses that mimic libtest) take one name at most, and any number of `--skip`. Only a
/// binary whose other names would not fit a command line gets the names themselves, which
/// libtest takes.
fn selection_args(tests: &[SelectedTest], listing: &[String]) -> Vec<String> {
    let mut args = vec!["--exact".to_owned()];
    let chosen: std::collections::HashSet<&str> = tests.iter().map(|t| t.name.as_str()).collect();
    let others: Vec<&String> = listing
        .iter()
        .filter(|name| !chosen.contains(name.as_str()))
        .collect();
    let skipped: usize = others
        .iter()
        .map(|name| name.len() + "--skip".len() + 2)
        .sum();
    if tests.len() == 1 || skipped > SKIP_BUDGET {
        args.extend(tests.iter().map(|t| t.name.clone()));
    } else {
        for name in others {
            args.extend(["--skip".to_owned(), name.clone()]);
        }
    }
    args
}

pub fn test_id(job: &Job, name: &str) -> TestId {
    TestId {
        binary_id: job.binary.binary.id.clone(),
        name: name.to_owned(),
    }
}

/// A job of binary `binary_id` running `names` in one sandbox, for unit tests of what
/// orders and places jobs.
#[cfg(test)]
pub fn test_job(binary_id: &str, names: &[&str]) -> Job {
    use crate::build::BinaryKind;
    let root = std::path::Path::new("/w");
    Job {
        binary: Arc::new(BinaryContext {
            binary: TestBinary {
                id: binary_id.to_owned(),
                package_id: cargo_metadata::PackageId {
                    repr: format!("path+file:///w/{binary_id}#0.1.0"),
                },
                target_name: binary_id.to_owned(),
                kind: BinaryKind::Lib,
                path: root.join("target/debug/deps").join(binary_id),
            },
            env: BinaryEnv {
                vars: Vec::new(),
                cwd: root.to_owned(),
                workspace_root: root.to_owned(),
                target_dir: root.join("target"),
                shown_at: Vec::new(),
            },
            runs_as: RunsAs::Libtest,
        }),
        selection: Selection::Listed {
            tests: tests::selected(names),
            whole_binary: false,
            listing: names.iter().map(|n| (*n).to_owned()).collect(),
        },
        settings: Arc::new(Resolved::default()),
        attempt: 0,
        retry: 0,
        order: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn selected(names: &[&str]) -> Vec<SelectedTest> {
        names
            .iter()
            .map(|name| SelectedTest {
                name: (*name).to_owned(),
                ignored: false,
            })
            .collect()
    }

    #[test]
    fn several_tests_are_selected_by_skipping_the_others() {
        let listing: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(
            selection_args(&selected(&["b"]), &listing),
            ["--exact", "b"]
        );
        // libtest-mimic takes one name: the others are skipped instead.
        assert_eq!(
            selection_args(&selected(&["a", "c"]), &listing),
            ["--exact", "--skip", "b", "--skip", "d"]
        );
        // Names that would not fit a command line when skipped are named (libtest takes them).
        let long: Vec<String> = (0..20_000)
            .map(|i| format!("module::test_{i:05}"))
            .collect();
        assert_eq!(
            selection_args(
                &selected(&["module::test_00001", "module::test_00002"]),
                &long
            ),
            ["--exact", "module::test_00001", "module::test_00002"]
        );
    }

    #[test]
    fn an_unlisted_binary_retries_each_failed_test_in_its_own_sandbox() {
        let failed = ["x".to_owned(), "y".to_owned()];
        assert!(Selection::Unlisted { only: None }.retries(&[]).is_empty());
        let retries = Selection::Unlisted { only: None }.retries(&failed);
        let only: Vec<Option<String>> = retries
            .into_iter()
            .map(|s| match s {
                Selection::Unlisted { only } => only,
                Selection::Listed { .. } => None,
            })
            .collect();
        assert_eq!(only, [Some("x".to_owned()), Some("y".to_owned())]);
        let listed = Selection::Listed {
            tests: selected(&["x", "y", "z"]),
            whole_binary: true,
            listing: ["x", "y", "z"].map(String::from).into_iter().collect(),
        };
        assert!(
            listed.retries(&[]).is_empty(),
            "nothing failed, nothing to retry"
        );
        let retries = listed.retries(&failed);
        assert_eq!(retries.len(), 1);
        assert!(matches!(
            &retries[0],
            Selection::Listed { tests, whole_binary: false, .. } if tests.len() == 2
        ));
    }
}
