//! Build once, run on many: `cargo sandbox archive`, then `test --archive-file` in a checkout
//! that has no target directory, whole and in shards, and against damaged or hostile archives.

use e2e::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where runs unpack archives (see cargo-sandbox's `archive::read`).
fn unpack_parent() -> PathBuf {
    std::env::temp_dir().join("cargo-sandbox-archives")
}

/// The fixtures archived once for this file's tests, a copy of their tracked sources (what a
/// shard's checkout holds: no `target/`), and their direct run.
struct Archived {
    dir: PathBuf,
    archive: PathBuf,
    checkout: PathBuf,
    direct: TestRun,
}

fn archived() -> Option<&'static Archived> {
    static ARCHIVED: OnceLock<Archived> = OnceLock::new();
    if !privileged() {
        return None;
    }
    Some(ARCHIVED.get_or_init(|| {
        let dir = temp_dir_of_checkout("cargo-sandbox-e2e-archive");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let archive = dir.join("fixtures.tar.zst");
        let out = Command::new(cargo_sandbox())
            .args(["sandbox", "archive", "--manifest-path"])
            .arg(fixtures_manifest())
            .arg("--archive-file")
            .arg(&archive)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{text}");
        for part in [
            "Archived",
            "test binaries",
            "doc test binaries",
            "fingerprint",
        ] {
            assert!(text.contains(part), "`{part}` in:\n{text}");
        }
        let checkout = dir.join("checkout");
        copy_tracked(&workspace_root().join("fixtures"), &checkout);
        let direct = sandbox_test(&fixtures_manifest(), FIXTURE_CAPS);
        Archived {
            dir,
            archive,
            checkout,
            direct,
        }
    }))
}

/// Copies the files git tracks under `from` to `to`.
fn copy_tracked(from: &Path, to: &Path) {
    let out = Command::new("git")
        .args(["ls-files", "-z", "."])
        .current_dir(from)
        .output()
        .expect("git ls-files");
    assert!(out.status.success());
    for rel in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from.join(rel), &dest).unwrap();
    }
}

/// Unpack directories whose runner is gone: what a run left behind.
fn left_behind() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(unpack_parent()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().unwrap_or_default().to_owned();
            !Path::new("/proc").join(pid).exists()
        })
        .map(|e| e.path())
        .collect()
}

/// A run from `archive` in the checkout, on a machine without Rust: no cargo or rustc on
/// PATH, none named by CARGO or RUSTC.
fn from_archive(a: &Archived, archive: &Path, extra: &[&str]) -> TestRun {
    let archive = archive.to_str().unwrap();
    let mut args = vec!["--archive-file", archive];
    args.extend_from_slice(FIXTURE_CAPS);
    args.extend_from_slice(extra);
    let mut cmd = Command::new(cargo_sandbox());
    cmd.args(["sandbox", "test"])
        .current_dir(&a.checkout)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN");
    run_sandbox_test(cmd, &args)
}

#[test]
fn a_run_from_the_archive_in_a_fresh_checkout_is_the_direct_run() {
    let Some(a) = archived() else { return };
    let run = from_archive(a, &a.archive, &[]);
    assert_eq!(run.code, a.direct.code, "{}", run.stderr);
    assert!(run.stderr.contains("Unpacked"), "{}", run.stderr);
    assert_eq!(run.outcomes(), a.direct.outcomes());
    assert_eq!(
        run.report["outcome_digest"], a.direct.report["outcome_digest"],
        "the same outcome digest as the direct run"
    );
    // Every path a test sees is the checkout's; nothing was built there.
    let spec = &run.test("tests::env_fixed_build_value")["spec"];
    let cwd = Path::new(spec["cwd"].as_str().unwrap());
    assert!(cwd.starts_with(&a.checkout), "cwd {}", cwd.display());
    let env: Vec<(String, String)> = serde_json::from_value(spec["env"].clone()).unwrap();
    let manifest_dir = env
        .iter()
        .find_map(|(k, v)| (k == "CARGO_MANIFEST_DIR").then_some(v))
        .unwrap();
    assert_eq!(Path::new(manifest_dir), a.checkout.join("basic"));
    // Written through the copy-on-write checkout, reported, and never on the host.
    assert_eq!(
        run.test("tests::writes_manifest_dir")["outcome"],
        "file-leak"
    );
    assert!(!a.checkout.join("files/written-by-test.txt").exists());
    assert!(
        !a.checkout.join("target").exists(),
        "no target/ in the checkout"
    );
    // Its report, the paths shown at the building machine's included, is a valid report.
    let fs = &run.test("tests::env_fixed_build_value")["spec"]["filesystem"]["isolated"];
    let fixtures = workspace_root().join("fixtures");
    assert_eq!(fs["shown_at"][0]["at"], fixtures.to_str().unwrap());
    let report = a.dir.join("from-archive.json");
    std::fs::write(&report, run.report.to_string()).unwrap();
    assert_valid_report(&report);
    assert_eq!(left_behind(), Vec::<PathBuf>::new(), "unpacked files left");
}

/// `--list`'s stdout, run in `cwd` with `args`.
fn listing(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new(cargo_sandbox())
        .args(["sandbox", "test"])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    String::from_utf8(succeeded(out).stdout).unwrap()
}

#[test]
fn the_archive_lists_what_the_build_lists() {
    let Some(a) = archived() else { return };
    let manifest = fixtures_manifest();
    let direct = listing(
        &workspace_root(),
        &["--list", "--manifest-path", manifest.to_str().unwrap()],
    );
    let archived = listing(
        &a.checkout,
        &["--list", "--archive-file", a.archive.to_str().unwrap()],
    );
    assert_eq!(archived, direct);
    for line in [
        "basic::bin_exe:",
        "    tests::ignored (ignored)",
        "doctests::doctest/doctests:",
    ] {
        assert!(direct.lines().any(|l| l == line), "`{line}` in:\n{direct}");
    }
    // libtest's own flag, as under cargo test.
    let libtest = listing(
        &a.checkout,
        &[
            "--archive-file",
            a.archive.to_str().unwrap(),
            "--",
            "--list",
        ],
    );
    assert_eq!(libtest, direct);
}

#[test]
fn three_shards_from_one_archive_merge_to_the_direct_digest() {
    let Some(a) = archived() else { return };
    let mut reports = Vec::new();
    for k in 1..=3 {
        let run = from_archive(a, &a.archive, &["--partition", &format!("hash:{k}/3")]);
        assert!(run.report.is_object(), "shard {k}: {}", run.stderr);
        let path = a.dir.join(format!("shard-{k}.json"));
        std::fs::write(&path, run.report.to_string()).unwrap();
        reports.push(path);
    }
    let merged = merge_reports(&reports, &a.dir.join("merged.json"));
    assert_eq!(merged["outcome_digest"], a.direct.report["outcome_digest"]);
    assert_eq!(merged["totals"], a.direct.report["totals"]);
    assert_eq!(left_behind(), Vec::<PathBuf>::new(), "unpacked files left");
}

/// The archive's entries: (name, bytes), in order.
fn entries(archive: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let file = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(zstd::Decoder::new(file).unwrap());
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path_bytes().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Writes `entries` as an archive at `path`; names go into the header as they are, `../`
/// included (the tar crate's own path setters refuse those).
fn write_archive(path: &Path, entries: &[(Vec<u8>, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(zstd::Encoder::new(file, 1).unwrap().auto_finish());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, bytes.as_slice()).unwrap();
    }
    tar.finish().unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn damaged_and_hostile_archives_are_refused_and_leave_nothing() {
    let Some(a) = archived() else { return };
    let bytes = std::fs::read(&a.archive).unwrap();
    let all = entries(&a.archive);
    let (manifest, seal) = (&all[0], &all[all.len() - 1]);
    let sealed = |manifest: Vec<u8>| {
        let seal = sha256_hex(&manifest).into_bytes();
        (manifest, seal)
    };
    let other_version = {
        let text = String::from_utf8(manifest.1.clone()).unwrap();
        let (m, s) = sealed(
            text.replacen("\"cargo-sandbox 0.1.0\"", "\"cargo-sandbox 0.0.1\"", 1)
                .into_bytes(),
        );
        vec![(manifest.0.clone(), m), (seal.0.clone(), s)]
    };
    let escape_name = b"target/../../escaped-by-archive".to_vec();
    let escaping = vec![
        manifest.clone(),
        (escape_name, b"escaped\n".to_vec()),
        seal.clone(),
    ];
    let unlisted = vec![
        manifest.clone(),
        (b"target/debug/not-listed".to_vec(), b"x".to_vec()),
        seal.clone(),
    ];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            bytes[..bytes.len() / 2].to_vec(),
            "damaged or truncated",
        ),
        (
            "flipped",
            {
                let mut b = bytes.clone();
                let middle = b.len() / 2;
                b[middle] ^= 0x40;
                b
            },
            "damaged",
        ),
        (
            "other-version",
            Vec::new(),
            "it was made by cargo-sandbox 0.0.1, and this is cargo-sandbox 0.1.0",
        ),
        (
            "escaping",
            Vec::new(),
            "would be written outside the directory it is unpacked into",
        ),
        ("unlisted", Vec::new(), "is not listed in its manifest"),
    ];
    for (name, bytes, message) in cases {
        let path = a.dir.join(format!("{name}.tar.zst"));
        match name {
            "other-version" => write_archive(&path, &other_version),
            "escaping" => write_archive(&path, &escaping),
            "unlisted" => write_archive(&path, &unlisted),
            _ => std::fs::write(&path, bytes).unwrap(),
        }
        let run = from_archive(a, &path, &[]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(message),
            "{name}: `{message}` in:\n{}",
            run.stderr
        );
        assert!(run.report.is_null(), "{name}: nothing ran");
    }
    assert!(!unpack_parent().join("escaped-by-archive").exists());
    assert!(!std::env::temp_dir().join("escaped-by-archive").exists());

    let missing = from_archive(a, &a.dir.join("missing.tar.zst"), &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("make one with `cargo sandbox archive"),
        "{}",
        missing.stderr
    );

    // A checkout of another workspace: refused before anything is unpacked.
    let other = a.dir.join("other");
    scratch_crate(&other, "other", "", &[("src/lib.rs", "")]);
    let archive = a.archive.to_str().unwrap();
    let run = sandbox_test_in(&other, &["--archive-file", archive]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is not the workspace the archive was made from: it has no basic/Cargo.toml (package `basic`)"),
        "{}",
        run.stderr
    );
    // Its build was made: cargo's build flags have nothing to change.
    let run = sandbox_test_in(&a.checkout, &["--archive-file", archive, "--release"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("drop cargo's package, target and build flags"),
        "{}",
        run.stderr
    );
    assert_eq!(left_behind(), Vec::<PathBuf>::new(), "unpacked files left");
}

#[test]
fn ctrl_c_while_unpacking_exits_130_and_leaves_nothing() {
    let Some(a) = archived() else { return };
    let child = Command::new(cargo_sandbox())
        .args(["sandbox", "test", "--archive-file"])
        .arg(&a.archive)
        .current_dir(&a.checkout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Interrupted as soon as its unpack directory exists.
    let start = std::time::Instant::now();
    let prefix = format!("{pid}-");
    let mine = || {
        std::fs::read_dir(unpack_parent())
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    };
    while !mine() && start.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(mine(), "the run never made its unpack directory");
    signal(pid, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!mine(), "its unpack directory is removed");
    assert_no_cgroups_left(pid);
}

/// What a CI shard meets: the checkout at the building job's path, its `target/` absent. Paths
/// compiled into the tests (`env!`) still work: each sandbox shows the unpacked files there,
/// and the mount point it makes for them is no change of the test's.
#[test]
fn paths_compiled_in_find_the_archives_files() {
    skip_unless_privileged!();
    let dir = workspace_root().join("target/e2e-compiled-paths");
    let manifest = scratch_crate(
        &dir,
        "compiled-paths",
        "",
        &[
            ("src/main.rs", "fn main() { println!(\"tool ran\"); }\n"),
            (
                "tests/paths.rs",
                r#"
#[test]
fn compiled_in() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_compiled-paths")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tool ran");
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(tmp.join("scratch"), "x").unwrap();
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(manifest_dir.join("tests/paths.rs").exists());
}
"#,
            ),
        ],
    );
    let archive = workspace_root().join("target/e2e-compiled-paths.tar.zst");
    succeeded(
        Command::new(cargo_sandbox())
            .args(["sandbox", "archive", "--manifest-path"])
            .arg(&manifest)
            .arg("--archive-file")
            .arg(&archive)
            .output()
            .unwrap(),
    );
    std::fs::remove_dir_all(dir.join("target")).unwrap();
    let run = sandbox_test_in(&dir, &["--archive-file", archive.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let test = run.test("compiled_in");
    assert_eq!(test["outcome"], "passed", "{}", run.stderr);
    assert_eq!(test["files_written_total"], 0, "{test}");
    assert!(!dir.join("target").exists(), "no target/ on the host");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&archive).unwrap();
}
