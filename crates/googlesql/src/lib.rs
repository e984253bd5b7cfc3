//! GoogleSQL (BigQuery) → DuckDB translation for the `local` engine.
//!
//! Analysts write one dialect: the GoogleSQL that runs verbatim in the BigQuery console. The
//! local engine runs it on DuckDB by parsing it with sqlparser's `BigQueryDialect`, rewriting the
//! AST and printing it back — never by editing SQL text. Anything the module does not know is an
//! error ([`TranslateError::Unsupported`]) naming the construct, because the dangerous failure is
//! not a DuckDB syntax error but a same-named function that silently computes something else
//! (DuckDB's `FORMAT('%d', 1)` is `'%d'`, its `LOG(x)` is base 10, its `CONCAT` skips NULLs).
//!
//! Translated SQL may call the `ns_*` macros of [`DUCKDB_PRELUDE`]; the engine runs the prelude
//! once per connection before any translated statement.
//!
//! Local representation choices (documented divergences that keep results equal):
//! - `TIMESTAMP` is stored as DuckDB `TIMESTAMP` holding UTC wall time (no `TIMESTAMPTZ`): the
//!   bundled DuckDB has no ICU extension, so every zone-aware operation would either fail or
//!   depend on the session zone. Literals and `TIMESTAMP(string)` with a UTC offset are
//!   converted to UTC on the way in; named zones other than UTC are rejected.
//! - IP addresses from `NET.*` are `BIGINT` (IPv4 as an unsigned 32-bit number), not `BYTES`.
//!   IPv6 input is an error (`SAFE_` variant: NULL).
//!
//! | GoogleSQL | DuckDB | Why |
//! |---|---|---|
//! | `` `raw.t` ``, `` `p.raw.t` ``, `` `raw`.`t` `` | `raw.t` | DuckDB has no projects; a table is `schema.table`, backticks split per part |
//! | `INT64`, `FLOAT64`, `NUMERIC`, `BOOL`, `STRING`, `BYTES`, `DATETIME` | `BIGINT`, `DOUBLE`, `DECIMAL(38,9)`, `BOOLEAN`, `VARCHAR`, `BLOB`, `TIMESTAMP` | type names differ; `NUMERIC(p,s)` keeps `p,s` |
//! | `BIGNUMERIC`, `JSON`, `GEOGRAPHY`, `RANGE` | rejected | no DuckDB type of equal range/behaviour in the bundled build |
//! | `TIMESTAMP` | `TIMESTAMP` (UTC) | see above |
//! | `SAFE_CAST(x AS T)` | `TRY_CAST(x AS T)` | same meaning, other name |
//! | `"text"`, `r'\d'`, `'''text'''` | `'text'`, `'\d'` | DuckDB reads `"…"` as an identifier and has no raw/triple-quoted strings |
//! | `b'ab'` | `unhex('6162')` | DuckDB has no bytes literal syntax |
//! | `TIMESTAMP '… +02'` | `CAST(TIMESTAMPTZ '… +02' AS TIMESTAMP)` | DuckDB drops the offset of a `TIMESTAMP` literal |
//! | `TIMESTAMP(s)` | `CAST(CAST(s AS TIMESTAMPTZ) AS TIMESTAMP)` | applies a UTC offset in `s` |
//! | `ORDER BY x` / `x DESC` | `x ASC NULLS FIRST` / `x DESC NULLS LAST` | BigQuery sorts NULL lowest; DuckDB puts NULLs last both ways |
//! | `a ^ b` | `xor(a, b)` | `^` is power in DuckDB |
//! | `TIMESTAMP_DIFF(a, b, SECOND)` (MICROSECOND…DAY) | `(epoch_us(a) - epoch_us(b)) // 1000000` | BigQuery truncates the exact difference; DuckDB's `date_diff` counts boundaries |
//! | `DATE_DIFF(a, b, DAY/MONTH/QUARTER/YEAR)` | `date_diff('part', b, a)` | both count boundaries; argument order differs |
//! | `DATE_DIFF(a, b, WEEK[(day)] / ISOWEEK)` | day difference of week starts `// 7` | DuckDB's week diff is not boundary based and starts weeks on Monday |
//! | `DATE_DIFF(a, b, ISOYEAR)` | `isoyear(a) - isoyear(b)` | boundary count |
//! | `TIMESTAMP_TRUNC(ts, part)`, `DATE_TRUNC(d, part)` | `date_trunc('part', ts)` (`CAST … AS DATE` for dates) | `WEEK`/`WEEK(day)` shift so weeks start on that day (DuckDB: Monday) |
//! | `TIMESTAMP_ADD/SUB(ts, INTERVAL n p)` | `(ts ± INTERVAL (n) p)` | BigQuery function form |
//! | `DATE_ADD/SUB(d, INTERVAL n p)` | `CAST(d ± INTERVAL (n) p AS DATE)` | DuckDB returns a TIMESTAMP; month ends clamp in both |
//! | `TIMESTAMP_SECONDS/MILLIS/MICROS(n)` | `make_timestamp(CAST(n AS BIGINT) * 1000000)` … | microsecond constructor |
//! | `UNIX_SECONDS/MILLIS(ts)` | `ns_floor_div(epoch_us(ts), 1000000)` … | BigQuery rounds down (toward −∞); integer `//` truncates |
//! | `UNIX_MICROS(ts)` | `epoch_us(ts)` | |
//! | `CURRENT_TIMESTAMP()` | `CAST(current_timestamp AS TIMESTAMP)` | UTC wall time; DuckDB's is `TIMESTAMPTZ` |
//! | `CURRENT_DATE()` | `CAST(CAST(current_timestamp AS TIMESTAMP) AS DATE)` | UTC; DuckDB's `current_date` needs ICU |
//! | `GENERATE_UUID()` | `CAST(gen_random_uuid() AS VARCHAR)` | BigQuery returns STRING |
//! | `EXTRACT(DAYOFWEEK FROM x)` | `(EXTRACT(DOW FROM x) + 1)` | BigQuery: Sunday = 1; DuckDB: Sunday = 0 |
//! | `EXTRACT(WEEK[(SUNDAY/MONDAY)] FROM x)` | `CAST(strftime(x, '%U'/'%W') AS BIGINT)` | DuckDB's `WEEK` is ISO |
//! | `EXTRACT(ISOWEEK FROM x)` | `EXTRACT(WEEK FROM x)` | DuckDB's week is ISO |
//! | `EXTRACT(MILLISECOND/MICROSECOND FROM x)` | `(EXTRACT(… FROM x) % 1000/1000000)` | DuckDB includes the seconds |
//! | `EXTRACT(DATE FROM x)` | `CAST(x AS DATE)` | |
//! | `STRUCT(x AS a, y AS b)`, `STRUCT<a T>(x)` | `struct_pack(a := x, b := y)`, `struct_pack(a := CAST(x AS T))` | DuckDB syntax; unnamed fields rejected (bqemulator crashes on them too) |
//! | `arr[OFFSET(n)]`, `arr[n]` | `arr[n + 1]` | DuckDB lists are 1-based |
//! | `arr[ORDINAL(n)]` | `arr[n]` | |
//! | `arr[SAFE_OFFSET(n)]`, `arr[SAFE_ORDINAL(n)]` | `arr[CASE WHEN n >= 0 THEN n + 1 END]` … | DuckDB reads negative indexes from the end; BigQuery gives NULL |
//! | `x IN UNNEST(arr)` | `x IN (SELECT unnest(arr))` | DuckDB syntax, same NULL semantics |
//! | `FROM UNNEST(arr) AS x` | `FROM UNNEST(arr) AS x(x)` | names the element column after the alias as BigQuery does |
//! | `ARRAY_LENGTH(a)` | `len(a)` | |
//! | `ARRAY_AGG(x [IGNORE NULLS] [ORDER BY y] [LIMIT n])` | `(list(x ORDER BY y) FILTER (WHERE x IS NOT NULL))[1:n]` | DuckDB has no LIMIT inside aggregates |
//! | `APPROX_QUANTILES(x, n)` | `quantile_disc(x, [0, 1/n, …, 1])` | n + 1 boundaries; exact where BigQuery approximates |
//! | `agg(x WHERE c)` | `agg(x) FILTER (WHERE c)` | GoogleSQL inline filter |
//! | `REGEXP_CONTAINS(s, re)` | `regexp_matches(s, re)` | both RE2, partial match |
//! | `REGEXP_EXTRACT(s, re)` | `regexp_extract_all(s, re, g)[1]` | g = 1 with one capture group, else 0; NULL (not `''`) when nothing matches |
//! | `REGEXP_REPLACE(s, re, r)` | `regexp_replace(s, re, r, 'g')` | BigQuery replaces every match, DuckDB only the first by default |
//! | `SAFE_DIVIDE(x, y)` | `(x / NULLIF(y, 0))` | |
//! | `DIV(x, y)` | `(x // y)` | integer division truncating toward zero in both |
//! | `IEEE_DIVIDE(x, y)` | `(CAST(x AS DOUBLE) / CAST(y AS DOUBLE))` | ±inf/NaN on zero in both |
//! | `LOG(x)`, `LOG(x, b)` | `ln(x)`, `(ln(x) / ln(b))` | DuckDB's `LOG(x)` is base 10 and `LOG(b, x)` swaps the arguments |
//! | `FORMAT('%d…', …)` | `printf('%d…', …)` | only `%d %i %o %x %X %f %F %e %E %g %G %s %%` with flags `-+ #0`, width, precision; DuckDB's `format` uses `{}` |
//! | `CONCAT(a, b, …)` | `(a \|\| b \|\| …)` | BigQuery returns NULL if any argument is NULL; DuckDB's `concat` skips NULLs |
//! | `GREATEST/LEAST(a, …)` | `CASE WHEN a IS NULL OR … THEN NULL ELSE greatest(a, …) END` | BigQuery returns NULL if any argument is NULL; DuckDB skips NULLs |
//! | `LOGICAL_OR/AND`, `IS_NAN`, `IS_INF` | `bool_or/bool_and`, `isnan`, `isinf` | other names |
//! | `COUNTIF(c)` | `COALESCE(count_if(c), 0)` | DuckDB's `count_if` is NULL when every condition is NULL; BigQuery's is 0 |
//! | `SPLIT(s)` | `split(s, ',')` | BigQuery's default delimiter |
//! | `SUBSTR(s, p[, n])` | `ns_substr(s, p[, n])` | BigQuery starts at 1 for p = 0 or p < −len, and errors on n < 0 |
//! | `DATE(ts)`, `DATE(y, m, d)` | `CAST(ts AS DATE)`, `make_date(y, m, d)` | |
//! | `NET.IP_FROM_STRING`, `NET.SAFE_IP_FROM_STRING`, `NET.IP_TO_STRING`, `NET.IP_TRUNC`, `NET.IP_NET_MASK`, `NET.IPV4_TO_INT64`, `NET.IPV4_FROM_INT64` | `ns_ip_from_string`, `ns_safe_ip_from_string`, `ns_ip_to_string`, `ns_ip_trunc`, `ns_ip_net_mask`, `ns_ipv4_to_int64`, `ns_ipv4_from_int64` | IPv4 as BIGINT (see above) |
//! | `MERGE t …`, `INSERT t …`, `DELETE t …` | `MERGE INTO t …`, `INSERT INTO t …`, `DELETE FROM t …` | DuckDB requires the keyword |
//! | `CREATE TABLE … PARTITION BY … CLUSTER BY … OPTIONS(…)` | the same without those clauses | storage hints with no DuckDB meaning; results are unchanged |
//! | `QUALIFY`, `* EXCEPT`, `* REPLACE`, CTEs, `CREATE OR REPLACE TABLE … AS`, `ts + INTERVAL n SECOND`, `MERGE … BY SOURCE` | unchanged | DuckDB accepts them with BigQuery's meaning |
//! | functions in [`PASS_THROUGH_FUNCTIONS`] | unchanged | checked to mean the same in DuckDB |
//! | any other function, `SAFE.` prefix, `DECLARE`, `EXPORT DATA`, `CREATE FUNCTION`, scripting, `SELECT AS STRUCT`, `UNNEST … WITH OFFSET`, `FOR SYSTEM_TIME`, `ARRAY<T>[…]` | [`TranslateError::Unsupported`] | never passed through unverified |
//!
//! Known divergences that remain (none changes a result silently in the shipped SQL):
//! - BigQuery raises an error where DuckDB returns a value: `x / 0` (±inf/NaN), `arr[OFFSET(n)]`
//!   out of range (NULL), an `ARRAY_AGG` result containing NULL.
//! - Decimal literals (`1.5`) are FLOAT64 in BigQuery and exact DECIMAL in DuckDB.
//! - `FORMAT` with a NULL argument returns NULL (BigQuery prints `NULL`); `%x`/`%o` of negative
//!   numbers may differ.
//! - `CAST(ts AS STRING)` has no `+00` suffix; `CAST(s AS TIMESTAMP)` ignores a UTC offset in a
//!   run-time string (literals and `TIMESTAMP(s)` apply it).
//! - `FROM UNNEST(array_of_structs)` without an alias does not expand the struct fields into
//!   columns (DuckDB reports the missing column; alias it and use `alias.field`).
//! - `APPROX_*` functions are exact (`APPROX_QUANTILES`) or use DuckDB's own sketch
//!   (`APPROX_COUNT_DISTINCT`).
//! - `ANY_VALUE` and other nondeterministic choices may pick other rows than BigQuery.

mod functions;
mod prelude;
mod rewrite;
mod types;

use std::ops::ControlFlow;

use sqlparser::ast::VisitMut;
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, Tokenizer};

pub use functions::{PASS_THROUGH_FUNCTIONS, REWRITTEN_FUNCTIONS};
pub use prelude::DUCKDB_PRELUDE;

/// Why a GoogleSQL text could not be translated. Lines and columns are 1-based positions in the
/// text given to [`translate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("GoogleSQL syntax error at line {line}, column {column}: {message}")]
    Parse {
        message: String,
        line: u64,
        column: u64,
    },
    #[error(
        "{construct} at line {line}, column {column} is not supported on the local DuckDB engine: {hint}"
    )]
    Unsupported {
        construct: String,
        line: u64,
        column: u64,
        hint: String,
    },
}

impl From<TranslateError> for netsentinel_core::EngineError {
    fn from(error: TranslateError) -> Self {
        netsentinel_core::EngineError::engine(error)
    }
}

/// Translates one or more GoogleSQL statements to DuckDB SQL, joined with `";\n"`.
///
/// One parse, one AST walk, one print: cost is linear in the size of the SQL.
pub fn translate(sql: &str) -> Result<String, TranslateError> {
    let dialect = BigQueryDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| parse_error(e, Location::new(1, 1)))?;
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let next = parser.peek_token();
        if next.token == Token::EOF {
            break;
        }
        let start = next.span.start;
        let mut statement = match parser.parse_statement() {
            Ok(statement) => statement,
            Err(e) => {
                let at = parser.peek_token().span.start;
                return Err(explain_parse_failure(sql, &dialect).unwrap_or(parse_error(e, at)));
            }
        };
        let after = parser.peek_token();
        if after.token != Token::SemiColon && after.token != Token::EOF {
            return Err(
                explain_parse_failure(sql, &dialect).unwrap_or(TranslateError::Parse {
                    message: format!("expected end of statement, found {}", after.token),
                    line: after.span.start.line,
                    column: after.span.start.column,
                }),
            );
        }
        let mut rewriter = rewrite::Rewriter::new(start);
        if let ControlFlow::Break(e) = statement.visit(&mut rewriter) {
            return Err(e);
        }
        out.push(statement.to_string());
    }
    Ok(out.join(";\n"))
}

/// Turns sqlparser's message (which ends in "at Line: l, Column: c" when it knows) into a typed
/// error; `fallback` is where the parser stopped.
fn parse_error(e: ParserError, fallback: Location) -> TranslateError {
    let text = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "query nested too deeply".to_string(),
    };
    if let Some(idx) = text.rfind(" at Line: ")
        && let Some((l, c)) = text[idx + 10..].split_once(", Column: ")
        && let (Ok(line), Ok(column)) = (l.trim().parse(), c.trim().parse())
    {
        return TranslateError::Parse {
            message: text[..idx].to_string(),
            line,
            column,
        };
    }
    TranslateError::Parse {
        message: text,
        line: fallback.line,
        column: fallback.column,
    }
}

/// sqlparser cannot parse a few GoogleSQL constructs at all; name them instead of reporting a
/// confusing syntax error. Runs only on the failure path.
fn explain_parse_failure(sql: &str, dialect: &BigQueryDialect) -> Option<TranslateError> {
    let tokens = Tokenizer::new(dialect, sql).tokenize_with_location().ok()?;
    let words: Vec<_> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    words.windows(3).find_map(|w| match (&w[0].token, &w[1].token, &w[2].token) {
        (Token::Word(safe), Token::Period, Token::Word(f))
            if safe.quote_style.is_none() && safe.value.eq_ignore_ascii_case("SAFE") =>
        {
            Some(TranslateError::Unsupported {
                construct: format!("SAFE.{} (SAFE. function prefix)", f.value.to_uppercase()),
                line: w[0].span.start.line,
                column: w[0].span.start.column,
                hint: "guard the input explicitly (SAFE_CAST, SAFE_DIVIDE, NET.SAFE_IP_FROM_STRING, CASE)".into(),
            })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests;
