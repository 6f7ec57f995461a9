//! Storage to Markdown, block by block, each block checked by converting it back.
//!
//! Rendering tries the richest Markdown first; every top-level block (and every block inside an
//! expand, whose body is not indented) is converted back with the real reverse parser and kept
//! only if the result is equivalent to the original, else it is tried again with every inline
//! element left as raw XHTML, else it becomes a raw block. Containers that indent their content
//! (lists, quotes, panels) cannot hold raw blocks, so they are all or nothing. The renderer can
//! thus be generous: a case it gets wrong costs readability, never content.

use super::params::{
    encode_opaque, encode_pairs, encode_path_component, has_scheme, raw_markers, Pairs, ALERTS,
};
use super::xml::{self, Element, Kind, Node};
use super::PageContext;

/// How inline elements are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As Markdown where Markdown has the construct.
    Rich,
    /// Every element as its raw XHTML; only text is Markdown.
    RawInline,
}

/// The kind of list a block is, for telling adjacent lists apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Bullet,
    Ordered,
}

struct Render<'a> {
    src: &'a str,
    ctx: &'a PageContext,
}

/// The raw fence pair for `bytes`: numbered when the plain closing line occurs inside.
pub(crate) fn raw_block(bytes: &str) -> String {
    let mut n = 0usize;
    loop {
        let (open, close) = raw_markers(n);
        if !bytes.contains(close.as_str()) {
            return format!("{open}\n{bytes}\n{close}");
        }
        n += 1;
    }
}

pub(crate) fn to_markdown(storage: &str, ctx: &PageContext) -> String {
    let nodes = match xml::parse(storage) {
        Ok(nodes) => nodes,
        Err(_) => return finish(vec![raw_block(storage)], storage),
    };
    let render = Render { src: storage, ctx };
    let mut forced_raw = vec![false; nodes.len()];
    for _ in 0..8 {
        let blocks = render.top_level(&nodes, &forced_raw);
        let markdown = finish(blocks.iter().map(|(_, b)| b.clone()).collect(), storage);
        match super::parse::to_storage(&markdown, ctx) {
            Ok(back) if super::equivalent(&back, storage) => return markdown,
            Ok(back) => {
                // Find the first block that came back different and send it (and the one
                // before, which may have swallowed it) to raw.
                let Ok(back_nodes) = xml::parse(&back) else {
                    break;
                };
                let back_blocks: Vec<String> = significant(&back_nodes)
                    .map(|n| canonical(std::slice::from_ref(n)))
                    .collect();
                let mut changed = false;
                for (k, (index, _)) in blocks.iter().enumerate() {
                    let original = canonical(std::slice::from_ref(&nodes[*index]));
                    if back_blocks.get(k) != Some(&original) {
                        for j in [k.saturating_sub(1), k] {
                            let i = blocks[j].0;
                            changed |= !forced_raw[i];
                            forced_raw[i] = true;
                        }
                        break;
                    }
                }
                if !changed {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    finish(vec![raw_block(storage)], storage)
}

fn finish(blocks: Vec<String>, storage: &str) -> String {
    if storage.trim().is_empty() {
        return String::new();
    }
    let mut out = blocks.join("\n\n");
    out.push('\n');
    out
}

fn canonical(nodes: &[Node]) -> String {
    let mut out = String::new();
    xml::write_canonical(nodes, None, &mut out);
    out
}

/// Top-level nodes that are not blank text.
fn significant(nodes: &[Node]) -> impl Iterator<Item = &Node> {
    nodes.iter().filter(|n| !n.is_blank_text())
}

fn list_kind(node: &Node) -> Option<ListKind> {
    match node.element()?.name.as_str() {
        "ul" | "ac:task-list" => Some(ListKind::Bullet),
        "ol" => Some(ListKind::Ordered),
        _ => None,
    }
}

fn indent(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(prefix);
            }
        }
        out.push_str(line);
    }
    out
}

fn quote(text: &str) -> String {
    text.split('\n')
        .map(|l| {
            if l.is_empty() {
                ">".to_string()
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Elements that make a list item hold blocks rather than inline text.
fn is_block_element(e: &Element) -> bool {
    match e.name.as_str() {
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "table" | "blockquote"
        | "hr" | "pre" | "div" | "ac:task-list" | "ac:layout" => true,
        "ac:structured-macro" => matches!(
            e.attr("ac:name"),
            Some("code" | "noformat" | "info" | "tip" | "note" | "warning" | "expand")
        ),
        _ => false,
    }
}

impl Render<'_> {
    fn bytes(&self, node: &Node) -> &str {
        &self.src[node.span.clone()]
    }

    /// Every significant top-level node as (node index, Markdown block).
    fn top_level(&self, nodes: &[Node], forced_raw: &[bool]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut previous: Option<(ListKind, bool)> = None;
        for (i, node) in nodes.iter().enumerate() {
            if node.is_blank_text() {
                continue;
            }
            let (block, list) = if forced_raw[i] {
                (raw_block(self.bytes(node)), None)
            } else {
                self.verified(node, previous)
            };
            previous = list;
            out.push((i, block));
        }
        out
    }

    /// A block as checked Markdown, or raw; with the list kind it ended up as.
    fn verified(
        &self,
        node: &Node,
        previous: Option<(ListKind, bool)>,
    ) -> (String, Option<(ListKind, bool)>) {
        let original = self.bytes(node);
        let kind = list_kind(node);
        let alt = match (kind, previous) {
            (Some(k), Some((pk, palt))) if k == pk => !palt,
            _ => false,
        };
        for mode in [Mode::Rich, Mode::RawInline] {
            if let Some(md) = self.block(node, mode, alt) {
                if let Ok(back) = super::parse::to_storage(&md, self.ctx) {
                    if super::equivalent(&back, original) {
                        return (md, kind.map(|k| (k, alt)));
                    }
                }
            }
        }
        (raw_block(original), None)
    }

    /// A sequence of blocks; `checked` lets each fall back to raw on its own.
    fn sequence(&self, nodes: &[Node], mode: Mode, checked: bool) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut previous: Option<(ListKind, bool)> = None;
        for node in nodes {
            if node.is_blank_text() {
                continue;
            }
            if checked {
                let (md, list) = self.verified(node, previous);
                previous = list;
                out.push(md);
            } else {
                let kind = list_kind(node);
                let alt = match (kind, previous) {
                    (Some(k), Some((pk, palt))) if k == pk => !palt,
                    _ => false,
                };
                out.push(self.block(node, mode, alt)?);
                previous = kind.map(|k| (k, alt));
            }
        }
        Some(out)
    }

    /// One block as Markdown, or None when Markdown has no form for it.
    fn block(&self, node: &Node, mode: Mode, alt: bool) -> Option<String> {
        let e = node.element()?;
        let name = e.name.as_str();
        match name {
            "p" => {
                let mut text = self.inline(&e.children, mode, Place::Paragraph)?;
                if text.is_empty() {
                    return None;
                }
                push_block_attrs(e, &mut text)?;
                Some(text)
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let level: usize = name[1..].parse().ok()?;
                let mut text = self.inline(&e.children, mode, Place::Heading)?;
                if text.is_empty() {
                    return None;
                }
                push_block_attrs(e, &mut text)?;
                Some(format!("{} {}", "#".repeat(level), text))
            }
            "hr" => (e.attrs.is_empty() && e.children.is_empty()).then(|| "---".to_string()),
            "blockquote" => {
                if !e.attrs.is_empty() {
                    return None;
                }
                let blocks = self.sequence(&e.children, mode, false)?;
                if blocks.is_empty() {
                    return None;
                }
                Some(quote(&blocks.join("\n\n")))
            }
            "ul" | "ol" => self.list(e, mode, alt),
            "ac:task-list" => self.task_list(e, mode, alt),
            "table" => self.table(e, mode),
            "ac:structured-macro" => self.macro_block(e, mode),
            // An image on its own line (how the editor places them): a paragraph of just the
            // image, marked so that it converts back without the paragraph.
            "ac:image" => {
                let mut st = Inline {
                    out: String::new(),
                    place: Place::Paragraph,
                };
                self.image(e, &mut st, true)?;
                Some(st.out)
            }
            _ => None,
        }
    }

    fn list(&self, e: &Element, mode: Mode, alt: bool) -> Option<String> {
        let ordered = e.name == "ol";
        let mut start: u64 = 1;
        for (k, v) in &e.attrs {
            match k.as_str() {
                "start" if ordered => {
                    start = v.parse().ok()?;
                    if start.to_string() != *v || start > 999_999_999 {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        let items = e.only_elements()?;
        if items.is_empty()
            || items
                .iter()
                .any(|li| li.name != "li" || !li.attrs.is_empty())
        {
            return None;
        }
        let loose = items.iter().any(|li| {
            li.children
                .iter()
                .any(|c| matches!(c.element(), Some(x) if x.name == "p"))
        });
        let mut rendered = Vec::new();
        for (i, li) in items.iter().enumerate() {
            let marker = if ordered {
                format!("{}{}", start + i as u64, if alt { ')' } else { '.' })
            } else {
                (if alt { "*" } else { "-" }).to_string()
            };
            let body = self.item_body(&li.children, mode, loose)?;
            let pad = " ".repeat(marker.len() + 1);
            rendered.push(if body.is_empty() {
                marker
            } else {
                format!("{marker} {}", indent(&body, &pad))
            });
        }
        Some(rendered.join(if loose { "\n\n" } else { "\n" }))
    }

    /// A list item's content: leading inline text, then blocks.
    fn item_body(&self, children: &[Node], mode: Mode, loose: bool) -> Option<String> {
        let split = children
            .iter()
            .position(|c| matches!(c.element(), Some(e) if is_block_element(e)))
            .unwrap_or(children.len());
        let (inline, blocks) = children.split_at(split);
        let mut parts = Vec::new();
        if inline.iter().any(|n| !n.is_blank_text()) {
            if loose {
                return None;
            }
            parts.push(self.inline(inline, mode, Place::Paragraph)?);
        }
        for node in blocks {
            if let Kind::Text(t) = &node.kind {
                if !t.trim().is_empty() {
                    return None;
                }
            }
        }
        parts.extend(self.sequence(blocks, mode, false)?);
        Some(parts.join(if loose { "\n\n" } else { "\n" }))
    }

    fn task_list(&self, e: &Element, mode: Mode, alt: bool) -> Option<String> {
        if !e.attrs.is_empty() {
            return None;
        }
        let tasks = e.only_elements()?;
        if tasks.is_empty() {
            return None;
        }
        let bullet = if alt { "*" } else { "-" };
        let mut rendered = Vec::new();
        for task in tasks {
            if task.name != "ac:task" || !task.attrs.is_empty() {
                return None;
            }
            let parts = task.only_elements()?;
            let mut pairs: Pairs = Vec::new();
            let mut status = None;
            let mut body = None;
            let mut expected = [
                "ac:task-id",
                "ac:task-uuid",
                "ac:task-status",
                "ac:task-body",
            ]
            .iter()
            .peekable();
            for part in parts {
                // Children must come in the order we write them back.
                loop {
                    match expected.next() {
                        Some(&name) if name == part.name => break,
                        Some(&"ac:task-uuid") => continue,
                        _ => return None,
                    }
                }
                if !part.attrs.is_empty() {
                    return None;
                }
                match part.name.as_str() {
                    "ac:task-id" => pairs.push(("id".into(), part.only_text()?)),
                    "ac:task-uuid" => pairs.push(("uuid".into(), part.only_text()?)),
                    "ac:task-status" => status = Some(part.only_text()?),
                    _ => body = Some(self.inline(&part.children, mode, Place::Paragraph)?),
                }
            }
            let checked = match status?.as_str() {
                "complete" => "x",
                "incomplete" => " ",
                _ => return None,
            };
            let body = body?;
            let mut line = format!("{bullet} [{checked}] ");
            if !body.is_empty() {
                line.push_str(&indent(&body, "  "));
                line.push(' ');
            }
            if !pairs.is_empty() {
                line.push_str(&format!("<!-- {} -->", encode_pairs(&pairs)));
            }
            rendered.push(line);
        }
        Some(rendered.join("\n"))
    }

    fn table(&self, e: &Element, mode: Mode) -> Option<String> {
        if !e.attrs.is_empty() {
            return None;
        }
        let sections = e.only_elements()?;
        if sections.len() != 1 || sections[0].name != "tbody" || !sections[0].attrs.is_empty() {
            return None;
        }
        let rows = sections[0].only_elements()?;
        let mut lines = Vec::new();
        let mut width = None;
        for (r, row) in rows.iter().enumerate() {
            if row.name != "tr" || !row.attrs.is_empty() {
                return None;
            }
            let cells = row.only_elements()?;
            let cell_name = if r == 0 { "th" } else { "td" };
            if cells.is_empty() || *width.get_or_insert(cells.len()) != cells.len() {
                return None;
            }
            let mut line = String::from("|");
            for cell in &cells {
                if cell.name != cell_name || !cell.attrs.is_empty() {
                    return None;
                }
                let text = self.inline(&cell.children, mode, Place::Cell)?;
                line.push(' ');
                line.push_str(&text);
                line.push_str(" |");
            }
            lines.push(line);
            if r == 0 {
                lines.push(format!("|{}", " --- |".repeat(cells.len())));
            }
        }
        (!rows.is_empty()).then(|| lines.join("\n"))
    }

    /// Splits a macro's children into parameters (text only) and the rest.
    fn macro_parts<'e>(&self, e: &'e Element) -> Option<(Pairs, Vec<&'e Element>)> {
        let mut params = Vec::new();
        let mut rest = Vec::new();
        for child in e.only_elements()? {
            if child.name == "ac:parameter" {
                if !rest.is_empty() || child.attrs.len() != 1 {
                    return None;
                }
                let name = child.attr("ac:name")?;
                if name.is_empty() || name.contains(':') || name == "body" {
                    return None;
                }
                params.push((name.to_string(), child.only_text()?));
            } else {
                rest.push(child);
            }
        }
        Some((params, rest))
    }

    /// The macro's attributes other than its name, as pairs with their literal names.
    fn macro_attrs(e: &Element) -> Option<Pairs> {
        let mut pairs = Vec::new();
        for (k, v) in &e.attrs {
            if k == "ac:name" {
                continue;
            }
            if k.contains(':') {
                pairs.push((k.clone(), v.clone()));
            } else {
                pairs.push((format!("@{k}"), v.clone()));
            }
        }
        Some(pairs)
    }

    fn macro_block(&self, e: &Element, mode: Mode) -> Option<String> {
        let name = e.attr("ac:name")?;
        let mut pairs = Self::macro_attrs(e)?;
        let (mut params, rest) = self.macro_parts(e)?;
        match name {
            "code" | "noformat" => {
                if rest.len() > 1 {
                    return None;
                }
                let body = match rest.first() {
                    Some(b) if b.name == "ac:plain-text-body" && b.attrs.is_empty() => {
                        b.only_text()?
                    }
                    None => String::new(),
                    _ => return None,
                };
                if rest.is_empty() {
                    // A code macro without a body comes back with one; keep it raw.
                    return None;
                }
                let mut info = Vec::new();
                if name == "noformat" {
                    pairs.insert(0, ("ac:name".into(), "noformat".into()));
                } else if let Some(i) = params.iter().position(|(k, _)| k == "language") {
                    let lang = &params[i].1;
                    let simple = !lang.is_empty()
                        && lang.chars().all(|c| {
                            c.is_alphanumeric() || matches!(c, '-' | '+' | '#' | '.' | '_')
                        });
                    if simple && i == 0 {
                        info.push(params.remove(0).1);
                    }
                }
                pairs.extend(params);
                if !pairs.is_empty() {
                    info.push(encode_pairs(&pairs));
                }
                let longest = longest_run(&body, '`');
                let fence = "`".repeat(3.max(longest + 1));
                let mut out = format!("{fence}{}\n{body}", info.join(" "));
                if !body.is_empty() {
                    out.push('\n');
                }
                out.push_str(&fence);
                Some(out)
            }
            "info" | "tip" | "note" | "warning" => {
                let alert = ALERTS.iter().find(|(m, _)| *m == name)?.1;
                let body = match rest.as_slice() {
                    [b] if b.name == "ac:rich-text-body" && b.attrs.is_empty() => b,
                    _ => return None,
                };
                let blocks = self.sequence(&body.children, mode, false)?;
                let mut all = params;
                all.extend(pairs);
                let mut text = format!("[!{alert}]");
                if !all.is_empty() {
                    text.push_str(&format!("\n<!-- {} -->", encode_pairs(&all)));
                }
                if !blocks.is_empty() {
                    text.push('\n');
                    text.push_str(&blocks.join("\n\n"));
                }
                Some(quote(&text))
            }
            "expand" => {
                let body = match rest.as_slice() {
                    [b] if b.name == "ac:rich-text-body" && b.attrs.is_empty() => b,
                    _ => return None,
                };
                let title = match params.first() {
                    Some((k, _)) if k == "title" => Some(params.remove(0).1),
                    _ => None,
                };
                let blocks = self.sequence(&body.children, mode, true)?;
                let mut text = String::from("<details>");
                if let Some(title) = title {
                    if title.contains('\n') {
                        return None;
                    }
                    text.push_str("\n<summary>");
                    xml::escape_text(&title, &mut text);
                    text.push_str("</summary>");
                }
                pairs.extend(params);
                if !pairs.is_empty() {
                    text.push_str(&format!("\n<!-- {} -->", encode_pairs(&pairs)));
                }
                for block in blocks {
                    text.push_str("\n\n");
                    text.push_str(&block);
                }
                text.push_str("\n\n</details>");
                Some(text)
            }
            _ => None,
        }
    }

    // ---- inline ----

    /// Inline content as Markdown; None when it cannot be written in this place at all.
    fn inline(&self, nodes: &[Node], mode: Mode, place: Place) -> Option<String> {
        let mut st = Inline {
            out: String::new(),
            place,
        };
        // Whitespace at the edges of a block does not show (and Markdown drops it).
        let layout = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
        let mut nodes = nodes.to_vec();
        while nodes.first().is_some_and(Node::is_blank_text) {
            nodes.remove(0);
        }
        while nodes.last().is_some_and(Node::is_blank_text) {
            nodes.pop();
        }
        if let Some(Node {
            kind: Kind::Text(t),
            ..
        }) = nodes.first_mut()
        {
            *t = t.trim_start_matches(layout).to_string();
        }
        if let Some(Node {
            kind: Kind::Text(t),
            ..
        }) = nodes.last_mut()
        {
            *t = t.trim_end_matches(layout).to_string();
        }
        self.inline_nodes(&nodes, mode, &mut st)?;
        // Trailing spaces would be stripped: keep them as character references.
        let trimmed = st.out.trim_end_matches([' ', '\t']).len();
        if trimmed < st.out.len() && !st.out[..trimmed].ends_with('\\') {
            let tail: String = st.out[trimmed..]
                .chars()
                .map(|c| if c == ' ' { "&#32;" } else { "&#9;" })
                .collect();
            st.out.truncate(trimmed);
            st.out.push_str(&tail);
        }
        Some(st.out)
    }

    fn inline_nodes(&self, nodes: &[Node], mode: Mode, st: &mut Inline) -> Option<()> {
        for (i, node) in nodes.iter().enumerate() {
            let last = i + 1 == nodes.len();
            match &node.kind {
                Kind::Text(text) => st.text(text)?,
                Kind::Comment(_) | Kind::Other(_) => st.raw(self.bytes(node))?,
                Kind::Element(e) => {
                    let mark = st.out.len();
                    let rich =
                        mode == Mode::Rich && self.inline_element(e, mode, st, last).is_some();
                    if !rich {
                        st.out.truncate(mark);
                        st.raw(self.bytes(node))?;
                    }
                }
            }
        }
        Some(())
    }

    /// An inline element as Markdown; None to fall back to its raw XHTML.
    fn inline_element(&self, e: &Element, mode: Mode, st: &mut Inline, last: bool) -> Option<()> {
        let name = e.name.as_str();
        let wrap = |delim: &str, st: &mut Inline| -> Option<()> {
            if !e.attrs.is_empty() || e.children.is_empty() {
                return None;
            }
            st.out.push_str(delim);
            self.inline_nodes(&e.children, mode, st)?;
            st.out.push_str(delim);
            Some(())
        };
        match name {
            "strong" => wrap("**", st),
            "em" => wrap("*", st),
            "s" => wrap("~~", st),
            "code" => {
                if !e.attrs.is_empty() {
                    return None;
                }
                let text = e.only_text()?;
                if text.is_empty()
                    || text.contains(['\n', '\r'])
                    || (st.place == Place::Cell && text.contains('|'))
                {
                    return None;
                }
                let ticks = "`".repeat(longest_run(&text, '`') + 1);
                let pad = text.starts_with('`')
                    || text.ends_with('`')
                    || (text.starts_with(' ') && text.ends_with(' ') && !text.trim().is_empty());
                let pad = if pad { " " } else { "" };
                st.out.push_str(&format!("{ticks}{pad}{text}{pad}{ticks}"));
                Some(())
            }
            "br" => {
                if !e.attrs.is_empty()
                    || !e.children.is_empty()
                    || last
                    || st.place != Place::Paragraph
                {
                    return None;
                }
                st.out.push_str("\\\n");
                Some(())
            }
            "a" => {
                let href = e.attr("href")?;
                if e.attrs.len() != 1 || e.children.is_empty() {
                    return None;
                }
                let dest = destination(href)?;
                st.out.push('[');
                self.inline_nodes(&e.children, mode, st)?;
                st.out.push_str("](");
                st.out.push_str(&dest);
                st.out.push(')');
                Some(())
            }
            "ac:link" => self.ac_link(e, mode, st),
            "ac:image" => self.image(e, st, false),
            "ac:structured-macro" if e.attr("ac:name") == Some("status") => self.status(e, st),
            _ => None,
        }
    }

    fn ac_link(&self, e: &Element, mode: Mode, st: &mut Inline) -> Option<()> {
        let parts = e.only_elements()?;
        let (resource, body) = match parts.as_slice() {
            [r] => (*r, None),
            [r, b] => (*r, Some(*b)),
            _ => return None,
        };
        if !resource.children.is_empty() {
            return None;
        }
        let mut pairs: Pairs = e.attrs.clone();
        if pairs.iter().any(|(k, _)| !k.contains(':')) {
            return None;
        }
        let primary: &[&str] = match resource.name.as_str() {
            "ri:page" => &["ri:content-title", "ri:space-key"],
            "ri:attachment" => &["ri:filename"],
            "ri:user" => &["ri:account-id", "ri:userkey", "ri:username"],
            _ => return None,
        };
        for (k, v) in &resource.attrs {
            if !primary.contains(&k.as_str()) {
                if !k.starts_with("ri:") {
                    return None;
                }
                pairs.push((k.clone(), v.clone()));
            }
        }
        let (dest, default_text, default_body) = match resource.name.as_str() {
            "ri:page" => {
                let title = resource.attr("ri:content-title")?;
                (
                    self.page_path(title, resource.attr("ri:space-key")),
                    title.to_string(),
                    "plain",
                )
            }
            "ri:attachment" => {
                let file = resource.attr("ri:filename")?;
                (
                    encode_path_component(&(self.ctx.encode)(file)),
                    file.to_string(),
                    "plain",
                )
            }
            _ => {
                let (kind, value) = resource
                    .attrs
                    .iter()
                    .find(|(k, _)| primary.contains(&k.as_str()))?;
                let kind = kind.strip_prefix("ri:")?;
                if resource
                    .attrs
                    .iter()
                    .filter(|(k, _)| primary.contains(&k.as_str()))
                    .count()
                    != 1
                {
                    return None;
                }
                (
                    format!("confluence-user:{kind}:{}", encode_opaque(value)),
                    "@user".to_string(),
                    "none",
                )
            }
        };
        let body_kind = match body {
            None => "none",
            Some(b) if b.name == "ac:plain-text-link-body" && b.attrs.is_empty() => "plain",
            Some(b) if b.name == "ac:link-body" && b.attrs.is_empty() => "link",
            _ => return None,
        };
        if body_kind != default_body {
            pairs.push(("body".into(), body_kind.into()));
        }
        st.out.push('[');
        match body {
            None => st.text(&default_text)?,
            Some(b) if body_kind == "plain" => st.text(&b.only_text()?)?,
            Some(b) => self.inline_nodes(&b.children, mode, st)?,
        }
        st.out.push_str("](");
        st.out.push_str(&dest);
        push_title(&pairs, st);
        st.out.push(')');
        Some(())
    }

    /// The relative path of a page link: through the space directory when the link names its
    /// space, else within this page's space.
    fn page_path(&self, title: &str, space: Option<&str>) -> String {
        let name = encode_path_component(&format!("{}.md", (self.ctx.encode)(title)));
        match space {
            Some(space) => format!(
                "{}{}/@pages/{name}",
                "../".repeat(self.ctx.depth),
                encode_path_component(space)
            ),
            None => format!(
                "{}@pages/{name}",
                "../".repeat(self.ctx.depth.saturating_sub(1))
            ),
        }
    }

    fn image(&self, e: &Element, st: &mut Inline, block: bool) -> Option<()> {
        let parts = e.only_elements()?;
        let [resource] = parts.as_slice() else {
            return None;
        };
        if !resource.children.is_empty() {
            return None;
        }
        let mut pairs: Pairs = Vec::new();
        let mut alt = None;
        for (k, v) in &e.attrs {
            if k == "ac:alt" && !v.is_empty() && !v.contains(['\n', '\r']) {
                alt = Some(v.clone());
            } else if k.starts_with("ac:") {
                pairs.push((k.clone(), v.clone()));
            } else {
                return None;
            }
        }
        let (dest, primary) = match resource.name.as_str() {
            "ri:attachment" => (
                encode_path_component(&(self.ctx.encode)(resource.attr("ri:filename")?)),
                "ri:filename",
            ),
            "ri:url" => (destination(resource.attr("ri:value")?)?, "ri:value"),
            _ => return None,
        };
        if resource.name == "ri:url" && !has_scheme(resource.attr("ri:value")?) {
            return None;
        }
        if block {
            pairs.insert(0, ("block".to_string(), "1".to_string()));
        }
        for (k, v) in &resource.attrs {
            if k != primary {
                if !k.starts_with("ri:") {
                    return None;
                }
                pairs.push((k.clone(), v.clone()));
            }
        }
        st.out.push_str("![");
        if let Some(alt) = alt {
            let saved = st.place;
            st.place = Place::Cell;
            st.text(&alt)?;
            st.place = saved;
        }
        st.out.push_str("](");
        st.out.push_str(&dest);
        push_title(&pairs, st);
        st.out.push(')');
        Some(())
    }

    fn status(&self, e: &Element, st: &mut Inline) -> Option<()> {
        let mut pairs = Self::macro_attrs(e)?;
        let (params, rest) = self.macro_parts(e)?;
        if !rest.is_empty() {
            return None;
        }
        let mut params = params.into_iter().peekable();
        let colour = match params.peek() {
            Some((k, v)) if k == "colour" && !v.is_empty() => params.next().map(|p| p.1),
            _ => None,
        };
        let title = match params.peek() {
            Some((k, v)) if k == "title" && !v.is_empty() => params.next().map(|p| p.1),
            _ => None,
        };
        pairs.extend(params);
        st.out.push('[');
        if let Some(title) = title {
            st.text(&title)?;
        }
        st.out.push_str("](confluence-status:");
        if let Some(colour) = colour {
            st.out.push_str(&encode_opaque(&colour));
        }
        push_title(&pairs, st);
        st.out.push(')');
        Some(())
    }
}

/// A paragraph's or heading's attributes (Cloud's `local-id`, an `id`) as a comment at its end.
fn push_block_attrs(e: &Element, text: &mut String) -> Option<()> {
    if e.attrs.is_empty() {
        return Some(());
    }
    if e.attrs.iter().any(|(k, _)| k == "style") {
        return None;
    }
    text.push_str(&format!(" <!-- {} -->", encode_pairs(&e.attrs)));
    Some(())
}

fn push_title(pairs: &Pairs, st: &mut Inline) {
    if !pairs.is_empty() {
        st.out.push_str(" '");
        st.out.push_str(&encode_pairs(pairs));
        st.out.push('\'');
    }
}

/// An external URL as a Markdown link destination, when Markdown can carry it exactly.
fn destination(href: &str) -> Option<String> {
    if href.is_empty()
        || href.contains(['<', '>', '\\', '\n', '\r'])
        || href.chars().any(|c| c.is_control())
        || href.contains('&')
    {
        return None;
    }
    if href.contains([' ', '(', ')']) {
        Some(format!("<{href}>"))
    } else {
        Some(href.to_string())
    }
}

fn longest_run(text: &str, c: char) -> usize {
    let mut best = 0;
    let mut run = 0;
    for ch in text.chars() {
        if ch == c {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Where inline content goes: what it may contain and what it must escape.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Paragraph,
    Heading,
    Cell,
}

struct Inline {
    out: String,
    place: Place,
}

impl Inline {
    fn at_line_start(&self) -> bool {
        self.out.is_empty() || self.out.ends_with('\n')
    }

    /// Raw XHTML inline; the reverse parser lifts balanced elements out before Markdown.
    fn raw(&mut self, bytes: &str) -> Option<()> {
        if self.place != Place::Paragraph && bytes.contains('\n') {
            return None;
        }
        if self.place == Place::Cell && bytes.contains('|') {
            return None;
        }
        if bytes.split('\n').skip(1).any(|l| l.trim().is_empty()) {
            return None;
        }
        if bytes.starts_with("<!--") && bytes.contains('\n') {
            return None;
        }
        self.out.push_str(bytes);
        Some(())
    }

    /// Text, escaped so that Markdown reads it back as the same text.
    fn text(&mut self, text: &str) -> Option<()> {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            let prev = self.out.chars().last();
            if self.at_line_start() {
                match c {
                    ' ' => {
                        self.out.push_str("&#32;");
                        i += 1;
                        continue;
                    }
                    '\t' => {
                        self.out.push_str("&#9;");
                        i += 1;
                        continue;
                    }
                    '-' | '+' | '=' | '#' | '>' | '|' => {
                        self.out.push('\\');
                        self.out.push(c);
                        i += 1;
                        continue;
                    }
                    '0'..='9' => {
                        let mut j = i;
                        while j < chars.len() && chars[j].is_ascii_digit() {
                            j += 1;
                        }
                        self.out.extend(&chars[i..j]);
                        if j < chars.len() && matches!(chars[j], '.' | ')') {
                            self.out.push('\\');
                            self.out.push(chars[j]);
                            j += 1;
                        }
                        i = j;
                        continue;
                    }
                    _ => {}
                }
            }
            match c {
                '\\' | '`' | '*' | '[' | ']' | '<' | '~' => {
                    self.out.push('\\');
                    self.out.push(c);
                }
                '_' => {
                    let inner = prev.is_some_and(|p| p.is_alphanumeric())
                        && next.is_some_and(|n| n.is_alphanumeric());
                    if !inner {
                        self.out.push('\\');
                    }
                    self.out.push(c);
                }
                '!' if next == Some('[') || next.is_none() => self.out.push_str("\\!"),
                '#' if self.place == Place::Heading => self.out.push_str("\\#"),
                '|' if self.place == Place::Cell => self.out.push_str("\\|"),
                '&' => {
                    let rest: String = chars[i + 1..].iter().take(40).collect();
                    let entity_like = rest.find(';').is_some_and(|end| {
                        end > 0
                            && rest[..end]
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '#')
                    });
                    if entity_like {
                        self.out.push_str("&amp;");
                    } else {
                        self.out.push('&');
                    }
                }
                '\n' => {
                    if self.place != Place::Paragraph {
                        return None;
                    }
                    self.out.push('\n');
                }
                '\r' => self.out.push_str("&#13;"),
                ' ' | '\t' if next == Some('\n') => {
                    self.out.push_str(if c == ' ' { "&#32;" } else { "&#9;" })
                }
                _ => self.out.push(c),
            }
            i += 1;
        }
        Some(())
    }
}
