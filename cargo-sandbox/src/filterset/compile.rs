//! Syntax tree to an evaluable expression: matchers are built, `platform()` is checked and
//! `package()`/`deps()`/`rdeps()` are resolved against the package graph. Unlike parsing, this
//! goes on after a problem so that every bad matcher is reported at once.

use super::ast::{Arg, Expr, MatcherKind, Predicate};
use super::error::Diagnostic;
use super::graph::PackageGraph;
use super::matcher::NameMatcher;
use super::{Platform, TestQuery};
use std::collections::BTreeSet;

/// An expression ready to be evaluated against tests.
#[derive(Clone, Debug)]
pub(super) enum Compiled {
    All,
    None,
    Not(Box<Compiled>),
    And(Box<Compiled>, Box<Compiled>),
    Or(Box<Compiled>, Box<Compiled>),
    Test(NameMatcher),
    Package(NameMatcher),
    /// `deps()`/`rdeps()`, resolved to package names.
    PackageIn(BTreeSet<String>),
    Binary(NameMatcher),
    BinaryId(NameMatcher),
    Kind(NameMatcher),
    Platform(Platform),
}

/// Compiles `expr`, or returns every problem found in it.
pub(super) fn compile(expr: &Expr<'_>, graph: &PackageGraph) -> Result<Compiled, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    match node(expr, graph, &mut errors) {
        Some(compiled) if errors.is_empty() => Ok(compiled),
        _ => Err(errors),
    }
}

/// Compiles one node, pushing its problems to `errors`; `None` if there were any.
fn node(expr: &Expr<'_>, graph: &PackageGraph, errors: &mut Vec<Diagnostic>) -> Option<Compiled> {
    Some(match expr {
        Expr::All => Compiled::All,
        Expr::None => Compiled::None,
        Expr::Not(inner) => Compiled::Not(Box::new(node(inner, graph, errors)?)),
        Expr::And(a, b) | Expr::Or(a, b) => {
            // Both sides first, so that a problem on the left doesn't hide one on the right.
            let (a, b) = (node(a, graph, errors), node(b, graph, errors));
            let (a, b) = (Box::new(a?), Box::new(b?));
            if matches!(expr, Expr::And(..)) {
                Compiled::And(a, b)
            } else {
                Compiled::Or(a, b)
            }
        }
        Expr::Predicate(Predicate::Platform, arg) => match platform(arg) {
            Some(p) => Compiled::Platform(p),
            None => {
                errors.push(Diagnostic::new(
                    arg.span.clone(),
                    "invalid argument for platform",
                    "expected `host` or `target`",
                ));
                return None;
            }
        },
        Expr::Predicate(predicate, arg) => {
            let matcher = match NameMatcher::new(arg, predicate.default_matcher()) {
                Ok(matcher) => matcher,
                Err(found) => {
                    errors.extend(found);
                    return None;
                }
            };
            match predicate {
                Predicate::Test => Compiled::Test(matcher),
                Predicate::Binary => Compiled::Binary(matcher),
                Predicate::BinaryId => Compiled::BinaryId(matcher),
                Predicate::Kind => Compiled::Kind(matcher),
                Predicate::Package | Predicate::Deps | Predicate::Rdeps => {
                    let matched = graph.matching(&matcher);
                    if matched.is_empty() {
                        // As in nextest: almost certainly a typo, which would otherwise
                        // silently select nothing.
                        errors.push(Diagnostic::new(
                            arg.span.clone(),
                            "no workspace package matched",
                            "no package matched this",
                        ));
                        return None;
                    }
                    match predicate {
                        Predicate::Deps => Compiled::PackageIn(graph.with_dependencies(matched)),
                        Predicate::Rdeps => Compiled::PackageIn(graph.with_dependents(matched)),
                        _ => Compiled::Package(matcher),
                    }
                }
                Predicate::Platform => return None,
            }
        }
    })
}

/// `host` or `target`, optionally written as `=host`/`=target`.
fn platform(arg: &Arg<'_>) -> Option<Platform> {
    match (arg.kind.unwrap_or(MatcherKind::Equal), arg.text) {
        (MatcherKind::Equal, "host") => Some(Platform::Host),
        (MatcherKind::Equal, "target") => Some(Platform::Target),
        _ => None,
    }
}

impl Compiled {
    pub(super) fn matches(&self, test: &TestQuery<'_>) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Not(inner) => !inner.matches(test),
            Self::And(a, b) => a.matches(test) && b.matches(test),
            Self::Or(a, b) => a.matches(test) || b.matches(test),
            Self::Test(m) => m.is_match(test.test_name),
            Self::Package(m) => m.is_match(test.package),
            Self::PackageIn(names) => names.contains(test.package),
            Self::Binary(m) => m.is_match(test.binary_name),
            Self::BinaryId(m) => m.is_match(test.binary_id),
            Self::Kind(m) => m.is_match(test.kind),
            Self::Platform(p) => *p == test.platform,
        }
    }
}
