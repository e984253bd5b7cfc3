//! Static scan of a SQL template for netsentinel's helper calls (`ref("x")`, `source("raw", "t")`,
//! `config(materialized="table")`…): their arguments and lines feed the DAG and step config
//! before anything renders, and positional calls are rewritten to the keyword form Tera 1.x
//! functions take.

use std::fmt;

use netsentinel_core::Identifier;

/// Helpers and the keyword names of their positional parameters.
const HELPERS: &[(&str, &[&str])] = &[
    ("ref", &["name"]),
    ("source", &["dataset", "table"]),
    ("var", &["name"]),
    ("model", &["name"]),
    ("model_version", &["name"]),
    ("config", &[]),
    ("is_incremental", &[]),
    ("this_max", &["column"]),
    ("ingested_since", &["column"]),
    ("earliest_new_event", &["column"]),
];

/// A literal argument of a helper call, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(f64),
    Bool(bool),
    List(Vec<Literal>),
    /// `{'key': value, …}`: only `config()` takes these (its arguments never reach Tera).
    Map(Vec<(String, Literal)>),
    /// Anything else (a Tera variable or expression): fine for `var()`, not for names.
    Expression(String),
}

impl Literal {
    /// Column names given as one quoted name or a list of them.
    pub fn identifiers(&self) -> Result<Vec<Identifier>, String> {
        let items = match self {
            Literal::List(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        items
            .iter()
            .map(|item| match item {
                Literal::String(s) => Identifier::new(s).map_err(|e| e.to_string()),
                other => Err(format!("expected a column name in quotes, got {other}")),
            })
            .collect()
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write!(f, "{s:?}"),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::List(items) => {
                let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                write!(f, "[{}]", parts.join(", "))
            }
            Literal::Map(entries) => {
                let parts: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
            Literal::Expression(e) => f.write_str(e),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HelperCall {
    pub helper: &'static str,
    /// Arguments by keyword; positional ones are named from the helper's parameter list.
    pub args: Vec<(String, Literal)>,
    pub line: usize,
}

impl HelperCall {
    pub fn arg(&self, name: &str) -> Option<&Literal> {
        self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A string-literal argument, or `None` when absent or not a literal.
    pub fn string_arg(&self, name: &str) -> Option<&str> {
        match self.arg(name) {
            Some(Literal::String(s)) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScanError {
    pub line: usize,
    pub message: String,
}

/// The helper calls of a template and its text with positional calls made keyword calls.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedTemplate {
    pub calls: Vec<HelperCall>,
    pub tera_source: String,
}

pub fn scan(source: &str) -> Result<ScannedTemplate, ScanError> {
    let mut calls = Vec::new();
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest_start = 0;
    for (start, end) in tag_regions(source) {
        let region = &source[start..end];
        let mut lexer = Lexer::new(region);
        while let Some(token) = lexer.next_token() {
            let Token::Ident(name, ident_end) = token else {
                continue;
            };
            let Some(&(helper, params)) = HELPERS.iter().find(|(h, _)| *h == name) else {
                continue;
            };
            let after_ident = &region[ident_end..];
            let Some(open) = after_ident.find(|c: char| !c.is_whitespace()) else {
                continue;
            };
            if !after_ident[open..].starts_with('(') {
                continue;
            }
            let args_start = ident_end + open + 1;
            let line = line_of(source, start + ident_end);
            let (raw_args, args_end) = split_args(region, args_start).ok_or_else(|| ScanError {
                line,
                message: format!("unclosed `{helper}(`"),
            })?;
            let mut args = Vec::new();
            let mut keyword_text = Vec::new();
            for (index, raw) in raw_args.iter().enumerate() {
                let (key, value_text) = match split_keyword(raw) {
                    Some((k, v)) => (k.to_string(), v),
                    None => {
                        let key = params.get(index).ok_or_else(|| ScanError {
                            line,
                            message: format!(
                                "`{helper}()` takes {} positional argument(s), got `{}`",
                                params.len(),
                                raw.trim()
                            ),
                        })?;
                        (key.to_string(), raw.trim())
                    }
                };
                keyword_text.push(format!("{key}={value_text}"));
                args.push((key, parse_literal(value_text)));
            }
            out.push_str(&source[rest_start..start + args_start]);
            if helper == "config" {
                // config() renders to nothing and is read only here, so its arguments (maps
                // included, which Tera 1.x cannot parse) stay out of Tera; the newlines stay so
                // Tera's line numbers still match the file.
                let newlines = region[args_start..args_end].matches('\n').count();
                out.push_str(&"\n".repeat(newlines));
            } else {
                out.push_str(&keyword_text.join(", "));
            }
            rest_start = start + args_end;
            calls.push(HelperCall { helper, args, line });
            lexer.skip_to(args_end);
        }
    }
    out.push_str(&source[rest_start..]);
    Ok(ScannedTemplate {
        calls,
        tera_source: out,
    })
}

/// Byte ranges of the insides of `{{ … }}` and `{% … %}` tags (comments excluded).
fn tag_regions(source: &str) -> Vec<(usize, usize)> {
    let bytes = source.as_bytes();
    let mut regions = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let close = match (bytes[i], bytes[i + 1]) {
            (b'{', b'{') => "}}",
            (b'{', b'%') => "%}",
            (b'{', b'#') => {
                i = source[i..].find("#}").map_or(bytes.len(), |p| i + p + 2);
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + 2;
        let end = find_outside_strings(source, start, close).unwrap_or(bytes.len());
        regions.push((start, end));
        i = end + 2;
    }
    regions
}

/// The tag's end: `needle` outside strings and outside `{ … }` map literals, whose closing
/// braces would otherwise end a `{{ … }}` tag early.
pub(crate) fn find_outside_strings(source: &str, from: usize, needle: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut braces = 0usize;
    for (offset, c) in source[from..].char_indices() {
        let at = from + offset;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None if braces == 0 && source[at..].starts_with(needle) => return Some(at),
            None if c == '{' => braces += 1,
            None if c == '}' => braces = braces.saturating_sub(1),
            None => {}
        }
    }
    None
}

/// Splits the arguments of a call whose `(` precedes `from`; returns them and the offset just
/// past the closing `)`.
fn split_args(region: &str, from: usize) -> Option<(Vec<&str>, usize)> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut args = Vec::new();
    let mut arg_start = from;
    for (offset, c) in region[from..].char_indices() {
        let at = from + offset;
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            (None, ')') if depth > 0 => depth -= 1,
            (None, ')') => {
                let last = &region[arg_start..at];
                if !last.trim().is_empty() {
                    args.push(last);
                }
                return Some((args, at));
            }
            (None, ',') if depth == 0 => {
                args.push(&region[arg_start..at]);
                arg_start = at + 1;
            }
            _ => {}
        }
    }
    None
}

/// `name = value` → (name, value) when the argument is a keyword argument.
fn split_keyword(raw: &str) -> Option<(&str, &str)> {
    let trimmed = raw.trim();
    let eq = trimmed.find('=')?;
    let key = trimmed[..eq].trim();
    let is_ident = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !trimmed[eq + 1..].starts_with('=');
    is_ident.then(|| (key, trimmed[eq + 1..].trim()))
}

fn parse_literal(text: &str) -> Literal {
    let text = text.trim();
    let quoted = |q: char| text.len() >= 2 && text.starts_with(q) && text.ends_with(q);
    if quoted('"') || quoted('\'') || quoted('`') {
        return Literal::String(text[1..text.len() - 1].to_string());
    }
    if text == "true" || text == "false" {
        return Literal::Bool(text == "true");
    }
    if let Ok(n) = text.parse::<f64>() {
        return Literal::Number(n);
    }
    if text.starts_with('[')
        && text.ends_with(']')
        && let Some((items, _)) = split_args(&format!("{})", &text[1..text.len() - 1]), 0)
    {
        return Literal::List(items.into_iter().map(parse_literal).collect());
    }
    if text.starts_with('{')
        && text.ends_with('}')
        && let Some(entries) = parse_map(&text[1..text.len() - 1])
    {
        return Literal::Map(entries);
    }
    Literal::Expression(text.to_string())
}

/// The inside of `{'key': value, …}`; `None` unless every entry has a quoted key.
fn parse_map(inside: &str) -> Option<Vec<(String, Literal)>> {
    let text = format!("{inside})");
    let (items, _) = split_args(&text, 0)?;
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let item = item.trim();
            let quote = item.chars().next().filter(|c| matches!(c, '"' | '\''))?;
            let close = item[1..].find(quote)? + 1;
            let value = item[close + 1..].trim_start().strip_prefix(':')?;
            Some((item[1..close].to_string(), parse_literal(value)))
        })
        .collect()
}

pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    source[..offset].bytes().filter(|&b| b == b'\n').count() + 1
}

enum Token<'a> {
    Ident(&'a str, usize),
    Other,
}

/// Just enough of Tera's expression lexer to find identifiers outside string literals.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0 }
    }

    fn skip_to(&mut self, pos: usize) {
        self.pos = self.pos.max(pos);
    }

    fn next_token(&mut self) -> Option<Token<'a>> {
        let rest = &self.text[self.pos..];
        let c = rest.chars().next()?;
        if c == '"' || c == '\'' || c == '`' {
            let end = rest[1..].find(c).map_or(rest.len(), |p| p + 2);
            self.pos += end;
            return Some(Token::Other);
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let start = self.pos;
            self.pos += len;
            // `foo.ref(` is an attribute, not our helper.
            let preceded_by_dot = self.text[..start].ends_with('.');
            return Some(if preceded_by_dot {
                Token::Other
            } else {
                Token::Ident(&self.text[start..start + len], start + len)
            });
        }
        self.pos += c.len_utf8();
        Some(Token::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_calls_become_keyword_calls_and_are_recorded_with_lines() {
        let src = "{{ config(materialized='incremental', unique_key=['a', 'b']) }}\nSELECT *\nFROM {{ ref(\"netlog_windows\") }} JOIN {{ source('raw', 'netlog_events') }}\nWHERE x > {{ var('window_seconds') }}";
        let scanned = scan(src).unwrap();
        assert_eq!(
            scanned.tera_source,
            "{{ config() }}\nSELECT *\nFROM {{ ref(name=\"netlog_windows\") }} JOIN {{ source(dataset='raw', table='netlog_events') }}\nWHERE x > {{ var(name='window_seconds') }}"
        );
        let summary: Vec<_> = scanned.calls.iter().map(|c| (c.helper, c.line)).collect();
        assert_eq!(
            summary,
            [("config", 1), ("ref", 3), ("source", 3), ("var", 4)]
        );
        assert_eq!(scanned.calls[1].string_arg("name"), Some("netlog_windows"));
        assert_eq!(
            scanned.calls[0].arg("unique_key"),
            Some(&Literal::List(vec![
                Literal::String("a".into()),
                Literal::String("b".into())
            ]))
        );
    }

    #[test]
    fn sql_outside_tags_and_strings_inside_tags_are_left_alone() {
        let src = "SELECT 'ref(\"x\")' AS s -- ref(\"y\")\n{# ref('z') #}{{ \"ref('w')\" }}";
        let scanned = scan(src).unwrap();
        assert!(scanned.calls.is_empty());
        assert_eq!(scanned.tera_source, src);
    }

    #[test]
    fn calls_inside_statements_are_found() {
        let src =
            "{% if is_incremental() %}\nWHERE t > (SELECT MAX(t) FROM {{ this }})\n{% endif %}";
        let scanned = scan(src).unwrap();
        assert_eq!(scanned.calls.len(), 1);
        assert_eq!(scanned.calls[0].helper, "is_incremental");
        assert_eq!(scanned.tera_source, src);
    }

    #[test]
    fn config_takes_maps_spanning_lines_and_keeps_them_from_tera() {
        let src = "{{ config(assertions={'not_null': ['a'],\n 'accepted_values': {'p': ['tcp', 'udp']}}) }}\nSELECT {{ var('x') }}";
        let scanned = scan(src).unwrap();
        assert_eq!(
            scanned.tera_source,
            "{{ config(\n) }}\nSELECT {{ var(name='x') }}"
        );
        assert_eq!(scanned.calls[1].line, 3);
        let Some(Literal::Map(entries)) = scanned.calls[0].arg("assertions") else {
            panic!("{:?}", scanned.calls[0]);
        };
        assert_eq!(entries[0].0, "not_null");
        assert_eq!(
            entries[1].1,
            Literal::Map(vec![(
                "p".into(),
                Literal::List(vec![
                    Literal::String("tcp".into()),
                    Literal::String("udp".into())
                ])
            )])
        );
    }

    #[test]
    fn too_many_positional_arguments_is_an_error_with_line() {
        let err = scan("\n\n{{ ref('a', 'b') }}").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("ref()"), "{}", err.message);
    }
}
