//! Function calls: the allowlist. A GoogleSQL function is either passed through (same name,
//! checked to mean the same in DuckDB), renamed, rewritten, or rejected.

use sqlparser::ast::{
    AccessExpr, BinaryOperator, DataType, DateTimeField, ExactNumberInfo, Expr, Function,
    FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, Ident, Interval,
    NullTreatment, ObjectName, ObjectNamePart, Spanned, Subscript, TimezoneInfo, Value,
};

use crate::TranslateError;
use crate::rewrite::{
    Rewriter, binop, case_when, cast, decimal, function, null, number, paren, string,
};

/// GoogleSQL functions passed to DuckDB unchanged because DuckDB's function of the same name has
/// the same meaning (argument order, NULL handling, default arguments, result for the same
/// input). Checked one by one, see `crates/duckdb/tests/engine/googlesql.rs`.
pub const PASS_THROUGH_FUNCTIONS: &[&str] = &[
    // aggregates
    "ANY_VALUE",
    "APPROX_COUNT_DISTINCT",
    "AVG",
    "CORR",
    "COUNT",
    "COVAR_POP",
    "COVAR_SAMP",
    "MAX",
    "MIN",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "STRING_AGG",
    "SUM",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    // window functions
    "CUME_DIST",
    "DENSE_RANK",
    "FIRST_VALUE",
    "LAG",
    "LAST_VALUE",
    "LEAD",
    "NTH_VALUE",
    "NTILE",
    "PERCENT_RANK",
    "RANK",
    "ROW_NUMBER",
    // scalars
    "ABS",
    "ARRAY",
    "CEIL",
    "CEILING",
    "COALESCE",
    "ENDS_WITH",
    "EXP",
    "FLOOR",
    "IF",
    "IFNULL",
    "LENGTH",
    "LN",
    "LOG10",
    "LOWER",
    "LTRIM",
    "MOD",
    "NULLIF",
    "POW",
    "POWER",
    "REPLACE",
    "REVERSE",
    "ROUND",
    "RTRIM",
    "SIGN",
    "SQRT",
    "STARTS_WITH",
    "STRPOS",
    "TRUNC",
    "UPPER",
];

/// Same meaning, other name in DuckDB.
const RENAMED: &[(&str, &str)] = &[
    ("ARRAY_LENGTH", "len"),
    ("IS_INF", "isinf"),
    ("IS_NAN", "isnan"),
    ("LOGICAL_AND", "bool_and"),
    ("LOGICAL_OR", "bool_or"),
    ("REGEXP_CONTAINS", "regexp_matches"),
];

/// GoogleSQL functions translated by a rewrite (see the table in the module docs), including
/// the renamed ones.
pub const REWRITTEN_FUNCTIONS: &[&str] = &[
    "APPROX_QUANTILES",
    "ARRAY_AGG",
    "COUNTIF",
    "ARRAY_LENGTH",
    "CONCAT",
    "CURRENT_DATE",
    "CURRENT_TIMESTAMP",
    "DATE",
    "DATE_ADD",
    "DATE_DIFF",
    "DATE_SUB",
    "DATE_TRUNC",
    "DIV",
    "FORMAT",
    "GENERATE_UUID",
    "GREATEST",
    "IEEE_DIVIDE",
    "IS_INF",
    "IS_NAN",
    "LEAST",
    "LOG",
    "LOGICAL_AND",
    "LOGICAL_OR",
    "NET.IPV4_FROM_INT64",
    "NET.IPV4_TO_INT64",
    "NET.IP_FROM_STRING",
    "NET.IP_NET_MASK",
    "NET.IP_TO_STRING",
    "NET.IP_TRUNC",
    "NET.SAFE_IP_FROM_STRING",
    "REGEXP_CONTAINS",
    "REGEXP_EXTRACT",
    "REGEXP_REPLACE",
    "SAFE_DIVIDE",
    "SPLIT",
    "SUBSTR",
    "SUBSTRING",
    "TIMESTAMP",
    "TIMESTAMP_ADD",
    "TIMESTAMP_DIFF",
    "TIMESTAMP_MICROS",
    "TIMESTAMP_MILLIS",
    "TIMESTAMP_SECONDS",
    "TIMESTAMP_SUB",
    "TIMESTAMP_TRUNC",
    "UNIX_MICROS",
    "UNIX_MILLIS",
    "UNIX_SECONDS",
];

/// Functions whose date-part argument may be `WEEK(<weekday>)`, and that argument's index.
const PART_ARGUMENT: &[(&str, usize)] = &[
    ("DATE_DIFF", 2),
    ("DATE_TRUNC", 1),
    ("TIMESTAMP_DIFF", 2),
    ("TIMESTAMP_TRUNC", 1),
];

fn name_of(f: &Function) -> String {
    f.name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => id.value.to_uppercase(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Before the arguments are visited: `WEEK(MONDAY)` as a date part would otherwise be taken for
/// a call of an unknown function WEEK. It becomes an identifier no user SQL can spell (it
/// contains parentheses), consumed by [`rewrite`] of the enclosing call.
pub(crate) fn pre_rewrite(f: &mut Function) {
    let name = name_of(f);
    let Some(&(_, index)) = PART_ARGUMENT.iter().find(|(n, _)| *n == name) else {
        return;
    };
    if let FunctionArguments::List(list) = &mut f.args
        && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(part))) = list.args.get_mut(index)
        && let Expr::Function(week) = part
        && name_of(week) == "WEEK"
        && let FunctionArguments::List(week_args) = &week.args
        && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(day)))] =
            week_args.args.as_slice()
    {
        let mut marker = Ident::new(format!("WEEK({})", day.value.to_uppercase()));
        marker.span = day.span;
        *part = Expr::Identifier(marker);
    }
}

/// Returns the replacement expression, or `None` when the call stays (possibly renamed).
pub(crate) fn rewrite(rw: &Rewriter, f: &mut Function) -> Result<Option<Expr>, TranslateError> {
    let name = name_of(f);
    let span = f.name.span();
    // Placeholders that another module substitutes later (`__ns_ml_0`).
    if name.starts_with("__NS_") {
        return Ok(None);
    }
    if f.parameters != FunctionArguments::None || !f.within_group.is_empty() {
        return Err(rw.unsupported(
            format!("{name}(…)(…) / WITHIN GROUP"),
            span,
            "not GoogleSQL",
        ));
    }
    if f.null_treatment.is_some() {
        return Err(rw.unsupported(
            format!("{name}(…) IGNORE/RESPECT NULLS outside the parentheses"),
            span,
            "write it inside: LAST_VALUE(x IGNORE NULLS)",
        ));
    }
    inline_where_to_filter(f);
    if let Some(&(_, duck)) = RENAMED.iter().find(|(n, _)| *n == name) {
        check_clauses(rw, f, &name)?;
        f.name = ObjectName::from(vec![Ident::new(duck)]);
        return Ok(None);
    }
    if name == "COUNTIF" {
        // DuckDB's count_if is NULL when every input is NULL; BigQuery's COUNTIF is then 0.
        check_clauses(rw, f, &name)?;
        f.name = ObjectName::from(vec![Ident::new("count_if")]);
        return Ok(Some(function(
            "COALESCE",
            vec![Expr::Function(f.clone()), number(0)],
        )));
    }
    if PASS_THROUGH_FUNCTIONS.contains(&name.as_str()) {
        check_clauses(rw, f, &name)?;
        return Ok(None);
    }
    if !REWRITTEN_FUNCTIONS.contains(&name.as_str()) {
        return Err(rw.unsupported(
            format!("function {name}"),
            span,
            "it is not in the verified GoogleSQL→DuckDB list (googlesql::PASS_THROUGH_FUNCTIONS, \
             googlesql::REWRITTEN_FUNCTIONS); express it with those or extend the module",
        ));
    }
    match name.as_str() {
        "ARRAY_AGG" => return array_agg(rw, f).map(Some),
        "APPROX_QUANTILES" => return approx_quantiles(rw, f).map(Some),
        _ => {}
    }
    if f.over.is_some() || f.filter.is_some() {
        return Err(rw.unsupported(
            format!("{name}(…) OVER/WHERE"),
            span,
            "only aggregate functions take OVER or an inline WHERE",
        ));
    }
    let mut args = plain_args(rw, f, &name)?;
    let count = args.len();
    let arity = |min: usize, max: usize| {
        if count < min || count > max {
            Err(rw.unsupported(
                format!("{name} with {count} argument(s)"),
                span,
                if min == max {
                    format!("{name} takes {min}")
                } else {
                    format!("{name} takes {min} to {max}")
                },
            ))
        } else {
            Ok(())
        }
    };
    // Arguments are moved out in order; the ones still needed by reference (date parts, zones)
    // come after the moved ones.
    let mut taken = 0;
    let mut next = |args: &mut Vec<Expr>| {
        taken += 1;
        args.get_mut(taken - 1)
            .map(|e| std::mem::replace(e, null()))
            .unwrap_or_else(null)
    };
    Ok(Some(match name.as_str() {
        "CONCAT" => {
            arity(1, usize::MAX)?;
            args.into_iter()
                .reduce(|l, r| binop(l, BinaryOperator::StringConcat, r))
                .unwrap_or_else(null)
        }
        "GREATEST" | "LEAST" => {
            arity(1, usize::MAX)?;
            let any_null = args
                .iter()
                .map(|e| Expr::IsNull(Box::new(paren(e.clone()))))
                .reduce(|l, r| binop(l, BinaryOperator::Or, r))
                .unwrap_or_else(null);
            case_when_else(any_null, null(), function(&name.to_lowercase(), args))
        }
        "LOG" => {
            arity(1, 2)?;
            let x = function("ln", vec![next(&mut args)]);
            if args.len() == 1 {
                x
            } else {
                binop(
                    x,
                    BinaryOperator::Divide,
                    function("ln", vec![next(&mut args)]),
                )
            }
        }
        "DIV" => {
            arity(2, 2)?;
            binop(
                next(&mut args),
                BinaryOperator::DuckIntegerDivide,
                next(&mut args),
            )
        }
        "SAFE_DIVIDE" => {
            arity(2, 2)?;
            let x = next(&mut args);
            binop(
                x,
                BinaryOperator::Divide,
                function("nullif", vec![next(&mut args), number(0)]),
            )
        }
        "IEEE_DIVIDE" => {
            arity(2, 2)?;
            let double = || DataType::Double(ExactNumberInfo::None);
            binop(
                cast(next(&mut args), double()),
                BinaryOperator::Divide,
                cast(next(&mut args), double()),
            )
        }
        "FORMAT" => {
            arity(1, usize::MAX)?;
            let Some(spec) = string_literal(&args[0]) else {
                return Err(rw.unsupported(
                    "FORMAT with a computed format string",
                    span,
                    "write the format as a string literal",
                ));
            };
            if let Err(bad) = check_format(&spec) {
                return Err(rw.unsupported(
                    format!("FORMAT specifier {bad}"),
                    args[0].span(),
                    "use %d %i %o %x %X %f %F %e %E %g %G %s %% with flags -+ #0, width and \
                     precision; CAST(x AS STRING) for %t/%T",
                ));
            }
            function("printf", args)
        }
        "REGEXP_EXTRACT" => {
            arity(2, 2)?;
            let Some(re) = string_literal(&args[1]) else {
                return Err(rw.unsupported(
                    "REGEXP_EXTRACT with a computed pattern",
                    span,
                    "write the pattern as a string literal",
                ));
            };
            let group = match capture_groups(&re) {
                0 => 0,
                1 => 1,
                n => {
                    return Err(rw.unsupported(
                        format!("REGEXP_EXTRACT pattern with {n} capture groups"),
                        args[1].span(),
                        "BigQuery allows at most one capturing group; make the others (?:…)",
                    ));
                }
            };
            let (s, re) = (next(&mut args), next(&mut args));
            Expr::CompoundFieldAccess {
                root: Box::new(function("regexp_extract_all", vec![s, re, number(group)])),
                access_chain: vec![AccessExpr::Subscript(Subscript::Index { index: number(1) })],
            }
        }
        "REGEXP_REPLACE" => {
            arity(3, 3)?;
            let mut args = args;
            args.push(string("g"));
            function("regexp_replace", args)
        }
        "SPLIT" => {
            arity(1, 2)?;
            let mut args = args;
            if args.len() == 1 {
                args.push(string(","));
            }
            function("split", args)
        }
        "SUBSTR" | "SUBSTRING" => {
            arity(2, 3)?;
            function("ns_substr", args)
        }
        "DATE" => {
            arity(1, 3)?;
            match args.len() {
                1 => cast(next(&mut args), DataType::Date),
                3 => function("make_date", args),
                _ => {
                    utc_only(rw, &args[1])?;
                    cast(next(&mut args), DataType::Date)
                }
            }
        }
        "TIMESTAMP" => {
            arity(1, 2)?;
            if args.len() == 2 {
                utc_only(rw, &args[1])?;
            }
            // Through TIMESTAMPTZ so that a UTC offset in a string is applied.
            cast(
                cast(next(&mut args), DataType::Timestamp(None, TimezoneInfo::Tz)),
                timestamp(),
            )
        }
        "TIMESTAMP_DIFF" => {
            arity(3, 3)?;
            let (a, b) = (next(&mut args), next(&mut args));
            let unit = match part(rw, &args[2])?.as_str() {
                "MICROSECOND" => 1,
                "MILLISECOND" => 1_000,
                "SECOND" => 1_000_000,
                "MINUTE" => 60_000_000,
                "HOUR" => 3_600_000_000,
                "DAY" => 86_400_000_000,
                other => return Err(bad_part(rw, &name, other, &args[2], "MICROSECOND … DAY")),
            };
            // BigQuery: the exact difference truncated toward zero; `//` truncates likewise.
            let diff = binop(
                function("epoch_us", vec![a]),
                BinaryOperator::Minus,
                function("epoch_us", vec![b]),
            );
            if unit == 1 {
                diff
            } else {
                binop(diff, BinaryOperator::DuckIntegerDivide, number(unit))
            }
        }
        "DATE_DIFF" => {
            arity(3, 3)?;
            let (a, b) = (next(&mut args), next(&mut args));
            let p = part(rw, &args[2])?;
            match p.as_str() {
                "DAY" | "MONTH" | "QUARTER" | "YEAR" => {
                    function("date_diff", vec![string(&p.to_lowercase()), b, a])
                }
                "ISOYEAR" => binop(
                    function("isoyear", vec![a]),
                    BinaryOperator::Minus,
                    function("isoyear", vec![b]),
                ),
                other => match week_shift(other) {
                    // Whole weeks between the starts of the weeks holding a and b.
                    Some(shift) => {
                        let week_start = |d: Expr| {
                            let d = cast(d, DataType::Date);
                            let d = if shift == 0 {
                                d
                            } else {
                                binop(d, BinaryOperator::Plus, number(shift))
                            };
                            function("date_trunc", vec![string("week"), d])
                        };
                        binop(
                            function(
                                "date_diff",
                                vec![string("day"), week_start(b), week_start(a)],
                            ),
                            BinaryOperator::DuckIntegerDivide,
                            number(7),
                        )
                    }
                    None => {
                        return Err(bad_part(
                            rw,
                            &name,
                            other,
                            &args[2],
                            "DAY, WEEK, WEEK(<weekday>), ISOWEEK, MONTH, QUARTER, YEAR, ISOYEAR",
                        ));
                    }
                },
            }
        }
        "TIMESTAMP_TRUNC" | "DATE_TRUNC" => {
            arity(2, 3)?;
            if args.len() == 3 {
                utc_only(rw, &args[2])?;
            }
            let x = next(&mut args);
            let p = part(rw, &args[1])?;
            let truncated = match p.as_str() {
                "MICROSECOND" | "MILLISECOND" | "SECOND" | "MINUTE" | "HOUR"
                    if name == "TIMESTAMP_TRUNC" =>
                {
                    function("date_trunc", vec![string(&p.to_lowercase()), x])
                }
                "DAY" | "MONTH" | "QUARTER" | "YEAR" | "ISOYEAR" => {
                    function("date_trunc", vec![string(&p.to_lowercase()), x])
                }
                other => match week_shift(other) {
                    // DuckDB weeks start on Monday: move the day BigQuery starts the week on
                    // to Monday, truncate, and move back.
                    Some(0) => function("date_trunc", vec![string("week"), x]),
                    Some(shift) => binop(
                        function(
                            "date_trunc",
                            vec![string("week"), binop(x, BinaryOperator::Plus, days(shift))],
                        ),
                        BinaryOperator::Minus,
                        days(shift),
                    ),
                    None => {
                        return Err(bad_part(
                            rw,
                            &name,
                            other,
                            &args[1],
                            "MICROSECOND … HOUR (timestamps), DAY, WEEK, WEEK(<weekday>), ISOWEEK, MONTH, QUARTER, YEAR, ISOYEAR",
                        ));
                    }
                },
            };
            if name == "DATE_TRUNC" {
                cast(truncated, DataType::Date)
            } else {
                truncated
            }
        }
        "TIMESTAMP_ADD" | "TIMESTAMP_SUB" | "DATE_ADD" | "DATE_SUB" => {
            arity(2, 2)?;
            let x = next(&mut args);
            let interval = next(&mut args);
            let is_date = name.starts_with("DATE");
            let allowed: &[DateTimeField] = if is_date {
                &[
                    DateTimeField::Day,
                    DateTimeField::Week(None),
                    DateTimeField::Month,
                    DateTimeField::Quarter,
                    DateTimeField::Year,
                ]
            } else {
                &[
                    DateTimeField::Microsecond,
                    DateTimeField::Millisecond,
                    DateTimeField::Second,
                    DateTimeField::Minute,
                    DateTimeField::Hour,
                    DateTimeField::Day,
                ]
            };
            match &interval {
                Expr::Interval(Interval {
                    leading_field: Some(field),
                    ..
                }) if allowed.contains(field) => {}
                other => {
                    return Err(rw.unsupported(
                        format!("{name} with {other}"),
                        other.span(),
                        format!(
                            "write {name}(x, INTERVAL n UNIT) with UNIT one of {}",
                            allowed
                                .iter()
                                .map(|f| f.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            let op = if name.ends_with("_ADD") {
                BinaryOperator::Plus
            } else {
                BinaryOperator::Minus
            };
            let moved = binop(x, op, interval);
            if is_date {
                cast(moved, DataType::Date)
            } else {
                moved
            }
        }
        "TIMESTAMP_SECONDS" | "TIMESTAMP_MILLIS" | "TIMESTAMP_MICROS" => {
            arity(1, 1)?;
            let n = cast(next(&mut args), DataType::BigInt(None));
            let micros = match name.as_str() {
                "TIMESTAMP_SECONDS" => binop(n, BinaryOperator::Multiply, number(1_000_000)),
                "TIMESTAMP_MILLIS" => binop(n, BinaryOperator::Multiply, number(1_000)),
                _ => n,
            };
            function("make_timestamp", vec![micros])
        }
        "UNIX_SECONDS" | "UNIX_MILLIS" | "UNIX_MICROS" => {
            arity(1, 1)?;
            let micros = function("epoch_us", vec![next(&mut args)]);
            // BigQuery rounds down to the whole second/millisecond, also before 1970.
            match name.as_str() {
                "UNIX_SECONDS" => function("ns_floor_div", vec![micros, number(1_000_000)]),
                "UNIX_MILLIS" => function("ns_floor_div", vec![micros, number(1_000)]),
                _ => micros,
            }
        }
        "CURRENT_TIMESTAMP" => {
            arity(0, 0)?;
            cast(bare("current_timestamp"), timestamp())
        }
        "CURRENT_DATE" => {
            arity(0, 1)?;
            if let Some(zone) = args.first() {
                utc_only(rw, zone)?;
            }
            // DuckDB's current_date needs the ICU extension, which the bundled build lacks.
            cast(cast(bare("current_timestamp"), timestamp()), DataType::Date)
        }
        "GENERATE_UUID" => {
            arity(0, 0)?;
            cast(function("gen_random_uuid", vec![]), DataType::Varchar(None))
        }
        net => {
            let (macro_name, n) = match net {
                "NET.IP_FROM_STRING" => ("ns_ip_from_string", 1),
                "NET.SAFE_IP_FROM_STRING" => ("ns_safe_ip_from_string", 1),
                "NET.IP_TO_STRING" => ("ns_ip_to_string", 1),
                "NET.IP_TRUNC" => ("ns_ip_trunc", 2),
                "NET.IP_NET_MASK" => ("ns_ip_net_mask", 2),
                "NET.IPV4_TO_INT64" => ("ns_ipv4_to_int64", 1),
                "NET.IPV4_FROM_INT64" => ("ns_ipv4_from_int64", 1),
                _ => unreachable!("REWRITTEN_FUNCTIONS and this match list the same names"),
            };
            arity(n, n)?;
            function(macro_name, args)
        }
    }))
}

/// GoogleSQL's `AGG(x WHERE c)` is the standard `AGG(x) FILTER (WHERE c)`.
fn inline_where_to_filter(f: &mut Function) {
    if let FunctionArguments::List(list) = &mut f.args
        && let Some(i) = list
            .clauses
            .iter()
            .position(|c| matches!(c, FunctionArgumentClause::Where(_)))
        && let FunctionArgumentClause::Where(cond) = list.clauses.remove(i)
    {
        f.filter = Some(Box::new(match f.filter.take() {
            Some(existing) => binop(*existing, BinaryOperator::And, cond),
            None => cond,
        }));
    }
}

fn check_clauses(rw: &Rewriter, f: &Function, name: &str) -> Result<(), TranslateError> {
    let FunctionArguments::List(list) = &f.args else {
        return Ok(());
    };
    for clause in &list.clauses {
        let ok = match clause {
            FunctionArgumentClause::OrderBy(_) => name == "STRING_AGG",
            FunctionArgumentClause::IgnoreOrRespectNulls(_) => {
                matches!(name, "FIRST_VALUE" | "LAST_VALUE" | "NTH_VALUE")
            }
            _ => false,
        };
        if !ok {
            return Err(rw.unsupported(
                format!("{name}(… {clause})"),
                f.name.span(),
                "this clause is not supported for this function",
            ));
        }
    }
    Ok(())
}

/// The positional arguments of a call that takes no DISTINCT, clauses or named arguments.
pub(crate) fn plain_args(
    rw: &Rewriter,
    f: &mut Function,
    name: &str,
) -> Result<Vec<Expr>, TranslateError> {
    let list = match &mut f.args {
        FunctionArguments::None => return Ok(vec![]),
        FunctionArguments::Subquery(_) => {
            return Err(rw.unsupported(
                format!("{name}(subquery)"),
                f.name.span(),
                "pass a value, not a query",
            ));
        }
        FunctionArguments::List(list) => list,
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return Err(rw.unsupported(
            format!("{name}(DISTINCT/ORDER BY/LIMIT …)"),
            f.name.span(),
            "this function takes plain arguments",
        ));
    }
    let mut out = Vec::with_capacity(list.args.len());
    for arg in std::mem::take(&mut list.args) {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => out.push(e),
            other => {
                return Err(rw.unsupported(
                    format!("{name}({other})"),
                    f.name.span(),
                    "pass positional values",
                ));
            }
        }
    }
    Ok(out)
}

fn array_agg(rw: &Rewriter, f: &mut Function) -> Result<Expr, TranslateError> {
    let span = f.name.span();
    let FunctionArguments::List(list) = &mut f.args else {
        return Err(rw.unsupported("ARRAY_AGG without arguments", span, "ARRAY_AGG(x)"));
    };
    let value = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => e.clone(),
        _ => {
            return Err(rw.unsupported(
                "ARRAY_AGG with several arguments",
                span,
                "aggregate one value; build a STRUCT for several",
            ));
        }
    };
    let mut limit = None;
    let mut ignore_nulls = false;
    let mut kept = Vec::new();
    for clause in std::mem::take(&mut list.clauses) {
        match clause {
            FunctionArgumentClause::Limit(n) => limit = Some(n),
            FunctionArgumentClause::IgnoreOrRespectNulls(NullTreatment::IgnoreNulls) => {
                ignore_nulls = true
            }
            FunctionArgumentClause::IgnoreOrRespectNulls(NullTreatment::RespectNulls) => {}
            order @ FunctionArgumentClause::OrderBy(_) => kept.push(order),
            other => {
                return Err(rw.unsupported(
                    format!("ARRAY_AGG(… {other})"),
                    span,
                    "ARRAY_AGG takes IGNORE NULLS, ORDER BY and LIMIT",
                ));
            }
        }
    }
    list.clauses = kept;
    f.name = ObjectName::from(vec![Ident::new("list")]);
    if ignore_nulls {
        let not_null = Expr::IsNotNull(Box::new(paren(value)));
        f.filter = Some(Box::new(match f.filter.take() {
            Some(existing) => binop(*existing, BinaryOperator::And, not_null),
            None => not_null,
        }));
    }
    let aggregated = Expr::Function(f.clone());
    Ok(match limit {
        // DuckDB has no LIMIT inside an aggregate: slice the ordered list.
        Some(n) => Expr::CompoundFieldAccess {
            root: Box::new(Expr::Nested(Box::new(aggregated))),
            access_chain: vec![AccessExpr::Subscript(Subscript::Slice {
                lower_bound: Some(number(1)),
                upper_bound: Some(n),
                stride: None,
            })],
        },
        None => aggregated,
    })
}

fn approx_quantiles(rw: &Rewriter, f: &mut Function) -> Result<Expr, TranslateError> {
    let span = f.name.span();
    let FunctionArguments::List(list) = &mut f.args else {
        return Err(rw.unsupported("APPROX_QUANTILES()", span, "APPROX_QUANTILES(x, n)"));
    };
    if list.duplicate_treatment.is_some() {
        return Err(rw.unsupported(
            "APPROX_QUANTILES(DISTINCT …)",
            span,
            "deduplicate in a subquery first",
        ));
    }
    for clause in std::mem::take(&mut list.clauses) {
        // NULLs are ignored by default in both engines.
        if clause != FunctionArgumentClause::IgnoreOrRespectNulls(NullTreatment::IgnoreNulls) {
            return Err(rw.unsupported(
                format!("APPROX_QUANTILES(… {clause})"),
                span,
                "only IGNORE NULLS (the default) is supported",
            ));
        }
    }
    let n = match list.args.get(1) {
        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) => match &v.value {
            Value::Number(n, _) => n.parse::<u32>().ok().filter(|n| *n >= 1),
            _ => None,
        },
        _ => None,
    };
    let Some(n) = n.filter(|_| list.args.len() == 2) else {
        return Err(rw.unsupported(
            "APPROX_QUANTILES without a literal number of quantiles",
            span,
            "write APPROX_QUANTILES(x, n) with n an integer literal ≥ 1",
        ));
    };
    let fractions = (0..=n)
        .map(|k| decimal(format!("{}", f64::from(k) / f64::from(n))))
        .collect();
    list.args[1] =
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Array(sqlparser::ast::Array {
            elem: fractions,
            named: false,
        })));
    f.name = ObjectName::from(vec![Ident::new("quantile_disc")]);
    Ok(Expr::Function(f.clone()))
}

/// The date part argument: `SECOND`, `WEEK`, the `WEEK(MONDAY)` marker from [`pre_rewrite`].
fn part(rw: &Rewriter, e: &Expr) -> Result<String, TranslateError> {
    match e {
        Expr::Identifier(id) if id.quote_style.is_none() => Ok(id.value.to_uppercase()),
        other => Err(rw.unsupported(
            format!("date part {other}"),
            other.span(),
            "write the part as a keyword: SECOND, DAY, WEEK(MONDAY), …",
        )),
    }
}

fn bad_part(rw: &Rewriter, name: &str, part: &str, e: &Expr, allowed: &str) -> TranslateError {
    rw.unsupported(
        format!("{name} part {part}"),
        e.span(),
        format!("use one of {allowed}"),
    )
}

/// Days to add so that the first day of the requested week lands on Monday (DuckDB's week
/// start); `None` if the part is not a week.
fn week_shift(part: &str) -> Option<i64> {
    let day = match part {
        "WEEK" => "SUNDAY",
        "ISOWEEK" => "MONDAY",
        other => other.strip_prefix("WEEK(")?.strip_suffix(')')?,
    };
    let index = [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ]
    .iter()
    .position(|d| *d == day)? as i64;
    Some((7 - index) % 7)
}

fn utc_only(rw: &Rewriter, zone: &Expr) -> Result<(), TranslateError> {
    match string_literal(zone) {
        Some(z) if z.eq_ignore_ascii_case("UTC") || z == "+00" || z == "+00:00" => Ok(()),
        _ => Err(rw.unsupported(
            format!("time zone {zone}"),
            zone.span(),
            "the local engine computes in UTC only; drop the zone or use 'UTC'",
        )),
    }
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Checks a FORMAT string; returns the first specifier whose meaning differs in DuckDB's printf.
fn check_format(spec: &str) -> Result<(), String> {
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut s = String::from("%");
        while let Some(&f) = chars.peek().filter(|f| "-+ #0".contains(**f)) {
            s.push(f);
            chars.next();
        }
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            s.push(d);
            chars.next();
        }
        if chars.peek() == Some(&'.') {
            s.push('.');
            chars.next();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                s.push(d);
                chars.next();
            }
        }
        match chars.next() {
            Some('%') if s == "%" => {}
            Some(conv) if "dioxXfFeEgGs".contains(conv) => {}
            Some(conv) => return Err(format!("{s}{conv}")),
            None => return Err(s),
        }
    }
    Ok(())
}

/// Capturing groups in an RE2 pattern: `(` not escaped, not in a class, and not `(?…` unless
/// it is a named group.
fn capture_groups(re: &str) -> usize {
    let bytes = re.as_bytes();
    let (mut i, mut in_class, mut groups) = (0, false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class => {
                let rest = &re[i..];
                if !rest.starts_with("(?") || rest.starts_with("(?P<") || rest.starts_with("(?<") {
                    groups += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    groups
}

fn case_when_else(condition: Expr, then: Expr, otherwise: Expr) -> Expr {
    match case_when(condition, then) {
        Expr::Case {
            case_token,
            end_token,
            operand,
            conditions,
            ..
        } => Expr::Case {
            case_token,
            end_token,
            operand,
            conditions,
            else_result: Some(Box::new(otherwise)),
        },
        _ => unreachable!("case_when builds a CASE"),
    }
}

fn timestamp() -> DataType {
    DataType::Timestamp(None, TimezoneInfo::None)
}

/// A call printed without parentheses (`current_timestamp`).
fn bare(name: &str) -> Expr {
    Expr::Function(super::rewrite::function_stub(name))
}

fn days(n: i64) -> Expr {
    Expr::Interval(Interval {
        value: Box::new(number(n)),
        leading_field: Some(DateTimeField::Day),
        leading_precision: None,
        last_field: None,
        fractional_seconds_precision: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_specifiers() {
        assert!(check_format("%d %5.2f %-3s %% %x %08.3e %+i %G").is_ok());
        assert_eq!(check_format("%t"), Err("%t".into()));
        assert_eq!(check_format("%'d"), Err("%'".into()));
        assert_eq!(check_format("%*d"), Err("%*".into()));
        assert_eq!(check_format("100%"), Err("%".into()));
    }

    #[test]
    fn regex_groups() {
        assert_eq!(capture_groups(r"\d+"), 0);
        assert_eq!(capture_groups(r"a(\d+)"), 1);
        assert_eq!(capture_groups(r"(?:a)(b)[(]\("), 1);
        assert_eq!(capture_groups(r"(?P<x>a)(b)"), 2);
        assert_eq!(capture_groups(r"(?i)abc"), 0);
    }

    #[test]
    fn week_shifts() {
        assert_eq!(week_shift("WEEK"), Some(1));
        assert_eq!(week_shift("ISOWEEK"), Some(0));
        assert_eq!(week_shift("WEEK(MONDAY)"), Some(0));
        assert_eq!(week_shift("WEEK(TUESDAY)"), Some(6));
        assert_eq!(week_shift("MONTH"), None);
    }
}
