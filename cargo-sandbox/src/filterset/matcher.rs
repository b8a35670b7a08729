//! Name matchers (`=exact`, `~contains`, `#glob`, `/regex/`): checking the text written in a
//! predicate, including its escape sequences, and matching names against it.

use super::ast::{Arg, MatcherKind};
use super::error::Diagnostic;
use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

/// A compiled name matcher.
#[derive(Clone, Debug)]
pub(super) enum NameMatcher {
    Equal(String),
    Contains(String),
    /// Matched against the whole name; `*` crosses `/` and `::` since names are not paths.
    Glob(GlobMatcher),
    /// Matched anywhere in the name unless anchored with `^…$`.
    Regex(Regex),
}

impl NameMatcher {
    /// Compiles `arg`, using `default` when it has no prefix; every problem found is reported.
    pub(super) fn new(arg: &Arg<'_>, default: MatcherKind) -> Result<Self, Vec<Diagnostic>> {
        match arg.kind.unwrap_or(default) {
            MatcherKind::Equal => literal(arg).map(Self::Equal),
            MatcherKind::Contains => literal(arg).map(Self::Contains),
            MatcherKind::Glob => glob(arg).map(Self::Glob),
            MatcherKind::Regex => Regex::new(&unescape_regex(arg.text))
                .map(Self::Regex)
                .map_err(|e| {
                    vec![Diagnostic::new(
                        arg.text_span.clone(),
                        "invalid regex",
                        regex_reason(&e),
                    )]
                }),
        }
    }

    pub(super) fn is_match(&self, name: &str) -> bool {
        match self {
            Self::Equal(value) => name == value,
            Self::Contains(value) => name.contains(value.as_str()),
            Self::Glob(glob) => glob.is_match(name),
            Self::Regex(regex) => regex.is_match(name),
        }
    }
}

/// The text of an `=`, `~` or glob matcher with its escapes processed; it may not be empty.
fn literal(arg: &Arg<'_>) -> Result<String, Vec<Diagnostic>> {
    if arg.text.is_empty() {
        let at = arg.text_span.start;
        return Err(vec![Diagnostic::new(
            at..at,
            "expected name matcher",
            "missing name",
        )]);
    }
    unescape(arg.text, arg.text_span.start)
}

fn glob(arg: &Arg<'_>) -> Result<GlobMatcher, Vec<Diagnostic>> {
    let text = literal(arg)?;
    GlobBuilder::new(&text)
        // Filterset escapes are already processed and nextest escapes metacharacters as `[*]`,
        // so a backslash left over is a literal one.
        .backslash_escape(false)
        .empty_alternates(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|e| {
            vec![Diagnostic::new(
                arg.text_span.clone(),
                "invalid glob",
                e.kind().to_string(),
            )]
        })
}

/// The regex crate's one-line reason, without the pattern and carets it prints above it.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(text.lines().last().unwrap_or("invalid regex"))
        .to_owned()
}

/// `\/` becomes `/`; every other escape is the regex crate's business.
fn unescape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('/') => out.push('/'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Processes the escapes nextest allows in `=`, `~` and glob matchers: `\n`, `\r`, `\t`, `\\`,
/// `\/`, `\)`, `\,` and `\u{HEX}`. `offset` is where `text` starts in the expression.
fn unescape(text: &str, offset: usize) -> Result<String, Vec<Diagnostic>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text.char_indices().peekable();
    while let Some((start, c)) = rest.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = match rest.next() {
            Some((_, c)) => c,
            None => {
                let span = offset + start..offset + text.len();
                errors.push(Diagnostic::new(
                    span,
                    "invalid escape sequence",
                    "nothing to escape",
                ));
                break;
            }
        };
        let simple = match escaped {
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            '\\' | '/' | ')' | ',' => Some(escaped),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        if escaped == 'u' {
            let braced = &text[start + 2..];
            match unicode_escape(braced) {
                Ok((c, len)) => {
                    out.push(c);
                    // Skip the `{…}` just decoded.
                    while rest.next_if(|&(i, _)| i < start + 2 + len).is_some() {}
                }
                Err(len) => {
                    let span = offset + start..offset + start + 2 + len;
                    errors.push(Diagnostic::new(
                        span,
                        "invalid unicode escape",
                        "expected `\\u{HEX}` with 1 to 6 hex digits naming a character",
                    ));
                    while rest.next_if(|&(i, _)| i < start + 2 + len).is_some() {}
                }
            }
            continue;
        }
        let span = offset + start..offset + start + 1 + escaped.len_utf8();
        errors.push(Diagnostic::new(
            span,
            "invalid escape sequence",
            "expected one of \\n \\r \\t \\\\ \\/ \\) \\, \\u{…}",
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Decodes `{HEX}` at the start of `text`: the character and the bytes used, or on error how
/// many bytes belong to the bad escape.
fn unicode_escape(text: &str) -> Result<(char, usize), usize> {
    let Some(body) = text.strip_prefix('{') else {
        return Err(0);
    };
    let Some(close) = body.find('}') else {
        return Err(1 + body
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(body.len()));
    };
    let hex = &body[..close];
    let len = close + 2;
    if hex.is_empty() || hex.len() > 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(len);
    }
    u32::from_str_radix(hex, 16)
        .ok()
        .and_then(char::from_u32)
        .map(|c| (c, len))
        .ok_or(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(kind: Option<MatcherKind>, text: &str) -> Arg<'_> {
        Arg {
            kind,
            text,
            text_span: 10..10 + text.len(),
            span: 10..10 + text.len(),
        }
    }

    fn matcher(kind: MatcherKind, text: &str) -> NameMatcher {
        match NameMatcher::new(&arg(Some(kind), text), MatcherKind::Equal) {
            Ok(m) => m,
            Err(e) => panic!("{text}: {e:?}"),
        }
    }

    fn errors(kind: MatcherKind, text: &str) -> Vec<(std::ops::Range<usize>, String)> {
        match NameMatcher::new(&arg(Some(kind), text), MatcherKind::Equal) {
            Ok(m) => panic!("{text}: unexpectedly compiled to {m:?}"),
            Err(e) => e
                .iter()
                .map(|d| (d.span(), d.message().to_owned()))
                .collect(),
        }
    }

    /// Each text is refused with exactly the one error given: its span and message.
    fn assert_one_error(cases: &[(MatcherKind, &str, std::ops::Range<usize>, &str)]) {
        for (kind, text, span, message) in cases {
            let expected = [(span.clone(), (*message).to_owned())];
            assert_eq!(errors(*kind, text), expected, "{text:?}");
        }
    }

    #[test]
    fn equal_and_contains() {
        assert!(matcher(MatcherKind::Equal, "abc").is_match("abc"));
        assert!(!matcher(MatcherKind::Equal, "abc").is_match("abcd"));
        assert!(matcher(MatcherKind::Contains, "bc").is_match("abcd"));
        assert!(!matcher(MatcherKind::Contains, "x").is_match("abcd"));
    }

    #[test]
    fn glob_matches_the_whole_name_and_star_crosses_separators() {
        let glob = matcher(MatcherKind::Glob, "basic*");
        assert!(glob.is_match("basic"));
        assert!(glob.is_match("basic::bin/basic-bin"));
        assert!(!glob.is_match("not-basic"));
        assert!(matcher(MatcherKind::Glob, "*::env").is_match("basic::env"));
        assert!(matcher(MatcherKind::Glob, "a?c").is_match("abc"));
        assert!(matcher(MatcherKind::Glob, "foo{-bar,}").is_match("foo"));
        assert!(matcher(MatcherKind::Glob, "a[*]").is_match("a*"));
        assert!(!matcher(MatcherKind::Glob, "a[*]").is_match("ab"));
    }

    #[test]
    fn regex_matches_anywhere_unless_anchored() {
        assert!(matcher(MatcherKind::Regex, "b+c").is_match("abbcd"));
        assert!(!matcher(MatcherKind::Regex, "^b").is_match("abc"));
        assert!(matcher(MatcherKind::Regex, r"a\/b").is_match("a/b"));
        assert!(matcher(MatcherKind::Regex, r"\d\)").is_match("x1)"));
        assert!(matcher(MatcherKind::Regex, "").is_match("anything"));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"a\)b\,c\\d\/e", 0), Ok("a)b,c\\d/e".to_owned()));
        assert_eq!(unescape(r"\n\r\t", 0), Ok("\n\r\t".to_owned()));
        assert_eq!(
            unescape(r"x\u{41}\u{1F600}y", 0),
            Ok("xA\u{1F600}y".to_owned())
        );
        assert_eq!(unescape("plain ünïcode", 0), Ok("plain ünïcode".to_owned()));
    }

    #[test]
    fn bad_escapes_are_all_reported_with_their_spans() {
        use MatcherKind::{Contains, Equal, Glob};
        assert_eq!(
            errors(Equal, r"a\qb\x"),
            vec![
                (11..13, "invalid escape sequence".to_owned()),
                (14..16, "invalid escape sequence".to_owned()),
            ]
        );
        assert_one_error(&[
            (Contains, r"a\", 11..12, "invalid escape sequence"),
            (Glob, r"\u{110000}z", 10..20, "invalid unicode escape"),
            (Equal, r"\u{1234567}", 10..21, "invalid unicode escape"),
            (Equal, r"\u41", 10..12, "invalid unicode escape"),
            (Equal, r"\u{41", 10..15, "invalid unicode escape"),
        ]);
    }

    #[test]
    fn invalid_regex_and_glob_point_at_the_pattern() {
        assert_one_error(&[
            (MatcherKind::Regex, "a[b", 10..13, "invalid regex"),
            (MatcherKind::Glob, "a[b", 10..13, "invalid glob"),
        ]);
    }

    #[test]
    fn regex_reason_is_one_line() {
        let Err(e) = NameMatcher::new(&arg(Some(MatcherKind::Regex), "a[b"), MatcherKind::Equal)
        else {
            panic!("compiled");
        };
        assert_eq!(e[0].label(), "unclosed character class");
    }

    #[test]
    fn default_kind_applies_without_a_prefix() {
        let m = NameMatcher::new(&arg(None, "b"), MatcherKind::Contains);
        assert!(m.is_ok_and(|m| m.is_match("abc")));
        let m = NameMatcher::new(&arg(None, "b"), MatcherKind::Equal);
        assert!(m.is_ok_and(|m| !m.is_match("abc")));
    }

    #[test]
    fn empty_text_is_an_error() {
        assert_one_error(&[(MatcherKind::Equal, "", 10..10, "expected name matcher")]);
    }
}
