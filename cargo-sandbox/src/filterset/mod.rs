//! nextest filtersets (`-E 'test(foo) & package(bar)'`): parsing and matching.
//!
//! The language is nextest's (<https://nexte.st/docs/filtersets/reference>), so that
//! expressions written for `cargo nextest run -E` select the same tests here.

mod ast;
mod compile;
mod error;
mod graph;
mod matcher;
mod parse;
#[cfg(test)]
mod tests;

pub use error::FiltersetError;
pub use graph::PackageGraph;

use compile::Compiled;

/// What a filterset is evaluated against: one test.
#[derive(Clone, Copy, Debug)]
pub struct TestQuery<'a> {
    /// Package name, e.g. "basic".
    pub package: &'a str,
    /// nextest-style: "basic", "basic::env", "basic::bin/basic-bin".
    pub binary_id: &'a str,
    /// Target name, e.g. "basic", "env", "basic-bin".
    pub binary_name: &'a str,
    /// "lib", "test", "bin", "bench", "example", "proc-macro", "doctest".
    pub kind: &'a str,
    pub platform: Platform,
    /// e.g. "tests::adds" or "src/lib.rs - add (line 3)".
    pub test_name: &'a str,
}

/// Which platform a test binary was built for, for `platform(host|target)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Host,
    Target,
}

/// One parsed and compiled expression.
#[derive(Clone, Debug)]
pub struct Filterset {
    expr: Compiled,
}

impl Filterset {
    /// Parses `expr` and resolves `package()`, `deps()` and `rdeps()` against `graph`, once.
    /// As in nextest, those predicates are an error when they match no workspace package.
    pub fn parse(expr: &str, graph: &PackageGraph) -> Result<Filterset, FiltersetError> {
        let ast = parse::parse(expr).map_err(|d| FiltersetError::new(expr, vec![d]))?;
        let compiled = compile::compile(&ast, graph).map_err(|ds| FiltersetError::new(expr, ds))?;
        Ok(Self { expr: compiled })
    }

    pub fn matches(&self, test: &TestQuery<'_>) -> bool {
        self.expr.matches(test)
    }
}

/// Several `-E` expressions or-ed, as nextest does. Empty = no filterset given.
#[derive(Clone, Debug, Default)]
pub struct Filtersets(Vec<Filterset>);

impl Filtersets {
    /// Parses every expression, reporting the problems of all the bad ones together.
    pub fn parse_all(exprs: &[String], graph: &PackageGraph) -> Result<Self, FiltersetError> {
        let mut parsed = Vec::with_capacity(exprs.len());
        let mut errors = Vec::new();
        for expr in exprs {
            match Filterset::parse(expr, graph) {
                Ok(f) => parsed.push(f),
                Err(e) => errors.push(e),
            }
        }
        match FiltersetError::merge(errors) {
            Some(error) => Err(error),
            None => Ok(Self(parsed)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any expression selects `test`; with none given, every test is selected.
    pub fn matches(&self, test: &TestQuery<'_>) -> bool {
        self.0.is_empty() || self.0.iter().any(|f| f.matches(test))
    }
}
