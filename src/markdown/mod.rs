//! Placeholder until the converter lands (identity conversion).
#![allow(missing_docs, unreachable_pub)]
pub struct PageContext {
    pub space_key: String,
    pub depth: usize,
    pub encode: fn(&str) -> String,
    pub decode: fn(&str) -> Option<String>,
}
#[derive(Debug, thiserror::Error)]
pub enum MarkdownError {
    #[error("bad: {0}")]
    Bad(String),
}
pub fn to_markdown(storage: &str, _ctx: &PageContext) -> String {
    storage.to_string()
}
pub fn to_storage(markdown: &str, _ctx: &PageContext) -> Result<String, MarkdownError> {
    Ok(markdown.to_string())
}
pub fn normalize(storage: &str) -> String {
    storage.trim().to_string()
}
pub fn equivalent(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}
pub fn merge(_base: &str, _theirs: &str, _ours: &str) -> Option<String> {
    None
}
