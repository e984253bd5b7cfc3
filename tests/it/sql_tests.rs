//! `netsentinel test` and assertions in `run`: the shipped unit tests pass and catch a broken
//! feature, assertions pass, fail and warn, fixtures carry NULLs and STRUCTs, incremental steps
//! see a given `this`, and the JUnit output parses. `--mutants`: the shipped unit tests kill
//! every mutant of every shipped step, and a survivor fails the check until a test kills it or
//! it is declared equivalent.

use std::time::{Duration, Instant};

use netsentinel::project::Project;
use netsentinel::sqltest;

use crate::common::TestProject;

const YAML: &str = "project: t\ndefault_target: local\ntargets:\n  local: { engine: duckdb, path: .netsentinel/local.duckdb }\nvars:\n  floor: { type: int, default: 0 }\nsources:\n  raw:\n    things: { columns: { id: INT64, kind: STRING, bytes: INT64 } }\npipelines:\n  all: { steps: [features/things, features/summary] }\n";

const THINGS: &str = "{{ config(materialized='table', assertions={'not_null': ['id'], 'unique': [['id']], 'accepted_values': {'kind': ['a', 'b']}}, warn_assertions={'row_condition': 'bytes < 1000'}) }}\nSELECT id, kind, bytes FROM {{ source('raw', 'things') }} WHERE bytes >= {{ var('floor') }}";

const SUMMARY: &str = "SELECT kind, COUNT(*) AS n FROM {{ ref('things') }} GROUP BY kind";

fn project() -> TestProject {
    TestProject::custom(
        YAML,
        &[
            ("features/things.sql", THINGS),
            ("features/summary.sql", SUMMARY),
        ],
    )
}

fn load_rows(project: &TestProject, values: &str) {
    project.run_ok(&[
        "query",
        &format!("CREATE OR REPLACE TABLE raw.things AS SELECT * FROM (VALUES {values}) AS t(id, kind, bytes)"),
    ]);
}

#[test]
fn shipped_unit_tests_pass_and_a_broken_feature_fails_with_a_diff() {
    let project = TestProject::shipped();
    let out = project.run_ok(&["test"]);
    assert!(out.contains("0 failed, 0 errored"), "{out}");
    assert!(
        out.contains("PASS  models/netlog_kmeans › trained_model_flags_the_exfiltration_window"),
        "{out}"
    );
    assert!(out.contains("PASS  inferenced/netlog_anomalies › detection_scores_new_windows_with_the_champion_model"), "{out}");

    let file = project.path().join("sql/features/netlog_windows.sql");
    let sql = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        sql.replace(
            "MAX(txBytes) AS max_tx_bytes",
            "MAX(rxBytes) AS max_tx_bytes",
        ),
    )
    .unwrap();
    let output = project
        .command(&["test", "features/netlog_windows"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("FAIL  features/netlog_windows › aggregates_each_window"),
        "{out}"
    );
    assert!(
        out.contains("step features/netlog_windows (sql/features/netlog_windows.sql)"),
        "{out}"
    );
    assert!(
        out.contains("max_tx_bytes: expected 300, got 3000"),
        "{out}"
    );
}

#[test]
fn assertions_pass_warn_and_block_in_run() {
    let project = project();
    load_rows(&project, "(1, 'a', 10), (2, 'b', 20)");
    let out = project.run_ok(&["run", "all"]);
    assert!(out.contains("assert not_null(id)"), "{out}");
    assert!(!out.contains("FAIL") && !out.contains("WARN"), "{out}");

    load_rows(&project, "(1, 'a', 10), (2, 'b', 5000)");
    let out = project.run_ok(&["run", "all"]);
    assert!(
        out.contains("row_condition(bytes < 1000)") && out.contains("WARN"),
        "{out}"
    );

    load_rows(&project, "(1, 'a', 10), (1, 'zzz', 20)");
    let output = project.command(&["run", "all"]).output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("after step features/things"), "{err}");
    assert!(
        err.contains("unique(id) (sql/features/things.sql:1) found 1 offending row(s)"),
        "{err}"
    );
    assert!(err.contains("accepted_values(kind: 'a', 'b')"), "{err}");
    assert!(err.contains("zzz"), "{err}");
    let recorded = project.query_csv(
        "SELECT assertion, status FROM ops.assertion_results WHERE status <> 'passed' ORDER BY assertion, status",
    );
    assert_eq!(
        recorded,
        [
            "\"accepted_values(kind: 'a', 'b')\",failed",
            "row_condition(bytes < 1000),warned",
            "unique(id),failed"
        ]
    );
    // The dependant never ran after the blocking failure.
    let steps = project.query_csv("SELECT status, COUNT(*) FROM ops.step_runs WHERE step = 'features/summary' GROUP BY status");
    assert_eq!(steps, ["success,2"]);
}

#[test]
fn an_incremental_run_is_checked_on_the_rows_it_wrote() {
    let project = TestProject::custom(
        YAML,
        &[
            (
                "features/things.sql",
                "{{ config(materialized='incremental', unique_key=['id'], assertions={'not_null': ['kind']}) }}\nSELECT id, kind, bytes FROM {{ source('raw', 'things') }}\n{% if is_incremental() %}WHERE id > (SELECT MAX(id) FROM {{ this }}){% endif %}",
            ),
            ("features/summary.sql", SUMMARY),
        ],
    );
    load_rows(&project, "(1, 'a', 10)");
    project.run_ok(&["run", "all"]);

    // A NULL among the rows this run writes blocks it.
    load_rows(&project, "(1, 'a', 10), (2, NULL, 20)");
    let output = project.command(&["run", "all"]).output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("not_null(kind)"), "{err}");

    // The next run writes only row 3 and is checked on it alone: the NULL an earlier run wrote
    // was reported by that run.
    load_rows(&project, "(1, 'a', 10), (2, NULL, 20), (3, 'c', 30)");
    let out = project.run_ok(&["run", "all"]);
    assert!(out.contains("assert not_null(kind)"), "{out}");
    assert_eq!(
        project.query_csv("SELECT id FROM features.things ORDER BY id"),
        ["1", "2", "3"]
    );
    // No staging table outlives its run, passed or failed.
    assert_eq!(
        project.query_csv(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE '%ns_stage%'"
        ),
        ["0"]
    );
}

#[test]
fn fixtures_with_nulls_structs_and_an_incremental_this() {
    let project = TestProject::custom(
        YAML,
        &[
            (
                "features/things.sql",
                "{{ config(materialized='incremental', unique_key=['id']) }}\nSELECT id, kind, bytes, STRUCT(kind AS k, bytes AS b) AS detail FROM {{ source('raw', 'things') }}\n{% if is_incremental() %}WHERE id > (SELECT MAX(id) FROM {{ this }}){% endif %}",
            ),
            (
                "features/summary.sql",
                "SELECT kind, COUNT(bytes) AS with_bytes, ARRAY_AGG(STRUCT(d.k AS k) ORDER BY d.k) AS kinds FROM (SELECT kind, bytes, detail AS d FROM {{ ref('things') }}) GROUP BY kind",
            ),
        ],
    );
    project.write(
        "tests/sql/things.yml",
        r#"tests:
  - name: only_new_ids
    step: features/things
    given:
      - source: raw.things
        rows:
          - { id: 1, kind: a, bytes: 5 }
          - { id: 2, kind: null, bytes: null }
          - { id: 3, kind: b, bytes: 7 }
    this:
      rows: [{ id: 1, kind: a, bytes: 5, detail: { k: a, b: 5 } }]
    expect:
      rows:
        - { id: 2, kind: null, detail: { k: null, b: null } }
        - { id: 3, kind: b, bytes: 7, detail: { k: b, b: 7 } }
  - name: structs_in_and_out
    step: features/summary
    given:
      - ref: things
        columns: { bytes: INT64 }
        rows:
          - { kind: a, bytes: null, detail: { k: a, b: 1 } }
          - { kind: a, bytes: 3, detail: { k: z, b: 2 } }
    expect:
      rows:
        - { kind: a, with_bytes: 1, kinds: [{ k: a }, { k: z }] }
"#,
    );
    let out = project.run_ok(&["test"]);
    assert!(out.contains("2 test(s): 2 passed"), "{out}");
}

#[test]
fn junit_output_parses_and_counts_failures() {
    let project = project();
    project.write(
        "tests/sql/things.yml",
        "tests:\n  - name: keeps_rows_over_the_floor\n    step: features/things\n    vars: { floor: 6 }\n    given:\n      - source: raw.things\n        rows: [{ id: 1, kind: a, bytes: 5 }, { id: 2, kind: c, bytes: 7 }]\n    expect:\n      rows: [{ id: 2, kind: c, bytes: 8 }]\n",
    );
    let junit = project.path().join("junit.xml");
    let output = project
        .command(&["test", "things", "--junit", junit.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("failures"), Some("2"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 5, "{xml}");
    let failure = cases[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("the comparison failed");
    assert_eq!(cases[0].attribute("classname"), Some("features/things"));
    assert!(
        failure.text().unwrap().contains("bytes: expected 8, got 7"),
        "{xml}"
    );
    assert!(
        cases.iter().any(|c| c.attribute("name")
            == Some("keeps_rows_over_the_floor › accepted_values(kind: 'a', 'b')")
            && c.children().any(|n| n.has_tag_name("failure"))),
        "{xml}"
    );
}

/// Every shipped step has unit tests that kill each of its mutants, or the mutant is declared
/// equivalent with a reason; a new step is checked from the start.
#[test]
fn the_shipped_unit_tests_kill_every_mutant_of_every_shipped_step() {
    let shipped = TestProject::shipped();
    let project = Project::load(shipped.path()).unwrap();
    let started = Instant::now();
    let report =
        sqltest::run_mutants(&project, &project.config.default_vars(), None, |_| {}).unwrap();
    let rendered = report.render();
    assert_eq!(report.steps.len(), project.steps.len(), "{rendered}");
    for step in &report.steps {
        assert!(
            step.tests > 0 && !step.results.is_empty(),
            "{} has no unit tests or no mutants:\n{rendered}",
            step.step
        );
    }
    assert!(report.success(), "{rendered}");
    // A budget keeps the check's cost in view as steps and tests grow: each test's fixtures
    // are loaded once per step and each mutant re-runs only the step, but on the debug
    // build's DuckDB (which verifies every plan it optimizes), on a shared machine.
    assert!(
        started.elapsed() < Duration::from_secs(25 * 60),
        "the mutant check of the shipped steps took {:?}:\n{rendered}",
        started.elapsed()
    );
}

#[test]
fn a_surviving_mutant_fails_the_check_until_a_test_kills_it_or_it_is_declared_equivalent() {
    let project = project();
    project.write(
        "tests/sql/things.yml",
        "tests:\n  - name: keeps_rows_from_the_floor\n    step: features/things\n    given:\n      - source: raw.things\n        rows: [{ id: 1, kind: a, bytes: 10 }, { id: 2, kind: b, bytes: -5 }]\n    expect:\n      rows: [{ id: 1 }]\n",
    );
    let output = project
        .command(&["test", "--mutants", "features/things"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{out}");
    assert!(
        out.contains("features/things (sql/features/things.sql, 1 unit test): 2 mutants, 1 killed, 0 equivalent, 1 survived"),
        "{out}"
    );
    assert!(
        out.contains("sql/features/things.sql:2  comparison flip: `>=` → `>`"),
        "{out}"
    );

    let declaration = "equivalent:\n  - { step: features/things, line: 2, original: \">=\", mutated: \">\", reason: no row ever has bytes equal to the floor }\n";
    project.write("tests/sql/equivalent_mutants.yml", declaration);
    let out = project.run_ok(&["test", "--mutants", "features/things"]);
    assert!(out.contains("1 killed, 1 equivalent, 0 survived"), "{out}");
    // The declarations file is not a unit test file.
    project.run_ok(&["test"]);

    // A test at the floor kills the mutant: its declaration is now stale.
    project.write(
        "tests/sql/things.yml",
        "tests:\n  - name: keeps_rows_from_the_floor\n    step: features/things\n    given:\n      - source: raw.things\n        rows: [{ id: 1, kind: a, bytes: 0 }, { id: 2, kind: b, bytes: -5 }]\n    expect:\n      rows: [{ id: 1 }]\n",
    );
    let output = project
        .command(&["test", "--mutants", "features/things"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("2 killed, 0 equivalent, 0 survived"), "{out}");
    assert!(out.contains("STALE"), "{out}");
}
