//! One run's per-test results, read from nextest's JUnit report or from `cargo test`'s
//! human output.

/// What one test did in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The test binary: nextest's binary id, or `cargo test`'s `Running <target>` label.
    pub binary: String,
    pub name: String,
    pub passed: bool,
    /// The runner said the test did not finish in time.
    pub timed_out: bool,
    /// For a failure: the panic message or error, as short as it can be told.
    pub message: String,
    /// For a failure: everything the test wrote, to classify by.
    pub output: String,
}

/// Reads nextest's JUnit XML. Skipped tests have no verdict and are left out.
pub fn from_junit(xml: &str) -> Result<Vec<TestResult>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("JUnit report: {e}"))?;
    let mut results = Vec::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        if case.children().any(|c| c.has_tag_name("skipped")) {
            continue;
        }
        let binary = case.attribute("classname").unwrap_or_default().to_owned();
        let name = case.attribute("name").unwrap_or_default().to_owned();
        let failure = case
            .children()
            .find(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
        let text_of = |tag: &str| {
            case.descendants()
                .filter(|c| c.has_tag_name(tag))
                .filter_map(|c| c.text())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let result = match failure {
            None => TestResult {
                binary,
                name,
                passed: true,
                timed_out: false,
                message: String::new(),
                output: String::new(),
            },
            Some(failure) => {
                let kind = failure.attribute("type").unwrap_or_default();
                let output = [
                    failure.attribute("message").unwrap_or_default().to_owned(),
                    failure.text().unwrap_or_default().to_owned(),
                    text_of("system-out"),
                    text_of("system-err"),
                ]
                .join("\n");
                let timed_out = kind.contains("timeout") || kind.contains("timed out");
                let message = panic_message(&output).unwrap_or_else(|| {
                    first_line(failure.attribute("message").unwrap_or(kind)).to_owned()
                });
                TestResult {
                    binary,
                    name,
                    passed: false,
                    timed_out,
                    message,
                    output,
                }
            }
        };
        results.push(result);
    }
    Ok(results)
}

/// Reads `cargo test`'s human output (stdout and stderr in one stream): the `Running`
/// lines name the binaries, `test <name> ... ok|FAILED` the verdicts, and the
/// `---- <name> stdout ----` sections the failures' output.
pub fn from_libtest(text: &str) -> Vec<TestResult> {
    let mut results: Vec<TestResult> = Vec::new();
    let mut binary = String::new();
    let mut first_of_binary = 0;
    let mut section: Option<(String, String)> = None;
    let flush =
        |section: &mut Option<(String, String)>, results: &mut Vec<TestResult>, from: usize| {
            if let Some((name, output)) = section.take() {
                if let Some(r) = results[from..]
                    .iter_mut()
                    .find(|r| r.name == name && !r.passed)
                {
                    r.message =
                        panic_message(&output).unwrap_or_else(|| first_line(&output).to_owned());
                    r.output = output;
                }
            }
        };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed
            .strip_prefix("Running ")
            .or_else(|| trimmed.strip_prefix("Doc-tests "))
        {
            flush(&mut section, &mut results, first_of_binary);
            binary = rest.split(" (").next().unwrap_or(rest).to_owned();
            first_of_binary = results.len();
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            flush(&mut section, &mut results, first_of_binary);
            section = Some((name.to_owned(), String::new()));
            continue;
        }
        if line == "failures:" || line.starts_with("test result:") {
            flush(&mut section, &mut results, first_of_binary);
        }
        if let Some((_, output)) = &mut section {
            output.push_str(line);
            output.push('\n');
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ") {
            // Verdicts may trail other output on the same line; take the last " ... ".
            if let Some((name, verdict)) = rest.rsplit_once(" ... ") {
                let passed = match verdict.trim() {
                    "ok" => true,
                    "FAILED" => false,
                    _ => continue, // ignored, bench
                };
                results.push(TestResult {
                    binary: binary.clone(),
                    name: name.to_owned(),
                    passed,
                    timed_out: false,
                    message: String::new(),
                    output: String::new(),
                });
            }
        }
    }
    flush(&mut section, &mut results, first_of_binary);
    results
}

/// The message of the first panic in `output`: the lines after `panicked at <place>:`
/// up to the `note:` or stack backtrace that follows, at most a few lines.
fn panic_message(output: &str) -> Option<String> {
    let at = output.find("panicked at ")?;
    let rest = &output[at..];
    let body = rest.split_once(":\n").map_or(rest, |(_, body)| body);
    let lines: Vec<&str> = body
        .lines()
        .take_while(|l| {
            !l.starts_with("note:") && !l.starts_with("stack backtrace:") && !l.is_empty()
        })
        .take(4)
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_output_gives_verdicts_and_messages() {
        let text = "   Compiling x v0.1.0\n     Running unittests src/lib.rs (target/debug/deps/x-1)\n\nrunning 2 tests\ntest a ... ok\ntest b ... FAILED\n\nfailures:\n\n---- b stdout ----\n\nthread 'b' panicked at src/lib.rs:3:5:\nAddress already in use (os error 98)\nnote: run with `RUST_BACKTRACE=1`\n\n\nfailures:\n    b\n\ntest result: FAILED. 1 passed; 1 failed\n";
        let results = from_libtest(text);
        assert_eq!(results.len(), 2);
        assert_eq!((results[0].name.as_str(), results[0].passed), ("a", true));
        assert_eq!(results[1].binary, "unittests src/lib.rs");
        assert!(!results[1].passed);
        assert_eq!(results[1].message, "Address already in use (os error 98)");
    }

    #[test]
    fn junit_gives_verdicts_messages_and_timeouts() {
        let xml = r#"<?xml version="1.0"?><testsuites><testsuite name="x">
            <testcase name="a" classname="x"/>
            <testcase name="b" classname="x"><failure type="test failure" message="code 101">thread 'b' panicked at src/lib.rs:1:1:
File exists (os error 17)
note: x</failure></testcase>
            <testcase name="c" classname="x"><failure type="test timeout"/></testcase>
            <testcase name="d" classname="x"><skipped/></testcase>
            </testsuite></testsuites>"#;
        let results = from_junit(xml).unwrap();
        assert_eq!(results.len(), 3);
        assert!(results[0].passed);
        assert_eq!(results[1].message, "File exists (os error 17)");
        assert!(results[2].timed_out && !results[2].passed);
        assert!(from_junit("<testsuites").is_err());
    }
}
