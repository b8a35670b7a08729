//! The sandboxes' PID 1, as its own small program: `cargo-sandbox` starts it in each sandbox it
//! makes (when it lies next to `cargo-sandbox`), because a small binary starts faster than the
//! whole CLI would — the sandbox's start-up cost is paid once per test.

fn main() {
    sandbox_harness_init();
}

fn sandbox_harness_init() {
    harness::init::run_if_requested();
    eprintln!(
        "cargo-sandbox-init is the PID 1 that cargo-sandbox starts inside each sandbox; it is not \
         run by hand"
    );
    std::process::exit(2);
}
