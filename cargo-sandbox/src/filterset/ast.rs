//! The syntax tree the parser produces: operators and predicates with their raw, unvalidated
//! matcher text and its location, so that compiling can point at bad regexes, globs and escapes.

use std::ops::Range;

/// A filterset expression. `A - B` is parsed straight into `And(A, Not(B))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Expr<'a> {
    Not(Box<Expr<'a>>),
    And(Box<Expr<'a>>, Box<Expr<'a>>),
    Or(Box<Expr<'a>>, Box<Expr<'a>>),
    All,
    None,
    Predicate(Predicate, Arg<'a>),
}

/// A predicate that takes a name matcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Predicate {
    Test,
    Package,
    Deps,
    Rdeps,
    Binary,
    BinaryId,
    Kind,
    Platform,
}

impl Predicate {
    /// Every predicate name, for "expected one of" messages.
    pub(super) const NAMES: &'static str =
        "all, none, test, package, deps, rdeps, binary, binary_id, kind, platform";

    /// The matcher-taking predicate called `name` (`all` and `none` are handled by the parser).
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "test" => Self::Test,
            "package" => Self::Package,
            "deps" => Self::Deps,
            "rdeps" => Self::Rdeps,
            "binary" => Self::Binary,
            "binary_id" => Self::BinaryId,
            "kind" => Self::Kind,
            "platform" => Self::Platform,
            _ => return None,
        })
    }

    /// How an argument without a `=`, `~`, `#` or `/` prefix matches, as nextest documents it.
    pub(super) fn default_matcher(self) -> MatcherKind {
        match self {
            Self::Test => MatcherKind::Contains,
            Self::Package | Self::Deps | Self::Rdeps | Self::Binary | Self::BinaryId => {
                MatcherKind::Glob
            }
            Self::Kind | Self::Platform => MatcherKind::Equal,
        }
    }
}

/// How a matcher compares names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MatcherKind {
    Equal,
    Contains,
    Glob,
    Regex,
}

/// A predicate's argument as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Arg<'a> {
    /// `None` when no prefix was given, so the predicate's default applies.
    pub(super) kind: Option<MatcherKind>,
    /// The text after the prefix, trimmed, escapes not yet processed (for a regex: between the
    /// slashes).
    pub(super) text: &'a str,
    /// Where `text` is in the expression.
    pub(super) text_span: Range<usize>,
    /// The whole argument including its prefix, for errors about the argument as a whole.
    pub(super) span: Range<usize>,
}
