//! `cargo sandbox`: run tests and commands in fresh Linux sandboxes.

/// Like `eprintln!`, but a closed stderr (`cargo sandbox test 2>&1 | head`) is not a reason to
/// panic halfway through a run and skip its cleanup.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `say!` without the newline.
macro_rules! say_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod archive;
mod build;
mod cli;
mod commands;
mod config;
mod doctest;
mod env;
mod event;
mod exit;
mod filter;
mod filterset;
mod history;
mod job;
mod libtest;
mod list;
mod outcome;
mod pipeline;
mod plan;
mod protections;
mod report;
mod run_dir;
mod sandbox_spec;
mod schedule;
mod signals;
mod state_file;

use clap::Parser;
use std::ffi::OsString;

fn main() {
    // The sandbox's PID 1 is this binary re-executed: hand over before anything else runs.
    harness::init::run_if_requested();

    let mut args: Vec<OsString> = std::env::args_os().collect();
    // rustdoc handing over a compiled doc test while they are collected (see `doctest`).
    if args.get(1).is_some_and(|a| a == doctest::SUBCOMMAND) {
        std::process::exit(doctest::collector_main(&args[2..]));
    }
    // `cargo sandbox X` runs `cargo-sandbox sandbox X`.
    if args.get(1).is_some_and(|a| a == "sandbox") {
        args.remove(1);
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // `exec` follows timeout(1) (125); the other subcommands use 2 like cargo.
            let is_exec = args
                .iter()
                .skip(1)
                .find(|a| !a.to_string_lossy().starts_with('-'))
                .is_some_and(|a| a == "exec");
            let code = match (e.use_stderr(), is_exec) {
                (false, _) => 0,
                (true, true) => exit::TOOL_FAILED,
                (true, false) => exit::USAGE,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli.command {
        cli::Command::Config(args) => commands::config::run(args),
        cli::Command::Doctor(args) => commands::doctor::run(args),
        cli::Command::Exec(args) => commands::exec::run(args),
        cli::Command::Test(args) => commands::test::run(*args),
        cli::Command::Archive(args) => commands::archive::run(args),
        cli::Command::Report(args) => commands::report::run(args),
        cli::Command::Replay(args) => commands::replay::run(args),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            say!("cargo-sandbox: error: {e:#}");
            std::process::exit(exit::TOOL_FAILED);
        }
    }
}
