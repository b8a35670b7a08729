//! The exit codes cargo-sandbox itself uses, documented in `--help` and the README. `exec`
//! follows `timeout(1)` and `env(1)` so its own failures never look like the command's.

/// The command timed out (as `timeout(1)`).
pub const TIMED_OUT: i32 = 124;
/// cargo-sandbox itself failed: bad flags, no privileges, no cgroups, an init that broke.
pub const TOOL_FAILED: i32 = 125;
/// The command exists but cannot be run.
pub const CANNOT_RUN: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;
/// Interrupted by Ctrl-C or SIGTERM; the sandbox was killed and cleaned up.
pub const INTERRUPTED: i32 = 130;
/// `test`: bad flags or configuration.
pub const USAGE: i32 = 2;
/// `test`: at least one test failed.
pub const TESTS_FAILED: i32 = 100;
/// `test --no-tests fail`: no test was selected (as nextest).
pub const NO_TESTS: i32 = 4;
