//! `cargo sandbox`: run tests and commands in fresh Linux sandboxes.

mod cli;
mod exec;
mod exit;
mod signals;
mod summary;

use clap::Parser;
use std::ffi::OsString;

fn main() {
    // The sandbox's PID 1 is this binary re-executed: hand over before anything else runs.
    harness::init::run_if_requested();

    let mut args: Vec<OsString> = std::env::args_os().collect();
    // `cargo sandbox X` runs `cargo-sandbox sandbox X`.
    if args.get(1).is_some_and(|a| a == "sandbox") {
        args.remove(1);
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::TOOL_FAILED } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli.command {
        cli::Command::Exec(args) => exec::run(args),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("cargo-sandbox: error: {e:#}");
            std::process::exit(exit::TOOL_FAILED);
        }
    }
}
