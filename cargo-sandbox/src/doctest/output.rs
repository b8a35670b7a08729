//! rustdoc's libtest output in the collecting run, crate by crate: each test's result line and
//! each failure's section (where the collector's token is).

use super::collector::TOKEN;

/// One crate's doc tests, as rustdoc reported them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CrateReport {
    /// As cargo prints it after `Doc-tests`: the library's crate name.
    pub crate_name: String,
    /// In the order rustdoc reported them.
    pub tests: Vec<Reported>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Reported {
    pub name: String,
    pub result: Verdict,
    /// The failure's section: what rustdoc printed under the test's name.
    pub section: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Failed,
    Ignored,
}

impl Reported {
    /// The id of the binary the collector kept for this test, if it reached the collector.
    pub fn token(&self) -> Option<&str> {
        let at = self.section.find(TOKEN)? + TOKEN.len();
        let rest = &self.section[at..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        Some(&rest[..end])
    }

    /// `no_run` and `compile_fail` tests: rustdoc judges them by compiling; nothing runs.
    pub fn compile_only(&self) -> bool {
        compile_only(&self.name)
    }
}

/// rustdoc names `no_run` tests `... - compile` and `compile_fail` ones `... - compile fail`.
pub fn compile_only(name: &str) -> bool {
    name.ends_with(" - compile") || name.ends_with(" - compile fail")
}

/// Splits cargo's and rustdoc's interleaved output into crates; lines before the first
/// `Doc-tests` (cargo's build output) are returned apart.
pub fn parse(text: &str) -> Vec<CrateReport> {
    let mut crates: Vec<CrateReport> = Vec::new();
    // The failure section being read: (test name, its text).
    let mut section: Option<(String, String)> = None;
    let close = |crates: &mut Vec<CrateReport>, section: &mut Option<(String, String)>| {
        if let (Some((name, text)), Some(krate)) = (section.take(), crates.last_mut()) {
            if let Some(test) = krate.tests.iter_mut().find(|t| t.name == name) {
                test.section = text;
            }
        }
    };
    for line in text.lines() {
        if let Some(name) = line.trim_start().strip_prefix("Doc-tests ") {
            close(&mut crates, &mut section);
            crates.push(CrateReport {
                crate_name: name.trim().to_owned(),
                tests: Vec::new(),
            });
            continue;
        }
        let Some(krate) = crates.last_mut() else {
            continue;
        };
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            close(&mut crates, &mut section);
            section = Some((name.to_owned(), String::new()));
            continue;
        }
        if let Some((_, text)) = &mut section {
            // The list of failed names after the sections ends them.
            if line == "failures:" || line.starts_with("test result: ") {
                close(&mut crates, &mut section);
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if let Some((name, result)) = line
            .strip_prefix("test ")
            .and_then(|l| l.rsplit_once(" ... "))
        {
            let result = if result == "ok" {
                Verdict::Ok
            } else if result == "FAILED" {
                Verdict::Failed
            } else if result.starts_with("ignored") {
                Verdict::Ignored
            } else {
                continue;
            };
            krate.tests.push(Reported {
                name: name.to_owned(),
                result,
                section: String::new(),
            });
        }
    }
    close(&mut crates, &mut section);
    crates
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
   Compiling c v0.1.0 (/tmp/c)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.24s
   Doc-tests c

running 5 tests
test src/lib.rs - cf (line 31) - compile fail ... ok
test src/lib.rs - add (line 1) ... FAILED
test src/lib.rs - ig (line 26) ... ignored
test src/lib.rs - broken (line 6) ... FAILED
test src/lib.rs - sp (line 11) ... ok

failures:

---- src/lib.rs - add (line 1) stdout ----
Test executable failed (exit status: 1).

stdout:
cargo-sandbox-doctest:123-456


---- src/lib.rs - broken (line 6) stdout ----
error[E0308]: mismatched types

failures:
    src/lib.rs - add (line 1)
    src/lib.rs - broken (line 6)

test result: FAILED. 2 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out
   Doc-tests other_crate

running 1 test
test src/lib.rs - x (line 1) ... ignored, not yet

test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out
";

    #[test]
    fn reads_each_crates_results_and_tokens() {
        let crates = parse(OUTPUT);
        assert_eq!(crates.len(), 2);
        let c = &crates[0];
        assert_eq!(c.crate_name, "c");
        let got: Vec<(&str, Verdict, Option<&str>, bool)> = c
            .tests
            .iter()
            .map(|t| (t.name.as_str(), t.result, t.token(), t.compile_only()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "src/lib.rs - cf (line 31) - compile fail",
                    Verdict::Ok,
                    None,
                    true
                ),
                (
                    "src/lib.rs - add (line 1)",
                    Verdict::Failed,
                    Some("123-456"),
                    false
                ),
                ("src/lib.rs - ig (line 26)", Verdict::Ignored, None, false),
                ("src/lib.rs - broken (line 6)", Verdict::Failed, None, false),
                ("src/lib.rs - sp (line 11)", Verdict::Ok, None, false),
            ]
        );
        assert!(c.tests[3].section.contains("error[E0308]"));
        assert!(!c.tests[3].section.contains("failures:"));
        assert_eq!(crates[1].crate_name, "other_crate");
        assert_eq!(crates[1].tests[0].result, Verdict::Ignored);
    }
}
