//! `cargo sandbox archive`: build the tests once and pack what running them needs into one
//! file (see `docs/archives.md`; the format is in `archive/`).

use crate::archive::write::archive;
use crate::build;
use crate::cli::ArchiveArgs;
use crate::doctest;
use crate::exit;
use crate::filter::TestFilter;
use crate::signals;
use anyhow::Context;
use harness::units::format_bytes;
use std::time::Instant;

pub fn run(args: ArchiveArgs) -> anyhow::Result<i32> {
    let cancel = signals::cancel_on_signals()?;
    let started = Instant::now();
    let built = build::start(&args.cargo, None, &cancel, Box::new(|| {}))
        .context("building the tests")?
        .finish(|_| {});
    if cancel.is_cancelled() {
        say!("cargo-sandbox: interrupted while building");
        return Ok(exit::INTERRUPTED);
    }
    let built = match built {
        Ok(built) => built,
        Err(e) => return build::failure_code(e, "building the tests"),
    };
    // Doc tests are collected as a run without filters collects them: ignored ones stay
    // ignored (rustdoc does not compile them).
    let filter = TestFilter::default();
    let collected = match args.cargo.doctest_request(&built, &filter) {
        Some(request) => match doctest::collect(&request) {
            Ok(collected) => Some(collected),
            Err(e) => return build::failure_code(e, "collecting the doc tests"),
        },
        None => None,
    };
    if cancel.is_cancelled() {
        say!("cargo-sandbox: interrupted while collecting doc tests");
        return Ok(exit::INTERRUPTED);
    }
    let written = archive(
        &args.archive_file,
        built,
        collected.as_ref(),
        args.zstd_level,
        &cancel,
    )?;
    let Some(written) = written else {
        say!("cargo-sandbox: interrupted while writing the archive (nothing was left)");
        return Ok(exit::INTERRUPTED);
    };
    let palette = crate::report::terminal::Palette::new(args.cargo.color);
    say!(
        "{:>12} {} ({}; {} in {} files unpacked) in {:.2}s",
        palette.green("Archived"),
        args.archive_file.display(),
        format_bytes(written.compressed),
        format_bytes(written.unpacked),
        written.files,
        started.elapsed().as_secs_f64()
    );
    say!("{:>12} {}", "", written.breakdown);
    say!("{:>12} fingerprint {}", "", written.fingerprint);
    Ok(0)
}
