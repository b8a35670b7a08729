//! `cargo sandbox exec [LIMITS] -- CMD [ARGS]`: one command in one sandbox.

mod account;

use crate::cli::ExecArgs;
use crate::config::{FsLayer, FsMode, Layer, Resolved};
use crate::{exit, signals};
use anyhow::Context;
use harness::{Engine, Filesystem, Output, SandboxError, SandboxSpec, Stdin};
use serde_json::json;

/// Runs the command; returns the exit code for the runner.
pub fn run(args: ExecArgs) -> anyhow::Result<i32> {
    let cancel = signals::cancel_on_signals()?;
    let engine = match Engine::new(args.limits.engine.options()) {
        Ok(engine) => engine,
        Err(e) => return Err(anyhow::Error::new(e).context("cannot set up sandboxes")),
    };
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let mut spec = SandboxSpec::new(args.command.clone(), cwd, crate::env::host_env());
    // `exec` runs any command: the host filesystem unless --fs isolated asks otherwise.
    let exec_default = Layer {
        fs: Some(FsLayer::Mode(FsMode::Host)),
        ..Layer::default()
    };
    let (settings, _) = Resolved::from_layers([
        (&exec_default, "exec default".to_owned()),
        (&args.limits.layer(), "command line".to_owned()),
    ]);
    settings.apply_caps(&mut spec);
    if settings.fs == FsMode::Isolated {
        spec.filesystem = Filesystem::Isolated {
            copy_on_write: vec![spec.cwd.clone()],
            scratch: Vec::new(),
            writable: settings.writable.clone(),
            keep_writes: args.limits.keep_writes.clone(),
            shown_at: Vec::new(),
        };
    }
    // Interactive and piped input reach the command; tests get /dev/null (see `test`).
    spec.stdin = Stdin::Inherit;
    spec.output = if args.json {
        Output::Stderr
    } else {
        Output::Inherit
    };

    let result = match engine.run(&spec, Some(&cancel)) {
        Ok(result) => result,
        Err(e @ SandboxError::CommandNotFound { .. }) => {
            say!("cargo-sandbox: {e}");
            return Ok(exit::NOT_FOUND);
        }
        Err(e @ SandboxError::CommandNotExecutable { .. }) => {
            say!("cargo-sandbox: {e}");
            return Ok(exit::CANNOT_RUN);
        }
        Err(e) => return Err(anyhow::Error::new(e).context("the sandbox failed")),
    };

    let code = if result.cancelled {
        exit::INTERRUPTED
    } else if result.timed_out {
        exit::TIMED_OUT
    } else {
        result.exit.shell_code()
    };
    let document = json!({
        "schema_version": 1,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "exit_code": code,
        "spec": spec,
        "result": result,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&document)?);
    }
    if let Some(path) = &args.json_file {
        std::fs::write(path, serde_json::to_string_pretty(&document)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !args.quiet
        && !args.json
        && (args.verbose || account::is_notable(&result) || result.cancelled)
    {
        say_part!("{}", account::render(&result, spec.timeout));
    }
    Ok(code)
}
