//! Reading libtest's output: each test's result line, the closing `test result:` line, a
//! failing test's own section of a binary's output. libtest-mimic (and harnesses that mimic
//! libtest) print the same.

use harness::SandboxResult;

/// How many tests libtest's closing `test result:` line counts (passed, failed and ignored).
pub fn libtest_total(output: &str) -> Option<usize> {
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("test result: "))?;
    let count = |word: &str| -> Option<usize> {
        line.split(';')
            .find_map(|part| part.trim().rsplit_once(' ').filter(|(_, w)| *w == word))
            .and_then(|(n, _)| {
                n.trim_start_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()
            })
    };
    Some(count("passed")? + count("failed")? + count("ignored")?)
}

/// libtest's `test result:` line says one test ran (a name that matched nothing would run zero
/// and pass).
pub fn ran_exactly_one(result: &SandboxResult) -> bool {
    result
        .output
        .as_ref()
        .is_some_and(|o| o.tail.contains(" 1 passed") || o.head.contains(" 1 passed"))
}

/// `test NAME ... ok|FAILED|ignored` lines of libtest's pretty output.
pub fn libtest_results(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (name, result) = rest.rsplit_once(" ... ")?;
            // libtest-mimic pads names to the longest one.
            let name = name.trim_end();
            let name = name.strip_suffix(" - should panic").unwrap_or(name);
            let result = result
                .split(|c: char| c.is_whitespace() || c == ',')
                .next()?;
            Some((name.to_owned(), result.to_owned()))
        })
        .collect()
}

/// A test's own part of a whole binary's libtest output (`---- NAME stdout ----` up to the next
/// section or the failure list); the whole output when it has no such section. `text`: the
/// output's, made once for all its tests.
pub fn own_section(
    output: &harness::CapturedOutput,
    text: &str,
    name: &str,
) -> harness::CapturedOutput {
    let marker = format!("---- {name} stdout ----\n");
    let Some(start) = text.find(&marker) else {
        return output.clone();
    };
    let body = &text[start..];
    let rest = &body[marker.len()..];
    let end = ["\n---- ", "\nfailures:\n"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .map_or(body.len(), |i| marker.len() + i + 1);
    harness::CapturedOutput {
        head: body[..end].to_owned(),
        tail: String::new(),
        truncated_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_lines() {
        let out = "running 3 tests\ntest a::b - should panic ... ok\ntest c ... FAILED\ntest d ... ignored, slow\n\
                   test e    ... ok\n";
        assert_eq!(
            libtest_results(out),
            vec![
                ("a::b".into(), "ok".into()),
                ("c".into(), "FAILED".into()),
                ("d".into(), "ignored".into()),
                ("e".into(), "ok".into()),
            ],
            "libtest-mimic pads names"
        );
    }

    #[test]
    fn the_result_line_counts_every_reported_test() {
        let out = "running 4 tests\ntest a ... ok\n\nfailures:\n\ntest result: FAILED. 2 passed; \
                   1 failed; 1 ignored; 0 measured; 7 filtered out; finished in 0.01s\n";
        assert_eq!(libtest_total(out), Some(4));
        assert_eq!(libtest_total("running 4 tests\ntest a ... ok\n"), None);
        // A test's own output may quote a result line; libtest's own comes last.
        let nested = "test result: ok. 9 passed; 0 failed; 0 ignored;\n\
                      test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(libtest_total(nested), Some(0));
    }

    #[test]
    fn a_failing_test_keeps_only_its_own_section() {
        let text = "running 3 tests\ntest a ... ok\ntest b ... FAILED\ntest c ... FAILED\n\n\
                    failures:\n\n---- b stdout ----\nb panicked\n\n---- c stdout ----\nc panicked\n\n\
                    failures:\n    b\n    c\n";
        let output = harness::CapturedOutput {
            head: text.to_owned(),
            tail: String::new(),
            truncated_bytes: 0,
        };
        assert_eq!(
            own_section(&output, text, "b").text(),
            "---- b stdout ----\nb panicked\n\n"
        );
        assert_eq!(
            own_section(&output, text, "c").text(),
            "---- c stdout ----\nc panicked\n\n"
        );
        assert_eq!(own_section(&output, text, "zz").text(), text);
    }
}
