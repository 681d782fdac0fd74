//! The catalogue of a stress run: per test, its runs, failures, flake rate with interval,
//! first failure, root-cause class and fix; as text, Markdown and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use isofix::stress::stats::{self, percent};
use serde::Serialize;

use crate::classify::{classify, Class};
use crate::results::TestResult;
use crate::style;

/// Everything one `cargo isofix stress` found.
#[derive(Debug, Default, Serialize)]
pub struct Catalogue {
    pub runner: String,
    /// Runs of the whole suite that completed.
    pub suite_runs: u64,
    /// Every test seen, flaky or not, by binary and name.
    pub tests: Vec<Row>,
    #[serde(skip)]
    by_key: BTreeMap<(String, String), usize>,
}

/// One test's record.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub binary: String,
    pub test: String,
    pub runs: u64,
    pub failures: u64,
    pub flake_rate: f64,
    /// The 95 % Wilson interval of the flake rate.
    pub interval_95: (f64, f64),
    pub first_failure: Option<String>,
    pub class: Option<Class>,
    pub class_label: Option<&'static str>,
    pub fix: Option<&'static str>,
    /// For a hang: the isofix group it was waiting for, when its output says.
    pub waiting_for_group: Option<String>,
}

impl Row {
    fn flaky(&self) -> bool {
        self.failures > 0
    }
}

impl Catalogue {
    pub fn new(runner: &str) -> Catalogue {
        Catalogue {
            runner: runner.to_owned(),
            ..Catalogue::default()
        }
    }

    /// Adds one run of the suite.
    pub fn add_run(&mut self, results: &[TestResult]) {
        self.suite_runs += 1;
        for r in results {
            let key = (r.binary.clone(), r.name.clone());
            let at = *self.by_key.entry(key).or_insert_with(|| {
                self.tests.push(Row {
                    binary: r.binary.clone(),
                    test: r.name.clone(),
                    runs: 0,
                    failures: 0,
                    flake_rate: 0.0,
                    interval_95: (0.0, 1.0),
                    first_failure: None,
                    class: None,
                    class_label: None,
                    fix: None,
                    waiting_for_group: None,
                });
                self.tests.len() - 1
            });
            let row = &mut self.tests[at];
            row.runs += 1;
            if !r.passed {
                row.failures += 1;
                if row.first_failure.is_none() {
                    let class = classify(&format!("{}\n{}", r.message, r.output), r.timed_out);
                    row.first_failure = Some(r.message.clone());
                    row.class = Some(class);
                    row.class_label = Some(class.label());
                    row.fix = Some(class.fix());
                    row.waiting_for_group = waited_group(&r.output);
                }
            }
            row.flake_rate = row.failures as f64 / row.runs as f64;
            row.interval_95 = stats::wilson_interval(row.failures, row.runs, 0.95);
        }
    }

    /// The tests that failed at least once, most failures first.
    pub fn flaky(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.tests.iter().filter(|r| r.flaky()).collect();
        rows.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.test.cmp(&b.test)));
        rows
    }

    /// What a clean result proves, or `None` if something failed or nothing ran.
    pub fn confidence(&self) -> Option<String> {
        if self.tests.is_empty() || self.tests.iter().any(Row::flaky) {
            return None;
        }
        let runs = self.tests.iter().map(|r| r.runs).min().unwrap_or(0);
        Some(format!(
            "0 failures in {runs} runs of each of {} tests: a test flaking more often than {} \
             of its runs would have shown with 95 % probability ({} with 99 %).",
            self.tests.len(),
            percent(stats::rate_ruled_out(runs, 0.95)),
            percent(stats::rate_ruled_out(runs, 0.99)),
        ))
    }

    /// The catalogue for a terminal or a log.
    pub fn to_text(&self, colour: bool) -> String {
        let mut out = String::new();
        let flaky = self.flaky();
        let _ = writeln!(
            out,
            "{} runs of {} tests under {}",
            self.suite_runs,
            self.tests.len(),
            self.runner
        );
        if let Some(confidence) = self.confidence() {
            let _ = writeln!(out, "{}", style::good(&confidence, colour));
            return out;
        }
        if flaky.is_empty() {
            let _ = writeln!(out, "no test ran: nothing is proven");
            return out;
        }
        let _ = writeln!(
            out,
            "{}",
            style::bad(&format!("{} flaky tests", flaky.len()), colour)
        );
        for row in flaky {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{}",
                style::strong(&format!("{} ({})", row.test, row.binary), colour)
            );
            let _ = writeln!(
                out,
                "  failed {} of {} runs: flake rate {} (95 % interval {} to {}){}",
                row.failures,
                row.runs,
                percent(row.flake_rate),
                percent(row.interval_95.0),
                percent(row.interval_95.1),
                if row.failures == row.runs {
                    "; failed every run: run it alone to tell a race from a broken test"
                } else {
                    ""
                },
            );
            let _ = writeln!(out, "  class: {}", row.class_label.unwrap_or("other"));
            if let Some(group) = &row.waiting_for_group {
                let _ = writeln!(out, "  was waiting for serial group {group}");
            }
            if let Some(first) = &row.first_failure {
                let _ = writeln!(out, "  first failure: {}", first.replace('\n', "\n    "));
            }
            if let Some(fix) = row.fix {
                let _ = writeln!(out, "  fix: {fix}");
            }
        }
        out
    }

    /// The catalogue as Markdown, for a CI summary.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# Flaky tests\n\n{} runs of {} tests under {}.\n\n",
            self.suite_runs,
            self.tests.len(),
            self.runner
        );
        if let Some(confidence) = self.confidence() {
            let _ = writeln!(out, "{confidence}");
            return out;
        }
        out.push_str("| test | binary | failures | flake rate (95 % interval) | class | first failure | fix |\n");
        out.push_str("| --- | --- | ---: | --- | --- | --- | --- |\n");
        for row in self.flaky() {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} / {} | {} ({} to {}) | {} | {} | {} |",
                row.test,
                row.binary,
                row.failures,
                row.runs,
                percent(row.flake_rate),
                percent(row.interval_95.0),
                percent(row.interval_95.1),
                row.class_label.unwrap_or("other"),
                cell(row.first_failure.as_deref().unwrap_or("")),
                cell(row.fix.unwrap_or("")),
            );
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a catalogue is plain data")
    }
}

/// Text for one Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

/// The group an isofix waiter reported waiting for in `output`.
fn waited_group(output: &str) -> Option<String> {
    let at = output.find("serial group ")?;
    let rest = &output[at + "serial group ".len()..];
    let end = rest[1..].find('"')? + 2;
    rest.starts_with('"').then(|| rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, passed: bool, message: &str) -> TestResult {
        TestResult {
            binary: "b".into(),
            name: name.into(),
            passed,
            timed_out: false,
            message: message.into(),
            output: String::new(),
        }
    }

    #[test]
    fn rows_count_runs_and_failures_and_classify_the_first() {
        let mut c = Catalogue::new("cargo test");
        c.add_run(&[
            result("a", true, ""),
            result("p", false, "Address already in use (os error 98)"),
        ]);
        c.add_run(&[result("a", true, ""), result("p", true, "")]);
        let flaky = c.flaky();
        assert_eq!(flaky.len(), 1);
        assert_eq!(
            (flaky[0].test.as_str(), flaky[0].runs, flaky[0].failures),
            ("p", 2, 1)
        );
        assert_eq!(flaky[0].class, Some(Class::PortCollision));
        assert!(c.confidence().is_none());
        let text = c.to_text(false);
        assert!(
            text.contains("class: port collision") && text.contains("EphemeralTcp::bind()"),
            "{text}"
        );
        assert!(
            c.to_markdown().contains("| `p` | `b` | 1 / 2 | 50 % "),
            "{}",
            c.to_markdown()
        );
        assert!(c.to_json().contains("\"class\": \"port-collision\""));
    }

    #[test]
    fn a_clean_catalogue_states_its_confidence() {
        let mut c = Catalogue::new("nextest");
        for _ in 0..2000 {
            c.add_run(&[result("a", true, "")]);
        }
        let confidence = c.confidence().unwrap();
        assert!(
            confidence.starts_with(
                "0 failures in 2000 runs of each of 1 tests: a test flaking more often than 0.15 %"
            ),
            "{confidence}"
        );
    }

    #[test]
    fn the_waited_group_is_read_from_isofix_warnings() {
        let out = "isofix: test x has waited 30.0 s to take serial group \"db\" exclusively; held by pid 4";
        assert_eq!(waited_group(out).as_deref(), Some("\"db\""));
        assert_eq!(waited_group("nothing"), None);
    }
}
