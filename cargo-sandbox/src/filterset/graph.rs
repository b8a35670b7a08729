//! The workspace's packages and dependency edges, which `package()`, `deps()` and `rdeps()` are
//! resolved against once, when an expression is parsed.

use super::matcher::NameMatcher;
use std::collections::{BTreeMap, BTreeSet};

/// Workspace packages and their dependency edges, for deps()/rdeps().
#[derive(Clone, Debug, Default)]
pub struct PackageGraph {
    /// Package name to the workspace packages it depends on.
    deps: BTreeMap<String, BTreeSet<String>>,
    /// Package name to the workspace packages that depend on it.
    rdeps: BTreeMap<String, BTreeSet<String>>,
}

impl PackageGraph {
    /// `packages`: (package name, names of packages it depends on — only those in the workspace
    /// matter; the others are dropped).
    pub fn new(packages: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        let packages: Vec<_> = packages.into_iter().collect();
        let mut deps: BTreeMap<String, BTreeSet<String>> = packages
            .iter()
            .map(|(name, _)| (name.clone(), BTreeSet::new()))
            .collect();
        let mut rdeps = deps.clone();
        for (name, dependencies) in &packages {
            for dependency in dependencies {
                if dependency == name {
                    continue;
                }
                if let Some(dependents) = rdeps.get_mut(dependency) {
                    dependents.insert(name.clone());
                    deps.entry(name.clone())
                        .or_default()
                        .insert(dependency.clone());
                }
            }
        }
        Self { deps, rdeps }
    }

    /// The workspace packages whose names `matcher` matches.
    pub(super) fn matching(&self, matcher: &NameMatcher) -> BTreeSet<String> {
        self.deps
            .keys()
            .filter(|name| matcher.is_match(name))
            .cloned()
            .collect()
    }

    /// `roots` and every package they transitively depend on.
    pub(super) fn with_dependencies(&self, roots: BTreeSet<String>) -> BTreeSet<String> {
        closure(&self.deps, roots)
    }

    /// `roots` and every package that transitively depends on them.
    pub(super) fn with_dependents(&self, roots: BTreeSet<String>) -> BTreeSet<String> {
        closure(&self.rdeps, roots)
    }
}

/// Everything reachable from `roots` along `edges`, `roots` included.
fn closure(
    edges: &BTreeMap<String, BTreeSet<String>>,
    roots: BTreeSet<String>,
) -> BTreeSet<String> {
    let mut queue: Vec<String> = roots.iter().cloned().collect();
    let mut seen = roots;
    while let Some(name) = queue.pop() {
        for next in edges.get(&name).into_iter().flatten() {
            if seen.insert(next.clone()) {
                queue.push(next.clone());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// a depends on b, b on c (and on serde, outside the workspace); d stands alone.
    fn graph() -> PackageGraph {
        PackageGraph::new([
            ("a".to_owned(), vec!["b".to_owned()]),
            ("b".to_owned(), vec!["c".to_owned(), "serde".to_owned()]),
            ("c".to_owned(), vec![]),
            ("d".to_owned(), vec![]),
        ])
    }

    #[test]
    fn dependencies_are_transitive() {
        assert_eq!(
            graph().with_dependencies(set(&["a"])),
            set(&["a", "b", "c"])
        );
        assert_eq!(graph().with_dependencies(set(&["c"])), set(&["c"]));
    }

    #[test]
    fn dependents_are_transitive() {
        assert_eq!(graph().with_dependents(set(&["c"])), set(&["a", "b", "c"]));
        assert_eq!(graph().with_dependents(set(&["a", "d"])), set(&["a", "d"]));
    }

    #[test]
    fn packages_outside_the_workspace_are_ignored() {
        let g = graph();
        assert!(!g.deps.contains_key("serde"));
        assert_eq!(g.with_dependencies(set(&["b"])), set(&["b", "c"]));
    }

    #[test]
    fn cycles_terminate() {
        let g = PackageGraph::new([
            ("x".to_owned(), vec!["y".to_owned()]),
            ("y".to_owned(), vec!["x".to_owned(), "y".to_owned()]),
        ]);
        assert_eq!(g.with_dependencies(set(&["x"])), set(&["x", "y"]));
        assert_eq!(g.with_dependents(set(&["y"])), set(&["x", "y"]));
    }
}
