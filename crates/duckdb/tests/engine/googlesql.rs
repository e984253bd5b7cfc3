//! Executes translated GoogleSQL on an in-memory DuckDB and compares with BigQuery's documented
//! results. Each case is a script: every statement but the last sets up state; the last is a
//! query whose rows are rendered as text (cells cast to VARCHAR, joined with " | ", rows with
//! "\n", NULL as "NULL").

use duckdb::Connection;
use netsentinel_googlesql::{DUCKDB_PRELUDE, PASS_THROUGH_FUNCTIONS, translate};

/// (rule or function, GoogleSQL statements, expected result of the last one)
const CASES: &[(&str, &[&str], &str)] = &[
    (
        "COUNTIF over only NULL conditions is 0",
        &["SELECT COUNTIF(x = 2) FROM (SELECT CAST(NULL AS INT64) AS x)"],
        "0",
    ),
    (
        "COUNTIF as a window over only NULL conditions is 0",
        &["SELECT COUNTIF(x = 2) OVER () FROM (SELECT CAST(NULL AS INT64) AS x)"],
        "0",
    ),
    // ---- names ----
    (
        "backtick dotted name, project dropped, per-part backticks",
        &[
            "CREATE SCHEMA raw",
            "CREATE TABLE `raw.t` (id INT64)",
            "INSERT `my-project.raw.t` (id) VALUES (1)",
            "SELECT a.id, b.id, c.id FROM `raw.t` a JOIN `my-project.raw.t` b USING (id) JOIN `raw`.`t` c USING (id)",
        ],
        "1 | 1 | 1",
    ),
    (
        "backtick column path",
        &[
            "CREATE SCHEMA raw",
            "CREATE TABLE raw.t (`order` INT64)",
            "INSERT raw.t VALUES (7)",
            "SELECT `t.order` FROM raw.t AS t",
        ],
        "7",
    ),
    // ---- types ----
    (
        "INT64 FLOAT64 NUMERIC BOOL STRING BYTES DATETIME TIMESTAMP casts",
        &[
            "SELECT CAST('5' AS INT64) + 1, CAST('2.5' AS FLOAT64) * 2, CAST('1.1234567891' AS NUMERIC), \
             CAST(1 AS BOOL), CAST(12 AS STRING) || 'x', CAST('ab' AS BYTES) = b'ab', \
             CAST('2020-01-01 10:00:00' AS DATETIME), CAST('2020-01-01 10:00:00' AS TIMESTAMP)",
        ],
        "6 | 5.0 | 1.123456789 | true | 12x | true | 2020-01-01 10:00:00 | 2020-01-01 10:00:00",
    ),
    (
        "column definitions and CREATE TABLE storage clauses",
        &[
            "CREATE SCHEMA features",
            "CREATE OR REPLACE TABLE features.w (a INT64 NOT NULL OPTIONS(description='key'), b FLOAT64, \
             c NUMERIC(10, 2), d BOOL, e STRING, f BYTES, g TIMESTAMP, h ARRAY<INT64>, i STRUCT<x INT64, y STRING>) \
             PARTITION BY DATE(g) CLUSTER BY a OPTIONS(description='windows')",
            "INSERT features.w VALUES (1, 0.5, 2.345, TRUE, 's', b'\\x01', TIMESTAMP '2020-01-01 00:00:00', [1, 2], STRUCT(3 AS x, 'z' AS y))",
            "SELECT a, b, c, d, e, g, h[OFFSET(1)], i.y FROM features.w",
        ],
        "1 | 0.5 | 2.35 | true | s | 2020-01-01 00:00:00 | 2 | z",
    ),
    (
        "SAFE_CAST",
        &["SELECT SAFE_CAST('x' AS INT64) IS NULL, SAFE_CAST('7' AS INT64)"],
        "true | 7",
    ),
    // ---- literals ----
    (
        "string literal forms",
        &[r#"SELECT "dq", r'\d+', '''tri''', 'it''s', 'a\\b', "it's", 'tab\there'"#],
        "dq | \\d+ | tri | it's | a\\b | it's | tab\there",
    ),
    (
        "TIMESTAMP literal and TIMESTAMP() with offsets are UTC",
        &[
            "SELECT TIMESTAMP '2020-01-01 00:00:00+02', TIMESTAMP '2020-01-01 00:00:00 UTC', \
             TIMESTAMP('2020-01-01 00:00:00-01:30'), TIMESTAMP '2020-01-01 00:00:00'",
        ],
        "2019-12-31 22:00:00 | 2020-01-01 00:00:00 | 2020-01-01 01:30:00 | 2020-01-01 00:00:00",
    ),
    // ---- ordering ----
    (
        "ORDER BY puts NULL first ascending",
        &["SELECT x FROM UNNEST([2, NULL, 1]) AS x ORDER BY x"],
        "NULL\n1\n2",
    ),
    (
        "ORDER BY DESC puts NULL last",
        &["SELECT x FROM UNNEST([2, NULL, 1]) AS x ORDER BY x DESC"],
        "2\n1\nNULL",
    ),
    ("^ is XOR", &["SELECT 5 ^ 3"], "6"),
    // ---- timestamps and dates ----
    (
        "TIMESTAMP_DIFF truncates the exact difference",
        &[
            "SELECT TIMESTAMP_DIFF(TIMESTAMP '2020-01-01 00:00:01.1', TIMESTAMP '2020-01-01 00:00:00.9', SECOND), \
             TIMESTAMP_DIFF(TIMESTAMP '2020-01-01 00:00:00.9', TIMESTAMP '2020-01-01 00:00:01.1', MILLISECOND), \
             TIMESTAMP_DIFF(TIMESTAMP '2018-01-01 00:00:00', TIMESTAMP '2017-12-31 23:59:59', HOUR), \
             TIMESTAMP_DIFF(TIMESTAMP '2020-01-02 00:00:00', TIMESTAMP '2020-01-01 00:00:01', DAY), \
             TIMESTAMP_DIFF(TIMESTAMP '2010-07-07 10:20:00', TIMESTAMP '2008-12-25 15:30:00', HOUR), \
             TIMESTAMP_DIFF(TIMESTAMP '2020-01-01 00:00:00', TIMESTAMP '2020-01-01 00:02:30', MINUTE), \
             TIMESTAMP_DIFF(TIMESTAMP '2020-01-01 00:00:00.000002', TIMESTAMP '2020-01-01 00:00:00', MICROSECOND)",
        ],
        "0 | -200 | 0 | 0 | 13410 | -2 | 2",
    ),
    (
        "DATE_DIFF counts boundaries (BigQuery's documented examples)",
        &[
            "SELECT DATE_DIFF(DATE '2010-07-07', DATE '2008-12-25', DAY), \
             DATE_DIFF(DATE '2017-12-18', DATE '2017-12-17', WEEK), \
             DATE_DIFF(DATE '2017-12-18', DATE '2017-12-17', WEEK(MONDAY)), \
             DATE_DIFF(DATE '2017-12-18', DATE '2017-12-17', ISOWEEK), \
             DATE_DIFF(DATE '2017-12-30', DATE '2014-12-30', YEAR), \
             DATE_DIFF(DATE '2017-12-30', DATE '2014-12-30', ISOYEAR), \
             DATE_DIFF(DATE '2020-02-01', DATE '2020-01-31', MONTH), \
             DATE_DIFF(DATE '2020-04-01', DATE '2020-03-31', QUARTER), \
             DATE_DIFF(DATE '2017-12-17', DATE '2017-12-23', WEEK)",
        ],
        "559 | 0 | 1 | 1 | 3 | 2 | 1 | 1 | 0",
    ),
    (
        "TIMESTAMP_TRUNC / DATE_TRUNC",
        &[
            "SELECT TIMESTAMP_TRUNC(TIMESTAMP '2008-12-25 15:30:00', DAY), \
             TIMESTAMP_TRUNC(TIMESTAMP '2017-11-06 00:00:00', WEEK), \
             TIMESTAMP_TRUNC(TIMESTAMP '2017-11-06 00:00:00', WEEK(MONDAY)), \
             TIMESTAMP_TRUNC(TIMESTAMP '2017-11-05 12:00:00', ISOWEEK), \
             TIMESTAMP_TRUNC(TIMESTAMP '2015-06-15 00:00:00', ISOYEAR), \
             TIMESTAMP_TRUNC(TIMESTAMP '2008-12-25 15:30:45.123', SECOND, 'UTC'), \
             DATE_TRUNC(DATE '2008-12-25', MONTH), \
             DATE_TRUNC(DATE '2017-11-08', WEEK(SATURDAY))",
        ],
        "2008-12-25 00:00:00 | 2017-11-05 00:00:00 | 2017-11-06 00:00:00 | 2017-10-30 00:00:00 | \
         2014-12-29 00:00:00 | 2008-12-25 15:30:45 | 2008-12-01 | 2017-11-04",
    ),
    (
        "TIMESTAMP_ADD/SUB and ts + INTERVAL",
        &[
            "SELECT TIMESTAMP_ADD(TIMESTAMP '2008-12-25 15:30:00', INTERVAL 10 MINUTE), \
             TIMESTAMP_SUB(TIMESTAMP '2008-12-25 15:30:00', INTERVAL 10 MINUTE), \
             TIMESTAMP_ADD(TIMESTAMP '2008-12-25 15:30:00', INTERVAL 2 MILLISECOND), \
             TIMESTAMP '2020-01-01 00:00:00' + INTERVAL 5 SECOND",
        ],
        "2008-12-25 15:40:00 | 2008-12-25 15:20:00 | 2008-12-25 15:30:00.002 | 2020-01-01 00:00:05",
    ),
    (
        "DATE_ADD/SUB clamp to month end and return DATE",
        &[
            "SELECT DATE_ADD(DATE '2016-01-31', INTERVAL 1 MONTH), DATE_SUB(DATE '2008-12-25', INTERVAL 5 DAY), \
             DATE_ADD(DATE '2008-12-25', INTERVAL -1 WEEK)",
        ],
        "2016-02-29 | 2008-12-20 | 2008-12-18",
    ),
    (
        "TIMESTAMP_SECONDS/MILLIS/MICROS",
        &[
            "SELECT TIMESTAMP_SECONDS(1230219000), TIMESTAMP_MILLIS(1230219000000), TIMESTAMP_MICROS(1230219000000000)",
        ],
        "2008-12-25 15:30:00 | 2008-12-25 15:30:00 | 2008-12-25 15:30:00",
    ),
    (
        "UNIX_SECONDS/MILLIS round down, UNIX_MICROS",
        &[
            "SELECT UNIX_SECONDS(TIMESTAMP '2008-12-25 15:30:00'), UNIX_SECONDS(TIMESTAMP '1969-12-31 23:59:59.5'), \
             UNIX_MILLIS(TIMESTAMP '1969-12-31 23:59:59.9995'), UNIX_MILLIS(TIMESTAMP '2008-12-25 15:30:00.9999'), \
             UNIX_MICROS(TIMESTAMP '2008-12-25 15:30:00')",
        ],
        "1230219000 | -1 | -1 | 1230219000999 | 1230219000000000",
    ),
    (
        "CURRENT_TIMESTAMP() and CURRENT_DATE()",
        &[
            "SELECT TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), TIMESTAMP '2020-01-01 00:00:00', DAY) > 0, \
             ABS(DATE_DIFF(CURRENT_DATE(), DATE(CURRENT_TIMESTAMP), DAY)) <= 1",
        ],
        "true | true",
    ),
    (
        "GENERATE_UUID() is a lowercase STRING",
        &[
            "SELECT LENGTH(GENERATE_UUID()), REGEXP_CONTAINS(GENERATE_UUID(), r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$')",
        ],
        "36 | true",
    ),
    (
        "EXTRACT parts",
        &[
            "SELECT EXTRACT(DAYOFWEEK FROM DATE '2024-01-07'), EXTRACT(DAYOFWEEK FROM TIMESTAMP '2024-01-13 10:00:00'), \
             EXTRACT(WEEK FROM DATE '2024-01-06'), EXTRACT(WEEK FROM DATE '2024-01-07'), \
             EXTRACT(WEEK(MONDAY) FROM DATE '2024-01-07'), EXTRACT(WEEK(MONDAY) FROM DATE '2023-01-01'), \
             EXTRACT(ISOWEEK FROM DATE '2024-01-07'), \
             EXTRACT(MILLISECOND FROM TIMESTAMP '2020-01-01 00:00:01.234'), \
             EXTRACT(MICROSECOND FROM TIMESTAMP '2020-01-01 00:00:01.234567'), \
             EXTRACT(DATE FROM TIMESTAMP '2020-01-01 23:00:00'), EXTRACT(TIME FROM TIMESTAMP '2020-01-01 23:00:00'), \
             EXTRACT(DATETIME FROM TIMESTAMP '2020-01-01 23:00:00'), EXTRACT(YEAR FROM DATE '2020-05-01'), \
             EXTRACT(DAYOFYEAR FROM DATE '2020-02-01'), EXTRACT(HOUR FROM TIMESTAMP '2020-01-01 13:00:00' AT TIME ZONE 'UTC')",
        ],
        "1 | 7 | 0 | 1 | 1 | 0 | 1 | 234 | 234567 | 2020-01-01 | 23:00:00 | 2020-01-01 23:00:00 | 2020 | 32 | 13",
    ),
    (
        "DATE(ts), DATE(y, m, d)",
        &["SELECT DATE(TIMESTAMP '2020-01-01 12:00:00'), DATE(2020, 1, 2), DATE('2020-03-04')"],
        "2020-01-01 | 2020-01-02 | 2020-03-04",
    ),
    // ---- structs and arrays ----
    (
        "STRUCT field access",
        &[
            "SELECT STRUCT(1 AS a, 'x' AS b).b, STRUCT<a INT64, b STRING>('5', 'y').a + 1, s.a FROM (SELECT STRUCT(2 AS a) AS s)",
        ],
        "x | 6 | 2",
    ),
    (
        "OFFSET, ORDINAL, SAFE_ and bare subscripts",
        &[
            "SELECT arr[OFFSET(1)], arr[ORDINAL(1)], arr[SAFE_OFFSET(5)], arr[SAFE_OFFSET(-1)], arr[SAFE_ORDINAL(0)], \
             arr[0], arr[OFFSET(i)], arr[SAFE_OFFSET(i - 3)] FROM (SELECT [10, 20, 30] AS arr, 2 AS i)",
        ],
        "20 | 10 | NULL | NULL | NULL | 10 | 30 | NULL",
    ),
    (
        "IN UNNEST keeps NULL semantics",
        &["SELECT 2 IN UNNEST([1, 2]), 3 IN UNNEST([1, NULL]), 3 NOT IN UNNEST([1, 2])"],
        "true | NULL | true",
    ),
    (
        "FROM UNNEST AS x and CROSS JOIN UNNEST",
        &[
            "SELECT SUM(x), COUNT(*) FROM (SELECT [1, 2] AS a UNION ALL SELECT [3]) t, UNNEST(t.a) AS x",
        ],
        "6 | 3",
    ),
    (
        "ARRAY_LENGTH",
        &["SELECT ARRAY_LENGTH([1, 2, 3]), ARRAY_LENGTH(ARRAY(SELECT 1))"],
        "3 | 1",
    ),
    (
        "ARRAY_AGG with ORDER BY, LIMIT, IGNORE NULLS, OFFSET",
        &[
            "SELECT ARRAY_AGG(x ORDER BY x DESC LIMIT 2), ARRAY_AGG(x IGNORE NULLS ORDER BY x), \
             ARRAY_AGG(x ORDER BY x DESC LIMIT 1)[OFFSET(0)], ARRAY_AGG(DISTINCT x IGNORE NULLS ORDER BY x) \
             FROM UNNEST([3, NULL, 1, 2, 3]) AS x",
        ],
        "[3, 3] | [1, 2, 3, 3] | 3 | [1, 2, 3]",
    ),
    (
        "APPROX_QUANTILES (BigQuery's documented example) and [OFFSET(k)]",
        &[
            "SELECT APPROX_QUANTILES(x, 2), APPROX_QUANTILES(x, 2)[OFFSET(1)], APPROX_QUANTILES(x, 100)[OFFSET(90)] \
             FROM UNNEST([1, 1, 1, 4, 5, 6, 7, 8, 9, 10]) AS x",
        ],
        "[1, 5, 10] | 5 | 9",
    ),
    (
        "aggregate with inline WHERE",
        &["SELECT COUNT(* WHERE x > 1), SUM(x WHERE x > 1) FROM UNNEST([1, 2, 3]) AS x"],
        "2 | 5",
    ),
    // ---- strings and math ----
    (
        "REGEXP_CONTAINS / REGEXP_EXTRACT / REGEXP_REPLACE",
        &[
            "SELECT REGEXP_CONTAINS('abc', r'b'), REGEXP_EXTRACT('foo123bar45', r'\\d+'), \
             REGEXP_EXTRACT('foo123bar', r'foo(\\d+)'), REGEXP_EXTRACT('abc', r'\\d+') IS NULL, \
             REGEXP_REPLACE('aaa', 'a', 'b'), REGEXP_REPLACE('a1b2', r'(\\d)', r'<\\1>')",
        ],
        "true | 123 | 123 | true | bbb | a<1>b<2>",
    ),
    (
        "SAFE_DIVIDE / DIV / IEEE_DIVIDE",
        &[
            "SELECT SAFE_DIVIDE(1, 0) IS NULL, SAFE_DIVIDE(6, 4), DIV(-7, 2), DIV(20, 4), IEEE_DIVIDE(1, 0), IS_NAN(IEEE_DIVIDE(0, 0)), IS_INF(IEEE_DIVIDE(-1, 0)), 7 / 2",
        ],
        "true | 1.5 | -3 | 5 | inf | true | true | 3.5",
    ),
    (
        "LOG is natural, LOG(x, b)",
        &[
            "SELECT ROUND(LOG(EXP(2)), 12), ROUND(LOG(8, 2), 12), ROUND(LOG(100, 10), 12), LN(1), LOG10(1000)",
        ],
        "2.0 | 3.0 | 2.0 | 0.0 | 3.0",
    ),
    (
        "FORMAT with printf specifiers",
        &[
            "SELECT FORMAT('%d', 1), FORMAT('%5.2f|%s|%x|%o|%e|%i|%%|%-3d|', 3.14159, 'a', 255, 8, 12345.678, 7, 4)",
        ],
        "1 |  3.14|a|ff|10|1.234568e+04|7|%|4  |",
    ),
    (
        "CONCAT is NULL if any argument is NULL",
        &["SELECT CONCAT('a', NULL) IS NULL, CONCAT('a', 'b', 'c'), CONCAT('x')"],
        "true | abc | x",
    ),
    (
        "GREATEST/LEAST are NULL if any argument is NULL",
        &[
            "SELECT GREATEST(1, NULL) IS NULL, LEAST(3, NULL, 2) IS NULL, GREATEST(1, 3, 2), LEAST('b', 'a')",
        ],
        "true | true | 3 | a",
    ),
    (
        "LOGICAL_OR / LOGICAL_AND",
        &["SELECT LOGICAL_OR(x > 2), LOGICAL_AND(x > 2) FROM UNNEST([1, 2, 3]) AS x"],
        "true | false",
    ),
    (
        "SPLIT default delimiter",
        &["SELECT SPLIT('a,b'), SPLIT('a b', ' '), ARRAY_LENGTH(SPLIT('', ','))"],
        "[a, b] | [a, b] | 1",
    ),
    (
        "SUBSTR positions",
        &[
            "SELECT SUBSTR('hello', 0, 2), SUBSTR('hello', -10, 2), SUBSTR('hello', -2), SUBSTR('hello', 2, 3), \
             SUBSTRING('hello', 6), SUBSTR('apple', -123)",
        ],
        "he | he | lo | ell |  | apple",
    ),
    // ---- NET ----
    (
        "NET /22 destination subnet",
        &[
            "SELECT NET.IP_TO_STRING(NET.IP_TRUNC(NET.IP_FROM_STRING(dstIP), 22)) FROM (SELECT '10.1.7.9' AS dstIP)",
        ],
        "10.1.4.0",
    ),
    (
        "NET functions",
        &[
            "SELECT NET.IP_TO_STRING(NET.IP_NET_MASK(4, 22)), NET.SAFE_IP_FROM_STRING('::1') IS NULL, \
             NET.SAFE_IP_FROM_STRING('256.1.1.1') IS NULL, NET.IPV4_TO_INT64(NET.IP_FROM_STRING('10.0.0.1')), \
             NET.IP_TO_STRING(NET.IPV4_FROM_INT64(167772161)), NET.IP_TO_STRING(NET.IPV4_FROM_INT64(-1)), \
             NET.IP_TO_STRING(NET.IP_TRUNC(NET.IP_FROM_STRING('192.168.1.77'), 0)), NET.IP_FROM_STRING(NULL) IS NULL",
        ],
        "255.255.252.0 | true | true | 167772161 | 10.0.0.1 | 255.255.255.255 | 0.0.0.0 | true",
    ),
    // ---- statements ----
    (
        "MERGE without INTO, WHEN NOT MATCHED BY SOURCE",
        &[
            "CREATE SCHEMA raw",
            "CREATE TABLE raw.t (id INT64, v STRING)",
            "INSERT raw.t (id, v) VALUES (1, 'old'), (2, 'gone')",
            "MERGE raw.t T USING (SELECT 1 AS id, 'new' AS v UNION ALL SELECT 3, 'ins') S ON T.id = S.id \
             WHEN MATCHED THEN UPDATE SET v = S.v \
             WHEN NOT MATCHED THEN INSERT (id, v) VALUES (S.id, S.v) \
             WHEN NOT MATCHED BY SOURCE THEN DELETE",
            "SELECT id, v FROM raw.t ORDER BY id",
        ],
        "1 | new\n3 | ins",
    ),
    (
        "DELETE without FROM, with alias and correlated EXISTS",
        &[
            "CREATE SCHEMA raw",
            "CREATE TABLE raw.t (id INT64)",
            "CREATE TABLE raw.drop_ids (id INT64)",
            "INSERT INTO raw.t VALUES (1), (2), (3)",
            "INSERT raw.drop_ids VALUES (2)",
            "DELETE raw.t x WHERE EXISTS (SELECT 1 FROM raw.drop_ids d WHERE d.id = x.id)",
            "DELETE FROM raw.t AS y WHERE y.id = 3",
            "SELECT id FROM raw.t",
        ],
        "1",
    ),
    (
        "UPDATE … FROM",
        &[
            "CREATE SCHEMA raw",
            "CREATE TABLE raw.t (id INT64, v INT64)",
            "INSERT raw.t VALUES (1, 0)",
            "UPDATE raw.t SET v = s.v FROM (SELECT 1 AS id, 9 AS v) s WHERE t.id = s.id",
            "SELECT v FROM raw.t",
        ],
        "9",
    ),
    (
        "CREATE OR REPLACE TABLE AS, CTE, QUALIFY, * EXCEPT, * REPLACE",
        &[
            "CREATE SCHEMA f",
            "CREATE OR REPLACE TABLE f.w AS WITH src AS (SELECT 1 AS k, 10 AS v UNION ALL SELECT 1, 20 UNION ALL SELECT 2, 5) \
             SELECT * FROM src",
            "SELECT * EXCEPT (k) REPLACE (v * 2 AS v) FROM f.w WHERE TRUE QUALIFY ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) = 1 ORDER BY v",
        ],
        "10\n40",
    ),
    (
        "views and DROP",
        &[
            "CREATE SCHEMA IF NOT EXISTS f OPTIONS(location='US')",
            "CREATE OR REPLACE VIEW f.v OPTIONS(description='x') AS SELECT 1 AS one",
            "CREATE TEMP TABLE tmp AS SELECT one FROM f.v",
            "DROP VIEW f.v",
            "SELECT one FROM tmp",
        ],
        "1",
    ),
    (
        "placeholders pass through",
        &[
            "CREATE TABLE __ns_ml_0 (x INT64)",
            "INSERT __ns_ml_0 VALUES (4)",
            "SELECT x FROM __ns_ml_0",
        ],
        "4",
    ),
    // ---- pass-through functions, one BigQuery-documented result each ----
    (
        "aggregates",
        &[
            "SELECT ANY_VALUE(x), APPROX_COUNT_DISTINCT(x), AVG(x), COUNT(x), COUNT(*), COUNTIF(x > 1), MAX(x), MIN(x), \
             SUM(x), STRING_AGG(CAST(x AS STRING)), STRING_AGG(CAST(x AS STRING), '-' ORDER BY x DESC) \
             FROM UNNEST([NULL, 1, 2, 3, 4]) AS x WHERE x IS NULL OR x > 0",
        ],
        "1 | 4 | 2.5 | 4 | 5 | 3 | 4 | 1 | 10 | 1,2,3,4 | 4-3-2-1",
    ),
    (
        "statistical aggregates",
        &[
            "SELECT ROUND(STDDEV(x), 6), ROUND(STDDEV_SAMP(x), 6), ROUND(STDDEV_POP(x), 6), ROUND(VARIANCE(x), 6), \
             ROUND(VAR_SAMP(x), 6), ROUND(VAR_POP(x), 6), ROUND(CORR(x, 2 * x), 6), COVAR_POP(x, x), ROUND(COVAR_SAMP(x, x), 6), \
             (SELECT STDDEV(y) FROM UNNEST([1]) AS y) FROM UNNEST([0, 1, 2, 3]) AS x",
        ],
        "1.290994 | 1.290994 | 1.118034 | 1.666667 | 1.666667 | 1.25 | 1.0 | 1.25 | 1.666667 | NULL",
    ),
    (
        "window functions",
        &[
            "SELECT x, ROW_NUMBER() OVER w, RANK() OVER w, DENSE_RANK() OVER w, PERCENT_RANK() OVER w, CUME_DIST() OVER w, \
             NTILE(2) OVER w, LAG(x) OVER w, LEAD(x, 1, -1) OVER w, FIRST_VALUE(x) OVER w, \
             LAST_VALUE(x) OVER (ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), \
             NTH_VALUE(x, 2) OVER (ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) \
             FROM UNNEST([1, 2, 2]) AS x WINDOW w AS (ORDER BY x) ORDER BY x, 2",
        ],
        "1 | 1 | 1 | 1 | 0.0 | 0.3333333333333333 | 1 | NULL | 2 | 1 | 2 | 2\n\
         2 | 2 | 2 | 2 | 0.5 | 1.0 | 1 | 1 | 2 | 1 | 2 | 2\n\
         2 | 3 | 2 | 2 | 0.5 | 1.0 | 2 | 2 | -1 | 1 | 2 | 2",
    ),
    (
        "IGNORE NULLS in navigation functions",
        &[
            "SELECT LAST_VALUE(x IGNORE NULLS) OVER (ORDER BY o ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) \
             FROM (SELECT 1 AS o, 5 AS x UNION ALL SELECT 2, NULL) ORDER BY o",
        ],
        "5\n5",
    ),
    (
        "numeric scalars",
        &[
            "SELECT ABS(-2), CEIL(1.2), CEILING(1.2), FLOOR(-1.2), ROUND(2.5), ROUND(-2.5), ROUND(CAST(2.5 AS FLOAT64)), \
             ROUND(1.235, 2), SIGN(-3), SQRT(16), POW(2, 3), POWER(2, 10), EXP(0), MOD(-7, 3), TRUNC(-2.7)",
        ],
        "2 | 2 | 2 | -2 | 3 | -3 | 3.0 | 1.24 | -1 | 4.0 | 8.0 | 1024.0 | 1.0 | -1 | -2",
    ),
    (
        "string scalars",
        &[
            "SELECT LENGTH('héllo'), LOWER('ÀB'), UPPER('àb'), LTRIM('  a '), RTRIM(' a  '), TRIM('xxaxx', 'x'), \
             TRIM('  a  '), REPLACE('abcb', 'b', 'X'), REPLACE('abc', '', 'x'), REVERSE('abc'), STARTS_WITH('abc', 'a'), \
             ENDS_WITH('abc', 'bc'), STRPOS('abc', 'c'), STRPOS('abc', 'z')",
        ],
        "5 | àb | ÀB | a  |  a | a | a | aXcX | abc | cba | true | true | 3 | 0",
    ),
    (
        "conditionals",
        &[
            "SELECT IF(1 > 2, 'y', 'n'), IF(NULL, 1, 2), IFNULL(NULL, 3), COALESCE(NULL, NULL, 4), NULLIF(5, 5), NULLIF(5, 6)",
        ],
        "n | 2 | 3 | 4 | NULL | 5",
    ),
];

fn run(conn: &Connection, statements: &[&str]) -> Result<String, String> {
    let (query, setup) = statements.split_last().expect("a case has a query");
    for statement in setup {
        let sql = translate(statement).map_err(|e| e.to_string())?;
        conn.execute_batch(&sql)
            .map_err(|e| format!("{e}\n  translated: {sql}"))?;
    }
    let sql = translate(query).map_err(|e| e.to_string())?;
    let wrapped = format!("SELECT COLUMNS(*)::VARCHAR FROM ({sql}) AS result");
    let mut stmt = conn
        .prepare(&wrapped)
        .map_err(|e| format!("{e}\n  translated: {sql}"))?;
    let mut rows = stmt
        .query([])
        .map_err(|e| format!("{e}\n  translated: {sql}"))?;
    let mut lines = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let n = row.as_ref().column_count();
        let cells = (0..n)
            .map(|i| {
                row.get::<_, Option<String>>(i)
                    .map(|v| v.unwrap_or_else(|| "NULL".to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        lines.push(cells.join(" | "));
    }
    Ok(lines.join("\n"))
}

#[test]
fn googlesql_runs_on_duckdb_with_bigquery_results() {
    let mut failures = Vec::new();
    for (name, statements, expected) in CASES {
        let conn = Connection::open_in_memory().expect("in-memory DuckDB");
        conn.execute_batch(DUCKDB_PRELUDE).expect("prelude runs");
        match run(&conn, statements) {
            Ok(got) if got == *expected => {}
            Ok(got) => failures.push(format!(
                "{name}:\n  expected: {expected:?}\n  got:      {got:?}"
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every pass-through function appears in at least one executed case above.
#[test]
fn every_pass_through_function_is_executed() {
    let all: String = CASES
        .iter()
        .flat_map(|(_, statements, _)| statements.iter())
        .map(|s| s.to_uppercase())
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<_> = PASS_THROUGH_FUNCTIONS
        .iter()
        .filter(|f| !all.contains(&format!("{f}(")))
        .collect();
    assert!(missing.is_empty(), "not executed by any case: {missing:?}");
}

#[test]
fn prelude_is_rerunnable() {
    let conn = Connection::open_in_memory().expect("in-memory DuckDB");
    conn.execute_batch(DUCKDB_PRELUDE).expect("first run");
    conn.execute_batch(DUCKDB_PRELUDE).expect("second run");
}

#[test]
fn runtime_errors_match_bigquery_errors() {
    let conn = Connection::open_in_memory().expect("in-memory DuckDB");
    conn.execute_batch(DUCKDB_PRELUDE).expect("prelude runs");
    for query in [
        "SELECT NET.IP_FROM_STRING('::1')",
        "SELECT NET.IP_FROM_STRING('1.2.3')",
        "SELECT NET.IP_TRUNC(NET.IP_FROM_STRING('1.2.3.4'), 33)",
        "SELECT NET.IP_NET_MASK(16, 3)",
        "SELECT SUBSTR('abc', 1, -1)",
        "SELECT MOD(1, 0)",
    ] {
        let sql = translate(query).expect("translates");
        assert!(
            conn.execute_batch(&sql).is_err(),
            "{query} should fail like on BigQuery; translated: {sql}"
        );
    }
}
