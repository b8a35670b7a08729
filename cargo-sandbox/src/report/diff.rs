//! `cargo sandbox report --diff OLD NEW`: what changed between two runs — tests whose outcome
//! changed, tests that appeared or went away, and tests whose peak memory or CPU time grew by
//! more than a threshold (the regression check a CI job can fail on).

use crate::event::{TestId, TestRecord};
use harness::units::format_bytes;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Growth below these is noise, whatever the percentage (a 300 KiB test growing to 400 KiB is
/// not a leak worth failing CI for).
const MEMORY_FLOOR_BYTES: u64 = 1 << 20;
const CPU_FLOOR_MS: f64 = 10.0;

#[derive(Debug, Default)]
pub struct Diff {
    pub outcome_changes: Vec<(TestId, String, String)>,
    pub added: Vec<TestId>,
    pub removed: Vec<TestId>,
    pub memory_growth: Vec<(TestId, u64, u64)>,
    pub cpu_growth: Vec<(TestId, f64, f64)>,
    /// Tests that newly fail.
    pub new_failures: usize,
}

impl Diff {
    pub fn is_regression(&self) -> bool {
        self.new_failures > 0 || !self.memory_growth.is_empty() || !self.cpu_growth.is_empty()
    }
}

/// Parses `20%` or `20` (percent) into a fraction.
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if p >= 0.0 && p.is_finite() => Ok(p / 100.0),
        _ => Err(format!("`{text}` is not a percentage (example: 20%)")),
    }
}

pub fn diff(old: &[TestRecord], new: &[TestRecord], threshold: f64) -> Diff {
    let old: BTreeMap<&TestId, &TestRecord> = old.iter().map(|r| (&r.id, r)).collect();
    let new: BTreeMap<&TestId, &TestRecord> = new.iter().map(|r| (&r.id, r)).collect();
    let mut d = Diff::default();
    for (id, n) in &new {
        let Some(o) = old.get(id) else {
            d.added.push((*id).clone());
            d.new_failures += usize::from(n.failure);
            continue;
        };
        if o.outcome != n.outcome {
            d.outcome_changes
                .push(((*id).clone(), o.outcome.word(), n.outcome.word()));
            d.new_failures += usize::from(n.failure && !o.failure);
        }
        if let (Some(before), Some(after)) = (o.memory_peak_bytes, n.memory_peak_bytes) {
            if after > before + MEMORY_FLOOR_BYTES
                && after as f64 > before as f64 * (1.0 + threshold)
            {
                d.memory_growth.push(((*id).clone(), before, after));
            }
        }
        let (before, after) = (o.cpu_ms(), n.cpu_ms());
        if o.ran_in_sandbox()
            && n.ran_in_sandbox()
            && after > before + CPU_FLOOR_MS
            && after > before * (1.0 + threshold)
        {
            d.cpu_growth.push(((*id).clone(), before, after));
        }
    }
    d.removed = old
        .keys()
        .filter(|id| !new.contains_key(*id))
        .map(|id| (*id).clone())
        .collect();
    d
}

pub fn render(d: &Diff, threshold: f64) -> String {
    let mut out = String::new();
    let section = |out: &mut String, title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            let _ = writeln!(out, "{title}:");
            for line in lines {
                let _ = writeln!(out, "  {line}");
            }
        }
    };
    section(
        &mut out,
        "Outcome changed",
        d.outcome_changes
            .iter()
            .map(|(id, a, b)| format!("{id}: {a} -> {b}"))
            .collect(),
    );
    section(
        &mut out,
        "New tests",
        d.added.iter().map(|id| id.to_string()).collect(),
    );
    section(
        &mut out,
        "Removed tests",
        d.removed.iter().map(|id| id.to_string()).collect(),
    );
    let pct = |a: f64, b: f64| {
        if a > 0.0 {
            format!("+{:.0}%", (b / a - 1.0) * 100.0)
        } else {
            "new".to_owned()
        }
    };
    section(
        &mut out,
        &format!("Peak memory grew more than {:.0}%", threshold * 100.0),
        d.memory_growth
            .iter()
            .map(|(id, a, b)| {
                format!(
                    "{id}: {} -> {} ({})",
                    format_bytes(*a),
                    format_bytes(*b),
                    pct(*a as f64, *b as f64)
                )
            })
            .collect(),
    );
    section(
        &mut out,
        &format!("CPU time grew more than {:.0}%", threshold * 100.0),
        d.cpu_growth
            .iter()
            .map(|(id, a, b)| format!("{id}: {a:.1}ms -> {b:.1}ms ({})", pct(*a, *b)))
            .collect(),
    );
    if out.is_empty() {
        out.push_str("No outcome changed and nothing grew beyond the threshold.\n");
    }
    let _ = writeln!(
        out,
        "{}",
        if d.is_regression() {
            "Regression: yes"
        } else {
            "Regression: no"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    fn record(name: &str, outcome: Outcome, memory: u64, cpu_ms: f64) -> TestRecord {
        let failure = outcome == Outcome::Failed;
        TestRecord {
            memory_peak_bytes: Some(memory),
            cpu_user_ms: Some(cpu_ms),
            cpu_system_ms: Some(0.0),
            ..TestRecord::not_run(
                TestId {
                    binary_id: "b".into(),
                    name: name.into(),
                },
                outcome,
                failure,
            )
        }
    }

    #[test]
    fn finds_changes_and_growth() {
        let old = vec![
            record("a", Outcome::Passed, 10 << 20, 100.0),
            record("b", Outcome::Passed, 10 << 20, 100.0),
            record("gone", Outcome::Passed, 1, 1.0),
            record("tiny", Outcome::Passed, 100 << 10, 1.0),
        ];
        let new = vec![
            record("a", Outcome::Failed, 10 << 20, 100.0),
            record("b", Outcome::Passed, 20 << 20, 200.0),
            record("tiny", Outcome::Passed, 300 << 10, 5.0),
            record("new", Outcome::Passed, 1, 1.0),
        ];
        let d = diff(&old, &new, 0.2);
        assert_eq!(d.outcome_changes.len(), 1);
        assert_eq!(d.new_failures, 1);
        assert_eq!(d.memory_growth.len(), 1, "tiny growth is below the floor");
        assert_eq!(d.cpu_growth.len(), 1);
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.removed.len(), 1);
        assert!(d.is_regression());
        assert!(render(&d, 0.2).contains("b b: 10.0 MiB -> 20.0 MiB (+100%)"));
        assert_eq!(parse_threshold("20%"), Ok(0.2));
        assert!(parse_threshold("lots").is_err());
    }
}
