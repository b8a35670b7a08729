//! One module per subcommand, each with the `run` that `main` dispatches to: it takes the
//! subcommand's parsed flags and returns the exit code (`Err` is cargo-sandbox's own failure,
//! exit 125). What they share lives outside: `build`, `plan`, `schedule`, `report`, `config`.

pub mod archive;
pub mod config;
pub mod doctor;
pub mod exec;
pub mod replay;
pub mod report;
pub mod test;
