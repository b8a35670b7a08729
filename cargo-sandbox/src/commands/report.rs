//! `cargo sandbox report REPORT` re-renders a saved JSON report in the terminal;
//! `cargo sandbox report --diff OLD NEW` says what changed between two runs.

use crate::cli::ReportArgs;
use crate::event::Event;
use crate::exit;
use crate::report::json::Document;
use crate::report::{diff, terminal, Reporter};

pub fn run(args: ReportArgs) -> anyhow::Result<i32> {
    let read = |path: &std::path::Path| match Document::read(path) {
        Ok(document) => Ok(document),
        Err(e) => {
            say!("cargo-sandbox: error: {e:#}");
            Err(exit::USAGE)
        }
    };
    if let (Some(paths), Some(output)) = (&args.merge, &args.output) {
        let mut documents = Vec::new();
        for path in paths {
            match read(path) {
                Ok(document) => documents.push(document),
                Err(code) => return Ok(code),
            }
        }
        let Some(merged) = Document::merge(documents) else {
            return Ok(exit::USAGE);
        };
        crate::report::json::write(output, &(serde_json::to_string_pretty(&merged)? + "\n"))?;
        say!(
            "merged {} reports into {}: {} tests, outcome digest {}",
            paths.len(),
            output.display(),
            merged.tests.len(),
            merged.outcome_digest
        );
        return Ok(0);
    }
    if let Some(paths) = &args.diff {
        let (old, new) = match (read(&paths[0]), read(&paths[1])) {
            (Ok(old), Ok(new)) => (old, new),
            (Err(code), _) | (_, Err(code)) => return Ok(code),
        };
        let d = diff::diff(&old.tests, &new.tests, args.threshold);
        print!("{}", diff::render(&d, args.threshold));
        return Ok(if args.fail_on_regression && d.is_regression() {
            exit::TESTS_FAILED
        } else {
            0
        });
    }
    let Some(path) = &args.report else {
        return Ok(exit::USAGE);
    };
    let run = match read(path) {
        Ok(document) => document.into_run(),
        Err(code) => return Ok(code),
    };
    let mut terminal = terminal::Terminal::new(
        terminal::Palette::new(args.color),
        terminal::Options::quiet(),
    );
    for record in &run.records {
        terminal.event(&Event::TestFinished(Box::new(record.clone())));
    }
    terminal.finish(&run)?;
    Ok(0)
}
