//! The JSON report (`--report-json`): versioned, described by `report.schema.json`, and stable:
//! tests in report order, and an `outcome_digest` over each test's id and outcome only, so two
//! runs of a deterministic suite have the same digest whatever their timings.

use super::{totals, Fingerprint, FinishedRun, Reporter};
use crate::event::TestRecord;
use anyhow::Context;
use harness::Protections;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SCHEMA_VERSION: u32 = 1;

/// The whole report document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub schema_version: u32,
    pub tool_version: String,
    pub kernel: String,
    pub cgroup_version: String,
    pub protections: Protections,
    pub workspace_root: PathBuf,
    pub seed: u64,
    pub profile: String,
    pub fingerprint: Fingerprint,
    pub duration_ms: f64,
    pub cancelled: bool,
    pub totals: BTreeMap<String, usize>,
    pub outcome_digest: String,
    pub tests: Vec<TestRecord>,
}

impl Document {
    pub fn from_run(run: &FinishedRun) -> Document {
        Document {
            tests: run.records.iter().cloned().map(redact_secrets).collect(),
            ..Document::head(run)
        }
    }

    /// Everything but the tests.
    fn head(run: &FinishedRun) -> Document {
        Document {
            schema_version: SCHEMA_VERSION,
            tool_version: run.tool_version.clone(),
            kernel: run.kernel.clone(),
            cgroup_version: run.protections.cgroup_version.clone(),
            protections: run.protections.clone(),
            workspace_root: run.workspace_root.clone(),
            seed: run.seed,
            profile: run.profile.clone(),
            fingerprint: run.fingerprint.clone(),
            duration_ms: run.duration_ms,
            cancelled: run.cancelled,
            totals: totals(&run.records),
            outcome_digest: outcome_digest(&run.records),
            tests: Vec::new(),
        }
    }

    pub fn into_run(self) -> FinishedRun {
        FinishedRun {
            records: super::sorted(self.tests),
            duration_ms: self.duration_ms,
            cancelled: self.cancelled,
            protections: self.protections,
            kernel: self.kernel,
            tool_version: self.tool_version,
            workspace_root: self.workspace_root,
            seed: self.seed,
            profile: self.profile,
            fingerprint: self.fingerprint,
        }
    }

    /// One report from the reports of `--partition` shards: each test's record from the shard
    /// that ran it (a test no shard ran stays as the first report has it).
    pub fn merge(documents: Vec<Document>) -> Option<Document> {
        let mut by_id: BTreeMap<crate::event::TestId, TestRecord> = BTreeMap::new();
        let mut duration_ms: f64 = 0.0;
        let mut cancelled = false;
        let mut binaries = BTreeMap::new();
        let mut first: Option<Document> = None;
        for document in documents {
            duration_ms = duration_ms.max(document.duration_ms);
            cancelled |= document.cancelled;
            binaries.extend(document.fingerprint.binaries.clone());
            for record in &document.tests {
                let ran_here = record.outcome != crate::outcome::Outcome::SkippedByPartition;
                match by_id.get(&record.id) {
                    Some(kept)
                        if kept.outcome != crate::outcome::Outcome::SkippedByPartition
                            || !ran_here => {}
                    _ => {
                        by_id.insert(record.id.clone(), record.clone());
                    }
                }
            }
            first.get_or_insert(document);
        }
        let first = first?;
        let run = FinishedRun {
            records: by_id.into_values().collect(),
            duration_ms,
            cancelled,
            fingerprint: Fingerprint {
                binaries,
                ..first.fingerprint.clone()
            },
            ..first.into_run()
        };
        Some(Document::from_run(&run))
    }

    pub fn read(path: &Path) -> anyhow::Result<Document> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let document: Document = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a cargo-sandbox JSON report", path.display()))?;
        anyhow::ensure!(
            document.schema_version == SCHEMA_VERSION,
            "{} has report schema version {}; this cargo-sandbox reads version {SCHEMA_VERSION}",
            path.display(),
            document.schema_version
        );
        Ok(document)
    }
}

/// Variable names whose values a report never carries: reports are uploaded as CI artifacts.
const SECRET_MARKERS: [&str; 7] = [
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "PRIVATE",
    "API_KEY",
];

pub const REDACTED: &str = "[redacted]";

fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_MARKERS.iter().any(|m| upper.contains(m)) || upper.ends_with("_KEY")
}

/// Replaces the values of secret-looking variables in a test's recorded environment.
fn redact_secrets(mut record: TestRecord) -> TestRecord {
    let secret = |spec: &std::sync::Arc<harness::SandboxSpec>| {
        spec.env.iter().any(|(name, _)| looks_secret(name))
    };
    // Shared by the records of one sandbox's tests: copied only when there is something to hide.
    if let Some(spec) = record.spec.as_mut().filter(|spec| secret(spec)) {
        for (name, value) in std::sync::Arc::make_mut(spec).env.iter_mut() {
            if looks_secret(name) {
                *value = REDACTED.to_owned();
            }
        }
    }
    record
}

/// sha256 over `binary_id \t name \t outcome \n` of every test, in report order.
pub fn outcome_digest(records: &[TestRecord]) -> String {
    let mut sorted: Vec<&TestRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut hasher = Sha256::new();
    for r in sorted {
        hasher.update(format!(
            "{}\t{}\t{}\n",
            r.id.binary_id,
            r.id.name,
            r.outcome.word()
        ));
    }
    super::hex(&hasher.finalize())
}

/// Writes the report of a run. Each finished test's full record (with its spec and output) is
/// written to an unnamed spill file as it arrives, and the report is put together from it at
/// the end: a run's memory does not grow with what its reports hold (the runner keeps only
/// slim records, see [`TestRecord::slim`]).
pub struct JsonReporter {
    path: PathBuf,
    spill: Option<Spill>,
    /// Why the spill file stopped taking records; the report is then not written (it would
    /// lack their specs and output).
    failed: Option<std::io::Error>,
}

struct Spill {
    file: std::fs::File,
    end: u64,
    /// Where each test's pretty-printed record lies in the file.
    at: std::collections::HashMap<crate::event::TestId, (u64, usize)>,
}

impl JsonReporter {
    pub fn new(path: PathBuf) -> JsonReporter {
        // Next to the report (same filesystem, likely the target directory); without a spill
        // file the records are serialized from memory at the end.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned);
        let spill = std::fs::create_dir_all(&dir)
            .and_then(|()| spill_file(&dir))
            .ok()
            .map(|file| Spill {
                file,
                end: 0,
                at: std::collections::HashMap::new(),
            });
        JsonReporter {
            path,
            spill,
            failed: None,
        }
    }
}

/// A file without a name (`O_TMPFILE`): nothing to clean up, whatever ends the run. Where the
/// filesystem has no `O_TMPFILE` (NFS, 9p...), a named file removed as soon as it is open.
fn spill_file(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    unnamed.or_else(|_| {
        let path = dir.join(format!(
            ".cargo-sandbox-report-{}.spill",
            std::process::id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(file)
    })
}

impl Reporter for JsonReporter {
    fn event(&mut self, event: &crate::event::Event) {
        use std::io::Write;
        let (Some(spill), crate::event::Event::TestFinished(record)) = (&mut self.spill, event)
        else {
            return;
        };
        let Ok(text) = serde_json::to_vec_pretty(&redact_secrets((**record).clone())) else {
            return;
        };
        if self.failed.is_some() {
            return;
        }
        match spill.file.write_all(&text) {
            Ok(()) => {
                spill.at.insert(record.id.clone(), (spill.end, text.len()));
                spill.end += text.len() as u64;
            }
            Err(e) => self.failed = Some(e),
        }
    }

    fn finish(&mut self, run: &FinishedRun) -> anyhow::Result<()> {
        if let Some(e) = &self.failed {
            anyhow::bail!(
                "{} was not written: keeping the tests' records aside for it failed: {e}",
                self.path.display()
            );
        }
        let Some(spill) = &mut self.spill else {
            return write(
                &self.path,
                &(serde_json::to_string_pretty(&Document::from_run(run))? + "\n"),
            );
        };
        let head = serde_json::to_string_pretty(&Document::head(run))?;
        let head = head
            .strip_suffix("[]\n}")
            .context("the report's last field is its tests")?;
        let mut out = std::io::BufWriter::new(create(&self.path)?);
        use std::io::{Read, Seek, Write};
        out.write_all(head.as_bytes())?;
        out.write_all(b"[\n")?;
        let mut buf = Vec::new();
        for (i, record) in run.records.iter().enumerate() {
            if i > 0 {
                out.write_all(b",\n")?;
            }
            match spill.at.get(&record.id) {
                Some(&(offset, len)) => {
                    buf.resize(len, 0);
                    spill.file.seek(std::io::SeekFrom::Start(offset))?;
                    spill.file.read_exact(&mut buf)?;
                    out.write_all(&buf)?;
                }
                None => serde_json::to_writer_pretty(&mut out, &redact_secrets(record.clone()))?,
            }
        }
        out.write_all(b"\n]\n}\n")?;
        out.flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

fn create(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))
}

/// Writes a report file, creating its directory.
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_names() {
        for name in [
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "NPM_API_KEY",
            "SSH_PRIVATE",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["PATH", "HOME", "CARGO_PKG_NAME", "KEYBOARD"] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
