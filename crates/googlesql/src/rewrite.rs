//! The AST walk: statements, names, literals and expressions. Function calls are in
//! `functions.rs`.

use std::ops::ControlFlow;

use sqlparser::ast::helpers::attached_token::AttachedToken;
use sqlparser::ast::{
    AccessExpr, AlterTableOperation, BinaryOperator, CastKind, ColumnOption, CreateTableOptions,
    DataType, DateTimeField, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgOperator,
    FunctionArgumentList, FunctionArguments, Ident, MergeAction, MergeInsertExpr, MergeInsertKind,
    ObjectName, ObjectNamePart, ObjectType, OrderByExpr, OrderBySort, Query, Select, SelectItem,
    SetExpr, Spanned, Statement, Subscript, TableAliasColumnDef, TableFactor, TimezoneInfo,
    TypedString, UnaryOperator, Value, ValueWithSpan, VisitorMut,
};
use sqlparser::ast::{FromTable, GroupByExpr, SelectFlavor};
use sqlparser::keywords::ALL_KEYWORDS;
use sqlparser::tokenizer::{Location, Span};

use crate::TranslateError;
use crate::functions;
use crate::types::map_type;

pub(crate) struct Rewriter {
    /// Where the statement being rewritten starts: the position reported for constructs whose
    /// own span sqlparser does not track.
    statement_start: Location,
}

impl Rewriter {
    pub(crate) fn new(statement_start: Location) -> Self {
        Rewriter { statement_start }
    }

    pub(crate) fn unsupported(
        &self,
        construct: impl Into<String>,
        span: Span,
        hint: impl Into<String>,
    ) -> TranslateError {
        let at = if span.start.line == 0 {
            self.statement_start
        } else {
            span.start
        };
        TranslateError::Unsupported {
            construct: construct.into(),
            line: at.line,
            column: at.column,
            hint: hint.into(),
        }
    }

    pub(crate) fn data_type(&self, t: &DataType, span: Span) -> Result<DataType, TranslateError> {
        map_type(t).map_err(|(name, hint)| self.unsupported(format!("type {name}"), span, hint))
    }

    fn statement(&self, s: &mut Statement) -> Result<(), TranslateError> {
        match s {
            Statement::Query(_)
            | Statement::Update(_)
            | Statement::Truncate(_)
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. } => Ok(()),
            Statement::Drop { object_type, .. } => match object_type {
                ObjectType::Table | ObjectType::View | ObjectType::Schema => Ok(()),
                other => Err(self.unsupported(
                    format!("DROP {other}"),
                    Span::empty(),
                    "only DROP TABLE, DROP VIEW and DROP SCHEMA run locally",
                )),
            },
            Statement::Insert(insert) => {
                insert.into = true;
                Ok(())
            }
            Statement::Delete(delete) => {
                if let FromTable::WithoutKeyword(tables) = &mut delete.from {
                    delete.from = FromTable::WithFromKeyword(std::mem::take(tables));
                }
                Ok(())
            }
            Statement::Merge(merge) => {
                merge.into = true;
                for clause in &merge.clauses {
                    if let MergeAction::Insert(MergeInsertExpr {
                        kind: MergeInsertKind::Row,
                        ..
                    }) = &clause.action
                    {
                        return Err(self.unsupported(
                            "MERGE … INSERT ROW",
                            clause.when_token.0.span,
                            "list the columns: INSERT (a, b) VALUES (s.a, s.b)",
                        ));
                    }
                }
                Ok(())
            }
            Statement::CreateTable(create) => {
                if create.like.is_some() || create.clone.is_some() {
                    return Err(self.unsupported(
                        "CREATE TABLE … LIKE/COPY/CLONE",
                        Span::empty(),
                        "use CREATE TABLE … AS SELECT * FROM source",
                    ));
                }
                // Partitioning, clustering and OPTIONS are storage hints; DuckDB has no use for
                // them and they do not change results.
                create.partition_by = None;
                create.cluster_by = None;
                create.table_options = CreateTableOptions::None;
                for column in &mut create.columns {
                    column.data_type = self.data_type(&column.data_type, column.name.span)?;
                    column
                        .options
                        .retain(|o| !matches!(o.option, ColumnOption::Options(_)));
                }
                Ok(())
            }
            Statement::CreateView(view) => {
                if view.materialized {
                    return Err(self.unsupported(
                        "CREATE MATERIALIZED VIEW",
                        Span::empty(),
                        "use CREATE OR REPLACE TABLE … AS",
                    ));
                }
                view.options = CreateTableOptions::None;
                Ok(())
            }
            // Adding a column is how a table made by an older version gains a new one (state
            // tables); other ALTERs change storage or drop data and stay unsupported.
            Statement::AlterTable(alter) => {
                for operation in &mut alter.operations {
                    match operation {
                        AlterTableOperation::AddColumn { column_def, .. } => {
                            column_def.data_type =
                                self.data_type(&column_def.data_type, column_def.name.span)?;
                        }
                        other => {
                            return Err(self.unsupported(
                                format!("ALTER TABLE {other}"),
                                Span::empty(),
                                "only ALTER TABLE … ADD COLUMN runs locally",
                            ));
                        }
                    }
                }
                Ok(())
            }
            Statement::CreateSchema { options, with, .. } => {
                *options = None;
                *with = None;
                Ok(())
            }
            other => Err(self.unsupported(
                statement_name(other),
                Span::empty(),
                "the local engine runs queries, DML (INSERT, UPDATE, DELETE, MERGE) and \
                 CREATE/DROP of tables, views and schemas; compute values in SQL or pass them as template vars",
            )),
        }
    }

    fn select(&self, select: &Select) -> Result<(), TranslateError> {
        if let Some(mode) = &select.value_table_mode {
            return Err(self.unsupported(
                format!("SELECT {mode}"),
                select.select_token.0.span,
                "select named columns, or build one with STRUCT(x AS a, …)",
            ));
        }
        if select.flavor != SelectFlavor::Standard {
            return Err(self.unsupported(
                "FROM-first SELECT",
                select.select_token.0.span,
                "write SELECT … FROM …",
            ));
        }
        Ok(())
    }

    fn table_factor(&self, factor: &mut TableFactor) -> Result<(), TranslateError> {
        match factor {
            TableFactor::Table {
                name,
                args,
                version,
                sample,
                ..
            } => {
                if args.is_some() {
                    return Err(self.unsupported(
                        format!("table function {name}"),
                        name.span(),
                        "table functions are not available locally",
                    ));
                }
                if version.is_some() {
                    return Err(self.unsupported(
                        "FOR SYSTEM_TIME AS OF",
                        name.span(),
                        "the local engine keeps no table history",
                    ));
                }
                if sample.is_some() {
                    return Err(self.unsupported(
                        "TABLESAMPLE",
                        name.span(),
                        "filter with a deterministic predicate instead",
                    ));
                }
                Ok(())
            }
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset,
                ..
            } => {
                let span = array_exprs
                    .first()
                    .map(Spanned::span)
                    .unwrap_or(Span::empty());
                if *with_offset {
                    return Err(self.unsupported(
                        "UNNEST … WITH OFFSET",
                        span,
                        "number the elements with ROW_NUMBER() or iterate GENERATE_ARRAY indexes",
                    ));
                }
                if array_exprs.len() != 1 {
                    return Err(self.unsupported(
                        "UNNEST of several arrays",
                        span,
                        "UNNEST one array per join",
                    ));
                }
                // BigQuery names the element column after the alias; DuckDB would name it
                // `unnest` and bind the alias to the whole row.
                if let Some(alias) = alias
                    && alias.columns.is_empty()
                {
                    alias.columns.push(TableAliasColumnDef {
                        name: alias.name.clone(),
                        data_type: None,
                    });
                }
                Ok(())
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => Ok(()),
            other => Err(self.unsupported(
                match other {
                    TableFactor::Pivot { .. } => "PIVOT",
                    TableFactor::Unpivot { .. } => "UNPIVOT",
                    _ => "this FROM item",
                },
                Span::empty(),
                "use a table, a subquery or UNNEST in FROM",
            )),
        }
    }

    /// Rewrites before the children are visited: array subscripts (so `OFFSET(n)` is never seen
    /// as a function call), date-part arguments, backtick paths (before their identifiers lose
    /// the backticks) and `AT TIME ZONE 'UTC'` inside EXTRACT.
    fn pre_expr(&self, expr: &mut Expr) -> Result<(), TranslateError> {
        match expr {
            Expr::CompoundFieldAccess { access_chain, .. } => {
                for access in access_chain {
                    if let AccessExpr::Subscript(Subscript::Index { index }) = access {
                        self.subscript(index)?;
                    }
                }
            }
            Expr::Function(f) => functions::pre_rewrite(f),
            Expr::Identifier(id) if id.quote_style == Some('`') && id.value.contains('.') => {
                *expr = Expr::CompoundIdentifier(split_backticked(id));
            }
            Expr::CompoundIdentifier(parts)
                if parts
                    .iter()
                    .any(|p| p.quote_style == Some('`') && p.value.contains('.')) =>
            {
                *parts = parts.iter().flat_map(split_backticked).collect();
            }
            Expr::Extract { expr: inner, .. } => {
                if let Expr::AtTimeZone {
                    timestamp,
                    time_zone,
                } = inner.as_mut()
                {
                    if !is_utc(time_zone) {
                        return Err(self.unsupported(
                            format!("EXTRACT … AT TIME ZONE {time_zone}"),
                            time_zone.span(),
                            "the local engine computes in UTC only",
                        ));
                    }
                    let instant = std::mem::replace(timestamp.as_mut(), null());
                    **inner = instant;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `arr[OFFSET(n)]` and friends → DuckDB's 1-based index.
    fn subscript(&self, index: &mut Expr) -> Result<(), TranslateError> {
        let (kind, n) = match &mut *index {
            Expr::Function(f) => {
                let name = f.name.to_string().to_uppercase();
                if !matches!(
                    name.as_str(),
                    "OFFSET" | "ORDINAL" | "SAFE_OFFSET" | "SAFE_ORDINAL"
                ) {
                    return Ok(());
                }
                let mut args = functions::plain_args(self, f, &name)?;
                if args.len() != 1 {
                    return Err(self.unsupported(
                        format!("{name} with {} arguments", args.len()),
                        f.name.span(),
                        "write arr[OFFSET(n)]",
                    ));
                }
                (name, args.remove(0))
            }
            // A string key is a struct field access; leave it.
            Expr::Value(v)
                if matches!(
                    v.value,
                    Value::SingleQuotedString(_) | Value::DoubleQuotedString(_)
                ) =>
            {
                return Ok(());
            }
            // A bare index is zero-based, like OFFSET.
            other => ("OFFSET".to_string(), std::mem::replace(other, null())),
        };
        let literal = as_integer(&n);
        *index = match (kind.as_str(), literal) {
            ("OFFSET" | "SAFE_OFFSET", Some(k)) if k >= 0 => number(k + 1),
            ("ORDINAL" | "SAFE_ORDINAL", Some(k)) if k >= 1 => number(k),
            // Out of range: BigQuery raises (SAFE_: NULL); DuckDB would index from the end.
            (_, Some(_)) => null(),
            ("OFFSET" | "SAFE_OFFSET", None) => case_when(
                binop(n.clone(), BinaryOperator::GtEq, number(0)),
                binop(n, BinaryOperator::Plus, number(1)),
            ),
            _ => case_when(binop(n.clone(), BinaryOperator::GtEq, number(1)), n),
        };
        Ok(())
    }

    fn post_expr(&self, expr: &mut Expr) -> Result<(), TranslateError> {
        let replacement = match expr {
            Expr::Identifier(id)
                if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("ARRAY") =>
            {
                return Err(self.unsupported(
                    "typed array literal ARRAY<T>[…]",
                    id.span,
                    "write CAST([…] AS ARRAY<T>) or an untyped […]",
                ));
            }
            Expr::Value(v) => bytes_literal(v),
            Expr::TypedString(ts) => self.typed_string(ts)?,
            Expr::Cast {
                kind,
                data_type,
                format,
                expr: inner,
            } => {
                if format.is_some() {
                    return Err(self.unsupported(
                        "CAST … FORMAT",
                        inner.span(),
                        "format with FORMAT(…) or cast without FORMAT",
                    ));
                }
                *data_type = self.data_type(data_type, inner.span())?;
                if *kind == CastKind::SafeCast {
                    *kind = CastKind::TryCast;
                }
                None
            }
            Expr::Interval(interval) => {
                if interval.last_field.is_some() || interval.leading_precision.is_some() {
                    return Err(self.unsupported(
                        format!("{interval}"),
                        interval.value.span(),
                        "write INTERVAL n UNIT with a single unit",
                    ));
                }
                match &interval.leading_field {
                    Some(
                        DateTimeField::Year
                        | DateTimeField::Quarter
                        | DateTimeField::Month
                        | DateTimeField::Week(None)
                        | DateTimeField::Day
                        | DateTimeField::Hour
                        | DateTimeField::Minute
                        | DateTimeField::Second
                        | DateTimeField::Millisecond
                        | DateTimeField::Microsecond,
                    ) => {}
                    other => {
                        return Err(self.unsupported(
                            format!("INTERVAL unit {}", other.as_ref().map_or("(none)".to_string(), |f| f.to_string())),
                            interval.value.span(),
                            "use YEAR, QUARTER, MONTH, WEEK, DAY, HOUR, MINUTE, SECOND, MILLISECOND or MICROSECOND",
                        ));
                    }
                }
                // The value is printed bare after INTERVAL; anything but a literal needs
                // parentheses to stay one operand.
                if !matches!(interval.value.as_ref(), Expr::Value(_)) {
                    let value = std::mem::replace(interval.value.as_mut(), null());
                    *interval.value = Expr::Nested(Box::new(value));
                }
                None
            }
            Expr::Extract {
                field, expr: inner, ..
            } => self.extract(field, inner)?,
            Expr::Struct { values, fields } => Some(self.struct_literal(values, fields)?),
            Expr::InUnnest {
                expr: needle,
                array_expr,
                negated,
            } => Some(Expr::InSubquery {
                expr: Box::new(std::mem::replace(needle.as_mut(), null())),
                subquery: Box::new(select_query(function(
                    "unnest",
                    vec![std::mem::replace(array_expr.as_mut(), null())],
                ))),
                negated: *negated,
            }),
            Expr::Substring {
                expr: s,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![std::mem::replace(s.as_mut(), null())];
                args.extend(substring_from.take().map(|e| *e));
                args.extend(substring_for.take().map(|e| *e));
                Some(function("ns_substr", args))
            }
            Expr::BinaryOp {
                left,
                op: BinaryOperator::BitwiseXor,
                right,
            } => Some(function(
                "xor",
                vec![
                    std::mem::replace(left.as_mut(), null()),
                    std::mem::replace(right.as_mut(), null()),
                ],
            )),
            Expr::Function(f) => functions::rewrite(self, f)?,
            Expr::AtTimeZone { time_zone, .. } => {
                return Err(self.unsupported(
                    "AT TIME ZONE",
                    time_zone.span(),
                    "the local engine computes in UTC only",
                ));
            }
            Expr::Ceil { field, expr: inner } | Expr::Floor { field, expr: inner }
                if !matches!(
                    field,
                    sqlparser::ast::CeilFloorKind::DateTimeField(DateTimeField::NoDateTime)
                ) =>
            {
                return Err(self.unsupported(
                    "CEIL/FLOOR with a unit",
                    inner.span(),
                    "use TIMESTAMP_TRUNC for dates and ROUND(x, n) for digits",
                ));
            }
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::CompoundFieldAccess { .. }
            | Expr::IsFalse(_)
            | Expr::IsNotFalse(_)
            | Expr::IsTrue(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotUnknown(_)
            | Expr::IsDistinctFrom(..)
            | Expr::IsNotDistinctFrom(..)
            | Expr::InList { .. }
            | Expr::InSubquery { .. }
            | Expr::Between { .. }
            | Expr::BinaryOp { .. }
            | Expr::Like { .. }
            | Expr::UnaryOp { .. }
            | Expr::Ceil { .. }
            | Expr::Floor { .. }
            | Expr::Trim { .. }
            | Expr::Nested(_)
            | Expr::Case { .. }
            | Expr::Exists { .. }
            | Expr::Subquery(_)
            | Expr::GroupingSets(_)
            | Expr::Cube(_)
            | Expr::Rollup(_)
            | Expr::Tuple(_)
            | Expr::Named { .. }
            | Expr::Array(_)
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..) => None,
            other => {
                return Err(self.unsupported(
                    format!("expression {}", first_words(&other.to_string(), 2)),
                    other.span(),
                    "rewrite it with supported GoogleSQL (see the table in the googlesql module docs)",
                ));
            }
        };
        if let Some(new) = replacement {
            *expr = new;
        }
        Ok(())
    }

    fn typed_string(&self, ts: &mut TypedString) -> Result<Option<Expr>, TranslateError> {
        let span = ts.value.span;
        let text = match &ts.value.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => s.clone(),
            other => other.to_string(),
        };
        match &ts.data_type {
            DataType::Timestamp(None, TimezoneInfo::None) if has_zone(&text) => {
                if !zone_is_offset_or_utc(&text) {
                    return Err(self.unsupported(
                        format!("TIMESTAMP literal with a named time zone '{text}'"),
                        span,
                        "write the instant in UTC or with a numeric offset (+02:00)",
                    ));
                }
                Ok(Some(cast(
                    Expr::TypedString(TypedString {
                        data_type: DataType::Timestamp(None, TimezoneInfo::Tz),
                        value: ts.value.clone(),
                        uses_odbc_syntax: false,
                    }),
                    DataType::Timestamp(None, TimezoneInfo::None),
                )))
            }
            DataType::Date | DataType::Timestamp(None, TimezoneInfo::None) => Ok(None),
            DataType::JSON => Err(self.unsupported(
                "JSON literal",
                span,
                "the bundled DuckDB has no JSON type; keep JSON as STRING",
            )),
            other => {
                let mapped = self.data_type(other, span)?;
                Ok(Some(cast(string(&text), mapped)))
            }
        }
    }

    fn extract(
        &self,
        field: &mut DateTimeField,
        inner: &mut Box<Expr>,
    ) -> Result<Option<Expr>, TranslateError> {
        let span = inner.span();
        let take = |inner: &mut Box<Expr>| std::mem::replace(inner.as_mut(), null());
        Ok(match field {
            DateTimeField::Year
            | DateTimeField::Month
            | DateTimeField::Day
            | DateTimeField::Hour
            | DateTimeField::Minute
            | DateTimeField::Second
            | DateTimeField::Quarter
            | DateTimeField::DayOfYear
            | DateTimeField::Isoyear => None,
            DateTimeField::IsoWeek => {
                *field = DateTimeField::Week(None);
                None
            }
            DateTimeField::DayOfWeek => Some(binop(
                extract(DateTimeField::Dow, take(inner)),
                BinaryOperator::Plus,
                number(1),
            )),
            DateTimeField::Millisecond | DateTimeField::Microsecond => {
                let modulus = if *field == DateTimeField::Millisecond {
                    1_000
                } else {
                    1_000_000
                };
                Some(binop(
                    extract(field.clone(), take(inner)),
                    BinaryOperator::Modulo,
                    number(modulus),
                ))
            }
            DateTimeField::Week(day) => {
                let pattern = match day.as_ref().map(|d| d.value.to_uppercase()).as_deref() {
                    None | Some("SUNDAY") => "%U",
                    Some("MONDAY") => "%W",
                    Some(other) => {
                        return Err(self.unsupported(
                            format!("EXTRACT(WEEK({other}))"),
                            span,
                            "use WEEK (Sunday), WEEK(MONDAY) or ISOWEEK",
                        ));
                    }
                };
                Some(cast(
                    function("strftime", vec![take(inner), string(pattern)]),
                    DataType::BigInt(None),
                ))
            }
            DateTimeField::Date => Some(cast(take(inner), DataType::Date)),
            DateTimeField::Time => {
                Some(cast(take(inner), DataType::Time(None, TimezoneInfo::None)))
            }
            DateTimeField::Datetime => Some(cast(
                take(inner),
                DataType::Timestamp(None, TimezoneInfo::None),
            )),
            other => {
                return Err(self.unsupported(
                    format!("EXTRACT({other})"),
                    span,
                    "use YEAR, QUARTER, MONTH, WEEK, ISOWEEK, ISOYEAR, DAY, DAYOFWEEK, DAYOFYEAR, HOUR, MINUTE, SECOND, MILLISECOND, MICROSECOND, DATE, TIME or DATETIME",
                ));
            }
        })
    }

    fn struct_literal(
        &self,
        values: &mut [Expr],
        fields: &[sqlparser::ast::StructField],
    ) -> Result<Expr, TranslateError> {
        let mut args = Vec::with_capacity(values.len());
        for (i, value) in values.iter_mut().enumerate() {
            let value = std::mem::replace(value, null());
            let (name, value) = match (value, fields.get(i)) {
                (Expr::Named { expr, name }, _) => (name, *expr),
                (
                    value,
                    Some(sqlparser::ast::StructField {
                        field_name: Some(name),
                        field_type,
                        ..
                    }),
                ) => {
                    let span = value.span();
                    (name.clone(), cast(value, self.data_type(field_type, span)?))
                }
                (value, _) => {
                    return Err(self.unsupported(
                        format!("unnamed STRUCT field {value}"),
                        value.span(),
                        "name every field: STRUCT(x AS a) (unnamed fields also crash bqemulator)",
                    ));
                }
            };
            args.push(FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(value),
                operator: FunctionArgOperator::Assignment,
            });
        }
        Ok(Expr::Function(Function {
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args,
                clauses: vec![],
            }),
            ..function_stub("struct_pack")
        }))
    }
}

fn flow(r: Result<(), TranslateError>) -> ControlFlow<TranslateError> {
    match r {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    }
}

impl VisitorMut for Rewriter {
    type Break = TranslateError;

    fn pre_visit_statement(&mut self, s: &mut Statement) -> ControlFlow<TranslateError> {
        flow(self.statement(s))
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<TranslateError> {
        flow(self.select(select))
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<TranslateError> {
        if let SetExpr::Select(select) = query.body.as_ref() {
            for item in &select.projection {
                if let SelectItem::Wildcard(opts) | SelectItem::QualifiedWildcard(_, opts) = item
                    && (opts.opt_ilike.is_some() || opts.opt_rename.is_some())
                {
                    return ControlFlow::Break(self.unsupported(
                        "SELECT * ILIKE/RENAME",
                        opts.wildcard_token.0.span,
                        "use * EXCEPT(…) or * REPLACE(…)",
                    ));
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<TranslateError> {
        let mut parts = Vec::with_capacity(name.0.len());
        for part in name.0.drain(..) {
            match part {
                ObjectNamePart::Identifier(id) => parts.extend(
                    split_backticked(&id)
                        .into_iter()
                        .map(ObjectNamePart::Identifier),
                ),
                other => parts.push(other),
            }
        }
        // `project.dataset.table`: DuckDB has schemas, not projects.
        if parts.len() == 3 {
            parts.remove(0);
        }
        name.0 = parts;
        if name.0.len() > 3 {
            return ControlFlow::Break(self.unsupported(
                format!("table name {name}"),
                name.span(),
                "name tables dataset.table or project.dataset.table",
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<TranslateError> {
        flow(self.table_factor(factor))
    }

    fn post_visit_ident(&mut self, ident: &mut Ident) -> ControlFlow<TranslateError> {
        unbacktick(ident);
        ControlFlow::Continue(())
    }

    fn post_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<TranslateError> {
        let text = match &v.value {
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::TripleSingleQuotedString(s)
            | Value::TripleDoubleQuotedString(s)
            | Value::SingleQuotedRawStringLiteral(s)
            | Value::DoubleQuotedRawStringLiteral(s)
            | Value::TripleSingleQuotedRawStringLiteral(s)
            | Value::TripleDoubleQuotedRawStringLiteral(s) => s.clone(),
            Value::Placeholder(p) => {
                return ControlFlow::Break(self.unsupported(
                    format!("query parameter {p}"),
                    v.span,
                    "render values into the SQL with template vars",
                ));
            }
            _ => return ControlFlow::Continue(()),
        };
        v.value = string_value(text);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<TranslateError> {
        flow(self.pre_expr(expr))
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<TranslateError> {
        flow(self.post_expr(expr))
    }

    fn post_visit_order_by_expr(&mut self, o: &mut OrderByExpr) -> ControlFlow<TranslateError> {
        // BigQuery sorts NULL as the smallest value; DuckDB puts NULLs last in both directions.
        if o.options.nulls_first.is_none() {
            let desc = matches!(o.options.sort, Some(OrderBySort::Desc));
            if o.options.sort.is_none() {
                o.options.sort = Some(OrderBySort::Asc);
            }
            o.options.nulls_first = Some(!desc);
        }
        ControlFlow::Continue(())
    }
}

fn statement_name(s: &Statement) -> String {
    match s {
        Statement::Declare { .. } => "DECLARE".into(),
        Statement::ExportData(_) => "EXPORT DATA".into(),
        Statement::CreateFunction(_) => "CREATE FUNCTION".into(),
        Statement::CreateProcedure { .. } => "CREATE PROCEDURE".into(),
        Statement::Call(_) => "CALL".into(),
        Statement::Set(_) => "SET".into(),
        Statement::If(_) | Statement::While(_) | Statement::Case(_) => {
            "scripting (IF/WHILE/CASE statement)".into()
        }
        Statement::Assert { .. } => "ASSERT".into(),
        Statement::LoadData { .. } => "LOAD DATA".into(),
        Statement::Execute { .. } => "EXECUTE IMMEDIATE".into(),
        other => format!("statement {}", first_words(&other.to_string(), 2)),
    }
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// BigQuery lets one backtick pair hold a dotted path (`` `raw.t` ``).
fn split_backticked(id: &Ident) -> Vec<Ident> {
    if id.quote_style == Some('`') && id.value.contains('.') {
        id.value
            .split('.')
            .map(|p| {
                let mut part = Ident::with_quote('`', p);
                part.span = id.span;
                unbacktick(&mut part);
                part
            })
            .collect()
    } else {
        let mut id = id.clone();
        unbacktick(&mut id);
        vec![id]
    }
}

/// Backticks become nothing when the name needs no quoting, standard double quotes otherwise.
fn unbacktick(id: &mut Ident) {
    if id.quote_style != Some('`') {
        return;
    }
    let plain = id
        .value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && id
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && ALL_KEYWORDS
            .binary_search(&id.value.to_uppercase().as_str())
            .is_err();
    id.quote_style = if plain { None } else { Some('"') };
}

fn is_utc(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(&v.value, Value::SingleQuotedString(s) if s.eq_ignore_ascii_case("UTC") || s == "+00" || s == "+00:00" || s == "Z"))
}

/// Whether a timestamp literal carries a zone after its time part.
fn has_zone(text: &str) -> bool {
    let time = text.get(10..).unwrap_or("");
    time.contains(['+', 'Z', 'z'])
        || time.trim_start().chars().any(|c| c.is_ascii_alphabetic())
        || time.contains('-')
}

/// Zones DuckDB resolves without ICU: numeric offsets and UTC.
fn zone_is_offset_or_utc(text: &str) -> bool {
    let time = text.get(10..).unwrap_or("");
    let letters: String = time.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    letters.is_empty() || letters.eq_ignore_ascii_case("UTC") || letters.eq_ignore_ascii_case("Z")
}

fn bytes_literal(v: &ValueWithSpan) -> Option<Expr> {
    match &v.value {
        Value::SingleQuotedByteStringLiteral(s)
        | Value::DoubleQuotedByteStringLiteral(s)
        | Value::TripleSingleQuotedByteStringLiteral(s)
        | Value::TripleDoubleQuotedByteStringLiteral(s) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            Some(function("unhex", vec![string(&hex)]))
        }
        _ => None,
    }
}

fn as_integer(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => as_integer(expr).map(|n| -n),
        _ => None,
    }
}

// ---- AST construction helpers shared with functions.rs ----

/// sqlparser's quote escaping leaves `\'` and `''` inside a value untouched, which would change
/// or break the literal; DuckDB's E'' strings escape every quote and backslash unambiguously.
pub(crate) fn string_value(text: String) -> Value {
    if text.contains('\'') {
        Value::EscapedStringLiteral(text)
    } else {
        Value::SingleQuotedString(text)
    }
}

pub(crate) fn string(text: &str) -> Expr {
    Expr::Value(string_value(text.to_string()).with_empty_span())
}

pub(crate) fn number(n: i64) -> Expr {
    Expr::Value(Value::Number(n.to_string(), false).with_empty_span())
}

pub(crate) fn decimal(text: String) -> Expr {
    Expr::Value(Value::Number(text, false).with_empty_span())
}

pub(crate) fn null() -> Expr {
    Expr::Value(Value::Null.with_empty_span())
}

/// Always parenthesized: the printer does not add parentheses for precedence.
pub(crate) fn binop(left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(paren(left)),
        op,
        right: Box::new(paren(right)),
    }))
}

/// Parentheses for operands that are not atoms.
pub(crate) fn paren(e: Expr) -> Expr {
    match e {
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::CompoundFieldAccess { .. }
        | Expr::Value(_)
        | Expr::TypedString(_)
        | Expr::Function(_)
        | Expr::Nested(_)
        | Expr::Cast { .. }
        | Expr::Interval(_) => e,
        other => Expr::Nested(Box::new(other)),
    }
}

pub(crate) fn cast(e: Expr, data_type: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(e),
        data_type,
        format: None,
    }
}

pub(crate) fn extract(field: DateTimeField, e: Expr) -> Expr {
    Expr::Extract {
        field,
        syntax: sqlparser::ast::ExtractSyntax::From,
        expr: Box::new(e),
    }
}

pub(crate) fn case_when(condition: Expr, then: Expr) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![sqlparser::ast::CaseWhen {
            condition,
            result: then,
        }],
        else_result: None,
    }
}

pub(crate) fn function_stub(name: &str) -> Function {
    Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::None,
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    }
}

pub(crate) fn function(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        ..function_stub(name)
    })
}

fn select_query(item: Expr) -> Query {
    Query {
        with: None,
        body: Box::new(SetExpr::Select(Box::new(Select {
            select_token: AttachedToken::empty(),
            optimizer_hints: vec![],
            distinct: None,
            select_modifiers: None,
            top: None,
            top_before_distinct: false,
            projection: vec![SelectItem::UnnamedExpr(item)],
            exclude: None,
            into: None,
            from: vec![],
            lateral_views: vec![],
            prewhere: None,
            selection: None,
            connect_by: vec![],
            group_by: GroupByExpr::Expressions(vec![], vec![]),
            cluster_by: vec![],
            distribute_by: vec![],
            sort_by: vec![],
            having: None,
            named_window: vec![],
            qualify: None,
            window_before_qualify: false,
            value_table_mode: None,
            flavor: SelectFlavor::Standard,
        }))),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }
}
