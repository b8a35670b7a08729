//! Filterset errors, rendered like nextest's caret diagnostics (without colours, so they read
//! the same in a terminal, a CI log and a test assertion).

use std::fmt;
use std::ops::Range;

/// One problem in an expression, located by a byte range into its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    span: Range<usize>,
    message: String,
    label: String,
}

impl Diagnostic {
    pub(super) fn new(
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self {
            span,
            message: message.into(),
            label: label.into(),
        }
    }

    /// Byte range of the offending text; empty when something is missing at that point.
    #[cfg(test)]
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// What went wrong, e.g. "expected close parenthesis".
    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The note printed after the carets, e.g. "missing `)`".
    #[cfg(test)]
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Why one or more `-E` expressions were rejected.
#[derive(Debug)]
pub struct FiltersetError {
    /// One entry per rejected expression, each with at least one diagnostic.
    reports: Vec<(String, Vec<Diagnostic>)>,
}

impl FiltersetError {
    pub(super) fn new(expr: &str, diagnostics: Vec<Diagnostic>) -> Self {
        Self {
            reports: vec![(expr.to_owned(), diagnostics)],
        }
    }

    /// Joins the errors of several expressions so that all of them are reported at once.
    pub(super) fn merge(errors: impl IntoIterator<Item = FiltersetError>) -> Option<Self> {
        let reports: Vec<_> = errors.into_iter().flat_map(|e| e.reports).collect();
        (!reports.is_empty()).then_some(Self { reports })
    }

    /// Every diagnostic, with the expression it is about.
    pub fn diagnostics(&self) -> impl Iterator<Item = (&str, &Diagnostic)> {
        self.reports
            .iter()
            .flat_map(|(expr, ds)| ds.iter().map(move |d| (expr.as_str(), d)))
    }
}

impl fmt::Display for FiltersetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (expr, diagnostic)) in self.diagnostics().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            render(f, expr, diagnostic)?;
        }
        Ok(())
    }
}

impl std::error::Error for FiltersetError {}

/// Writes `error: MESSAGE`, the expression's line holding the span, and carets under the span.
fn render(f: &mut fmt::Formatter<'_>, expr: &str, d: &Diagnostic) -> fmt::Result {
    let start = floor_char_boundary(expr, d.span.start);
    let line_start = expr[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = expr[start..].find('\n').map_or(expr.len(), |i| start + i);
    let end = floor_char_boundary(expr, d.span.end.clamp(start, line_end));
    let column = expr[line_start..start].chars().count();
    let width = expr[start..end].chars().count().max(1);
    // Tabs would shift the carets by a terminal-dependent amount; one space keeps them aligned.
    let line = expr[line_start..line_end].replace('\t', " ");

    writeln!(f, "error: {}", d.message)?;
    writeln!(f, "  {line}")?;
    write!(f, "  {}{}", " ".repeat(column), "^".repeat(width))?;
    if !d.label.is_empty() {
        write!(f, " {}", d.label)?;
    }
    Ok(())
}

/// `index` clamped into `text` and moved back onto a character boundary.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(expr: &str, span: Range<usize>) -> String {
        FiltersetError::new(expr, vec![Diagnostic::new(span, "oops", "here")]).to_string()
    }

    #[test]
    fn carets_cover_the_span() {
        assert_eq!(
            rendered("test(a) | xyz", 10..13),
            "error: oops\n  test(a) | xyz\n            ^^^ here"
        );
    }

    #[test]
    fn empty_span_at_the_end_gets_one_caret() {
        assert_eq!(
            rendered("test(a", 6..6),
            "error: oops\n  test(a\n        ^ here"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(
            rendered("test(é) x", 9..10),
            "error: oops\n  test(é) x\n          ^ here"
        );
    }

    #[test]
    fn only_the_line_with_the_span_is_shown() {
        assert_eq!(
            rendered("test(a)\n| xyz", 10..13),
            "error: oops\n  | xyz\n    ^^^ here"
        );
    }

    #[test]
    fn out_of_range_spans_do_not_panic() {
        assert_eq!(rendered("ab", 7..9), "error: oops\n  ab\n    ^ here");
    }

    #[test]
    fn merged_errors_are_separated_by_a_blank_line() {
        let merged = FiltersetError::merge([
            FiltersetError::new("a", vec![Diagnostic::new(0..1, "first", "")]),
            FiltersetError::new("b", vec![Diagnostic::new(0..1, "second", "")]),
        ]);
        assert_eq!(
            merged.map(|e| e.to_string()).as_deref(),
            Some("error: first\n  a\n  ^\n\nerror: second\n  b\n  ^")
        );
        assert!(FiltersetError::merge([]).is_none());
    }
}
