//! `cargo metadata`'s answer kept for the next run (`build/metadata_cache.rs`): used while the
//! workspace is as it was, never once a manifest changed. What a test sees of its package at
//! run time (`CARGO_PKG_DESCRIPTION`, which unlike the version is not in the package's id)
//! must be what it was compiled with.

use e2e::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The package's description at run time is the one compiled in.
const DESCRIPTION_TEST: &str = r#"
#[test]
fn the_description_seen_is_the_one_built() {
    assert_eq!(std::env::var("CARGO_PKG_DESCRIPTION").unwrap(), env!("CARGO_PKG_DESCRIPTION"));
}
"#;

/// Sets the package's description in its manifest.
fn describe(manifest: &Path, description: &str) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let package: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("description"))
        .collect();
    let text = package.join("\n").replacen(
        "[package]",
        &format!("[package]\ndescription = \"{description}\""),
        1,
    );
    std::fs::write(manifest, text + "\n").unwrap();
}

/// `cargo sandbox test` as cargo starts it: `CARGO` names cargo (without it nothing is kept).
fn run(manifest: &Path) -> TestRun {
    let mut cmd = sandbox_test_command(manifest);
    cmd.env("CARGO", env!("CARGO"))
        .env_remove("CARGO_TARGET_DIR");
    run_sandbox_test(cmd, &[])
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_kept_answer_serves_an_unchanged_workspace_and_never_a_changed_manifest() {
    skip_unless_privileged!();
    let dir = bin_dir().join("e2e-kept-metadata");
    let manifest = scratch_crate(
        &dir,
        "kept",
        "",
        &[("tests/description.rs", DESCRIPTION_TEST)],
    );
    describe(&manifest, "first");
    // Built once (cargo's own files settle too), then nothing changes for two seconds: what
    // changed less than that before `cargo metadata` ran is never kept.
    let built = Command::new(env!("CARGO"))
        .env_remove("CARGO_TARGET_DIR")
        .args(["test", "--no-run", "--offline", "-q", "--manifest-path"])
        .arg(&manifest)
        .status()
        .expect("cargo");
    assert!(built.success());
    std::thread::sleep(Duration::from_millis(2100));
    let first = run(&manifest);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let kept = dir.join("target/cargo-sandbox/metadata.json");
    let kept_at = modified(&kept);

    // Unchanged: the kept answer serves, and is not written again.
    let second = run(&manifest);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        modified(&kept),
        kept_at,
        "an unchanged workspace asked cargo again"
    );

    // Another description: cargo is asked again, and the test sees what it was built with.
    describe(&manifest, "second");
    let third = run(&manifest);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(
        third.test("the_description_seen_is_the_one_built")["outcome"],
        "passed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
