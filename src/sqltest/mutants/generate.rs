//! The mutants of one SQL template: small, typed changes to the SQL a broken step would hold
//! (an aggregate swapped, a comparison flipped, a condition dropped…). The template is read as
//! tokens, so string literals, comments and Tera tags (`{{ }}`, `{% %}`, `{# #}`) are never
//! changed inside: a mutation moves or removes a whole `{{ }}` at most, never a `{% %}`.

use std::fmt;
use std::ops::Range;

use crate::project::scan::{find_outside_strings, line_of};

/// What a mutant changes. The set is small on purpose: each is a mistake a step can ship with
/// and a fixture can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MutationOperator {
    /// MIN ↔ MAX; SUM and AVG → MAX.
    AggregateSwap,
    /// `AGG(DISTINCT x)` → `AGG(x)`, e.g. COUNT(DISTINCT x) → COUNT(x).
    DropDistinct,
    /// `<` ↔ `<=`, `>` ↔ `>=`, `=` ↔ `<>` (`!=` → `=`).
    ComparisonFlip,
    /// AND ↔ OR (never the AND of a BETWEEN).
    LogicSwap,
    /// `+` ↔ `-`, `*` ↔ `/`.
    ArithmeticSwap,
    /// An integer n → n + 1; a decimal x → 2x (0 → 1).
    NumericLiteral,
    /// One conjunct of a WHERE, ON or HAVING condition → TRUE.
    DropCondition,
    /// LEAST ↔ GREATEST.
    ExtremumSwap,
    /// The last argument of COALESCE → NULL.
    CoalesceDefault,
    /// IF(c, a, b) → IF(c, b, a).
    IfBranchSwap,
}

impl fmt::Display for MutationOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MutationOperator::AggregateSwap => "aggregate swap",
            MutationOperator::DropDistinct => "drop DISTINCT",
            MutationOperator::ComparisonFlip => "comparison flip",
            MutationOperator::LogicSwap => "AND/OR swap",
            MutationOperator::ArithmeticSwap => "arithmetic swap",
            MutationOperator::NumericLiteral => "numeric literal",
            MutationOperator::DropCondition => "drop condition",
            MutationOperator::ExtremumSwap => "LEAST/GREATEST swap",
            MutationOperator::CoalesceDefault => "COALESCE default",
            MutationOperator::IfBranchSwap => "IF branch swap",
        })
    }
}

/// One change to a template: `span` of the source becomes `mutated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutant {
    pub operator: MutationOperator,
    /// 1-based line of the span's start in the template file.
    pub line: usize,
    pub span: Range<usize>,
    pub original: String,
    pub mutated: String,
}

impl Mutant {
    fn new(operator: MutationOperator, source: &str, span: Range<usize>, mutated: String) -> Self {
        Mutant {
            operator,
            line: line_of(source, span.start),
            original: source[span.clone()].to_string(),
            span,
            mutated,
        }
    }

    /// The template with this mutant's change.
    pub fn apply(&self, source: &str) -> String {
        format!(
            "{}{}{}",
            &source[..self.span.start],
            self.mutated,
            &source[self.span.end..]
        )
    }
}

/// Every mutant of `source`, in source order.
pub fn mutants_of(source: &str) -> Vec<Mutant> {
    let tokens = Tokens::new(source);
    let mut out = Vec::new();
    for i in 0..tokens.list.len() {
        tokens.aggregate_swap(i, &mut out);
        tokens.drop_distinct(i, &mut out);
        tokens.comparison_flip(i, &mut out);
        tokens.logic_swap(i, &mut out);
        tokens.arithmetic_swap(i, &mut out);
        tokens.numeric_literal(i, &mut out);
        tokens.drop_condition(i, &mut out);
        tokens.extremum_swap(i, &mut out);
        tokens.coalesce_default(i, &mut out);
        tokens.if_branch_swap(i, &mut out);
    }
    out.sort_by_key(|m| (m.span.start, m.operator, m.span.end));
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Number,
    Symbol,
    /// A string literal: part of a condition or argument a mutant drops or moves whole, never
    /// changed itself.
    Text,
    /// `{{ … }}`: renders to a value, so it stands where an operand would.
    TeraExpression,
    /// `{% … %}`: control flow; no mutation spans one.
    TeraStatement,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
    /// Parentheses and brackets around the token (for `(` and `)`, those outside the pair).
    depth: usize,
}

impl Token<'_> {
    fn end(&self) -> usize {
        self.start + self.text.len()
    }

    fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(word)
    }

    fn is_symbol(&self, symbol: &str) -> bool {
        self.kind == Kind::Symbol && self.text == symbol
    }

    /// Whether a binary operator may follow: the token ends a value.
    fn ends_operand(&self) -> bool {
        match self.kind {
            Kind::Number | Kind::Text | Kind::TeraExpression => true,
            Kind::Symbol => matches!(self.text, ")" | "]"),
            Kind::Word => !KEYWORDS.iter().any(|k| self.is_word(k)),
            Kind::TeraStatement => false,
        }
    }
}

/// Words after which a value starts rather than ends (so `SELECT *` is not a product).
const KEYWORDS: &[&str] = &[
    "SELECT",
    "DISTINCT",
    "ALL",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "ON",
    "AS",
    "BY",
    "IN",
    "IS",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "INTERVAL",
    "EXISTS",
    "HAVING",
    "JOIN",
    "UNION",
    "WITH",
    "OVER",
    "PARTITION",
    "ORDER",
    "GROUP",
    "BETWEEN",
    "LIKE",
    "LIMIT",
    "USING",
    "EXCEPT",
    "REPLACE",
    "RETURN",
    "SET",
    "VALUES",
    "QUALIFY",
];

/// Words that end a WHERE, ON or HAVING condition at its own nesting level.
const CLAUSE_ENDS: &[&str] = &[
    "GROUP",
    "ORDER",
    "HAVING",
    "WINDOW",
    "QUALIFY",
    "LIMIT",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "CROSS",
    "FULL",
    "WHERE",
    "SELECT",
    "FROM",
];

struct Tokens<'a> {
    source: &'a str,
    list: Vec<Token<'a>>,
    /// For each token, the `(` of the call or group it is in.
    enclosing: Vec<Option<usize>>,
}

impl<'a> Tokens<'a> {
    fn new(source: &'a str) -> Self {
        let list = tokenize(source);
        let mut enclosing = Vec::with_capacity(list.len());
        let mut open: Vec<usize> = Vec::new();
        for (i, token) in list.iter().enumerate() {
            if token.is_symbol(")") || token.is_symbol("]") {
                open.pop();
            }
            enclosing.push(open.last().copied());
            if token.is_symbol("(") || token.is_symbol("[") {
                open.push(i);
            }
        }
        Tokens {
            source,
            list,
            enclosing,
        }
    }

    fn get(&self, i: usize) -> Option<&Token<'a>> {
        self.list.get(i)
    }

    fn span(&self, tokens: Range<usize>) -> Range<usize> {
        self.list[tokens.start].start..self.list[tokens.end - 1].end()
    }

    fn text(&self, tokens: Range<usize>) -> &'a str {
        &self.source[self.span(tokens)]
    }

    fn has_statement(&self, tokens: Range<usize>) -> bool {
        self.list[tokens]
            .iter()
            .any(|t| t.kind == Kind::TeraStatement)
    }

    fn push(
        &self,
        out: &mut Vec<Mutant>,
        operator: MutationOperator,
        span: Range<usize>,
        mutated: impl Into<String>,
    ) {
        out.push(Mutant::new(operator, self.source, span, mutated.into()));
    }

    /// The function named by token `i` when a `(` follows it (not a qualified name's last part).
    fn function_name(&self, i: usize) -> Option<&'a str> {
        let token = self.list[i];
        let called = token.kind == Kind::Word && self.get(i + 1)?.is_symbol("(");
        let qualified = i > 0 && self.list[i - 1].is_symbol(".");
        (called && !qualified).then_some(token.text)
    }

    /// The arguments (token ranges) of the call whose name is token `i`.
    fn call_arguments(&self, i: usize) -> Option<Vec<Range<usize>>> {
        let open = i + 1;
        let inner = self.list[open].depth + 1;
        let mut args = Vec::new();
        let mut start = open + 1;
        for j in open + 1..self.list.len() {
            let token = &self.list[j];
            let closes = token.is_symbol(")") && token.depth == inner - 1;
            if closes || (token.is_symbol(",") && token.depth == inner) {
                if start == j {
                    return None;
                }
                args.push(start..j);
                start = j + 1;
                if closes {
                    return Some(args);
                }
            }
        }
        None
    }

    fn aggregate_swap(&self, i: usize, out: &mut Vec<Mutant>) {
        let Some(name) = self.function_name(i) else {
            return;
        };
        let swapped = match name.to_ascii_uppercase().as_str() {
            "MIN" | "SUM" | "AVG" => "MAX",
            "MAX" => "MIN",
            _ => return,
        };
        let span = self.span(i..i + 1);
        self.push(
            out,
            MutationOperator::AggregateSwap,
            span,
            same_case(name, swapped),
        );
    }

    fn drop_distinct(&self, i: usize, out: &mut Vec<Mutant>) {
        if self.function_name(i).is_none()
            || !self.get(i + 2).is_some_and(|t| t.is_word("DISTINCT"))
        {
            return;
        }
        let mutated = self.text(i..i + 2).to_string();
        self.push(
            out,
            MutationOperator::DropDistinct,
            self.span(i..i + 3),
            mutated,
        );
    }

    fn comparison_flip(&self, i: usize, out: &mut Vec<Mutant>) {
        let token = self.list[i];
        if token.kind != Kind::Symbol {
            return;
        }
        let flipped = match token.text {
            "<" => "<=",
            "<=" => "<",
            ">" => ">=",
            ">=" => ">",
            "=" if !self.in_options(i) => "<>",
            "<>" | "!=" => "=",
            _ => return,
        };
        self.push(
            out,
            MutationOperator::ComparisonFlip,
            self.span(i..i + 1),
            flipped,
        );
    }

    /// Inside `OPTIONS (…)`, where `=` sets an option rather than compares.
    fn in_options(&self, i: usize) -> bool {
        self.enclosing[i]
            .and_then(|open| open.checked_sub(1))
            .is_some_and(|name| self.list[name].is_word("OPTIONS"))
    }

    fn logic_swap(&self, i: usize, out: &mut Vec<Mutant>) {
        let token = self.list[i];
        let create_or_replace = i > 0 && self.list[i - 1].is_word("CREATE");
        let swapped = if token.is_word("AND") && !self.is_between_and(i) {
            "OR"
        } else if token.is_word("OR") && !create_or_replace {
            "AND"
        } else {
            return;
        };
        self.push(
            out,
            MutationOperator::LogicSwap,
            self.span(i..i + 1),
            same_case(token.text, swapped),
        );
    }

    /// The AND of `x BETWEEN a AND b`: the first AND after a BETWEEN at the same depth.
    fn is_between_and(&self, i: usize) -> bool {
        let depth = self.list[i].depth;
        self.list[..i]
            .iter()
            .rev()
            .filter(|t| t.depth == depth)
            .take_while(|t| !t.is_word("AND") && !t.is_word("OR"))
            .any(|t| t.is_word("BETWEEN"))
    }

    fn arithmetic_swap(&self, i: usize, out: &mut Vec<Mutant>) {
        let token = self.list[i];
        if token.kind != Kind::Symbol {
            return;
        }
        let swapped = match token.text {
            "+" => "-",
            "-" => "+",
            "*" => "/",
            "/" => "*",
            _ => return,
        };
        let binary = i > 0
            && self.list[i - 1].ends_operand()
            && self
                .get(i + 1)
                .is_some_and(|next| !next.is_symbol(")") && !next.is_symbol(","));
        if binary {
            self.push(
                out,
                MutationOperator::ArithmeticSwap,
                self.span(i..i + 1),
                swapped,
            );
        }
    }

    fn numeric_literal(&self, i: usize, out: &mut Vec<Mutant>) {
        let token = self.list[i];
        if token.kind != Kind::Number || self.is_exists_select_list(i) {
            return;
        }
        let changed = if token.text.contains(['.', 'e', 'E']) {
            match token.text.parse::<f64>() {
                Ok(0.0) => "1.0".to_string(),
                Ok(value) => format!("{:?}", value * 2.0),
                Err(_) => return,
            }
        } else {
            match token.text.parse::<i64>() {
                Ok(value) => (value + 1).to_string(),
                Err(_) => return,
            }
        };
        self.push(
            out,
            MutationOperator::NumericLiteral,
            self.span(i..i + 1),
            changed,
        );
    }

    /// `EXISTS (SELECT 1 …)`: the value selected is never read.
    fn is_exists_select_list(&self, i: usize) -> bool {
        i >= 3
            && self.list[i - 1].is_word("SELECT")
            && self.list[i - 2].is_symbol("(")
            && self.list[i - 3].is_word("EXISTS")
    }

    fn drop_condition(&self, i: usize, out: &mut Vec<Mutant>) {
        let keyword = self.list[i];
        if !(keyword.is_word("WHERE") || keyword.is_word("ON") || keyword.is_word("HAVING")) {
            return;
        }
        for conjunct in self.conjuncts(i) {
            if !self.has_statement(conjunct.clone())
                && !self.text(conjunct.clone()).eq_ignore_ascii_case("TRUE")
            {
                self.push(
                    out,
                    MutationOperator::DropCondition,
                    self.span(conjunct),
                    "TRUE",
                );
            }
        }
    }

    /// The conjuncts (token ranges) of the condition after the keyword at `i`: split at its
    /// top-level ANDs and at Tera statements (`{% if %}` parts of a condition are conjuncts
    /// of their own), up to the clause's end.
    fn conjuncts(&self, keyword: usize) -> Vec<Range<usize>> {
        let depth = self.list[keyword].depth;
        let mut conjuncts = Vec::new();
        let mut start = keyword + 1;
        let mut j = keyword + 1;
        while j < self.list.len() {
            let token = &self.list[j];
            let at_level = token.depth == depth;
            let ends = token.depth < depth
                || (at_level
                    && (token.is_symbol(";") || CLAUSE_ENDS.iter().any(|w| token.is_word(w))));
            if ends {
                break;
            }
            let splits = at_level
                && ((token.is_word("AND") && !self.is_between_and(j))
                    || token.kind == Kind::TeraStatement);
            if splits {
                if start < j {
                    conjuncts.push(start..j);
                }
                start = j + 1;
            }
            j += 1;
        }
        if start < j {
            conjuncts.push(start..j);
        }
        conjuncts
    }

    fn extremum_swap(&self, i: usize, out: &mut Vec<Mutant>) {
        let Some(name) = self.function_name(i) else {
            return;
        };
        let swapped = if name.eq_ignore_ascii_case("LEAST") {
            "GREATEST"
        } else if name.eq_ignore_ascii_case("GREATEST") {
            "LEAST"
        } else {
            return;
        };
        self.push(
            out,
            MutationOperator::ExtremumSwap,
            self.span(i..i + 1),
            same_case(name, swapped),
        );
    }

    fn coalesce_default(&self, i: usize, out: &mut Vec<Mutant>) {
        if !self
            .function_name(i)
            .is_some_and(|n| n.eq_ignore_ascii_case("COALESCE"))
        {
            return;
        }
        let Some(args) = self.call_arguments(i) else {
            return;
        };
        let Some(default) = args.last().filter(|_| args.len() >= 2) else {
            return;
        };
        if !self.text(default.clone()).eq_ignore_ascii_case("NULL")
            && !self.has_statement(default.clone())
        {
            self.push(
                out,
                MutationOperator::CoalesceDefault,
                self.span(default.clone()),
                "NULL",
            );
        }
    }

    fn if_branch_swap(&self, i: usize, out: &mut Vec<Mutant>) {
        if !self
            .function_name(i)
            .is_some_and(|n| n.eq_ignore_ascii_case("IF"))
        {
            return;
        }
        let Some(args) = self.call_arguments(i) else {
            return;
        };
        let [_, then, otherwise] = args.as_slice() else {
            return;
        };
        let (then_text, otherwise_text) = (self.text(then.clone()), self.text(otherwise.clone()));
        if then_text == otherwise_text || self.has_statement(then.start..otherwise.end) {
            return;
        }
        let between = &self.source[self.span(then.clone()).end..self.span(otherwise.clone()).start];
        self.push(
            out,
            MutationOperator::IfBranchSwap,
            self.span(then.start..otherwise.end),
            format!("{otherwise_text}{between}{then_text}"),
        );
    }
}

/// `replacement` in lower case when `original` was written in lower case.
fn same_case(original: &str, replacement: &str) -> String {
    if original.chars().any(|c| c.is_ascii_lowercase()) {
        replacement.to_ascii_lowercase()
    } else {
        replacement.to_string()
    }
}

fn tokenize(source: &str) -> Vec<Token<'_>> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &source[i..];
        let skip_to = move |offset: Option<usize>, extra: usize| {
            offset.map_or(bytes.len(), |p| i + p + extra)
        };
        let (kind, end) = match bytes[i] {
            b'{' if rest.starts_with("{#") => {
                i = skip_to(rest.find("#}"), 2);
                continue;
            }
            b'{' if rest.starts_with("{{") || rest.starts_with("{%") => {
                let (kind, close) = if rest.starts_with("{{") {
                    (Kind::TeraExpression, "}}")
                } else {
                    (Kind::TeraStatement, "%}")
                };
                let end = find_outside_strings(source, i + 2, close).map_or(bytes.len(), |e| e + 2);
                (kind, end)
            }
            b'-' if rest.starts_with("--") => {
                i = skip_to(rest.find('\n'), 0);
                continue;
            }
            b'#' => {
                i = skip_to(rest.find('\n'), 0);
                continue;
            }
            b'/' if rest.starts_with("/*") => {
                i = skip_to(rest.find("*/"), 2);
                continue;
            }
            b'\'' | b'"' => (Kind::Text, string_end(source, i)),
            b'`' => (Kind::Word, skip_to(rest[1..].find('`'), 2)),
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            c if c.is_ascii_digit() => (Kind::Number, i + number_length(rest)),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let length = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (Kind::Word, i + length)
            }
            _ => {
                let two = ["<=", ">=", "<>", "!=", "||"]
                    .into_iter()
                    .find(|op| rest.starts_with(op));
                let length =
                    two.map_or_else(|| rest.chars().next().map_or(1, char::len_utf8), str::len);
                (Kind::Symbol, i + length)
            }
        };
        let text = &source[i..end];
        if kind == Kind::Symbol && matches!(text, ")" | "]") {
            depth = depth.saturating_sub(1);
        }
        tokens.push(Token {
            kind,
            text,
            start: i,
            depth,
        });
        if kind == Kind::Symbol && matches!(text, "(" | "[") {
            depth += 1;
        }
        i = end;
    }
    tokens
}

/// The offset just past the string literal that starts at `start` (a quote), with backslash
/// escapes, triple quotes and Tera tags inside.
fn string_end(source: &str, start: usize) -> usize {
    let quote = &source[start..start + 1];
    let triple = quote.repeat(3);
    let (close, mut i) = if source[start..].starts_with(&triple) {
        (triple.as_str(), start + 3)
    } else {
        (quote, start + 1)
    };
    while i < source.len() {
        let rest = &source[i..];
        if rest.starts_with(close) {
            return i + close.len();
        }
        i += if let Some(escaped) = rest.strip_prefix('\\') {
            1 + escaped.chars().next().map_or(0, char::len_utf8)
        } else if rest.starts_with("{{") || rest.starts_with("{%") {
            let tag_close = if rest.starts_with("{{") { "}}" } else { "%}" };
            find_outside_strings(source, i + 2, tag_close).map_or(source.len(), |e| e + 2) - i
        } else {
            rest.chars().next().map_or(1, char::len_utf8)
        };
    }
    source.len()
}

/// `12`, `1.349`, `1.0e-9`.
fn number_length(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let digits = |from: usize| {
        from + bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut end = digits(0);
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = digits(end + 1);
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        if bytes.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
            end = digits(end + 1 + sign);
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mutated texts of the mutants `operator` makes of `source`.
    fn mutated(source: &str, operator: MutationOperator) -> Vec<String> {
        mutants_of(source)
            .into_iter()
            .filter(|m| m.operator == operator)
            .map(|m| m.apply(source))
            .collect()
    }

    #[test]
    fn never_mutates_inside_strings_comments_or_tera_tags() {
        let source = "{{ config(materialized='table', assertions={'row_condition': 'a >= 1 AND b < 2'}) }}\n\
            -- MIN(a) > 1 AND b\n\
            /* MAX(b) + 1 */\n\
            {# COALESCE(a, 0) #}\n\
            {% if x > 1 and y %}\n\
            SELECT 'a < b AND 1 + 2' AS s, \"MIN(c)\" AS t, '{{ \"x > 1\" }}' AS u, {{ var(\"n\") * 2 }} AS v\n\
            {% endif %}";
        let protected: Vec<Range<usize>> = [
            "{{ config(materialized='table', assertions={'row_condition': 'a >= 1 AND b < 2'}) }}",
            "-- MIN(a) > 1 AND b",
            "/* MAX(b) + 1 */",
            "{# COALESCE(a, 0) #}",
            "{% if x > 1 and y %}",
            "'a < b AND 1 + 2'",
            "\"MIN(c)\"",
            "'{{ \"x > 1\" }}'",
            "{{ var(\"n\") * 2 }}",
            "{% endif %}",
        ]
        .iter()
        .map(|part| {
            let start = source.find(part).unwrap();
            start..start + part.len()
        })
        .collect();
        assert!(mutants_of(source).is_empty(), "{:#?}", mutants_of(source));
        let with_sql = format!("{source}\nSELECT MIN(a) + 1 FROM t WHERE a > 1 AND b");
        let found = mutants_of(&with_sql);
        assert_eq!(found.len(), 8, "{found:#?}");
        for mutant in found {
            let inside =
                |offset: usize| protected.iter().any(|p| p.start < offset && offset < p.end);
            assert!(
                !inside(mutant.span.start) && !inside(mutant.span.end),
                "{mutant:?} changes the inside of a string, comment or tag"
            );
        }
    }

    #[test]
    fn aggregates_swap_and_lose_distinct() {
        let source = "SELECT min(a), MAX(b), SUM(c), AVG(d), COUNT(DISTINCT e), t.max(f) FROM t";
        assert_eq!(
            mutated(source, MutationOperator::AggregateSwap),
            [
                "SELECT max(a), MAX(b), SUM(c), AVG(d), COUNT(DISTINCT e), t.max(f) FROM t",
                "SELECT min(a), MIN(b), SUM(c), AVG(d), COUNT(DISTINCT e), t.max(f) FROM t",
                "SELECT min(a), MAX(b), MAX(c), AVG(d), COUNT(DISTINCT e), t.max(f) FROM t",
                "SELECT min(a), MAX(b), SUM(c), MAX(d), COUNT(DISTINCT e), t.max(f) FROM t",
            ]
        );
        assert_eq!(
            mutated(source, MutationOperator::DropDistinct),
            ["SELECT min(a), MAX(b), SUM(c), AVG(d), COUNT( e), t.max(f) FROM t"]
        );
    }

    #[test]
    fn comparisons_flip_except_option_assignments() {
        let source = "CREATE MODEL m OPTIONS (k = 2) AS SELECT a < 1, b >= 2, c = 3, d <> 4 FROM t";
        assert!(
            mutated(
                "CREATE OR REPLACE MODEL m AS SELECT 1",
                MutationOperator::LogicSwap
            )
            .is_empty()
        );
        assert_eq!(
            mutated(source, MutationOperator::ComparisonFlip),
            [
                "CREATE MODEL m OPTIONS (k = 2) AS SELECT a <= 1, b >= 2, c = 3, d <> 4 FROM t",
                "CREATE MODEL m OPTIONS (k = 2) AS SELECT a < 1, b > 2, c = 3, d <> 4 FROM t",
                "CREATE MODEL m OPTIONS (k = 2) AS SELECT a < 1, b >= 2, c <> 3, d <> 4 FROM t",
                "CREATE MODEL m OPTIONS (k = 2) AS SELECT a < 1, b >= 2, c = 3, d = 4 FROM t",
            ]
        );
    }

    #[test]
    fn and_and_or_swap_but_not_the_and_of_between() {
        let source = "SELECT * FROM t WHERE a BETWEEN 0 AND 1 AND b or c";
        assert_eq!(
            mutated(source, MutationOperator::LogicSwap),
            [
                "SELECT * FROM t WHERE a BETWEEN 0 AND 1 OR b or c",
                "SELECT * FROM t WHERE a BETWEEN 0 AND 1 AND b and c",
            ]
        );
    }

    #[test]
    fn arithmetic_swaps_only_binary_operators() {
        let source = "SELECT *, t.*, COUNT(*), a + {{ m }} * 2, (b - 1) / c, -d FROM t";
        assert_eq!(
            mutated(source, MutationOperator::ArithmeticSwap),
            [
                "SELECT *, t.*, COUNT(*), a - {{ m }} * 2, (b - 1) / c, -d FROM t",
                "SELECT *, t.*, COUNT(*), a + {{ m }} / 2, (b - 1) / c, -d FROM t",
                "SELECT *, t.*, COUNT(*), a + {{ m }} * 2, (b + 1) / c, -d FROM t",
                "SELECT *, t.*, COUNT(*), a + {{ m }} * 2, (b - 1) * c, -d FROM t",
            ]
        );
    }

    #[test]
    fn numeric_literals_change_except_an_exists_select_list() {
        let source = "SELECT 0, 4, 0.0, 1.349, 1.0e-9 FROM t WHERE EXISTS (SELECT 1 FROM u)";
        assert_eq!(
            mutated(source, MutationOperator::NumericLiteral),
            [
                "SELECT 1, 4, 0.0, 1.349, 1.0e-9 FROM t WHERE EXISTS (SELECT 1 FROM u)",
                "SELECT 0, 5, 0.0, 1.349, 1.0e-9 FROM t WHERE EXISTS (SELECT 1 FROM u)",
                "SELECT 0, 4, 1.0, 1.349, 1.0e-9 FROM t WHERE EXISTS (SELECT 1 FROM u)",
                "SELECT 0, 4, 0.0, 2.698, 1.0e-9 FROM t WHERE EXISTS (SELECT 1 FROM u)",
                "SELECT 0, 4, 0.0, 1.349, 2e-9 FROM t WHERE EXISTS (SELECT 1 FROM u)",
            ]
        );
    }

    #[test]
    fn each_conjunct_of_where_on_and_having_drops_in_turn() {
        let source = "SELECT a FROM t JOIN u ON u.id = t.id AND u.k BETWEEN 1 AND 2 AND u.s = 'x'\n\
            WHERE (a OR b) AND c IN (SELECT c FROM v WHERE d) {% if x %} AND e {% endif %}\n\
            GROUP BY a HAVING COUNT(*) > 1";
        assert_eq!(
            mutants_of(source)
                .into_iter()
                .filter(|m| m.operator == MutationOperator::DropCondition)
                .map(|m| (m.line, m.original))
                .collect::<Vec<_>>(),
            [
                (1, "u.id = t.id".to_string()),
                (1, "u.k BETWEEN 1 AND 2".to_string()),
                (1, "u.s = 'x'".to_string()),
                (2, "(a OR b)".to_string()),
                (2, "c IN (SELECT c FROM v WHERE d)".to_string()),
                (2, "d".to_string()),
                (2, "e".to_string()),
                (3, "COUNT(*) > 1".to_string()),
            ]
        );
        assert!(
            mutated(source, MutationOperator::DropCondition)
                .contains(&source.replace("u.k BETWEEN 1 AND 2", "TRUE"))
        );
    }

    #[test]
    fn least_greatest_coalesce_and_if_change_as_named() {
        let source = "SELECT LEAST(1.0, a), greatest(b, c), COALESCE(d, e, 0), COALESCE(f, NULL), COALESCE(t, TIMESTAMP '1970-01-01'), IF(g > 0, h, {{ m }}) FROM t";
        assert_eq!(
            mutated(source, MutationOperator::ExtremumSwap),
            [
                source.replace("LEAST(", "GREATEST("),
                source.replace("greatest(", "least("),
            ]
        );
        assert_eq!(
            mutated(source, MutationOperator::CoalesceDefault),
            [
                source.replace("COALESCE(d, e, 0)", "COALESCE(d, e, NULL)"),
                source.replace("TIMESTAMP '1970-01-01'", "NULL"),
            ]
        );
        assert_eq!(
            mutated(source, MutationOperator::IfBranchSwap),
            [source.replace("IF(g > 0, h, {{ m }})", "IF(g > 0, {{ m }}, h)")]
        );
    }
}
