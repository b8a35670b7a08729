//! `cargo sandbox replay REPORT TEST`: reruns one recorded test in exactly the sandbox it ran in
//! (argv, cwd, env with its seed, caps, namespaces) and says whether the outcome matched.

use crate::cli::ReplayArgs;
use crate::event::TestRecord;
use crate::exit;
use crate::outcome::{classify, Outcome};
use crate::report::json::{Document, REDACTED};
use crate::report::sha256_file;
use anyhow::Context;
use harness::{Engine, Exit};

pub fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    let document = match Document::read(&args.report) {
        Ok(document) => document,
        Err(e) => {
            say!("cargo-sandbox: error: {e:#}");
            return Ok(exit::USAGE);
        }
    };
    let record = match find(&document.tests, &args.test, args.binary.as_deref()) {
        Ok(record) => record.clone(),
        Err(message) => {
            say!("cargo-sandbox: error: {message}");
            return Ok(exit::USAGE);
        }
    };
    let Some(mut spec) = record.spec.as_deref().cloned() else {
        say!("cargo-sandbox: error: `{}` did not run in that report ({}), so there is nothing to replay", record.id, record.outcome.word());
        return Ok(exit::USAGE);
    };
    // Reports never carry secret-looking values; take them from this environment if it has them.
    for (name, value) in spec.env.iter_mut().filter(|(_, v)| v == REDACTED) {
        match std::env::var(name.as_str()) {
            Ok(current) => *value = current,
            Err(_) => say!(
                "cargo-sandbox: warning: {name} was redacted in the report and is not set here"
            ),
        }
    }
    if let (Some(recorded), Some(path)) = (
        document.fingerprint.binaries.get(&record.id.binary_id),
        spec.argv.first(),
    ) {
        if sha256_file(std::path::Path::new(path)).ok().as_ref() != Some(recorded) {
            say!("cargo-sandbox: warning: {path} changed since the report was written (sha256 differs)");
        }
    }
    let engine = Engine::new(args.engine.options()).context("cannot set up sandboxes")?;
    let result = engine.run(&spec, None).context("the sandbox failed")?;
    let now = if spec.argv.iter().any(|a| a == "--nocapture") {
        classify(
            &result,
            result.exit != Exit::Code(0) || crate::libtest::ran_exactly_one(&result),
            record.policies,
        )
    } else {
        // A whole-binary sandbox: this test's own libtest line decides.
        let output = result.output.as_ref().map(|o| o.text()).unwrap_or_default();
        match crate::libtest::libtest_results(&output)
            .iter()
            .find(|(n, _)| n == &record.id.name)
            .map(|(_, r)| r.as_str())
        {
            Some("ok") => Outcome::Passed,
            Some("FAILED") => Outcome::Failed,
            _ => classify(&result, true, record.policies),
        }
    };
    let matched = now == record.outcome
        || (record.outcome == Outcome::Flaky && record.attempt_outcomes.contains(&now));
    let seed = record
        .seed
        .map(|s| format!(" (seed {s})"))
        .unwrap_or_default();
    println!(
        "replayed {}{seed}: recorded {}, now {} — {}",
        record.id,
        record.outcome.word(),
        now.word(),
        if matched { "reproduced" } else { "differs" }
    );
    if !matched {
        if let Some(output) = &result.output {
            say_part!("{}", output.text());
        }
    }
    Ok(if matched { 0 } else { exit::TESTS_FAILED })
}

/// Finds a test by `NAME` or `BINARY_ID NAME`, refusing ambiguity.
fn find<'a>(
    tests: &'a [TestRecord],
    query: &str,
    binary: Option<&str>,
) -> Result<&'a TestRecord, String> {
    let (binary, name) = match (binary, query.split_once(' ')) {
        (Some(b), _) => (Some(b), query),
        (None, Some((b, n))) => (Some(b), n),
        (None, None) => (None, query),
    };
    let hits: Vec<&TestRecord> = tests
        .iter()
        .filter(|t| t.id.name == name && binary.is_none_or(|b| t.id.binary_id == b))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no test `{query}` in the report")),
        many => Err(format!(
            "`{query}` names {} tests; pick one with --binary ({})",
            many.len(),
            many.iter()
                .map(|t| t.id.binary_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
