//! Reading the configuration file and choosing, for one test, the layers that apply.

use super::Layer;
use crate::filterset::{Filterset, PackageGraph, TestQuery};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How an override names tests: `exact:NAME`, `glob:PATTERN`, `regex:RE`, or a bare string
/// (a substring for `test`, an exact name for `package` and `binary`).
#[derive(Debug, Clone)]
pub enum Pattern {
    Bare(String),
    Exact(String),
    Glob(globset::GlobMatcher),
    Regex(regex::Regex),
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if let Some(name) = text.strip_prefix("exact:") {
            Ok(Pattern::Exact(name.to_owned()))
        } else if let Some(glob) = text.strip_prefix("glob:") {
            let matcher = globset::Glob::new(glob)
                .map_err(|e| format!("bad glob `{glob}`: {e}"))?
                .compile_matcher();
            Ok(Pattern::Glob(matcher))
        } else if let Some(re) = text.strip_prefix("regex:") {
            regex::Regex::new(re)
                .map(Pattern::Regex)
                .map_err(|e| format!("bad regex `{re}`: {e}"))
        } else {
            Ok(Pattern::Bare(text.to_owned()))
        }
    }

    /// `bare_is_substring`: what a bare string means for this key.
    pub fn matches(&self, name: &str, bare_is_substring: bool) -> bool {
        match self {
            Pattern::Bare(s) if bare_is_substring => name.contains(s.as_str()),
            Pattern::Bare(s) | Pattern::Exact(s) => name == s,
            Pattern::Glob(m) => m.is_match(name),
            Pattern::Regex(re) => re.is_match(name),
        }
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pattern, D::Error> {
        Pattern::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profile: BTreeMap<String, Layer>,
}

/// `[workspace.metadata.sandbox]` inside a Cargo.toml; everything else there is cargo's.
#[derive(Deserialize)]
struct CargoToml {
    workspace: Option<CargoWorkspace>,
}

#[derive(Deserialize)]
struct CargoWorkspace {
    metadata: Option<CargoMetadata>,
}

#[derive(Deserialize)]
struct CargoMetadata {
    sandbox: Option<ConfigFile>,
}

/// A configuration error: file, line and key are in the message.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Default)]
pub struct Config {
    /// Where the configuration was read from, if anywhere.
    pub source: Option<PathBuf>,
    profiles: BTreeMap<String, Layer>,
    /// Overrides' filtersets, compiled, by where each comes from (`profile.x.overrides[i]`).
    filters: BTreeMap<String, Filterset>,
}

/// Profiles that exist even when the file does not define them.
const BUILT_IN_PROFILES: [&str; 2] = ["default", "ci"];

impl Config {
    /// Reads `.config/sandbox.toml` or `[workspace.metadata.sandbox]` under `workspace_root`.
    pub fn load(workspace_root: &Path) -> Result<Config, ConfigError> {
        let dedicated = workspace_root.join(".config/sandbox.toml");
        let manifest = workspace_root.join("Cargo.toml");
        let from_file = match std::fs::read_to_string(&dedicated) {
            Ok(text) => Some(parse::<ConfigFile>(&dedicated, &text)?),
            Err(_) => None,
        };
        let from_manifest = match std::fs::read_to_string(&manifest) {
            Ok(text) => parse::<CargoToml>(&manifest, &text)?
                .workspace
                .and_then(|w| w.metadata)
                .and_then(|m| m.sandbox),
            Err(_) => None,
        };
        let (source, file) = match (from_file, from_manifest) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(format!(
                    "cargo-sandbox is configured twice: in {} and in [workspace.metadata.sandbox] of {}; keep one",
                    dedicated.display(),
                    manifest.display()
                )))
            }
            (Some(file), None) => (dedicated, file),
            (None, Some(file)) => (manifest, file),
            (None, None) => return Ok(Config::default()),
        };
        let text = std::fs::read_to_string(&source).unwrap_or_default();
        validate(&source, &text, &file)?;
        Ok(Config {
            source: Some(source),
            filters: BTreeMap::new(),
            profiles: file.profile,
        })
    }

    /// Fails for a profile that is neither defined nor built in.
    pub fn check_profile(&self, name: &str) -> Result<(), ConfigError> {
        if self.profiles.contains_key(name) || BUILT_IN_PROFILES.contains(&name) {
            return Ok(());
        }
        let known: Vec<&str> = BUILT_IN_PROFILES
            .iter()
            .copied()
            .chain(self.profiles.keys().map(String::as_str))
            .collect();
        Err(ConfigError(format!(
            "no profile `{name}` in {} (known: {})",
            self.source
                .as_deref()
                .map_or_else(|| "the configuration".into(), |p| p.display().to_string()),
            known.join(", ")
        )))
    }

    /// Compiles the overrides' filtersets against the workspace's packages (`package()` and
    /// `deps()` need them); a bad one is reported with its place in the file.
    pub fn compile_filters(&mut self, graph: &PackageGraph) -> Result<(), ConfigError> {
        let mut filters = BTreeMap::new();
        for (name, profile) in &self.profiles {
            let Some(overrides) = &profile.overrides else {
                continue;
            };
            for (i, o) in overrides.get_ref().iter().enumerate() {
                let Some(filter) = &o.get_ref().filter else {
                    continue;
                };
                let origin = format!("profile.{name}.overrides[{i}]");
                let compiled = Filterset::parse(filter.get_ref(), graph).map_err(|e| {
                    ConfigError(format!(
                        "invalid filter in {} ({origin}):\n{e}",
                        self.source.as_deref().map_or_else(
                            || "the configuration".into(),
                            |p| p.display().to_string()
                        )
                    ))
                })?;
                filters.insert(origin, compiled);
            }
        }
        self.filters = filters;
        Ok(())
    }

    /// The layers that apply to one test, lowest priority first: `[profile.default]`, the chosen
    /// profile, then matching overrides (default's, then the profile's; within a profile the
    /// first matching override has the last word). An override with a `filter` applies only to
    /// a test (`query`), never to a whole binary.
    pub fn layers_for(
        &self,
        profile: &str,
        package: &str,
        binary: &str,
        test: &str,
        query: Option<&TestQuery>,
    ) -> Vec<(&Layer, String)> {
        let names = profile_names(profile);
        let mut layers: Vec<(&Layer, String)> = names
            .iter()
            .filter_map(|name| Some((self.profiles.get(*name)?, format!("profile.{name}"))))
            .collect();
        layers.extend(self.overrides(profile).into_iter().filter(|(o, origin)| {
            let filter_hit = o.filter.is_none()
                || query.is_some_and(|q| self.filters.get(origin).is_some_and(|f| f.matches(q)));
            hit(&o.package, package, false)
                && hit(&o.binary, binary, false)
                && hit(&o.test, test, true)
                && filter_hit
        }));
        layers
    }

    /// Whether an override that names tests could apply to some test of this binary: then its
    /// tests may not all share the binary's settings, and the binary must be listed to tell.
    pub fn has_test_overrides(&self, profile: &str, package: &str, binary: &str) -> bool {
        self.overrides(profile).into_iter().any(|(o, _)| {
            (o.test.is_some() || o.filter.is_some())
                && hit(&o.package, package, false)
                && hit(&o.binary, binary, false)
        })
    }

    /// Whether some override has a filterset (which `cargo sandbox config` cannot evaluate).
    pub fn has_filters(&self) -> bool {
        self.profiles.values().any(|p| {
            p.overrides
                .as_ref()
                .is_some_and(|o| o.get_ref().iter().any(|o| o.get_ref().filter.is_some()))
        })
    }

    /// Every override of the profiles in force, in the order `layers_for` applies them, with
    /// where each comes from.
    fn overrides(&self, profile: &str) -> Vec<(&Layer, String)> {
        let mut all = Vec::new();
        for name in profile_names(profile) {
            let Some(overrides) = self.profiles.get(name).and_then(|l| l.overrides.as_ref()) else {
                continue;
            };
            for (i, o) in overrides.get_ref().iter().enumerate().rev() {
                all.push((o.get_ref(), format!("profile.{name}.overrides[{i}]")));
            }
        }
        all
    }
}

/// Parses TOML into `T`; toml's own message names the line, column and key.
fn parse<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str::<T>(text)
        .map_err(|e| ConfigError(format!("invalid configuration in {}: {e}", path.display())))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The rules TOML types cannot express: filters only in overrides, overrides only in profiles,
/// and every override names what it applies to.
fn validate(path: &Path, text: &str, file: &ConfigFile) -> Result<(), ConfigError> {
    let at = |span: std::ops::Range<usize>, key: &str, message: &str| {
        ConfigError(format!(
            "invalid configuration in {} line {}: key `{key}`: {message}",
            path.display(),
            line_of(text, span.start)
        ))
    };
    for (name, profile) in &file.profile {
        let spans = [
            ("package", profile.package.as_ref().map(|p| p.span())),
            ("binary", profile.binary.as_ref().map(|p| p.span())),
            ("test", profile.test.as_ref().map(|p| p.span())),
            ("filter", profile.filter.as_ref().map(|p| p.span())),
        ];
        for (key, span) in spans {
            if let Some(span) = span {
                return Err(at(
                    span,
                    key,
                    &format!(
                        "filters belong in [[profile.{name}.overrides]], not in [profile.{name}]"
                    ),
                ));
            }
        }
        let Some(overrides) = &profile.overrides else {
            continue;
        };
        for o in overrides.get_ref() {
            let layer = o.get_ref();
            if let Some(nested) = &layer.overrides {
                return Err(at(
                    nested.span(),
                    "overrides",
                    "overrides cannot have overrides of their own",
                ));
            }
            if layer.package.is_none()
                && layer.binary.is_none()
                && layer.test.is_none()
                && layer.filter.is_none()
            {
                return Err(at(o.span(), "overrides", "an override needs at least one of `package`, `binary`, `test` or `filter` to say which tests it applies to"));
            }
        }
    }
    Ok(())
}

/// The profiles in force, lowest priority first.
fn profile_names(profile: &str) -> Vec<&str> {
    let mut names = vec!["default"];
    if profile != "default" {
        names.push(profile);
    }
    names
}

/// An override's pattern matches (an absent one matches everything).
fn hit(pattern: &Option<toml::Spanned<Pattern>>, value: &str, substring: bool) -> bool {
    pattern
        .as_ref()
        .is_none_or(|p| p.get_ref().matches(value, substring))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!(
            "sandbox-config-test-{}-{}",
            std::process::id(),
            line_of(text, text.len())
        ));
        std::fs::create_dir_all(dir.join(".config")).unwrap();
        std::fs::write(dir.join(".config/sandbox.toml"), text).unwrap();
        let config = Config::load(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        config
    }

    #[test]
    fn patterns() {
        assert!(Pattern::parse("exact:a::b").unwrap().matches("a::b", true));
        assert!(!Pattern::parse("exact:a::b").unwrap().matches("a::bc", true));
        assert!(Pattern::parse("glob:parser::*")
            .unwrap()
            .matches("parser::x", true));
        assert!(Pattern::parse("regex:^p.r")
            .unwrap()
            .matches("parser", true));
        assert!(Pattern::parse("ars").unwrap().matches("parser", true));
        assert!(!Pattern::parse("ars").unwrap().matches("parser", false));
        assert!(Pattern::parse("regex:(").is_err());
    }

    #[test]
    fn overrides_apply_in_order() {
        let config = load(
            "[profile.default]\nmemory = \"1G\"\n\n[[profile.default.overrides]]\ntest = \"parser\"\nmemory = \"2G\"\n\n\
             [[profile.default.overrides]]\ntest = \"parser::big\"\nmemory = \"3G\"\n[profile.ci]\npids = 10\n",
        )
        .unwrap();
        let settings = |profile, test| {
            super::super::Resolved::from_layers(config.layers_for(profile, "p", "p", test, None)).0
        };
        assert_eq!(
            settings("default", "lexer").memory,
            super::super::Cap::Max(1 << 30)
        );
        assert_eq!(
            settings("default", "parser::big").memory,
            super::super::Cap::Max(2 << 30),
            "the first matching override wins"
        );
        assert_eq!(settings("ci", "x").pids, super::super::Cap::Max(10));
        assert!(config.check_profile("nightly").is_err());
    }

    #[test]
    fn overrides_naming_tests_are_found_per_binary() {
        let config = load(
            "[[profile.default.overrides]]\npackage = \"a\"\nmemory = \"2G\"\n\n\
             [[profile.ci.overrides]]\nbinary = \"b::it\"\ntest = \"big\"\nmemory = \"3G\"\n",
        )
        .unwrap();
        assert!(
            !config.has_test_overrides("default", "a", "a"),
            "no test pattern"
        );
        assert!(
            !config.has_test_overrides("default", "b", "b::it"),
            "another profile's"
        );
        assert!(config.has_test_overrides("ci", "b", "b::it"));
        assert!(!config.has_test_overrides("ci", "b", "b"), "another binary");
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = load("[profile.default]\nmemroy = \"1G\"\n").unwrap_err().0;
        assert!(e.contains("line 2") && e.contains("memroy"), "{e}");
        let e = load("[profile.default]\n\n[[profile.default.overrides]]\nmemory = \"1G\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("line 3") && e.contains("at least one of"), "{e}");
        let e = load("[profile.default]\n[[profile.default.overrides]]\ntest = \"regex:(\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("line 3") && e.contains("bad regex"), "{e}");
        let e = load("[profile.default]\npids = \"many\"\n").unwrap_err().0;
        assert!(
            e.contains("line 2") && e.contains("not a process count"),
            "{e}"
        );
    }
}
