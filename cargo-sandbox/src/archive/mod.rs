//! Test archives: build once, run on many machines (sharded CI).
//!
//! `cargo sandbox archive` writes one `.tar.zst` holding everything a run needs that is not the
//! checkout: the test binaries, the packages' binaries (`CARGO_BIN_EXE_*`), build scripts'
//! `OUT_DIR`s and native libraries, dylibs of the workspace and of the toolchain the tests link,
//! the collected doc tests, and a [`Manifest`] with the build as cargo described it.
//! `cargo sandbox test --archive-file` unpacks it into a private directory and runs from there,
//! with every workspace path pointing into the checkout at `--workspace-remap`: cargo is not
//! needed, nothing is built, and no `target/` appears in the checkout.
//!
//! Layout, in this order: [`MANIFEST`] (JSON), every file under `target/` (paths relative to the
//! build's target directory, each listed in the manifest with its size and SHA-256), then
//! [`SEAL`], the SHA-256 of the manifest's bytes. The stream is zstd with its checksum on. A
//! file whose bytes differ, one not listed, a missing seal (a truncated archive) or a path that
//! is not plainly inside `target/` makes the archive refused: nothing of it is run.

mod read;
pub mod write;

pub use read::{open, BadArchive};

use crate::build::Build;
use crate::doctest::{DocTest, Settled};
use serde::{Deserialize, Serialize};

/// The first entry: the [`Manifest`].
pub const MANIFEST: &str = "cargo-sandbox-archive.json";
/// The last entry: the SHA-256 (hex) of the manifest's bytes.
pub const SEAL: &str = "cargo-sandbox-archive.sha256";
/// Where the files go, relative to the unpack directory.
pub const TARGET: &str = "target";
/// Bumped when the layout changes; an archive of another format is refused.
pub const FORMAT: u32 = 1;

/// Where files that lie outside the target directory on the building machine are put inside
/// it (relative to it), so sandboxes reach them with the rest.
pub const TOOLCHAIN_DIR: &str = "sandbox/archive/toolchain";
pub const DOCTESTS_DIR: &str = "sandbox/archive/doctests";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The cargo-sandbox version that made it; runs need the same one.
    pub tool_version: String,
    /// The build, its paths as they were on the building machine.
    pub build: Build,
    /// The doc tests collected when the archive was made, their binaries in [`DOCTESTS_DIR`].
    pub doctests: Option<Doctests>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Doctests {
    pub tests: Vec<DocTest>,
    pub settled: Vec<Settled>,
}

/// One file of the archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the target directory, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub executable: bool,
}

/// The tool version archives are made and run with.
pub fn tool_version() -> String {
    format!("cargo-sandbox {}", env!("CARGO_PKG_VERSION"))
}
