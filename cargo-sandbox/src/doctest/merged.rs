//! Edition 2024 merges a crate's doc tests into one binary; rustdoc's generated runner
//! (`doctest_runner_2024.rs`) describes each: `new_doctest(name, ignore, file, line, no_run,
//! should_panic, ..)`, and, for those that run, `doctest_runner(bin_path, N)`. Run with
//! `RUSTDOC_DOCTEST_RUN_NB_TEST=N`, the binary runs test N alone and exits with its result.

/// The variable that makes a merged binary run one test.
pub const RUN_ONE_VAR: &str = "RUSTDOC_DOCTEST_RUN_NB_TEST";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedTest {
    pub name: String,
    pub ignore: bool,
    pub no_run: bool,
    pub should_panic: bool,
    /// Its index for [`RUN_ONE_VAR`], when it runs at all.
    pub index: Option<usize>,
}

impl MergedTest {
    /// The name as cargo test shows it: libtest adds the mode of a merged doc test.
    pub fn shown_name(&self) -> String {
        if self.should_panic {
            format!("{} - should panic", self.name)
        } else if self.no_run {
            format!("{} - compile", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// The tests the runner's source describes; `Err` when it does not read as expected (a
/// rustdoc whose generated code changed).
pub fn parse(source: &str) -> Result<Vec<MergedTest>, String> {
    let mut tests = Vec::new();
    let blocks: Vec<&str> = source.split("mod __doctest_").skip(1).collect();
    for block in blocks {
        let Some(at) = block.find("new_doctest(") else {
            continue;
        };
        let args = &block[at + "new_doctest(".len()..];
        let (name, rest) = string_literal(args).ok_or("a doc test without a name")?;
        // ignore, "file", line, no_run, should_panic
        let fields: Vec<&str> = rest.splitn(7, ',').map(str::trim).collect();
        let flag = |i: usize| match fields.get(i) {
            Some(&"true") => Ok(true),
            Some(&"false") => Ok(false),
            other => Err(format!("unexpected field {other:?} for `{name}`")),
        };
        // fields[0] is empty: `rest` starts after the name's closing quote, at its comma.
        let ignore = flag(1)?;
        let no_run = flag(4)?;
        let should_panic = flag(5)?;
        let index = block
            .find("doctest_runner(bin_path, ")
            .map(|at| &block[at + "doctest_runner(bin_path, ".len()..])
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.trim().parse().ok());
        tests.push(MergedTest {
            name,
            ignore,
            no_run,
            should_panic,
            index,
        });
    }
    if tests.is_empty() && source.contains("new_doctest(") {
        return Err("no doc test could be read".to_owned());
    }
    Ok(tests)
}

/// A Rust string literal at the start of `text` (after whitespace): its value and the rest.
fn string_literal(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start().strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                '0' => value.push('\0'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNER: &str = r#"
mod __doctest_0 {
pub const TEST: test::TestDescAndFn = test::TestDescAndFn::new_doctest(
"src/lib.rs - add (line 1)", false, "src/lib.rs", 1, false, false,
test::StaticTestFn(
    || {
if let Some(bin_path) = crate::__doctest_mod::doctest_path() {
    test::assert_test_result(crate::__doctest_mod::doctest_runner(bin_path, 0))
} else {
    test::assert_test_result(doctest_bundle::__doctest_0::__main_fn())
}
},
));
}

mod __doctest_1 {
pub const TEST: test::TestDescAndFn = test::TestDescAndFn::new_doctest(
"src/lib.rs - nr (line 21)", false, "src/lib.rs", 21, true, false,
test::StaticTestFn(
    || {test::assert_test_result(Ok::<(), String>(()))},
));
}

mod __doctest_2 {
pub const TEST: test::TestDescAndFn = test::TestDescAndFn::new_doctest(
"src/lib.rs - Q\"x\" (line 11)", false, "src/lib.rs", 11, false, true,
test::StaticTestFn(
    || {
if let Some(bin_path) = crate::__doctest_mod::doctest_path() {
    test::assert_test_result(crate::__doctest_mod::doctest_runner(bin_path, 2))
} else {
    test::assert_test_result(doctest_bundle::__doctest_2::__main_fn())
}
},
));
}

mod __doctest_mod {
"#;

    #[test]
    fn reads_each_test_of_rustdocs_runner() {
        let tests = parse(RUNNER).unwrap();
        assert_eq!(
            tests,
            [
                MergedTest {
                    name: "src/lib.rs - add (line 1)".into(),
                    ignore: false,
                    no_run: false,
                    should_panic: false,
                    index: Some(0),
                },
                MergedTest {
                    name: "src/lib.rs - nr (line 21)".into(),
                    ignore: false,
                    no_run: true,
                    should_panic: false,
                    index: None,
                },
                MergedTest {
                    name: "src/lib.rs - Q\"x\" (line 11)".into(),
                    ignore: false,
                    no_run: false,
                    should_panic: true,
                    index: Some(2),
                },
            ]
        );
    }
}
