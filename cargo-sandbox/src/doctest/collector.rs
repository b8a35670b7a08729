//! The runtool rustdoc hands each compiled doc test to while cargo-sandbox collects them: it
//! keeps the binary instead of running it, and says which one it kept.
//!
//! rustdoc runs `<runtool> <binary>` from the test's own libtest thread and judges the test
//! by the exit status, but does not tell the runtool which test the binary is. So:
//! - **token** mode (the collecting run): keep the binary under an id, print the id and exit 1.
//!   rustdoc then reports the test as failed, with our output under the test's name, which is
//!   how the id is matched to the name. A `should_panic` test is satisfied by the exit status
//!   instead, and shows nothing: those are matched by a second run in sequence mode.
//! - **sequence** mode: keep the binary, append its id to a file and exit 0. Run with one
//!   libtest thread, the ids come in the order libtest runs the tests: sorted by name.
//!
//! An edition-2024 crate's doc tests are merged into one binary, run once: its directory
//! holds rustdoc's generated runner, which names each test and its index. That binary is kept
//! with a copy of the runner.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// argv[1] that selects this mode.
pub const SUBCOMMAND: &str = "__doctest-collect";
/// The collection's directory (set by [`super::collect`]).
pub const STORE_VAR: &str = "CARGO_SANDBOX_DOCTEST_STORE";
/// `token` or `sequence`.
pub const MODE_VAR: &str = "CARGO_SANDBOX_DOCTEST_MODE";
/// Printed before a kept binary's id.
pub const TOKEN: &str = "cargo-sandbox-doctest:";
/// In the store: the ids of sequence mode, one per line.
pub const SEQUENCE_FILE: &str = "sequence";
/// rustdoc's generated runner of merged doc tests, beside their binary.
pub const MERGED_RUNNER: &str = "doctest_runner_2024.rs";

/// Runs the collector on `args` (after the subcommand): the binary, then rustdoc's arguments
/// for it. Returns the exit code.
pub fn run(args: &[OsString]) -> i32 {
    match collect(args) {
        Ok(code) => code,
        Err(message) => {
            // rustdoc shows this under the test's name; cargo-sandbox reports the test failed.
            println!("cargo-sandbox could not keep this doc test: {message}");
            2
        }
    }
}

fn collect(args: &[OsString]) -> Result<i32, String> {
    let binary = PathBuf::from(args.first().ok_or("no doc test binary given")?);
    let store = PathBuf::from(std::env::var_os(STORE_VAR).ok_or("not run by cargo-sandbox")?);
    let sequence = std::env::var(MODE_VAR).is_ok_and(|m| m == "sequence");
    let id = unique_id();
    let dir = binary.parent().ok_or("the binary has no directory")?;
    let runner = dir.join(MERGED_RUNNER);
    if runner.exists() {
        // A merged binary comes once per crate and run; the sequence run only wants the
        // standalone ones.
        if !sequence {
            keep(&binary, &store.join(format!("merged-{id}")))?;
            std::fs::copy(&runner, store.join(format!("merged-{id}.rs")))
                .map_err(|e| format!("copying {}: {e}", runner.display()))?;
            let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
            std::fs::write(store.join(format!("merged-{id}.dir")), manifest_dir)
                .map_err(|e| format!("writing the crate's directory: {e}"))?;
        }
        return Ok(0);
    }
    keep(&binary, &store.join(&id))?;
    if sequence {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(store.join(SEQUENCE_FILE))
            .map_err(|e| format!("opening the sequence file: {e}"))?;
        writeln!(file, "{id}").map_err(|e| format!("writing the sequence file: {e}"))?;
        Ok(0)
    } else {
        println!("{TOKEN}{id}");
        Ok(1)
    }
}

/// Moves the binary out of rustdoc's temporary directory (which rustdoc removes): a rename,
/// as the collection puts that directory beside the store; a copy otherwise.
fn keep(binary: &Path, to: &Path) -> Result<(), String> {
    if std::fs::rename(binary, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(binary, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", binary.display(), to.display()))
}

/// Unique among the collectors of one collection: each is its own process.
fn unique_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}
