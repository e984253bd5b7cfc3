//! Translation tests: GoogleSQL in, the DuckDB SQL expected out.

use crate::*;

fn ok(sql: &str) -> String {
    translate(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn unsupported(sql: &str) -> (String, u64, u64, String) {
    match translate(sql) {
        Err(TranslateError::Unsupported {
            construct,
            line,
            column,
            hint,
        }) => (construct, line, column, hint),
        other => panic!("{sql}: expected Unsupported, got {other:?}"),
    }
}

#[test]
fn names() {
    assert_eq!(
        ok("SELECT x FROM `raw.t` JOIN `p.raw.u` USING (id) JOIN `raw`.`v` USING (id)"),
        "SELECT x FROM \"raw\".t JOIN \"raw\".u USING(id) JOIN \"raw\".v USING(id)"
    );
    assert_eq!(
        ok("SELECT `features`.`t`.`my col` FROM features.t"),
        "SELECT features.t.\"my col\" FROM features.t"
    );
    assert_eq!(ok("SELECT `t.a` FROM t"), "SELECT t.a FROM t");
}

#[test]
fn placeholders_untouched() {
    assert_eq!(
        ok("SELECT * FROM __ns_ml_0 WHERE __ns_ml_1(x) > 0"),
        "SELECT * FROM __ns_ml_0 WHERE __ns_ml_1(x) > 0"
    );
}

#[test]
fn types_and_casts() {
    assert_eq!(
        ok(
            "SELECT SAFE_CAST(a AS INT64), CAST(b AS FLOAT64), CAST(c AS NUMERIC), CAST(d AS BOOL), \
            CAST(e AS STRING), CAST(f AS BYTES), CAST(g AS TIMESTAMP), CAST(h AS ARRAY<STRUCT<x INT64>>)"
        ),
        "SELECT TRY_CAST(a AS BIGINT), CAST(b AS DOUBLE), CAST(c AS DECIMAL(38,9)), CAST(d AS BOOLEAN), \
         CAST(e AS VARCHAR), CAST(f AS BLOB), CAST(g AS TIMESTAMP), CAST(h AS STRUCT(x BIGINT)[])"
    );
    let (construct, line, column, hint) = unsupported("SELECT\n  CAST(x AS BIGNUMERIC)");
    assert_eq!(
        (construct.as_str(), line, column),
        ("type BIGNUMERIC", 2, 8)
    );
    assert!(hint.contains("NUMERIC"), "{hint}");
}

#[test]
fn timestamp_diff_truncates() {
    assert_eq!(
        ok("SELECT TIMESTAMP_DIFF(a, b, SECOND), TIMESTAMP_DIFF(a, b, MICROSECOND)"),
        "SELECT ((epoch_us(a) - epoch_us(b)) // 1000000), (epoch_us(a) - epoch_us(b))"
    );
    let (construct, ..) = unsupported("SELECT TIMESTAMP_DIFF(a, b, WEEK)");
    assert_eq!(construct, "TIMESTAMP_DIFF part WEEK");
}

#[test]
fn offsets_structs_and_aggregates() {
    assert_eq!(
        ok("SELECT a[OFFSET(0)], a[ORDINAL(2)], a[SAFE_OFFSET(i)], STRUCT(x AS p, 1 AS q).p"),
        "SELECT a[1], a[2], a[CASE WHEN (i >= 0) THEN (i + 1) END], struct_pack(p := x, q := 1).p"
    );
    assert_eq!(
        ok("SELECT ARRAY_AGG(x ORDER BY y LIMIT 2), APPROX_QUANTILES(x, 2)[OFFSET(1)] FROM t"),
        "SELECT (list(x ORDER BY y ASC NULLS FIRST))[1:2], quantile_disc(x, [0, 0.5, 1])[2] FROM t"
    );
}

#[test]
fn same_name_functions_are_rewritten() {
    assert_eq!(
        ok("SELECT LOG(x), LOG(x, 2), CONCAT(a, b), FORMAT('%d', 1), GREATEST(a, b)"),
        "SELECT ln(x), (ln(x) / ln(2)), (a || b), printf('%d', 1), \
         CASE WHEN ((a IS NULL) OR (b IS NULL)) THEN NULL ELSE greatest(a, b) END"
    );
}

#[test]
fn net_functions_use_prelude_macros() {
    assert_eq!(
        ok(
            "SELECT NET.IP_TO_STRING(NET.IP_TRUNC(NET.IP_FROM_STRING(dstIP), 22)) FROM raw.netlog_events"
        ),
        "SELECT ns_ip_to_string(ns_ip_trunc(ns_ip_from_string(dstIP), 22)) FROM raw.netlog_events"
    );
    for name in ["ns_ip_to_string", "ns_ip_trunc", "ns_ip_from_string"] {
        assert!(DUCKDB_PRELUDE.contains(&format!("MACRO {name}(")), "{name}");
    }
}

#[test]
fn strings_print_as_duckdb_literals() {
    assert_eq!(
        ok(r#"SELECT "a", r'\d', 'it''s', b'A'"#),
        r"SELECT 'a', '\d', E'it\'s', unhex('41')"
    );
}

#[test]
fn dml_keywords_and_null_order() {
    assert_eq!(
        ok(
            "DELETE raw.t x WHERE x.id = 1; INSERT raw.t (id) VALUES (1); MERGE raw.t T USING s ON T.id = s.id \
            WHEN MATCHED THEN DELETE"
        ),
        "DELETE FROM raw.t x WHERE x.id = 1;\nINSERT INTO raw.t (id) VALUES (1);\n\
         MERGE INTO raw.t T USING s ON T.id = s.id WHEN MATCHED THEN DELETE"
    );
    assert_eq!(
        ok("SELECT x FROM t ORDER BY x, y DESC, z DESC NULLS FIRST"),
        "SELECT x FROM t ORDER BY x ASC NULLS FIRST, y DESC NULLS LAST, z DESC NULLS FIRST"
    );
    assert_eq!(
        ok(
            "CREATE TABLE d.t (a INT64 OPTIONS(description='k')) PARTITION BY a CLUSTER BY a OPTIONS(x='y')"
        ),
        "CREATE TABLE d.t (a BIGINT)"
    );
}

#[test]
fn unknown_and_unsupported_constructs_name_themselves() {
    let (construct, line, column, hint) = unsupported("SELECT 1;\nSELECT  JSON_EXTRACT(j, '$.a')");
    assert_eq!(
        (construct.as_str(), line, column),
        ("function JSON_EXTRACT", 2, 9)
    );
    assert!(hint.contains("PASS_THROUGH_FUNCTIONS"), "{hint}");

    let (construct, line, column, _) = unsupported("SELECT STRUCT(1, 2)");
    assert_eq!(
        (construct.as_str(), line, column),
        ("unnamed STRUCT field 1", 1, 15)
    );

    let (construct, ..) = unsupported("SELECT FORMAT('%t', x)");
    assert_eq!(construct, "FORMAT specifier %t");

    let (construct, line, column, _) = unsupported("SELECT 1;\n  DECLARE x INT64 DEFAULT 1");
    assert_eq!((construct.as_str(), line, column), ("DECLARE", 2, 3));

    let (construct, ..) = unsupported("EXPORT DATA OPTIONS(uri='gs://b/*.csv') AS SELECT 1");
    assert_eq!(construct, "EXPORT DATA");

    let (construct, ..) =
        unsupported("CREATE TEMP FUNCTION f(x FLOAT64) RETURNS FLOAT64 LANGUAGE js AS 'return x;'");
    assert_eq!(construct, "CREATE FUNCTION");

    let (construct, line, column, _) = unsupported("SELECT SAFE.SUBSTR(s, 1)");
    assert_eq!(
        (construct.as_str(), line, column),
        ("SAFE.SUBSTR (SAFE. function prefix)", 1, 8)
    );

    let (construct, ..) = unsupported("SELECT x FROM UNNEST(a) AS x WITH OFFSET AS o");
    assert_eq!(construct, "UNNEST … WITH OFFSET");

    let (construct, ..) = unsupported("SELECT ARRAY<INT64>[1, 2]");
    assert_eq!(construct, "typed array literal ARRAY<T>[…]");

    let (construct, ..) = unsupported("SELECT REGEXP_EXTRACT(s, '(a)(b)')");
    assert_eq!(construct, "REGEXP_EXTRACT pattern with 2 capture groups");

    let (construct, ..) = unsupported("SELECT TIMESTAMP '2020-01-01 00:00:00 America/New_York'");
    assert!(construct.contains("named time zone"), "{construct}");
}

#[test]
fn every_listed_function_is_recognized() {
    for name in PASS_THROUGH_FUNCTIONS.iter().chain(REWRITTEN_FUNCTIONS) {
        if let Err(TranslateError::Unsupported { construct, .. }) =
            translate(&format!("SELECT {name}()"))
        {
            assert_ne!(
                construct,
                format!("function {name}"),
                "{name} is listed but rejected"
            );
        }
    }
}

#[test]
fn parse_errors_have_positions() {
    match translate("SELECT 1;\nSELECT FROM WHERE") {
        Err(TranslateError::Parse { line, column, .. }) => assert_eq!((line, column), (2, 13)),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn alter_table_adds_columns_only() {
    assert_eq!(
        ok("ALTER TABLE ops.step_runs ADD COLUMN IF NOT EXISTS bytes_billed INT64"),
        "ALTER TABLE ops.step_runs ADD COLUMN IF NOT EXISTS bytes_billed BIGINT"
    );
    let (construct, ..) = unsupported("ALTER TABLE ops.t DROP COLUMN a");
    assert!(construct.starts_with("ALTER TABLE DROP"), "{construct}");
}
