//! The machine-readable report: every test in report order with its outcome, usage, leaks,
//! network attempts, bounded output and the sandbox spec it ran under.

use crate::event::TestRecord;
use serde_json::{json, Value};
use std::path::Path;

pub const SCHEMA_VERSION: u32 = 1;

pub struct RunInfo<'a> {
    pub cgroup_version: &'a str,
    pub protections: Value,
    pub duration_ms: f64,
    pub cancelled: bool,
}

pub fn document(records: &[TestRecord], info: &RunInfo) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "kernel": kernel(),
        "cgroup_version": info.cgroup_version,
        "protections": info.protections,
        "cancelled": info.cancelled,
        "duration_ms": info.duration_ms,
        "totals": super::totals(records),
        "tests": records,
    })
}

pub fn write(path: &Path, document: &Value) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(document)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
