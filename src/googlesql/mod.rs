//! TEMPORARY pass-through until the translation layer lands.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TranslateError {
    pub line: u64,
    pub message: String,
}
pub const DUCKDB_PRELUDE: &str = "";
pub fn translate(sql: &str) -> Result<String, TranslateError> {
    Ok(sql.to_string())
}
