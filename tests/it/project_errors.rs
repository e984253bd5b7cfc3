//! Mistakes in a project are reported with the file and line to fix, before anything runs.

use crate::common::TestProject;

const YAML: &str = "project: t\ndefault_target: local\ntargets:\n  local: { engine: duckdb }\nvars:\n  n: { type: int, default: 1 }\nsources:\n  raw:\n    netlog_events: {}\n";

fn compile_error(project: &TestProject) -> String {
    let output = project.command(&["compile"]).output().unwrap();
    assert!(!output.status.success(), "compile unexpectedly succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_cycle_names_every_file_and_line_on_it() {
    let project = TestProject::custom(
        YAML,
        &[
            ("features/a.sql", "SELECT *\nFROM {{ ref('b') }}"),
            ("features/b.sql", "-- b\n\nSELECT * FROM {{ ref(\"c\") }}"),
            ("features/c.sql", "SELECT * FROM {{ ref('a') }}"),
        ],
    );
    let err = compile_error(&project);
    assert!(
        err.contains("dependency cycle: sql/features/a.sql:2 ref(\"b\") -> sql/features/b.sql:3 ref(\"c\") -> sql/features/c.sql:1 ref(\"a\")"),
        "{err}"
    );
}

#[test]
fn an_unknown_ref_names_the_file_and_line() {
    let project = TestProject::custom(
        YAML,
        &[(
            "features/a.sql",
            "SELECT 1\nUNION ALL\nSELECT * FROM {{ ref('missing') }}",
        )],
    );
    let err = compile_error(&project);
    assert!(
        err.contains("sql/features/a.sql:3: unknown ref `missing`"),
        "{err}"
    );
}

#[test]
fn an_undeclared_source_names_the_file_and_line() {
    let project = TestProject::custom(
        YAML,
        &[(
            "features/a.sql",
            "\nSELECT * FROM {{ source('raw', 'nope') }}",
        )],
    );
    let err = compile_error(&project);
    assert!(
        err.contains("sql/features/a.sql:2: unknown source `raw.nope`"),
        "{err}"
    );
}

#[test]
fn a_bad_yaml_value_names_the_key_and_line() {
    let yaml = YAML.replace("default: 1", "default: one");
    let project = TestProject::custom(&yaml, &[("features/a.sql", "SELECT 1")]);
    let err = compile_error(&project);
    assert!(err.contains("pipelines.yaml:6:"), "{err}");
    assert!(err.contains("vars.n.default"), "{err}");
}

#[test]
fn a_pipeline_listing_an_unknown_step_names_the_line() {
    let yaml = format!(
        "{YAML}pipelines:\n  train:\n    schedule: '0 3 * * *'\n    steps: [features/a, features/nope]\n"
    );
    let project = TestProject::custom(&yaml, &[("features/a.sql", "SELECT 1")]);
    let err = compile_error(&project);
    assert!(
        err.contains("pipelines.yaml:13: pipeline `train` lists unknown step `features/nope`"),
        "{err}"
    );
}

#[test]
fn var_values_cannot_inject_sql() {
    let yaml = format!(
        "{}pipelines:\n  all:\n    steps: [features/a]\n",
        YAML.replace(
            "n: { type: int, default: 1 }",
            "n: { type: int, default: 1 }\n  s: { type: string, default: x }"
        )
    );
    let project = TestProject::custom(
        &yaml,
        &[(
            "features/a.sql",
            "SELECT {{ var('n') }} AS n, {{ var('s') }} AS s",
        )],
    );
    let bad = project
        .command(&["compile", "--var", "n=1; DROP TABLE raw.netlog_events"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a valid int"));

    project.run_ok(&["compile", "--var", "s=x' OR '1'='1"]);
    let compiled =
        std::fs::read_to_string(project.path().join("target/compiled/local/features/a.sql"))
            .unwrap();
    assert!(
        compiled.contains(r"SELECT 1 AS n, 'x\' OR \'1\'=\'1' AS s"),
        "{compiled}"
    );

    project.run_ok(&["run", "all"]);
    let value = project.query_csv("SELECT s FROM features.a");
    assert_eq!(value, ["x"]);
}

#[test]
fn declared_raw_columns_must_match_what_ingest_writes() {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines.yaml")).unwrap();
    let project = TestProject::shipped();
    std::fs::write(
        project.path().join("pipelines.yaml"),
        shipped.replace("        txBytes: INT64\n", "        txBytes: STRING\n"),
    )
    .unwrap();
    let err = compile_error(&project);
    assert!(
        err.contains("sources.raw.netlog_events declares columns that differ"),
        "{err}"
    );
    assert!(err.contains("txBytes: INT64"), "{err}");
}
