//! Text to syntax tree. Precedence, loosest first: `or`/`|`/`+`, then `and`/`&`/`-`, then
//! `not`/`!`, then parentheses; binary operators bind left to right. A syntax error stops the
//! parse, since what follows it cannot be trusted; matcher contents are checked later.

use super::ast::{Arg, Expr, MatcherKind, Predicate};
use super::error::Diagnostic;
use std::ops::Range;
use winnow::ascii::multispace0;
use winnow::combinator::{alt, not, opt, repeat, terminated};
use winnow::error::{ErrMode, ParserError};
use winnow::stream::{Location, Stream};
use winnow::token::{any, none_of, one_of, take_while};
use winnow::{LocatingSlice, Parser};

type Input<'a> = LocatingSlice<&'a str>;
type PResult<T> = Result<T, ErrMode<SyntaxError>>;

/// A winnow error: `None` for a plain "this alternative didn't match", which never escapes
/// because every place that must fail reports a diagnostic of its own.
#[derive(Debug)]
pub(super) struct SyntaxError(Option<Diagnostic>);

impl<'a> ParserError<Input<'a>> for SyntaxError {
    type Inner = Self;

    fn from_input(_input: &Input<'a>) -> Self {
        Self(None)
    }

    fn into_inner(self) -> Result<Self, Self> {
        Ok(self)
    }
}

/// Parses a whole expression.
pub(super) fn parse(text: &str) -> Result<Expr<'_>, Diagnostic> {
    let mut input = LocatingSlice::new(text);
    match whole(&mut input) {
        Ok(expr) => Ok(expr),
        Err(ErrMode::Cut(SyntaxError(Some(d)))) | Err(ErrMode::Backtrack(SyntaxError(Some(d)))) => {
            Err(d)
        }
        Err(_) => {
            let at = input.current_token_start();
            Err(Diagnostic::new(at..at, "invalid filterset", ""))
        }
    }
}

fn whole<'a>(i: &mut Input<'a>) -> PResult<Expr<'a>> {
    let expr = or_expr(i)?;
    ws(i)?;
    end(i)?;
    Ok(expr)
}

/// Stops the parse with a diagnostic.
fn fail<T>(span: Range<usize>, message: impl Into<String>, label: impl Into<String>) -> PResult<T> {
    Err(ErrMode::Cut(SyntaxError(Some(Diagnostic::new(
        span, message, label,
    )))))
}

fn ws(i: &mut Input<'_>) -> PResult<()> {
    multispace0.void().parse_next(i)
}

/// Consumes `c` if it comes next.
fn eat(i: &mut Input<'_>, c: char) -> PResult<bool> {
    let found: PResult<Option<char>> = opt(c).parse_next(i);
    Ok(found?.is_some())
}

/// Whether `c` comes next, consuming nothing.
fn next_is(i: &Input<'_>, c: char) -> bool {
    i.peek_token() == Some(c)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// After a name's first character; wider than any real name so that `binary-id(x)` is reported as one unknown name.
fn is_name_char(c: char) -> bool {
    is_ident_char(c) || c == '-'
}

/// `word` as a whole word: `and` but not the start of `android`.
fn keyword<'a>(word: &'static str) -> impl Parser<Input<'a>, (), ErrMode<SyntaxError>> {
    terminated(word, not(one_of(is_ident_char))).void()
}

/// The span of the next character, or an empty span at the end of the input.
fn next_char_span(i: &Input<'_>) -> Range<usize> {
    let at = i.current_token_start();
    at..at + i.peek_token().map_or(0, char::len_utf8)
}

/// Whitespace, then `c`; or the error that `c` (`what`) is missing, under the next character.
fn expect(i: &mut Input<'_>, c: char, what: &str) -> PResult<()> {
    ws(i)?;
    if eat(i, c)? {
        return Ok(());
    }
    fail(
        next_char_span(i),
        format!("expected {what}"),
        format!("missing `{c}`"),
    )
}

fn or_expr<'a>(i: &mut Input<'a>) -> PResult<Expr<'a>> {
    let mut lhs = and_expr(i)?;
    loop {
        ws(i)?;
        if opt(alt(('|'.void(), '+'.void(), keyword("or"))))
            .parse_next(i)?
            .is_none()
        {
            return Ok(lhs);
        }
        let rhs = and_expr(i)?;
        lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
    }
}

fn and_expr<'a>(i: &mut Input<'a>) -> PResult<Expr<'a>> {
    let mut lhs = unary(i)?;
    loop {
        ws(i)?;
        let difference = match opt(alt((
            '&'.value(false),
            keyword("and").value(false),
            '-'.value(true),
        )))
        .parse_next(i)?
        {
            Some(difference) => difference,
            None => return Ok(lhs),
        };
        let mut rhs = unary(i)?;
        if difference {
            rhs = Expr::Not(Box::new(rhs));
        }
        lhs = Expr::And(Box::new(lhs), Box::new(rhs));
    }
}

fn unary<'a>(i: &mut Input<'a>) -> PResult<Expr<'a>> {
    ws(i)?;
    if opt(alt(('!'.void(), keyword("not"))))
        .parse_next(i)?
        .is_some()
    {
        return Ok(Expr::Not(Box::new(unary(i)?)));
    }
    primary(i)
}

/// A parenthesised expression or a predicate; anything else is a missing expression.
fn primary<'a>(i: &mut Input<'a>) -> PResult<Expr<'a>> {
    ws(i)?;
    if eat(i, '(')? {
        let inner = or_expr(i)?;
        expect(i, ')', "close parenthesis")?;
        return Ok(inner);
    }
    let missing = next_char_span(i);
    let ident: PResult<Option<(&str, Range<usize>)>> =
        opt((one_of(is_ident_char), take_while(0.., is_name_char))
            .take()
            .with_span())
        .parse_next(i);
    let (name, name_span) = match ident? {
        Some(found) => found,
        None => return fail(missing, "expected expression", "missing expression"),
    };
    let predicate = match name {
        "all" | "none" => None,
        _ => match Predicate::from_name(name) {
            Some(predicate) => Some(predicate),
            None => {
                return fail(
                    name_span,
                    format!("unknown predicate `{name}`"),
                    format!("expected one of {}", Predicate::NAMES),
                )
            }
        },
    };
    expect(i, '(', "open parenthesis")?;
    let expr = match predicate {
        None => {
            ws(i)?;
            let (extra, span) = raw_text.with_span().parse_next(i)?;
            if !extra.trim().is_empty() {
                return fail(
                    trimmed(extra, span),
                    "unexpected argument",
                    format!("`{name}()` takes no argument"),
                );
            }
            if name == "all" {
                Expr::All
            } else {
                Expr::None
            }
        }
        Some(predicate) => Expr::Predicate(predicate, arg(i)?),
    };
    ws(i)?;
    if eat(i, ')')? {
        return Ok(expr);
    }
    let at = next_char_span(i);
    if eat(i, ',')? {
        return fail(
            at,
            "unexpected comma",
            format!("`{name}()` takes a single argument"),
        );
    }
    fail(at, "expected close parenthesis", "missing `)`")
}

/// A matcher: `/regex/`, or an optional `=`, `~` or `#` and text up to an unescaped `)` or `,`.
fn arg<'a>(i: &mut Input<'a>) -> PResult<Arg<'a>> {
    ws(i)?;
    let start = i.current_token_start();
    if eat(i, '/')? {
        let (text, text_span) = regex_body.with_span().parse_next(i)?;
        if !eat(i, '/')? {
            let at = i.current_token_start();
            return fail(at..at, "expected close regex", "missing `/`");
        }
        let span = start..i.current_token_start();
        return Ok(Arg {
            kind: Some(MatcherKind::Regex),
            text,
            text_span,
            span,
        });
    }
    let kind: PResult<Option<MatcherKind>> = opt(alt((
        '='.value(MatcherKind::Equal),
        '~'.value(MatcherKind::Contains),
        '#'.value(MatcherKind::Glob),
    )))
    .parse_next(i);
    let kind = kind?;
    ws(i)?;
    let (text, text_span) = raw_text.with_span().parse_next(i)?;
    let text_span = trimmed(text, text_span);
    Ok(Arg {
        kind,
        text: text.trim(),
        span: if kind.is_some() {
            start..text_span.end
        } else {
            text_span.clone()
        },
        text_span,
    })
}

/// Text up to an unescaped `)` or `,`; a backslash always takes the next character with it.
fn raw_text<'a>(i: &mut Input<'a>) -> PResult<&'a str> {
    repeat::<_, _, (), _, _>(
        0..,
        alt((('\\', opt(any)).void(), none_of([')', ',', '\\']).void())),
    )
    .take()
    .parse_next(i)
}

/// A regex up to its unescaped closing `/`; other escapes are left for the regex crate.
fn regex_body<'a>(i: &mut Input<'a>) -> PResult<&'a str> {
    repeat::<_, _, (), _, _>(
        0..,
        alt((('\\', opt(any)).void(), none_of(['/', '\\']).void())),
    )
    .take()
    .parse_next(i)
}

/// The span of `text` (found at `span`) without its surrounding whitespace.
fn trimmed(text: &str, span: Range<usize>) -> Range<usize> {
    let start = span.start + (text.len() - text.trim_start().len());
    let end = span.end - (text.len() - text.trim_end().len());
    start..end.max(start)
}

/// The end of the input, or a diagnostic saying what the leftover text is.
fn end(i: &mut Input<'_>) -> PResult<()> {
    let at = next_char_span(i);
    if at.is_empty() {
        return Ok(());
    }
    if next_is(i, ')') {
        return fail(at, "unmatched close parenthesis", "no `(` to close");
    }
    if next_is(i, '(') {
        return fail(at, "expected operator", EXPECTED_OPERATOR_BEFORE);
    }
    let word: PResult<&str> = alt((
        take_while(1.., is_ident_char),
        take_while(1.., |c: char| {
            !(is_ident_char(c) || c.is_whitespace() || c == '(' || c == ')')
        }),
    ))
    .parse_next(i);
    let word = word?;
    let span = at.start..at.start + word.len();
    ws(i)?;
    if next_is(i, '(') && word.chars().all(is_ident_char) {
        // `test(a) package(b)`: a predicate where an operator should be.
        return fail(span, "expected operator", EXPECTED_OPERATOR_BEFORE);
    }
    fail(
        span,
        format!("unknown operator `{word}`"),
        "expected `and`, `or`, `&`, `|`, `+` or `-`",
    )
}

const EXPECTED_OPERATOR_BEFORE: &str = "expected an operator such as `&` or `|` before this";

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as an S-expression, with each predicate shown as its matcher text.
    fn tree(text: &str) -> String {
        fn show(e: &Expr<'_>) -> String {
            match e {
                Expr::Not(a) => format!("(not {})", show(a)),
                Expr::And(a, b) => format!("(and {} {})", show(a), show(b)),
                Expr::Or(a, b) => format!("(or {} {})", show(a), show(b)),
                Expr::All => "all".to_owned(),
                Expr::None => "none".to_owned(),
                Expr::Predicate(_, arg) => arg.text.to_owned(),
            }
        }
        match parse(text) {
            Ok(e) => show(&e),
            Err(d) => panic!("{text:?}: {d:?}"),
        }
    }

    /// Each expression's tree is the one given.
    fn assert_trees(cases: &[(&str, &str)]) {
        for (text, expected) in cases {
            assert_eq!(tree(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_trees(&[
            ("test(a) | test(b) & test(c)", "(or a (and b c))"),
            ("test(a) & test(b) | test(c)", "(or (and a b) c)"),
            ("test(a) or test(b) and test(c)", "(or a (and b c))"),
        ]);
    }

    #[test]
    fn not_binds_tighter_than_and() {
        assert_trees(&[
            ("not test(a) & test(b)", "(and (not a) b)"),
            ("!test(a) | test(b)", "(or (not a) b)"),
            ("not not test(a)", "(not (not a))"),
        ]);
    }

    #[test]
    fn difference_is_and_not_and_left_associative() {
        assert_trees(&[
            (
                "test(a) - test(b) - test(c)",
                "(and (and a (not b)) (not c))",
            ),
            ("test(a) & test(b) - test(c)", "(and (and a b) (not c))"),
            ("test(a) - test(b) & test(c)", "(and (and a (not b)) c)"),
        ]);
    }

    #[test]
    fn or_spellings_are_left_associative() {
        assert_eq!(
            tree("test(a) + test(b) | test(c) or test(d)"),
            "(or (or (or a b) c) d)"
        );
    }

    #[test]
    fn parentheses_override_precedence() {
        assert_trees(&[
            ("(test(a) | test(b)) & test(c)", "(and (or a b) c)"),
            ("not (test(a) | test(b))", "(not (or a b))"),
            (
                "test(a) - (test(b) - test(c))",
                "(and a (not (and b (not c))))",
            ),
        ]);
    }

    #[test]
    fn keywords_are_whole_words() {
        assert_trees(&[
            ("test(android) and test(order)", "(and android order)"),
            ("test(not)or(test(or))", "(or not or)"),
            ("test(a)-test(b)", "(and a (not b))"),
        ]);
    }

    #[test]
    fn matcher_text_and_spans() {
        let Ok(Expr::Predicate(Predicate::Package, arg)) = parse("package( =  my crate  )") else {
            panic!("not a package predicate");
        };
        assert_eq!(arg.kind, Some(MatcherKind::Equal));
        assert_eq!(arg.text, "my crate");
        assert_eq!(arg.text_span, 12..20);
        assert_eq!(arg.span, 9..20);

        let Ok(Expr::Predicate(Predicate::Test, arg)) = parse("test(/a\\/(b)/ )") else {
            panic!("not a test predicate");
        };
        assert_eq!(
            (arg.kind, arg.text, arg.text_span, arg.span),
            (Some(MatcherKind::Regex), "a\\/(b)", 6..12, 5..13)
        );

        let Ok(Expr::Predicate(Predicate::Kind, arg)) = parse("kind(a\\)b\\,c)") else {
            panic!("not a kind predicate");
        };
        assert_eq!((arg.kind, arg.text), (None, "a\\)b\\,c"));
    }
}
