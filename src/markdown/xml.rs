//! Storage format as a tree that remembers where each node came from.
//!
//! Confluence storage is an XHTML fragment with undeclared `ac:`/`ri:` prefixes, HTML named
//! entities (`&nbsp;`) and CDATA sections, so no XML parser takes it as it is. We read it with
//! quick-xml's non-namespace reader (prefixes are just part of the name), resolve entities
//! ourselves with the HTML5 table, and merge text, CDATA and references into one text node.
//! Every node keeps its byte span in the source: the converter copies a block it cannot express
//! byte for byte, and the canonical serialisation here is what "equivalent" compares.

use std::ops::Range;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// One node of a storage fragment, with the bytes it was read from.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Where the node sits in the source.
    pub(crate) span: Range<usize>,
    /// What the node is.
    pub(crate) kind: Kind,
}

/// The kinds of node a fragment holds.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// An element.
    Element(Element),
    /// Text, CDATA and entity references, resolved and merged.
    Text(String),
    /// A comment's content.
    Comment(String),
    /// A processing instruction or declaration, kept as written.
    Other(String),
}

/// An element: its name as written (prefix included), attributes in source order, children.
#[derive(Debug, Clone)]
pub(crate) struct Element {
    /// The qualified name, e.g. `ac:structured-macro`.
    pub(crate) name: String,
    /// Attributes with resolved values, in source order.
    pub(crate) attrs: Vec<(String, String)>,
    /// Child nodes.
    pub(crate) children: Vec<Node>,
}

impl Element {
    /// The value of attribute `name`.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Child elements, or None when a child is something else than an element or blank text.
    pub(crate) fn only_elements(&self) -> Option<Vec<&Element>> {
        let mut out = Vec::new();
        for child in &self.children {
            match &child.kind {
                Kind::Element(e) => out.push(e),
                Kind::Text(t) if t.trim().is_empty() => {}
                _ => return None,
            }
        }
        Some(out)
    }

    /// The element's text when it holds nothing but text (an empty element gives "").
    pub(crate) fn only_text(&self) -> Option<String> {
        let mut out = String::new();
        for child in &self.children {
            match &child.kind {
                Kind::Text(t) => out.push_str(t),
                _ => return None,
            }
        }
        Some(out)
    }
}

impl Node {
    /// The element, if this node is one.
    pub(crate) fn element(&self) -> Option<&Element> {
        match &self.kind {
            Kind::Element(e) => Some(e),
            _ => None,
        }
    }

    /// True for text made only of whitespace.
    pub(crate) fn is_blank_text(&self) -> bool {
        matches!(&self.kind, Kind::Text(t) if t.trim().is_empty())
    }
}

/// Resolves a named entity the way a browser would (the HTML5 table covers the XML five).
fn resolve_entity(name: &str) -> Option<&'static str> {
    quick_xml::escape::resolve_html5_entity(name)
}

/// Replaces entity and character references in `raw`.
pub(crate) fn unescape(raw: &str) -> Result<String, String> {
    quick_xml::escape::unescape_with(raw, resolve_entity)
        .map(|c| c.into_owned())
        .map_err(|e| e.to_string())
}

fn start_element(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|e| e.to_string())?
        .to_string();
    check_name(&name)?;
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = std::str::from_utf8(attr.key.as_ref())
            .map_err(|e| e.to_string())?
            .to_string();
        check_name(&key)?;
        let raw = std::str::from_utf8(&attr.value).map_err(|e| e.to_string())?;
        if raw.contains('<') {
            return Err(format!("'<' in the value of attribute {key}"));
        }
        attrs.push((key, unescape(raw)?));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

/// An XML name as storage uses them: a letter or `_`, then letters, digits, `-_.:`.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {
            chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '\u{B7}'))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("bad name {name:?}"))
    }
}

/// Appends text to the children, merging with a text node just before it.
fn push_text(children: &mut Vec<Node>, span: Range<usize>, text: &str) {
    if let Some(Node {
        span: last_span,
        kind: Kind::Text(last),
    }) = children.last_mut()
    {
        if last_span.end == span.start {
            last.push_str(text);
            last_span.end = span.end;
            return;
        }
    }
    children.push(Node {
        span,
        kind: Kind::Text(text.to_string()),
    });
}

/// Parses a storage fragment (any number of top-level nodes).
pub(crate) fn parse(src: &str) -> Result<Vec<Node>, String> {
    let (nodes, end) = parse_inner(src, false)?;
    debug_assert_eq!(end, src.len());
    Ok(nodes)
}

/// Parses one element at the start of `src` and returns how many bytes it takes.
pub(crate) fn parse_one_element(src: &str) -> Option<usize> {
    match parse_inner(src, true) {
        Ok((nodes, end)) if nodes.len() == 1 && nodes[0].element().is_some() => Some(end),
        _ => None,
    }
}

fn parse_inner(src: &str, one: bool) -> Result<(Vec<Node>, usize), String> {
    let mut reader = Reader::from_str(src);
    {
        let config = reader.config_mut();
        config.trim_text(false);
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.check_comments = true;
    }
    // The stack of open elements, each with the offset where it started.
    let mut stack: Vec<(Element, usize)> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        let after = reader.buffer_position() as usize;
        let span = before..after;
        let at_top = stack.is_empty();
        let children = match stack.last_mut() {
            Some((e, _)) => &mut e.children,
            None => &mut top,
        };
        match event {
            Event::Start(start) => {
                let element = start_element(&start)?;
                stack.push((element, before));
            }
            Event::Empty(start) => {
                let element = start_element(&start)?;
                children.push(Node {
                    span,
                    kind: Kind::Element(element),
                });
                if one && at_top {
                    return Ok((top, after));
                }
            }
            Event::End(_) => {
                let Some((element, start)) = stack.pop() else {
                    return Err(format!("unmatched end tag at byte {before}"));
                };
                let node = Node {
                    span: start..after,
                    kind: Kind::Element(element),
                };
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(node),
                    None => {
                        top.push(node);
                        if one {
                            return Ok((top, after));
                        }
                    }
                }
            }
            Event::Text(text) => {
                let raw = text.decode().map_err(|e| e.to_string())?;
                if raw.contains('&') {
                    return Err(format!("bare '&' at byte {before}"));
                }
                if one && at_top {
                    return Err("text before the element".into());
                }
                push_text(children, span, &raw);
            }
            Event::CData(cdata) => {
                let raw = cdata.decode().map_err(|e| e.to_string())?;
                push_text(children, span, &raw);
            }
            Event::GeneralRef(reference) => {
                let text = if reference.is_char_ref() {
                    match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c.to_string(),
                        None => return Err(format!("bad character reference at byte {before}")),
                    }
                } else {
                    let name = reference.decode().map_err(|e| e.to_string())?;
                    resolve_entity(&name)
                        .ok_or_else(|| format!("unknown entity &{name}; at byte {before}"))?
                        .to_string()
                };
                push_text(children, span, &text);
            }
            Event::Comment(comment) => {
                let raw = comment.decode().map_err(|e| e.to_string())?;
                children.push(Node {
                    span,
                    kind: Kind::Comment(raw.into_owned()),
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {
                children.push(Node {
                    span: span.clone(),
                    kind: Kind::Other(src[span].to_string()),
                });
            }
            Event::Eof => break,
        }
        if one && stack.is_empty() && !top.is_empty() {
            return Err("not one element".into());
        }
    }
    if let Some((element, _)) = stack.last() {
        return Err(format!("<{}> is never closed", element.name));
    }
    Ok((top, src.len()))
}

/// Escapes text content.
pub(crate) fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// Escapes an attribute value (double-quoted).
pub(crate) fn escape_attr(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
}

/// Writes `text` as CDATA, splitting any `]]>` it contains.
pub(crate) fn write_cdata(text: &str, out: &mut String) {
    out.push_str("<![CDATA[");
    out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

/// Writes a start tag (`<name a="v">`, or `<name a="v"/>` when `empty`).
pub(crate) fn write_start(name: &str, attrs: &[(String, String)], empty: bool, out: &mut String) {
    out.push('<');
    out.push_str(name);
    for (k, v) in attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_attr(v, out);
        out.push('"');
    }
    out.push_str(if empty { "/>" } else { ">" });
}

// ---- canonical form ----

/// Elements whose content is laid out in blocks: whitespace-only text at their edges and next
/// to a block child does not show.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "ul"
            | "ol"
            | "li"
            | "table"
            | "thead"
            | "tbody"
            | "tfoot"
            | "tr"
            | "th"
            | "td"
            | "colgroup"
            | "col"
            | "caption"
            | "blockquote"
            | "hr"
            | "div"
            | "section"
            | "ac:layout"
            | "ac:layout-section"
            | "ac:layout-cell"
            | "ac:rich-text-body"
            | "ac:task-list"
            | "ac:task"
            | "ac:task-id"
            | "ac:task-uuid"
            | "ac:task-status"
            | "ac:task-body"
    )
}

/// Elements that hold only elements: whitespace-only text in them is layout.
fn is_container(name: &str) -> bool {
    matches!(
        name,
        "ul" | "ol"
            | "table"
            | "thead"
            | "tbody"
            | "tfoot"
            | "tr"
            | "colgroup"
            | "blockquote"
            | "section"
            | "ac:structured-macro"
            | "ac:rich-text-body"
            | "ac:layout"
            | "ac:layout-section"
            | "ac:layout-cell"
            | "ac:task-list"
            | "ac:task"
            | "ac:image"
            | "ac:link"
    )
}

/// Elements whose whitespace is content.
fn is_preserving(name: &str) -> bool {
    matches!(
        name,
        "pre" | "code" | "ac:plain-text-body" | "ac:plain-text-link-body" | "ac:parameter"
    )
}

fn is_block_node(node: &Node) -> bool {
    match &node.kind {
        Kind::Element(e) if e.name == "ac:structured-macro" => is_block_macro(e),
        Kind::Element(e) => is_block(&e.name),
        _ => false,
    }
}

/// Macros that always render as blocks (inline ones such as status or anchor do not).
pub(crate) fn is_block_macro(e: &Element) -> bool {
    matches!(
        e.attr("ac:name"),
        Some(
            "code"
                | "noformat"
                | "info"
                | "tip"
                | "note"
                | "warning"
                | "expand"
                | "panel"
                | "toc"
                | "children"
                | "section"
                | "column"
        )
    )
}

/// Writes nodes in canonical form: attributes sorted, entities and CDATA resolved, empty
/// elements self-closed, whitespace that does not show dropped.
pub(crate) fn write_canonical(nodes: &[Node], parent: Option<&str>, out: &mut String) {
    let container = parent.map_or(true, is_container);
    let preserving = parent.is_some_and(is_preserving);
    let edge_insignificant = parent.map_or(true, |p| is_block(p) || is_container(p));
    for (i, node) in nodes.iter().enumerate() {
        match &node.kind {
            Kind::Text(text) => {
                if !preserving && text.trim().is_empty() {
                    let first = i == 0;
                    let last = i + 1 == nodes.len();
                    let next_block = nodes.get(i + 1).is_some_and(is_block_node);
                    let prev_block = i > 0 && is_block_node(&nodes[i - 1]);
                    if container
                        || ((first || last) && edge_insignificant)
                        || next_block
                        || prev_block
                    {
                        continue;
                    }
                }
                let mut text = text.as_str();
                if !preserving {
                    // Whitespace at the edge of a block, or next to one, does not show.
                    let layout = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
                    if (i == 0 && edge_insignificant) || (i > 0 && is_block_node(&nodes[i - 1])) {
                        text = text.trim_start_matches(layout);
                    }
                    let last = i + 1 == nodes.len();
                    if (last && edge_insignificant) || nodes.get(i + 1).is_some_and(is_block_node) {
                        text = text.trim_end_matches(layout);
                    }
                }
                escape_text(text, out);
            }
            Kind::Comment(text) => {
                out.push_str("<!--");
                out.push_str(text);
                out.push_str("-->");
            }
            Kind::Other(text) => {
                if !text.starts_with("<?xml") {
                    out.push_str(text);
                }
            }
            Kind::Element(e) => {
                let mut attrs = e.attrs.clone();
                attrs.sort();
                let empty = e.children.iter().all(|c| match &c.kind {
                    Kind::Text(t) => t.is_empty(),
                    _ => false,
                });
                write_start(&e.name, &attrs, empty, out);
                if !empty {
                    write_canonical(&e.children, Some(&e.name), out);
                    out.push_str("</");
                    out.push_str(&e.name);
                    out.push('>');
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        let mut out = String::new();
        write_canonical(&parse(s).unwrap(), None, &mut out);
        out
    }

    #[test]
    fn entities_cdata_and_prefixes_parse() {
        let nodes = parse(
            "<p>a&nbsp;b&rsquo;&#65;&amp;</p><ac:structured-macro ac:name=\"x\"><ac:plain-text-body><![CDATA[<x>]]]]><![CDATA[>]]></ac:plain-text-body></ac:structured-macro>",
        )
        .unwrap();
        assert_eq!(nodes.len(), 2);
        let p = nodes[0].element().unwrap();
        assert_eq!(p.only_text().unwrap(), "a\u{a0}b\u{2019}A&");
        let m = nodes[1].element().unwrap();
        assert_eq!(m.attr("ac:name"), Some("x"));
        let body = m.children[0].element().unwrap();
        assert_eq!(body.only_text().unwrap(), "<x>]]>");
    }

    #[test]
    fn spans_cover_the_source() {
        let src = "<p>x</p>\n<hr />\n<h1>t</h1>";
        let nodes = parse(src).unwrap();
        assert_eq!(&src[nodes[0].span.clone()], "<p>x</p>");
        assert_eq!(&src[nodes[2].span.clone()], "<hr />");
        assert_eq!(&src[nodes[4].span.clone()], "<h1>t</h1>");
    }

    #[test]
    fn malformed_is_refused() {
        for bad in [
            "<p>",
            "<p></q>",
            "</p>",
            "<p>a & b</p>",
            "<p>&bogus;</p>",
            "<p a=b></p>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn canonical_form_ignores_layout_only() {
        assert_eq!(canon("<p b=\"2\" a=\"1\"></p>"), canon("<p a='1' b='2'/>"));
        assert_eq!(
            canon("<ul>\n <li>x</li>\n</ul>\n"),
            canon("<ul><li>x</li></ul>")
        );
        assert_eq!(canon("<p>&lt;<![CDATA[&]]></p>"), canon("<p>&lt;&amp;</p>"));
        assert_ne!(
            canon("<p><em>a</em> <em>b</em></p>"),
            canon("<p><em>a</em><em>b</em></p>")
        );
        assert_ne!(canon("<pre> </pre>"), canon("<pre/>"));
    }

    #[test]
    fn one_element_is_measured() {
        assert_eq!(parse_one_element("<u>a</u> rest"), Some(8));
        assert_eq!(parse_one_element("<br/>x"), Some(5));
        assert_eq!(parse_one_element("<u>a"), None);
        assert_eq!(parse_one_element("<a@b.c>"), None);
    }
}
