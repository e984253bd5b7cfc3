//! Recognizing BigQuery ML constructs in GoogleSQL with sqlparser's tokenizer (which knows
//! strings, comments and backticks): `CREATE [OR REPLACE] MODEL … OPTIONS(…) AS query`,
//! `DROP MODEL`, and `ML.<FUNCTION>(MODEL m, …)` calls anywhere a table can appear. The calls
//! are cut out and replaced by placeholder names so the rest parses as ordinary GoogleSQL.

use sqlparser::dialect::BigQueryDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::BqmlError;
use netsentinel_core::{Dataset, TableRef};

/// A literal value in OPTIONS(…) or STRUCT(…).
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    String(String),
    Number(f64),
    Bool(bool),
    List(Vec<OptionValue>),
}

impl std::fmt::Display for OptionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionValue::String(s) => write!(f, "'{s}'"),
            OptionValue::Number(n) => write!(f, "{n}"),
            OptionValue::Bool(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
            OptionValue::List(items) => {
                let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                write!(f, "[{}]", parts.join(", "))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateModel {
    pub model: TableRef,
    pub or_replace: bool,
    pub if_not_exists: bool,
    /// Option names lower-cased, in the order written.
    pub options: Vec<(String, OptionValue)>,
    pub query: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlFunction {
    DetectAnomalies,
    Predict,
    Centroids,
    Evaluate,
    TrainingInfo,
    FeatureInfo,
}

impl MlFunction {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "DETECT_ANOMALIES" => Self::DetectAnomalies,
            "PREDICT" => Self::Predict,
            "CENTROIDS" => Self::Centroids,
            "EVALUATE" => Self::Evaluate,
            "TRAINING_INFO" => Self::TrainingInfo,
            "FEATURE_INFO" => Self::FeatureInfo,
            _ => return None,
        })
    }

    pub fn sql_name(self) -> &'static str {
        match self {
            Self::DetectAnomalies => "ML.DETECT_ANOMALIES",
            Self::Predict => "ML.PREDICT",
            Self::Centroids => "ML.CENTROIDS",
            Self::Evaluate => "ML.EVALUATE",
            Self::TrainingInfo => "ML.TRAINING_INFO",
            Self::FeatureInfo => "ML.FEATURE_INFO",
        }
    }
}

/// The data argument of an ML function.
#[derive(Debug, Clone, PartialEq)]
pub enum MlInput {
    /// `TABLE dataset.t`, as written.
    Table(String),
    /// `(SELECT …)`, the GoogleSQL inside the parentheses.
    Query(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MlCall {
    pub placeholder: String,
    pub function: MlFunction,
    pub model: TableRef,
    pub settings: Vec<(String, OptionValue)>,
    pub input: Option<MlInput>,
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Recognized {
    CreateModel(CreateModel),
    DropModel {
        model: TableRef,
        if_exists: bool,
    },
    /// Ordinary SQL; each ML call has been replaced by its placeholder name.
    Sql {
        text: String,
        calls: Vec<MlCall>,
    },
}

/// One statement of a script, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub text: String,
    pub line: u64,
}

pub const PLACEHOLDER_PREFIX: &str = "__ns_ml_";

fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>, BqmlError> {
    Tokenizer::new(&BigQueryDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| BqmlError::Syntax {
            line: e.location.line,
            message: e.message,
        })
}

/// Byte offsets for the tokenizer's 1-based (line, column-in-characters) locations.
struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Offsets { text, line_starts }
    }

    fn of(&self, location: Location) -> usize {
        let Some(&start) = self
            .line_starts
            .get(location.line.saturating_sub(1) as usize)
        else {
            return self.text.len();
        };
        self.text[start..]
            .char_indices()
            .nth(location.column.saturating_sub(1) as usize)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

fn is_trivia(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

/// Splits a script on top-level semicolons, dropping empty statements.
pub fn split_statements(sql: &str) -> Result<Vec<Statement>, BqmlError> {
    let tokens = tokenize(sql)?;
    let offsets = Offsets::new(sql);
    let mut statements = Vec::new();
    let mut start: Option<(usize, u64)> = None;
    let push = |from: usize, to: usize, line: u64, out: &mut Vec<Statement>| {
        let text = sql[from..to].trim();
        if !text.is_empty() {
            out.push(Statement {
                text: text.to_string(),
                line,
            });
        }
    };
    for token in &tokens {
        match &token.token {
            Token::SemiColon => {
                if let Some((from, line)) = start.take() {
                    push(from, offsets.of(token.span.start), line, &mut statements);
                }
            }
            t if is_trivia(t) => {}
            _ if start.is_none() => {
                start = Some((offsets.of(token.span.start), token.span.start.line))
            }
            _ => {}
        }
    }
    if let Some((from, line)) = start {
        push(from, sql.len(), line, &mut statements);
    }
    Ok(statements)
}

/// Non-trivia tokens with their byte ranges.
struct Cursor<'a> {
    sql: &'a str,
    tokens: Vec<(Token, usize, usize, u64)>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(sql: &'a str) -> Result<Self, BqmlError> {
        let offsets = Offsets::new(sql);
        let tokens = tokenize(sql)?
            .into_iter()
            .filter(|t| !is_trivia(&t.token) && !matches!(t.token, Token::EOF))
            .map(|t| {
                let (start, end) = (offsets.of(t.span.start), offsets.of(t.span.end));
                (t.token, start, end, t.span.start.line)
            })
            .collect();
        Ok(Cursor {
            sql,
            tokens,
            pos: 0,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.0)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.pos + ahead).map(|t| &t.0)
    }

    fn line(&self) -> u64 {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(1, |t| t.3)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.sql.len(), |t| t.1)
    }

    fn end_of_previous(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|p| self.tokens.get(p))
            .map_or(0, |t| t.2)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        token
    }

    fn keyword_is(&self, ahead: usize, keyword: &str) -> bool {
        matches!(self.peek_at(ahead), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let matched = self.keyword_is(0, keyword);
        if matched {
            self.pos += 1;
        }
        matched
    }

    fn expect_keyword(&mut self, keyword: &str, context: &str) -> Result<(), BqmlError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.error(format!("{context}: expected {keyword}")))
        }
    }

    fn expect(&mut self, token: Token, context: &str) -> Result<(), BqmlError> {
        if self.peek() == Some(&token) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("{context}: expected `{token}`")))
        }
    }

    fn error(&self, message: String) -> BqmlError {
        let found = self
            .peek()
            .map_or("end of statement".to_string(), |t| format!("`{t}`"));
        BqmlError::Syntax {
            line: self.line(),
            message: format!("{message}, found {found}"),
        }
    }

    /// `a.b`, `` `a.b` ``, `` `p.a.b` ``, `` `a`.`b` ``: a model name. Unqualified names live in
    /// the `models` dataset; a project part is dropped (the local engine has one project).
    fn model_name(&mut self, context: &str) -> Result<TableRef, BqmlError> {
        let line = self.line();
        let mut parts = Vec::new();
        loop {
            match self.next() {
                Some(Token::Word(w)) => parts.extend(w.value.split('.').map(str::to_string)),
                _ => {
                    self.pos -= 1;
                    return Err(self.error(format!("{context}: expected a model name")));
                }
            }
            if self.peek() == Some(&Token::Period) {
                self.pos += 1;
            } else {
                break;
            }
        }
        let (dataset, name) = match parts.as_slice() {
            [name] => (Dataset::Models.as_str(), name.as_str()),
            [.., dataset, name] => (dataset.as_str(), name.as_str()),
            [] => unreachable!("at least one word was read"),
        };
        dataset
            .parse::<Dataset>()
            .map_err(|e| e.to_string())
            .and_then(|d| TableRef::new(d, name).map_err(|e| e.to_string()))
            .map_err(|message| BqmlError::Syntax {
                line,
                message: format!("{context}: {message}"),
            })
    }

    /// Skips a balanced parenthesized group whose `(` is the current token; returns the text
    /// inside.
    fn parenthesized(&mut self, context: &str) -> Result<&'a str, BqmlError> {
        self.expect(Token::LParen, context)?;
        let inner_start = self.offset();
        let mut depth = 1usize;
        while let Some(token) = self.next() {
            match token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        let inner_end = self.tokens[self.pos - 1].1;
                        return Ok(&self.sql[inner_start..inner_end]);
                    }
                }
                _ => {}
            }
        }
        Err(BqmlError::Syntax {
            line: self.line(),
            message: format!("{context}: unbalanced parentheses"),
        })
    }

    fn literal(&mut self, context: &str) -> Result<OptionValue, BqmlError> {
        let negative = if self.peek() == Some(&Token::Minus) {
            self.pos += 1;
            true
        } else {
            false
        };
        match self.next() {
            Some(Token::Number(n, _)) => n
                .parse::<f64>()
                .map(|v| OptionValue::Number(if negative { -v } else { v }))
                .map_err(|_| self.error(format!("{context}: bad number `{n}`"))),
            Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s)) if !negative => {
                Ok(OptionValue::String(s))
            }
            Some(Token::Word(w)) if !negative && w.quote_style.is_none() => {
                match w.value.to_ascii_uppercase().as_str() {
                    "TRUE" => Ok(OptionValue::Bool(true)),
                    "FALSE" => Ok(OptionValue::Bool(false)),
                    _ => {
                        self.pos -= 1;
                        Err(self.error(format!("{context}: expected a literal value")))
                    }
                }
            }
            Some(Token::LBracket) if !negative => {
                let mut items = Vec::new();
                if self.peek() == Some(&Token::RBracket) {
                    self.pos += 1;
                    return Ok(OptionValue::List(items));
                }
                loop {
                    items.push(self.literal(context)?);
                    match self.next() {
                        Some(Token::Comma) => {}
                        Some(Token::RBracket) => return Ok(OptionValue::List(items)),
                        _ => {
                            self.pos -= 1;
                            return Err(self.error(format!("{context}: expected `,` or `]`")));
                        }
                    }
                }
            }
            _ => {
                self.pos -= 1;
                Err(self.error(format!("{context}: expected a literal value")))
            }
        }
    }
}

pub fn recognize(statement: &str) -> Result<Recognized, BqmlError> {
    let mut cursor = Cursor::new(statement)?;
    if cursor.keyword_is(0, "CREATE") {
        let mut ahead = 1;
        if cursor.keyword_is(1, "OR") && cursor.keyword_is(2, "REPLACE") {
            ahead = 3;
        }
        if cursor.keyword_is(ahead, "MODEL") {
            return create_model(&mut cursor).map(Recognized::CreateModel);
        }
    }
    if cursor.keyword_is(0, "DROP") && cursor.keyword_is(1, "MODEL") {
        cursor.pos = 2;
        let if_exists = cursor.eat_keyword("IF");
        if if_exists {
            cursor.expect_keyword("EXISTS", "DROP MODEL IF")?;
        }
        let model = cursor.model_name("DROP MODEL")?;
        if cursor.peek().is_some() {
            return Err(cursor.error("DROP MODEL: unexpected text after the model name".into()));
        }
        return Ok(Recognized::DropModel { model, if_exists });
    }
    replace_ml_calls(statement).map(|(text, calls)| Recognized::Sql { text, calls })
}

fn create_model(cursor: &mut Cursor<'_>) -> Result<CreateModel, BqmlError> {
    cursor.expect_keyword("CREATE", "CREATE MODEL")?;
    let or_replace = cursor.eat_keyword("OR");
    if or_replace {
        cursor.expect_keyword("REPLACE", "CREATE OR")?;
    }
    cursor.expect_keyword("MODEL", "CREATE MODEL")?;
    let if_not_exists = cursor.eat_keyword("IF");
    if if_not_exists {
        cursor.expect_keyword("NOT", "CREATE MODEL IF")?;
        cursor.expect_keyword("EXISTS", "CREATE MODEL IF NOT")?;
    }
    if or_replace && if_not_exists {
        return Err(BqmlError::Syntax {
            line: cursor.line(),
            message: "CREATE OR REPLACE MODEL cannot also say IF NOT EXISTS".into(),
        });
    }
    let model = cursor.model_name("CREATE MODEL")?;
    if cursor.keyword_is(0, "TRANSFORM") {
        return Err(BqmlError::Unsupported {
            line: cursor.line(),
            construct: "CREATE MODEL … TRANSFORM(…)".into(),
            hint: "compute the transformed columns in the AS query instead".into(),
        });
    }
    let mut options = Vec::new();
    if cursor.eat_keyword("OPTIONS") {
        cursor.expect(Token::LParen, "OPTIONS")?;
        if cursor.peek() != Some(&Token::RParen) {
            loop {
                let name = match cursor.next() {
                    Some(Token::Word(w)) => w.value.to_ascii_lowercase(),
                    _ => {
                        cursor.pos -= 1;
                        return Err(cursor.error("OPTIONS: expected an option name".into()));
                    }
                };
                cursor.expect(Token::Eq, &format!("OPTIONS({name}"))?;
                let value = cursor.literal(&format!("OPTIONS({name} = …)"))?;
                options.push((name, value));
                if cursor.peek() == Some(&Token::Comma) {
                    cursor.pos += 1;
                } else {
                    break;
                }
            }
        }
        cursor.expect(Token::RParen, "OPTIONS")?;
    }
    cursor.expect_keyword("AS", "CREATE MODEL … OPTIONS(…)")?;
    let query = cursor.sql[cursor.offset()..].trim().to_string();
    let query = strip_outer_parens(&query).to_string();
    if query.is_empty() {
        return Err(cursor.error("CREATE MODEL … AS: expected the training query".into()));
    }
    Ok(CreateModel {
        model,
        or_replace,
        if_not_exists,
        options,
        query,
    })
}

/// `AS (SELECT …)` and `AS SELECT …` mean the same.
fn strip_outer_parens(query: &str) -> &str {
    if !(query.starts_with('(') && query.ends_with(')')) {
        return query;
    }
    let Ok(mut cursor) = Cursor::new(query) else {
        return query;
    };
    match cursor.parenthesized("query") {
        Ok(inner) if cursor.peek().is_none() => inner.trim(),
        _ => query,
    }
}

/// Cuts every `ML.F(MODEL m, …)` out of `sql`, leaving `__ns_ml_<n>` in its place. Inputs that
/// are queries may hold ML calls themselves: the engine expands those separately, before
/// pasting the input in, so numbering restarts at 0 for each query.
fn replace_ml_calls(sql: &str) -> Result<(String, Vec<MlCall>), BqmlError> {
    let mut cursor = Cursor::new(sql)?;
    let mut out = String::with_capacity(sql.len());
    let mut copied_to = 0;
    let mut calls = Vec::new();
    while cursor.peek().is_some() {
        let is_ml = cursor.keyword_is(0, "ML")
            && cursor.peek_at(1) == Some(&Token::Period)
            && matches!(cursor.peek_at(2), Some(Token::Word(_)))
            && cursor.peek_at(3) == Some(&Token::LParen);
        if !is_ml {
            cursor.pos += 1;
            continue;
        }
        let start = cursor.offset();
        let line = cursor.line();
        cursor.pos += 2;
        let Some(Token::Word(name)) = cursor.next() else {
            unreachable!("checked above")
        };
        let function = MlFunction::parse(&name.value).ok_or_else(|| BqmlError::Unsupported {
            line,
            construct: format!("ML.{}", name.value.to_ascii_uppercase()),
            hint: "the local engine runs ML.DETECT_ANOMALIES, ML.PREDICT, ML.CENTROIDS, ML.EVALUATE, ML.TRAINING_INFO and ML.FEATURE_INFO".into(),
        })?;
        let args = cursor.parenthesized(function.sql_name())?;
        let end = cursor.end_of_previous();
        let placeholder = format!("{PLACEHOLDER_PREFIX}{}", calls.len());
        let (model, settings, input) = ml_arguments(args, function, line)?;
        out.push_str(&sql[copied_to..start]);
        out.push_str(&placeholder);
        copied_to = end;
        calls.push(MlCall {
            placeholder,
            function,
            model,
            settings,
            input,
            line,
        });
    }
    out.push_str(&sql[copied_to..]);
    Ok((out, calls))
}

type MlArguments = (TableRef, Vec<(String, OptionValue)>, Option<MlInput>);

fn ml_arguments(args: &str, function: MlFunction, line: u64) -> Result<MlArguments, BqmlError> {
    let context = function.sql_name();
    let mut cursor = Cursor::new(args)?;
    let at_line = |e: BqmlError| match e {
        BqmlError::Syntax { message, .. } => BqmlError::Syntax { line, message },
        other => other,
    };
    cursor.expect_keyword("MODEL", context).map_err(at_line)?;
    let model = cursor.model_name(context).map_err(at_line)?;
    let mut settings = Vec::new();
    let mut input = None;
    while cursor.peek() == Some(&Token::Comma) {
        cursor.pos += 1;
        if cursor.eat_keyword("STRUCT") {
            let inner = cursor.parenthesized(context).map_err(at_line)?;
            settings = struct_settings(inner, context).map_err(at_line)?;
        } else if cursor.eat_keyword("TABLE") {
            let start = cursor.offset();
            cursor.model_name(context).map_err(at_line)?;
            let table = cursor.sql[start..cursor.end_of_previous()].to_string();
            input = Some(MlInput::Table(table));
        } else if cursor.peek() == Some(&Token::LParen) {
            let query = cursor.parenthesized(context).map_err(at_line)?;
            input = Some(MlInput::Query(query.trim().to_string()));
        } else {
            return Err(at_line(cursor.error(format!(
                "{context}: expected STRUCT(…), TABLE name or (query)"
            ))));
        }
    }
    if cursor.peek().is_some() {
        return Err(at_line(
            cursor.error(format!("{context}: unexpected argument")),
        ));
    }
    Ok((model, settings, input))
}

/// `STRUCT(0.01 AS contamination, TRUE AS standardize)` → [(contamination, 0.01), …].
fn struct_settings(inner: &str, context: &str) -> Result<Vec<(String, OptionValue)>, BqmlError> {
    let mut cursor = Cursor::new(inner)?;
    let mut settings = Vec::new();
    while cursor.peek().is_some() {
        let value = cursor.literal(&format!("{context} STRUCT field"))?;
        cursor.expect_keyword("AS", &format!("{context} STRUCT field"))?;
        let name = match cursor.next() {
            Some(Token::Word(w)) => w.value.to_ascii_lowercase(),
            _ => {
                cursor.pos -= 1;
                return Err(cursor.error(format!("{context} STRUCT: expected a field name")));
            }
        };
        settings.push((name, value));
        if cursor.peek() == Some(&Token::Comma) {
            cursor.pos += 1;
        }
    }
    Ok(settings)
}

/// `MlInput::Query` text may itself contain ML calls; the engine recognizes it again.
pub fn recognize_query(query: &str) -> Result<(String, Vec<MlCall>), BqmlError> {
    replace_ml_calls(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_model_with_options_and_parenthesized_query() {
        let sql = "CREATE OR REPLACE MODEL `models.netlog_kmeans`\nOPTIONS(model_type='kmeans', num_clusters=4, standardize_features=TRUE, kmeans_init_method = 'KMEANS++')\nAS (SELECT a, b FROM features.w)";
        let Recognized::CreateModel(m) = recognize(sql).unwrap() else {
            panic!()
        };
        assert_eq!(m.model.to_string(), "models.netlog_kmeans");
        assert!(m.or_replace && !m.if_not_exists);
        assert_eq!(
            m.options[0],
            ("model_type".into(), OptionValue::String("kmeans".into()))
        );
        assert_eq!(
            m.options[1],
            ("num_clusters".into(), OptionValue::Number(4.0))
        );
        assert_eq!(
            m.options[2],
            ("standardize_features".into(), OptionValue::Bool(true))
        );
        assert_eq!(m.query, "SELECT a, b FROM features.w");
    }

    #[test]
    fn ml_calls_are_replaced_by_placeholders_wherever_they_appear() {
        let sql = "WITH s AS (SELECT * FROM ML.DETECT_ANOMALIES(MODEL models.m, STRUCT(0.02 AS contamination), (SELECT x, ';' AS y FROM features.w)))\nSELECT * FROM s JOIN ml.predict(MODEL `models.m`, TABLE features.w) p USING (x)";
        let Recognized::Sql { text, calls } = recognize(sql).unwrap() else {
            panic!()
        };
        assert_eq!(
            text,
            "WITH s AS (SELECT * FROM __ns_ml_0)\nSELECT * FROM s JOIN __ns_ml_1 p USING (x)"
        );
        assert_eq!(calls[0].function, MlFunction::DetectAnomalies);
        assert_eq!(
            calls[0].settings,
            [("contamination".into(), OptionValue::Number(0.02))]
        );
        assert_eq!(
            calls[0].input,
            Some(MlInput::Query("SELECT x, ';' AS y FROM features.w".into()))
        );
        assert_eq!(calls[1].function, MlFunction::Predict);
        assert_eq!(calls[1].input, Some(MlInput::Table("features.w".into())));
        assert_eq!(calls[1].line, 2);
    }

    #[test]
    fn ml_in_strings_and_comments_is_left_alone() {
        let sql = "SELECT 'ML.PREDICT(MODEL m)' -- ML.PREDICT(MODEL m)\nFROM t";
        assert_eq!(
            recognize(sql).unwrap(),
            Recognized::Sql {
                text: sql.into(),
                calls: vec![]
            }
        );
    }

    #[test]
    fn scripts_split_on_top_level_semicolons_only() {
        let parts = split_statements("SELECT ';';\n\n-- c;\nSELECT 2 ;;").unwrap();
        let texts: Vec<_> = parts.iter().map(|s| (s.text.as_str(), s.line)).collect();
        assert_eq!(texts, [("SELECT ';'", 1), ("SELECT 2", 4)]);
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let err = recognize("SELECT * FROM ML.GENERATE_TEXT(MODEL m, TABLE t)")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ML.GENERATE_TEXT"), "{err}");
        let err = recognize("CREATE MODEL m TRANSFORM(x) OPTIONS(model_type='kmeans') AS SELECT 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("TRANSFORM"), "{err}");
    }

    #[test]
    fn drop_model_recognized() {
        assert_eq!(
            recognize("DROP MODEL IF EXISTS models.m").unwrap(),
            Recognized::DropModel {
                model: "models.m".parse().unwrap(),
                if_exists: true
            }
        );
    }
}
