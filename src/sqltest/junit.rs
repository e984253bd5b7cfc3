//! JUnit XML for CI systems: one `<testsuite>` per test file, one `<testcase>` per test or
//! assertion, failures with the diff as their text. Written by hand: the format is small and
//! every CI reads the same handful of elements.

use std::collections::BTreeMap;

use super::{CaseOutcome, CaseResult, TestReport};

pub fn to_junit(report: &TestReport) -> String {
    let mut suites: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for case in &report.cases {
        suites.entry(case.file.as_str()).or_default().push(case);
    }
    let failed = |c: &CaseResult| matches!(c.outcome, CaseOutcome::Failed(_));
    let errored = |c: &CaseResult| matches!(c.outcome, CaseOutcome::Errored(_));
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"netsentinel\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n",
        report.cases.len(),
        report.cases.iter().filter(|c| failed(c)).count(),
        report.cases.iter().filter(|c| errored(c)).count(),
    ));
    for (file, cases) in suites {
        let time: f64 = cases.iter().map(|c| c.duration.as_secs_f64()).sum();
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{time:.3}\">\n",
            escape(file),
            cases.len(),
            cases.iter().filter(|c| failed(c)).count(),
            cases.iter().filter(|c| errored(c)).count(),
        ));
        for case in cases {
            xml.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(&case.step),
                escape(&case.name),
                case.duration.as_secs_f64()
            ));
            let (element, text) = match &case.outcome {
                CaseOutcome::Passed => {
                    xml.push_str("/>\n");
                    continue;
                }
                CaseOutcome::Warned(text) => ("system-out", text),
                CaseOutcome::Failed(text) => ("failure", text),
                CaseOutcome::Errored(text) => ("error", text),
            };
            let message = text.lines().next().unwrap_or_default();
            let attribute = if element == "system-out" {
                String::new()
            } else {
                format!(" message=\"{}\"", escape(message))
            };
            xml.push_str(&format!(
                ">\n      <{element}{attribute}>{}</{element}>\n    </testcase>\n",
                escape(text)
            ));
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// XML-escapes text and drops the control characters XML 1.0 cannot carry.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}
