//! Doc tests, each in its own sandbox.
//!
//! rustdoc compiles a doc test and runs it at once, inside its own libtest; on stable Rust
//! it can neither keep the binaries (`--persist-doctests` is unstable) nor compile without
//! running (`--no-run` too). What it does offer is a runtool: with a target runner set, cargo
//! has rustdoc run each compiled doc test as `<runner> <binary>`. So the doc tests are
//! *collected* with `cargo test --doc` whose runner is this binary's collector mode
//! ([`collector`]): rustdoc compiles them (in parallel, outside any sandbox, as cargo test
//! would), the collector keeps each binary, and rustdoc's own report tells which binary is
//! which test and settles the tests it judges by compiling (`no_run`, `compile_fail`, and
//! those that do not compile). Each kept binary then runs as a test in its own sandbox with
//! the run's caps, like any other test, and is judged as rustdoc would judge it.

mod collector;
mod merged;
mod output;

pub use collector::{run as collector_main, SUBCOMMAND};

use crate::build::{self, BuildFailed};
use crate::cli::CargoArgs;
use crate::filter::{IgnoredMode, TestFilter};
use crate::run_dir::RunDir;
use anyhow::Context;
use cargo_metadata::{Package, PackageId};
use output::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// A doc test to run in a sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocTest {
    pub package_id: PackageId,
    /// The library's target name.
    pub lib_name: String,
    /// As cargo names it: `src/lib.rs - add (line 3)`.
    pub name: String,
    pub binary: PathBuf,
    /// Passes when it fails, as rustdoc judges `should_panic`.
    pub should_panic: bool,
    /// In a merged (edition 2024) binary: its index, given in [`merged::RUN_ONE_VAR`].
    pub merged_index: Option<usize>,
}

impl DocTest {
    /// The variables that make its binary run it.
    pub fn env(&self) -> Vec<(String, String)> {
        self.merged_index
            .map(|i| (merged::RUN_ONE_VAR.to_owned(), i.to_string()))
            .into_iter()
            .collect()
    }
}

/// A doc test rustdoc settled without running it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settled {
    pub package_id: PackageId,
    pub lib_name: String,
    pub name: String,
    pub verdict: SettledVerdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SettledVerdict {
    Ignored,
    /// `no_run` or `compile_fail`, compiled as expected.
    Passed,
    /// It did not compile (or a `compile_fail` test did): rustdoc's output says why.
    Failed(String),
}

/// The doc tests of a run. The kept binaries live in a directory of the target's that goes
/// when this does (and, after a runner killed mid-run, at the next run's start).
#[derive(Debug)]
pub struct Collected {
    pub tests: Vec<DocTest>,
    pub settled: Vec<Settled>,
    /// Holds the binaries (inside the target directory, so sandboxes reach them); none for
    /// those of an archive, whose directory holds them.
    _store: Option<RunDir>,
}

impl Collected {
    /// Doc tests an archive collected; their binaries are where `tests` say.
    pub fn archived(tests: Vec<DocTest>, settled: Vec<Settled>) -> Collected {
        Collected {
            tests,
            settled,
            _store: None,
        }
    }

    /// rustdoc reports tests as they finish: the run's order must not depend on that.
    fn sort(&mut self) {
        self.tests
            .sort_by(|a, b| (&a.package_id, &a.name).cmp(&(&b.package_id, &b.name)));
        self.settled
            .sort_by(|a, b| (&a.package_id, &a.name).cmp(&(&b.package_id, &b.name)));
    }
}

/// What to collect.
pub struct Request<'a> {
    pub cargo: &'a CargoArgs,
    /// Every workspace package (by id), to tell which crate a report is of.
    pub packages: &'a BTreeMap<PackageId, Package>,
    /// The packages whose doc tests run; `None` (for `--doc`): as the user's flags select.
    pub selected: Option<Vec<PackageId>>,
    pub filter: &'a TestFilter,
    pub target_dir: &'a Path,
    /// Show cargo's build output (with `--doc` nothing else built the libraries).
    pub show_build: bool,
}

/// The name libtest matches filters against: cargo shows a doc test's mode after it.
pub fn libtest_name(shown: &str) -> &str {
    [" - compile fail", " - compile", " - should panic"]
        .iter()
        .find_map(|mode| shown.strip_suffix(mode))
        .unwrap_or(shown)
}

/// Packages with a library whose doc tests cargo would run.
pub fn has_doctests(package: &Package) -> bool {
    package.targets.iter().any(|t| {
        t.doctest
            && t.kind.iter().any(|k| {
                use cargo_metadata::TargetKind as K;
                matches!(
                    k,
                    K::Lib | K::RLib | K::DyLib | K::ProcMacro | K::StaticLib | K::CDyLib
                )
            })
    })
}

/// Compiles the selected doc tests (outside any sandbox) and keeps their binaries.
pub fn collect(request: &Request) -> anyhow::Result<Collected> {
    // `target/sandbox/doctests/<pid>-<time>`: inside the target, so sandboxes reach it.
    let store = RunDir::new(&request.target_dir.join("sandbox").join("doctests"))?;
    let dir = store.path().to_owned();
    let packages: Option<Vec<String>> = request
        .selected
        .as_ref()
        .map(|ids| ids.iter().map(|id| id.repr.clone()).collect());
    let test_args = collecting_args(request.filter);
    let text = run_cargo(request, &dir, packages.as_deref(), &test_args, Mode::Token)?;
    let mut collected = Collected {
        tests: Vec::new(),
        settled: Vec::new(),
        _store: Some(store),
    };
    let crates = crate_names(request.packages);
    for report in output::parse(&text) {
        let Some(&(package_id, lib_name)) = crates.get(report.crate_name.as_str()) else {
            continue;
        };
        let library = Library {
            package_id,
            lib_name,
        };
        let unmatched = library.sort_out(&report, &dir, &mut collected);
        if !unmatched.is_empty() {
            let matched = match_in_sequence(request, &dir, package_id, &unmatched)?;
            library.add_should_panic(unmatched, &matched, &mut collected);
        }
    }
    merged_tests(request, &dir, &mut collected)?;
    collected.sort();
    Ok(collected)
}

/// The test arguments of the collecting run. rustdoc splits them at spaces: substring
/// filters, split, select more (never fewer) tests, and the run's own filter then decides;
/// exact names and skips would select fewer.
fn collecting_args(filter: &TestFilter) -> Vec<String> {
    let mut test_args: Vec<String> = Vec::new();
    if !filter.exact {
        test_args.extend(filter.filters.iter().cloned());
    }
    test_args.extend(filter.ignored_flag().map(str::to_owned));
    test_args
}

/// The library whose doc tests are being collected: what each of its tests is recorded with.
#[derive(Clone, Copy)]
struct Library<'a> {
    package_id: &'a PackageId,
    lib_name: &'a str,
}

impl Library<'_> {
    fn doc_test(self, name: String, binary: PathBuf, should_panic: bool) -> DocTest {
        DocTest {
            package_id: self.package_id.clone(),
            lib_name: self.lib_name.to_owned(),
            name,
            binary,
            should_panic,
            merged_index: None,
        }
    }

    fn settled(self, name: &str, verdict: SettledVerdict) -> Settled {
        Settled {
            package_id: self.package_id.clone(),
            lib_name: self.lib_name.to_owned(),
            name: name.to_owned(),
            verdict,
        }
    }

    /// Each test rustdoc reported for the library: to run (its binary named in its failure),
    /// settled, or (returned) passed without a word, which only `should_panic` tests do.
    fn sort_out(
        self,
        report: &output::CrateReport,
        store: &Path,
        collected: &mut Collected,
    ) -> Vec<String> {
        let mut unmatched = Vec::new();
        for test in &report.tests {
            match (test.result, test.token()) {
                (Verdict::Ignored, _) => collected
                    .settled
                    .push(self.settled(&test.name, SettledVerdict::Ignored)),
                (Verdict::Failed, Some(id)) => {
                    collected
                        .tests
                        .push(self.doc_test(test.name.clone(), store.join(id), false))
                }
                (Verdict::Failed, None) => collected
                    .settled
                    .push(self.settled(&test.name, SettledVerdict::Failed(test.section.clone()))),
                (Verdict::Ok, _) if test.compile_only() => collected
                    .settled
                    .push(self.settled(&test.name, SettledVerdict::Passed)),
                // Satisfied by the collector's failure: a `should_panic` test.
                (Verdict::Ok, _) => unmatched.push(test.name.clone()),
            }
        }
        unmatched
    }

    /// The `should_panic` tests, with the binaries [`match_in_sequence`] told apart; one it
    /// could not is settled as failed, rather than run as another's.
    fn add_should_panic(
        self,
        names: Vec<String>,
        matched: &BTreeMap<String, PathBuf>,
        collected: &mut Collected,
    ) {
        for name in names {
            match matched.get(&name) {
                Some(binary) => collected
                    .tests
                    .push(self.doc_test(name, binary.clone(), true)),
                None => collected.settled.push(
                    self.settled(
                        &name,
                        SettledVerdict::Failed(
                            "cargo-sandbox could not tell this doc test's binary from the \
                         others'; please report it"
                                .to_owned(),
                        ),
                    ),
                ),
            }
        }
    }
}

/// `should_panic` doc tests show nothing in the collecting run: collected again one at a
/// time, their binaries come in name order.
fn match_in_sequence(
    request: &Request,
    store: &Path,
    package_id: &PackageId,
    names: &[String],
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let sequence = store.join(collector::SEQUENCE_FILE);
    let _ = std::fs::remove_file(&sequence);
    // The words of their item paths select them (and maybe more, which are told apart too).
    let mut test_args = vec!["--test-threads".to_owned(), "1".to_owned()];
    for name in names {
        let item = name
            .split_once(" - ")
            .map_or(name.as_str(), |(_, rest)| rest);
        let item = item.rsplit_once(" (line ").map_or(item, |(item, _)| item);
        test_args.extend(item.split_whitespace().map(str::to_owned));
    }
    test_args.extend(request.filter.ignored_flag().map(str::to_owned));
    let text = run_cargo(
        request,
        store,
        Some(std::slice::from_ref(&package_id.repr)),
        &test_args,
        Mode::Sequence,
    )?;
    let ids = std::fs::read_to_string(&sequence).unwrap_or_default();
    let ids: Vec<&str> = ids.lines().collect();
    // The tests that reached the collector, in the order they ran: it exited 0, so a test
    // passed, or failed for being marked `should_panic`.
    let reports = output::parse(&text);
    let mut reached: Vec<&str> = Vec::new();
    for report in &reports {
        for test in &report.tests {
            let ran = match test.result {
                Verdict::Ok => !test.compile_only(),
                Verdict::Failed => test.section.contains("Test executable succeeded"),
                Verdict::Ignored => false,
            };
            if ran {
                reached.push(&test.name);
            }
        }
    }
    reached.sort_unstable();
    if reached.len() != ids.len() {
        return Ok(BTreeMap::new());
    }
    Ok(reached
        .into_iter()
        .zip(ids)
        .filter(|(name, _)| names.iter().any(|n| n == name))
        .map(|(name, id)| (name.to_owned(), store.join(id)))
        .collect())
}

/// The tests of each merged binary the collector kept, as its runner describes them.
fn merged_tests(request: &Request, store: &Path, collected: &mut Collected) -> anyhow::Result<()> {
    let dirs: BTreeMap<PathBuf, &Package> = request
        .packages
        .values()
        .filter_map(|p| Some((p.manifest_path.parent()?.as_std_path().to_owned(), p)))
        .collect();
    let mut runners: Vec<PathBuf> = std::fs::read_dir(store)
        .context("reading the doc tests' directory")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "rs")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("merged-"))
        })
        .collect();
    runners.sort();
    for runner in runners {
        let binary = runner.with_extension("");
        let dir = std::fs::read_to_string(runner.with_extension("dir")).unwrap_or_default();
        let Some(package) = dirs.get(Path::new(&dir)) else {
            continue;
        };
        let Some(lib_name) = lib_name(package) else {
            continue;
        };
        let source = std::fs::read_to_string(&runner)
            .with_context(|| format!("reading {}", runner.display()))?;
        let tests = merged::parse(&source).map_err(|e| {
            anyhow::anyhow!(
                "rustdoc's runner of merged doc tests ({}) is not as expected: {e}",
                runner.display()
            )
        })?;
        let library = Library {
            package_id: &package.id,
            lib_name,
        };
        for test in tests {
            let name = test.shown_name();
            let run = match (request.filter.ignored, test.ignore) {
                (IgnoredMode::Only, false) => continue,
                (IgnoredMode::Skip, true) => {
                    let ignored = library.settled(&name, SettledVerdict::Ignored);
                    collected.settled.push(ignored);
                    continue;
                }
                _ => test.index,
            };
            match run {
                Some(index) if !test.no_run => collected.tests.push(DocTest {
                    merged_index: Some(index),
                    ..library.doc_test(name, binary.clone(), test.should_panic)
                }),
                _ => collected
                    .settled
                    .push(library.settled(&name, SettledVerdict::Passed)),
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Mode {
    Token,
    Sequence,
}

/// Runs `cargo test --doc` with the collector as the runner; returns cargo's and rustdoc's
/// output, interleaved as printed.
fn run_cargo(
    request: &Request,
    store: &Path,
    packages: Option<&[String]>,
    test_args: &[String],
    mode: Mode,
) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("finding cargo-sandbox's own binary")?;
    let runner = toml::Value::Array(vec![
        toml::Value::String(exe.display().to_string()),
        toml::Value::String(SUBCOMMAND.to_owned()),
    ]);
    let mut cmd = build::doc_command(request.cargo, packages);
    for triple in targets(request.cargo)? {
        cmd.arg("--config")
            .arg(format!("target.{triple}.runner={runner}"));
    }
    cmd.arg("--").args(test_args);
    let tmp = store.join("tmp");
    std::fs::create_dir_all(&tmp).context("creating the doc tests' temporary directory")?;
    cmd.env(collector::STORE_VAR, store)
        .env(
            collector::MODE_VAR,
            match mode {
                Mode::Token => "token",
                Mode::Sequence => "sequence",
            },
        )
        // rustdoc's temporary directories beside the store: the collector renames binaries.
        .env("TMPDIR", &tmp)
        .env("CARGO_TERM_COLOR", "never");
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .context("creating a pipe for cargo's output")?;
    let writer_too = writer.try_clone().context("duplicating a pipe")?;
    cmd.stdout(writer)
        .stderr(writer_too)
        .stdin(std::process::Stdio::null());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {}", build::cargo().display()))?;
    drop(cmd);
    let mut text = String::new();
    let mut in_tests = false;
    for line in BufReader::new(std::fs::File::from(reader)).lines() {
        let line = line.context("reading cargo's output")?;
        in_tests |= line.trim_start().starts_with("Doc-tests ");
        if !in_tests && request.show_build && matches!(mode, Mode::Token) {
            say!("{line}");
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait().context("waiting for cargo")?;
    // Collected doc tests always "fail"; cargo failed itself when it never reached them.
    if !status.success() && !in_tests {
        if !request.show_build {
            say!("{}", text.trim_end());
        }
        return Err(BuildFailed(status.code().unwrap_or(101)).into());
    }
    Ok(text)
}

/// The triples doc tests are built for: `--target`'s, or the host's.
fn targets(cargo: &CargoArgs) -> anyhow::Result<Vec<String>> {
    if !cargo.target.is_empty() {
        return Ok(cargo.target.clone());
    }
    let out = std::process::Command::new(crate::env::rustc())
        .arg("-vV")
        .output()
        .context("running `rustc -vV`")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| vec![h.trim().to_owned()])
        .context("`rustc -vV` names no host")
}

/// Library crate name (as cargo prints it after `Doc-tests`) → package and target name.
fn crate_names(packages: &BTreeMap<PackageId, Package>) -> BTreeMap<String, (&PackageId, &str)> {
    packages
        .values()
        .filter_map(|p| {
            let lib = lib_name(p)?;
            Some((lib.replace('-', "_"), (&p.id, lib)))
        })
        .collect()
}

fn lib_name(package: &Package) -> Option<&str> {
    package
        .targets
        .iter()
        .find(|t| t.doctest && !t.is_bin() && !t.is_test() && !t.is_example() && !t.is_bench())
        .map(|t| t.name.as_str())
}
