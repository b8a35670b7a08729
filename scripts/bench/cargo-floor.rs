//! `cargo floor ARGS…` runs `cargo ARGS…`: the least any cargo subcommand adds to the command
//! it stands for (cargo starts, finds the subcommand, starts it; it starts cargo again).
//! `scripts/bench-suite` times `cargo floor test` beside `cargo test` so that the
//! `--isolation binary` ratio can be read against what no subcommand can go below.

fn main() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // argv: cargo-floor floor ARGS…
    let args: Vec<_> = std::env::args_os().skip(2).collect();
    let err = std::os::unix::process::CommandExt::exec(std::process::Command::new(cargo).args(args));
    eprintln!("cargo-floor: {err}");
    std::process::exit(127);
}
