//! Reporters. Each consumes the runner's events (or the records they carry); none re-derives an
//! outcome.

pub mod json;
pub mod terminal;

use crate::event::TestRecord;
use crate::outcome::Outcome;
use std::collections::BTreeMap;

/// Counts per outcome word, in a fixed order.
pub fn totals(records: &[TestRecord]) -> BTreeMap<String, usize> {
    let mut totals = BTreeMap::new();
    for r in records {
        *totals.entry(r.outcome.word()).or_insert(0) += 1;
    }
    totals
}

/// Records in report order: binary id, then test name, whatever order they finished in.
pub fn sorted(mut records: Vec<TestRecord>) -> Vec<TestRecord> {
    records.sort_by(|a, b| a.id.cmp(&b.id));
    records
}

pub fn ran(records: &[TestRecord]) -> usize {
    records
        .iter()
        .filter(|r| r.outcome != Outcome::Ignored)
        .count()
}
