//! Confluence storage format (XHTML) to Markdown and back, without loss.
//!
//! A page body is shown in the mount as an editable `.md` file, so the conversion must never
//! lose what Markdown cannot say. The guarantee is built, not hoped for: [`to_markdown`] renders
//! each top-level block, converts the rendering back with [`to_storage`], and keeps the Markdown
//! only when the result is [`equivalent`] to the original block; otherwise the block goes into
//! the file as raw XHTML between fence comments (see [`RAW_OPEN`]), byte for byte. Inside a
//! paragraph an element Markdown cannot express stays inline as its own XHTML. Finally the whole
//! document is converted back and compared, so `to_storage(to_markdown(s))` is equivalent to `s`
//! for every parseable `s`.
//!
//! The pieces: `xml` reads storage into a tree with byte spans and writes the canonical form
//! that equivalence compares; `render` goes from storage to Markdown; `parse` goes back with
//! pulldown-cmark; `params` holds the small encodings details ride in (macro ids in fence info
//! strings, link extras in link titles); `merge` is the block-level three-way merge.
//! The module imports nothing from the crate. docs/MARKDOWN.md has the mapping table.

mod merge;
mod params;
mod parse;
mod render;
mod xml;

/// The line that opens a raw XHTML block in the Markdown form. The block's bytes follow on the
/// next line, unchanged, then a newline and [`RAW_CLOSE`] on a line of its own. When the bytes
/// themselves contain the closing line, both lines carry a number (`<!-- confluence:raw 1 -->`).
pub const RAW_OPEN: &str = "<!-- confluence:raw -->";
/// The line that closes a raw XHTML block.
pub const RAW_CLOSE: &str = "<!-- /confluence:raw -->";

/// Where the page being converted sits in the mount, for relative links.
#[derive(Debug, Clone)]
pub struct PageContext {
    /// The key of the page's space.
    pub space_key: String,
    /// Directory levels from the page's directory up to the mount root (a top-level page
    /// `MOUNT/DOCS/Home/` has depth 2, its child `MOUNT/DOCS/Home/Child/` depth 3).
    pub depth: usize,
    /// A title or filename as one path component (the filesystem's naming rule; `/` → `／` and more).
    pub encode: fn(&str) -> String,
    /// The reverse of `encode`; None for a name no title maps to.
    pub decode: fn(&str) -> Option<String>,
}

/// Why Markdown could not become storage.
#[derive(Debug, thiserror::Error)]
pub enum MarkdownError {
    /// A raw block (between [`RAW_OPEN`] and [`RAW_CLOSE`]) is not well-formed XHTML.
    #[error("line {line}: the raw XHTML block is not well-formed: {reason}")]
    MalformedRaw {
        /// The line of the block's opening fence, from 1.
        line: usize,
        /// What the XML parser said.
        reason: String,
    },
    /// A raw block is opened and never closed.
    #[error("line {line}: the raw XHTML block is never closed")]
    UnclosedRaw {
        /// The line of the block's opening fence, from 1.
        line: usize,
    },
    /// The converter produced XHTML that does not parse; a bug, reported rather than uploaded.
    #[error("the converted page is not well-formed XHTML: {0}")]
    Internal(String),
}

/// Converts a storage body to Markdown. Never fails: what it cannot express stays raw XHTML.
pub fn to_markdown(storage: &str, ctx: &PageContext) -> String {
    render::to_markdown(storage, ctx)
}

/// Converts Markdown (written by [`to_markdown`] or by a person) to a storage body.
pub fn to_storage(markdown: &str, ctx: &PageContext) -> Result<String, MarkdownError> {
    parse::to_storage(markdown, ctx)
}

/// Like [`to_storage`], but when the result is equivalent to `original` gives back `original`
/// itself, and every top-level block that is equivalent to a block of `original` (matched in
/// order) as that block's original bytes; so saving an unedited file changes nothing at all.
pub fn to_storage_preserving(
    markdown: &str,
    ctx: &PageContext,
    original: &str,
) -> Result<String, MarkdownError> {
    let converted = parse::to_storage(markdown, ctx)?;
    Ok(merge::preserve(&converted, original))
}

/// The canonical form of a storage body: attributes sorted, entities and CDATA resolved to
/// text, empty elements self-closed, whitespace-only text between blocks dropped. A body that
/// does not parse is returned as it is.
pub fn normalize(storage: &str) -> String {
    match xml::parse(storage) {
        Ok(nodes) => {
            let mut out = String::new();
            xml::write_canonical(&nodes, None, &mut out);
            out
        }
        Err(_) => storage.to_string(),
    }
}

/// True when two storage bodies have the same canonical form ([`normalize`]).
pub fn equivalent(a: &str, b: &str) -> bool {
    a == b || normalize(a) == normalize(b)
}

/// Block-level three-way merge of storage bodies: Some(merged) when the blocks `theirs` changed
/// (vs base) and the blocks `ours` changed do not touch (overlap or adjoin), else None.
pub fn merge(base: &str, theirs: &str, ours: &str) -> Option<String> {
    merge::merge(base, theirs, ours)
}

/// True when `storage` parses as an XHTML fragment the way this module reads storage
/// (undeclared prefixes and HTML named entities allowed).
pub fn is_well_formed(storage: &str) -> bool {
    xml::parse(storage).is_ok()
}

#[cfg(test)]
mod tests;
