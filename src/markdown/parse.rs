//! Markdown to storage with pulldown-cmark, after lifting out what must not be read as Markdown.
//!
//! Two things in the Markdown form are not Markdown: raw blocks between fence comments, and
//! balanced inline XHTML elements (`<u>…</u>`, `<ac:emoticon …/>`). Both are cut out first and
//! replaced by placeholders made of private-use characters that Markdown treats as letters;
//! pulldown-cmark then parses what is left, and the event walk puts the original bytes back
//! where the placeholders land (as text again inside code, where nothing is markup). The walk
//! keeps a stack of frames; each frame collects its XHTML and is wrapped when it ends, which is
//! what lets a list become a task list, or a quote a panel, once all of it has been seen.

use pulldown_cmark::{BlockQuoteKind, CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use super::params::{decode_pairs, has_scheme, percent_decode, raw_markers, take, Pairs, ALERTS};
use super::xml::{self, escape_attr, escape_text, write_cdata, write_start};
use super::{MarkdownError, PageContext};

/// Cut-out pieces and the characters that mark them in the text.
struct Lifted {
    /// The original bytes of each piece.
    pieces: Vec<String>,
    /// Starts a placeholder.
    open: char,
    /// Ends an inline placeholder.
    close_inline: char,
    /// Ends a block placeholder.
    close_block: char,
}

impl Lifted {
    fn new(markdown: &str) -> Lifted {
        let mut base = 0xE000u32;
        loop {
            let chars: Vec<char> = (0..3).filter_map(|k| char::from_u32(base + k)).collect();
            if chars.len() == 3 && !markdown.contains(chars.as_slice()) {
                return Lifted {
                    pieces: Vec::new(),
                    open: chars[0],
                    close_inline: chars[1],
                    close_block: chars[2],
                };
            }
            base += 3;
        }
    }

    fn placeholder(&mut self, bytes: &str, block: bool) -> String {
        self.pieces.push(bytes.to_string());
        let close = if block {
            self.close_block
        } else {
            self.close_inline
        };
        format!("{}{}{}", self.open, self.pieces.len() - 1, close)
    }

    /// Splits text into plain runs and pieces: (text, piece index, is block).
    fn segments<'t>(&self, text: &'t str) -> Vec<Segment<'t>> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(self.open) {
            let after = &rest[start + self.open.len_utf8()..];
            let digits = after.chars().take_while(|c| c.is_ascii_digit()).count();
            let close = after[digits..].chars().next();
            let index = after[..digits].parse::<usize>().ok();
            match (index, close) {
                (Some(i), Some(c))
                    if i < self.pieces.len()
                        && (c == self.close_inline || c == self.close_block) =>
                {
                    if start > 0 {
                        out.push(Segment::Text(&rest[..start]));
                    }
                    out.push(Segment::Piece(i, c == self.close_block));
                    rest = &after[digits + c.len_utf8()..];
                }
                _ => {
                    let keep = start + self.open.len_utf8();
                    out.push(Segment::Text(&rest[..keep]));
                    rest = &rest[keep..];
                }
            }
        }
        if !rest.is_empty() {
            out.push(Segment::Text(rest));
        }
        out
    }

    /// The text with every placeholder replaced by the bytes it stands for.
    fn restore(&self, text: &str) -> String {
        if !text.contains(self.open) {
            return text.to_string();
        }
        let mut out = String::new();
        for seg in self.segments(text) {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Piece(i, _) => out.push_str(&self.pieces[i]),
            }
        }
        out
    }
}

enum Segment<'t> {
    Text(&'t str),
    Piece(usize, bool),
}

/// A [`Segment`] that no longer borrows the text.
enum Owned {
    Text(String),
    Piece(usize, bool),
}

/// True for a line that opens or closes a fenced code block (up to 3 spaces of indent).
fn fence_of(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let c = trimmed.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = trimmed.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// Replaces raw blocks by block placeholders, each its own paragraph.
fn lift_raw_blocks(markdown: &str, lifted: &mut Lifted) -> Result<String, MarkdownError> {
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    let mut line_no = 1;
    let mut fence: Option<(char, usize)> = None;
    while !rest.is_empty() {
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some((c, n)) = fence {
            if let Some((c2, n2)) = fence_of(bare) {
                if c2 == c && n2 >= n && bare.trim().chars().all(|x| x == c) {
                    fence = None;
                }
            }
        } else if let Some(f) = fence_of(bare) {
            fence = Some(f);
        } else if let Some(n) = raw_open_number(bare) {
            let (_, close) = raw_markers(n);
            let body_start = end;
            let body = &rest[body_start..];
            let needle = format!("\n{close}");
            let mut search = 0;
            let found = loop {
                match body[search..].find(&needle) {
                    Some(i) => {
                        let at = search + i;
                        let after = &body[at + needle.len()..];
                        if after.is_empty() || after.starts_with('\n') || after.starts_with("\r\n")
                        {
                            break Some(at);
                        }
                        search = at + 1;
                    }
                    None => break None,
                }
            };
            let Some(at) = found else {
                return Err(MarkdownError::UnclosedRaw { line: line_no });
            };
            let bytes = &body[..at];
            if let Err(reason) = xml::parse(bytes) {
                return Err(MarkdownError::MalformedRaw {
                    line: line_no,
                    reason,
                });
            }
            let consumed = body_start + at + needle.len();
            line_no += rest[..consumed].matches('\n').count();
            out.push('\n');
            out.push_str(&lifted.placeholder(bytes, true));
            out.push('\n');
            rest = &rest[consumed..];
            continue;
        } else if let Some(prefix) = closes_details(bare) {
            // `</details>` ends its HTML block only at a blank line: a line written right
            // after it (`echo >>`) would join the tag and end up as text inside the expand.
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push('\n');
            }
            let next = rest[end..].lines().next().unwrap_or("");
            if !next.trim_start_matches(['>', ' ']).trim().is_empty() {
                out.push_str(prefix.trim_end());
                out.push('\n');
            }
            line_no += 1;
            rest = &rest[end..];
            continue;
        }
        out.push_str(line);
        line_no += 1;
        rest = &rest[end..];
    }
    Ok(out)
}

/// For a line that is `</details>` (inside quotes too), the quote prefix before it.
fn closes_details(line: &str) -> Option<&str> {
    let body = line.trim_start_matches(['>', ' ']);
    let prefix = &line[..line.len() - body.len()];
    body.trim()
        .eq_ignore_ascii_case("</details>")
        .then_some(prefix)
}

fn raw_open_number(line: &str) -> Option<usize> {
    let inner = line
        .strip_prefix("<!-- confluence:raw")?
        .strip_suffix("-->")?;
    let inner = inner.trim();
    if inner.is_empty() {
        Some(0)
    } else {
        inner.parse().ok().filter(|n| *n > 0)
    }
}

/// Replaces balanced inline XHTML elements by inline placeholders.
fn lift_inline_elements(markdown: &str, lifted: &mut Lifted) -> String {
    let bytes = markdown.as_bytes();
    let mut out = String::with_capacity(markdown.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' || !bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphabetic()) {
            i += 1;
            continue;
        }
        let backslashes = bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes % 2 == 1 {
            i += 1;
            continue;
        }
        let name_len = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.'))
            .count();
        let name = &markdown[i + 1..i + 1 + name_len];
        if matches!(name.to_ascii_lowercase().as_str(), "details" | "summary") {
            i += 1;
            continue;
        }
        // An inline element never spans a blank line.
        let limit = paragraph_end(&markdown[i..]);
        if let Some(len) = xml::parse_one_element(&markdown[i..i + limit]) {
            out.push_str(&markdown[copied..i]);
            out.push_str(&lifted.placeholder(&markdown[i..i + len], false));
            i += len;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&markdown[copied..]);
    out
}

/// Bytes up to the first blank line.
fn paragraph_end(text: &str) -> usize {
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if pos > 0 && line.trim().is_empty() {
            return pos;
        }
        pos += line.len();
    }
    text.len()
}

/// What a frame on the walk's stack is building.
enum Frame {
    Root,
    Paragraph {
        only_block: Option<usize>,
        parts: usize,
        attrs: Option<Pairs>,
        /// It holds an image marked `block=1`: a top-level `ac:image` when it is alone.
        image_block: bool,
    },
    Heading(u8, Option<Pairs>),
    Quote,
    Alert {
        name: &'static str,
        pairs: Option<Pairs>,
    },
    List {
        start: Option<u64>,
        items: Vec<Item>,
    },
    Item {
        task: Option<bool>,
        pairs: Option<Pairs>,
    },
    Table,
    TableHead,
    Row,
    Cell,
    Emphasis,
    Strong,
    Strike,
    Link {
        dest: String,
        title: String,
        plain: String,
    },
    Image {
        dest: String,
        title: String,
        plain: String,
    },
    Code {
        info: Option<String>,
        text: String,
    },
    Html {
        text: String,
    },
    Details {
        title: Option<String>,
        pairs: Pairs,
    },
}

struct Item {
    task: Option<bool>,
    pairs: Option<Pairs>,
    body: String,
}

struct Walk<'a> {
    ctx: &'a PageContext,
    lifted: Lifted,
    out: String,
    stack: Vec<(Frame, usize)>,
    /// Marks standing for task ids still to be given (new tasks).
    new_task_mark: String,
}

pub(crate) fn to_storage(markdown: &str, ctx: &PageContext) -> Result<String, MarkdownError> {
    let mut lifted = Lifted::new(markdown);
    let text = lift_raw_blocks(markdown, &mut lifted)?;
    let text = lift_inline_elements(&text, &mut lifted);
    let new_task_mark = format!("{}new-task{}", lifted.open, lifted.close_inline);
    let mut walk = Walk {
        ctx,
        lifted,
        out: String::with_capacity(text.len() * 2),
        stack: vec![(Frame::Root, 0)],
        new_task_mark,
    };
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM;
    for event in Parser::new_ext(&text, options) {
        walk.event(event);
    }
    while walk.stack.len() > 1 {
        walk.close_top();
    }
    let out = walk.assign_task_ids();
    xml::parse(&out).map_err(MarkdownError::Internal)?;
    Ok(out)
}

fn alert_macro(kind: BlockQuoteKind) -> &'static str {
    let alert = match kind {
        BlockQuoteKind::Note | BlockQuoteKind::Important => "NOTE",
        BlockQuoteKind::Tip => "TIP",
        BlockQuoteKind::Warning => "WARNING",
        BlockQuoteKind::Caution => "CAUTION",
    };
    ALERTS
        .iter()
        .find(|(_, a)| *a == alert)
        .map_or("info", |(m, _)| m)
}

/// The pairs in a lone `<!-- k=v … -->` comment.
fn comment_pairs(html: &str) -> Option<Pairs> {
    let inner = html.trim().strip_prefix("<!--")?.strip_suffix("-->")?;
    if inner.contains("--") {
        return None;
    }
    let pairs = decode_pairs(inner)?;
    (!pairs.is_empty()).then_some(pairs)
}

/// Pairs split into attributes (names with a prefix) and parameters.
fn split_pairs(pairs: Pairs) -> (Pairs, Pairs) {
    let (attrs, params): (Pairs, Pairs) = pairs
        .into_iter()
        .partition(|(k, _)| k.contains(':') || k.starts_with('@'));
    let attrs = attrs
        .into_iter()
        .map(|(k, v)| (k.strip_prefix('@').map_or(k.clone(), str::to_string), v))
        .collect();
    (attrs, params)
}

fn write_macro(name: &str, attrs: Pairs, params: &[(String, String)], out: &mut String) {
    let mut all = vec![("ac:name".to_string(), name.to_string())];
    all.extend(attrs.into_iter().filter(|(k, _)| k != "ac:name"));
    write_start("ac:structured-macro", &all, false, out);
    for (k, v) in params {
        out.push_str("<ac:parameter ac:name=\"");
        escape_attr(k, out);
        out.push_str("\">");
        escape_text(v, out);
        out.push_str("</ac:parameter>");
    }
}

impl Walk<'_> {
    fn push(&mut self, frame: Frame) {
        self.note_content();
        self.stack.push((frame, self.out.len()));
    }

    /// Tells the enclosing paragraph that it holds more than a lone raw block.
    fn note_content(&mut self) {
        if let Some((Frame::Paragraph { parts, .. }, _)) = self.stack.last_mut() {
            *parts += 1;
        }
    }

    fn top(&mut self) -> &mut Frame {
        &mut self.stack.last_mut().expect("the root frame stays").0
    }

    /// The innermost link or image being built, for its plain text.
    fn plain_sink(&mut self) -> Option<&mut String> {
        self.stack.iter_mut().rev().find_map(|(f, _)| match f {
            Frame::Link { plain, .. } | Frame::Image { plain, .. } => Some(plain),
            _ => None,
        })
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.text(&text),
            Event::Code(code) => {
                self.note_content();
                let code = self.lifted.restore(&code);
                if let Some(plain) = self.plain_sink() {
                    plain.push_str(&code);
                }
                self.out.push_str("<code>");
                escape_text(&code, &mut self.out);
                self.out.push_str("</code>");
            }
            Event::Html(html) => {
                if let Frame::Html { text } = self.top() {
                    text.push_str(&html);
                } else {
                    let html = html.to_string();
                    self.inline_html(&html);
                }
            }
            Event::InlineHtml(html) => {
                let html = html.to_string();
                self.inline_html(&html);
            }
            Event::SoftBreak => {
                self.note_content();
                if let Some(plain) = self.plain_sink() {
                    plain.push('\n');
                }
                self.out.push('\n');
            }
            Event::HardBreak => {
                self.note_content();
                self.out.push_str("<br/>");
            }
            Event::Rule => self.out.push_str("<hr/>"),
            Event::TaskListMarker(checked) => {
                if let Some((Frame::Item { task, .. }, _)) = self
                    .stack
                    .iter_mut()
                    .rev()
                    .find(|(f, _)| matches!(f, Frame::Item { .. }))
                {
                    *task = Some(checked);
                }
            }
            Event::FootnoteReference(text) | Event::InlineMath(text) | Event::DisplayMath(text) => {
                self.text(&text)
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        let frame = match tag {
            Tag::Paragraph => Frame::Paragraph {
                only_block: None,
                parts: 0,
                attrs: None,
                image_block: false,
            },
            Tag::Heading { level, .. } => Frame::Heading(level as u8, None),
            Tag::BlockQuote(None) => Frame::Quote,
            Tag::BlockQuote(Some(kind)) => Frame::Alert {
                name: alert_macro(kind),
                pairs: None,
            },
            Tag::CodeBlock(kind) => Frame::Code {
                info: match kind {
                    CodeBlockKind::Fenced(info) => Some(info.to_string()),
                    CodeBlockKind::Indented => None,
                },
                text: String::new(),
            },
            Tag::HtmlBlock => Frame::Html {
                text: String::new(),
            },
            Tag::List(start) => Frame::List {
                start,
                items: Vec::new(),
            },
            Tag::Item => Frame::Item {
                task: None,
                pairs: None,
            },
            Tag::Table(_) => Frame::Table,
            Tag::TableHead => Frame::TableHead,
            Tag::TableRow => Frame::Row,
            Tag::TableCell => Frame::Cell,
            Tag::Emphasis => Frame::Emphasis,
            Tag::Strong => Frame::Strong,
            Tag::Strikethrough => Frame::Strike,
            Tag::Link {
                dest_url, title, ..
            } => Frame::Link {
                dest: self.lifted.restore(&dest_url),
                title: self.lifted.restore(&title),
                plain: String::new(),
            },
            Tag::Image {
                dest_url, title, ..
            } => Frame::Image {
                dest: self.lifted.restore(&dest_url),
                title: self.lifted.restore(&title),
                plain: String::new(),
            },
            // Not enabled; kept as a plain container so nesting stays balanced.
            _ => Frame::Quote,
        };
        self.push(frame);
    }

    fn end(&mut self, _tag: TagEnd) {
        // Details frames are closed by their own HTML; any still open inside this container
        // end with it.
        while matches!(self.top(), Frame::Details { .. }) && self.stack.len() > 1 {
            self.close_top();
        }
        self.close_top();
    }

    fn close_top(&mut self) {
        let (frame, start) = self.stack.pop().expect("never pops the root");
        let body = self.out.split_off(start);
        let out = &mut self.out;
        match frame {
            Frame::Root => {}
            Frame::Paragraph {
                only_block,
                parts,
                attrs,
                image_block,
            } => match only_block {
                Some(i) if parts == 1 && attrs.is_none() => out.push_str(&self.lifted.pieces[i]),
                None if image_block && parts == 1 && attrs.is_none() => {
                    out.push_str(body.trim_matches([' ', '\t']))
                }
                _ => {
                    write_start("p", &attrs.unwrap_or_default(), false, out);
                    out.push_str(body.trim_end_matches([' ', '\t']));
                    out.push_str("</p>");
                }
            },
            Frame::Heading(level, attrs) => {
                write_start(&format!("h{level}"), &attrs.unwrap_or_default(), false, out);
                out.push_str(body.trim_end_matches([' ', '\t']));
                out.push_str(&format!("</h{level}>"));
            }
            Frame::Quote => {
                out.push_str("<blockquote>");
                out.push_str(&body);
                out.push_str("</blockquote>");
            }
            Frame::Alert { name, pairs } => {
                let (attrs, params) = split_pairs(pairs.unwrap_or_default());
                write_macro(name, attrs, &params, out);
                out.push_str("<ac:rich-text-body>");
                out.push_str(&body);
                out.push_str("</ac:rich-text-body></ac:structured-macro>");
            }
            Frame::Code { info, text } => {
                let mut text = self.lifted.restore(&text);
                if text.ends_with('\n') {
                    text.pop();
                }
                let mut tokens = info.as_deref().unwrap_or("").trim().splitn(2, ' ');
                let first = tokens.next().unwrap_or("");
                let (language, rest) = if first.contains('=') {
                    (None, info.as_deref().unwrap_or("").trim().to_string())
                } else {
                    (
                        (!first.is_empty()).then(|| first.to_string()),
                        tokens.next().unwrap_or("").to_string(),
                    )
                };
                let mut pairs = decode_pairs(&rest).unwrap_or_default();
                let name = take(&mut pairs, "ac:name").unwrap_or_else(|| "code".into());
                let (attrs, mut params) = split_pairs(pairs);
                if let Some(language) = language {
                    params.insert(0, ("language".into(), language));
                }
                write_macro(&name, attrs, &params, out);
                out.push_str("<ac:plain-text-body>");
                write_cdata(&text, out);
                out.push_str("</ac:plain-text-body></ac:structured-macro>");
            }
            Frame::Html { text } => {
                let text = self.lifted.restore(&text);
                self.html_block(&text);
            }
            Frame::List { start, items } => self.list(start, items),
            Frame::Item { task, pairs } => {
                if let Some((Frame::List { items, .. }, _)) = self.stack.last_mut() {
                    items.push(Item { task, pairs, body });
                } else {
                    out.push_str(&body);
                }
            }
            Frame::Table => {
                out.push_str("<table><tbody>");
                out.push_str(&body);
                out.push_str("</tbody></table>");
            }
            Frame::TableHead | Frame::Row => {
                out.push_str("<tr>");
                out.push_str(&body);
                out.push_str("</tr>");
            }
            Frame::Cell => {
                let head = matches!(self.stack.last(), Some((Frame::TableHead, _)));
                let name = if head { "th" } else { "td" };
                out.push_str(&format!("<{name}>{body}</{name}>"));
            }
            Frame::Emphasis => out.push_str(&format!("<em>{body}</em>")),
            Frame::Strong => out.push_str(&format!("<strong>{body}</strong>")),
            Frame::Strike => out.push_str(&format!("<s>{body}</s>")),
            Frame::Link { dest, title, plain } => {
                let ctx = self.ctx;
                let link = link_storage(ctx, &dest, &title, &plain, &body);
                self.out.push_str(&link);
                if let Some(sink) = self.plain_sink() {
                    sink.push_str(&plain);
                }
            }
            Frame::Image { dest, title, plain } => {
                let ctx = self.ctx;
                let (image, block) = image_storage(ctx, &dest, &title, &plain);
                self.out.push_str(&image);
                if block {
                    if let Some((Frame::Paragraph { image_block, .. }, _)) = self.stack.last_mut() {
                        *image_block = true;
                    }
                }
            }
            Frame::Details { title, pairs } => {
                let (attrs, mut params) = split_pairs(pairs);
                if let Some(title) = title {
                    params.insert(0, ("title".into(), title));
                }
                write_macro("expand", attrs, &params, out);
                out.push_str("<ac:rich-text-body>");
                out.push_str(&body);
                out.push_str("</ac:rich-text-body></ac:structured-macro>");
            }
        }
    }

    fn list(&mut self, start: Option<u64>, items: Vec<Item>) {
        let out = &mut self.out;
        if start.is_none() && !items.is_empty() && items.iter().all(|i| i.task.is_some()) {
            out.push_str("<ac:task-list>");
            for item in items {
                let mut pairs = item.pairs.unwrap_or_default();
                out.push_str("<ac:task><ac:task-id>");
                match take(&mut pairs, "id") {
                    Some(id) => escape_text(&id, out),
                    None => out.push_str(&self.new_task_mark),
                }
                out.push_str("</ac:task-id>");
                if let Some(uuid) = take(&mut pairs, "uuid") {
                    out.push_str("<ac:task-uuid>");
                    escape_text(&uuid, out);
                    out.push_str("</ac:task-uuid>");
                }
                out.push_str("<ac:task-status>");
                out.push_str(if item.task == Some(true) {
                    "complete"
                } else {
                    "incomplete"
                });
                out.push_str("</ac:task-status><ac:task-body>");
                out.push_str(item.body.trim_end_matches([' ', '\t']));
                out.push_str("</ac:task-body></ac:task>");
            }
            out.push_str("</ac:task-list>");
            return;
        }
        match start {
            Some(1) => out.push_str("<ol>"),
            Some(n) => out.push_str(&format!("<ol start=\"{n}\">")),
            None => out.push_str("<ul>"),
        }
        for item in items {
            out.push_str("<li>");
            if let Some(checked) = item.task {
                out.push_str(if checked { "[x] " } else { "[ ] " });
            }
            out.push_str(&item.body);
            out.push_str("</li>");
        }
        out.push_str(if start.is_some() { "</ol>" } else { "</ul>" });
    }

    fn text(&mut self, text: &str) {
        let literal = matches!(self.top(), Frame::Code { .. });
        if literal {
            if let Frame::Code { text: code, .. } = self.top() {
                code.push_str(text);
            }
            return;
        }
        let segments: Vec<Owned> = self
            .lifted
            .segments(text)
            .into_iter()
            .map(|s| match s {
                Segment::Text(t) => Owned::Text(t.to_string()),
                Segment::Piece(i, b) => Owned::Piece(i, b),
            })
            .collect();
        for segment in segments {
            self.note_content();
            match segment {
                Owned::Text(t) => {
                    if let Some(plain) = self.plain_sink() {
                        plain.push_str(&t);
                    }
                    escape_text(&t, &mut self.out);
                }
                Owned::Piece(i, block) => {
                    if let Some((Frame::Paragraph { only_block, .. }, _)) = self.stack.last_mut() {
                        if block {
                            *only_block = Some(i);
                        }
                    }
                    let piece = self.lifted.pieces[i].clone();
                    if let Some(plain) = self.plain_sink() {
                        plain.push_str(&piece);
                    }
                    self.out.push_str(&piece);
                }
            }
        }
    }

    fn inline_html(&mut self, html: &str) {
        let html = self.lifted.restore(html);
        // A task's ids, at the end of its line.
        if let Some(pairs) = comment_pairs(&html) {
            let item = self
                .stack
                .iter_mut()
                .rev()
                .take(2)
                .find(|(f, _)| matches!(f, Frame::Item { .. }));
            if let Some((
                Frame::Item {
                    task: Some(_),
                    pairs: slot,
                },
                _,
            )) = item
            {
                *slot = Some(pairs);
                let len = self.out.trim_end_matches([' ', '\t']).len();
                self.out.truncate(len);
                return;
            }
            // A paragraph's or heading's attributes.
            if let Some((Frame::Paragraph { attrs: slot, .. } | Frame::Heading(_, slot), _)) =
                self.stack.last_mut()
            {
                if slot.is_none() {
                    *slot = Some(pairs);
                    return;
                }
            }
        }
        self.note_content();
        let trimmed = html.trim();
        let lower = trimmed.to_ascii_lowercase();
        if matches!(lower.as_str(), "<br>" | "<br/>" | "<br />") {
            self.out.push_str("<br/>");
        } else if trimmed.starts_with("<!--") && xml::parse(trimmed).is_ok() {
            self.out.push_str(&html);
        } else {
            escape_text(&html, &mut self.out);
        }
    }

    fn html_block(&mut self, text: &str) {
        let trimmed = text.trim();
        // Pairs for the panel this comment opens.
        if let Some(pairs) = comment_pairs(trimmed) {
            let len = self.out.len();
            if let Some((Frame::Alert { pairs: slot, .. }, s)) = self.stack.last_mut() {
                if slot.is_none() && len == *s {
                    *slot = Some(pairs);
                    return;
                }
            }
        }
        if let Some((title, pairs)) = details_open(trimmed) {
            self.push(Frame::Details { title, pairs });
            return;
        }
        if trimmed.eq_ignore_ascii_case("</details>") && matches!(self.top(), Frame::Details { .. })
        {
            self.close_top();
            return;
        }
        if !trimmed.is_empty() && xml::parse(trimmed).is_ok() {
            self.out.push_str(trimmed);
        } else if !trimmed.is_empty() {
            self.out.push_str("<p>");
            escape_text(trimmed, &mut self.out);
            self.out.push_str("</p>");
        }
    }

    /// Gives every new task the next id after the largest one in the page.
    fn assign_task_ids(self) -> String {
        let out = self.out;
        if !out.contains(&self.new_task_mark) {
            return out;
        }
        let mut max: u64 = 0;
        for part in out.split("<ac:task-id>").skip(1) {
            if let Some(end) = part.find("</ac:task-id>") {
                if let Ok(n) = part[..end].trim().parse::<u64>() {
                    max = max.max(n);
                }
            }
        }
        let mut result = String::with_capacity(out.len());
        let mut pieces = out.split(&self.new_task_mark);
        result.push_str(pieces.next().unwrap_or(""));
        for piece in pieces {
            max += 1;
            result.push_str(&max.to_string());
            result.push_str(piece);
        }
        result
    }
}

/// `<details>`, an optional `<summary>`, an optional pairs comment.
fn details_open(text: &str) -> Option<(Option<String>, Pairs)> {
    let lower = text.to_ascii_lowercase();
    if !lower.starts_with("<details>") {
        return None;
    }
    let mut rest = text["<details>".len()..].trim_start();
    let mut title = None;
    if rest.to_ascii_lowercase().starts_with("<summary>") {
        let end = rest.to_ascii_lowercase().find("</summary>")?;
        let element = &rest[..end + "</summary>".len()];
        let nodes = xml::parse(element).ok()?;
        let mut plain = String::new();
        collect_text(&nodes, &mut plain);
        title = Some(plain);
        rest = rest[end + "</summary>".len()..].trim_start();
    }
    let mut pairs = Vec::new();
    if !rest.is_empty() {
        pairs = comment_pairs(rest)?;
    }
    Some((title, pairs))
}

fn collect_text(nodes: &[xml::Node], out: &mut String) {
    for node in nodes {
        match &node.kind {
            xml::Kind::Text(t) => out.push_str(t),
            xml::Kind::Element(e) => collect_text(&e.children, out),
            _ => {}
        }
    }
}

/// A relative link to `…/@pages/NAME.md`: the page title and the space key when the path
/// goes through a space directory.
fn page_target(ctx: &PageContext, dest: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = dest.split('/').collect();
    let ups = parts.iter().take_while(|p| **p == "..").count();
    let rest = &parts[ups..];
    let (space, file) = match rest {
        ["@pages", file] => (None, *file),
        [space, "@pages", file] if ups >= 1 => (Some(percent_decode(space)?), *file),
        _ => return None,
    };
    let name = percent_decode(file)?;
    let title = (ctx.decode)(name.strip_suffix(".md")?)?;
    Some((title, space))
}

/// A relative link to one file beside the page: an attachment.
fn attachment_target(ctx: &PageContext, dest: &str) -> Option<String> {
    if dest.is_empty()
        || dest.contains('/')
        || has_scheme(dest)
        || dest.starts_with(['#', '?', '.'])
    {
        return None;
    }
    (ctx.decode)(&percent_decode(dest)?)
}

fn link_storage(ctx: &PageContext, dest: &str, title: &str, plain: &str, body: &str) -> String {
    let mut out = String::new();
    let pairs = decode_pairs(title);
    // The resource element, its attributes, and the link body it has by default.
    let resource: Option<(&str, Pairs, &str)> =
        if let Some(rest) = dest.strip_prefix("confluence-user:") {
            let (kind, value) = rest.split_once(':').unwrap_or(("account-id", rest));
            let value = percent_decode(value).unwrap_or_else(|| value.to_string());
            Some(("ri:user", vec![(format!("ri:{kind}"), value)], "none"))
        } else if let Some(colour) = dest.strip_prefix("confluence-status:") {
            let mut pairs = pairs.unwrap_or_default();
            let (attrs, rest) = split_pairs(std::mem::take(&mut pairs));
            let mut params = Vec::new();
            if !colour.is_empty() {
                params.push((
                    "colour".to_string(),
                    percent_decode(colour).unwrap_or_else(|| colour.to_string()),
                ));
            }
            if !plain.is_empty() {
                params.push(("title".to_string(), plain.to_string()));
            }
            params.extend(rest);
            write_macro("status", attrs, &params, &mut out);
            out.push_str("</ac:structured-macro>");
            return out;
        } else if let Some((page, space)) = page_target(ctx, dest) {
            let mut attrs = Vec::new();
            if let Some(space) = space {
                attrs.push(("ri:space-key".to_string(), space));
            }
            attrs.push(("ri:content-title".to_string(), page));
            Some(("ri:page", attrs, "plain"))
        } else {
            attachment_target(ctx, dest).map(|file| {
                (
                    "ri:attachment",
                    vec![("ri:filename".to_string(), file)],
                    "plain",
                )
            })
        };
    let Some((element, mut resource_attrs, default_body)) = resource else {
        let mut attrs = vec![("href".to_string(), dest.to_string())];
        if !title.is_empty() {
            attrs.push(("title".to_string(), title.to_string()));
        }
        write_start("a", &attrs, false, &mut out);
        out.push_str(body);
        out.push_str("</a>");
        return out;
    };
    let mut pairs = pairs.unwrap_or_default();
    let body_kind = take(&mut pairs, "body");
    let (extra, link_attrs): (Pairs, Pairs) =
        pairs.into_iter().partition(|(k, _)| k.starts_with("ri:"));
    resource_attrs.extend(extra);
    write_start("ac:link", &link_attrs, false, &mut out);
    write_start(element, &resource_attrs, true, &mut out);
    let mut plain_form = String::new();
    escape_text(plain, &mut plain_form);
    let kind = match body_kind.as_deref() {
        Some(k @ ("none" | "plain" | "link")) => k,
        _ if default_body == "none" => "none",
        _ if plain_form == body => "plain",
        _ => "link",
    };
    match kind {
        "plain" => {
            out.push_str("<ac:plain-text-link-body>");
            write_cdata(plain, &mut out);
            out.push_str("</ac:plain-text-link-body>");
        }
        "link" => {
            out.push_str("<ac:link-body>");
            out.push_str(body);
            out.push_str("</ac:link-body>");
        }
        _ => {}
    }
    out.push_str("</ac:link>");
    out
}

/// The `ac:image` of a Markdown image, and whether it was a top-level image (`block=1`).
fn image_storage(ctx: &PageContext, dest: &str, title: &str, alt: &str) -> (String, bool) {
    let mut block = false;
    let mut attrs = Vec::new();
    if !alt.is_empty() {
        attrs.push(("ac:alt".to_string(), alt.to_string()));
    }
    let mut resource_attrs = Vec::new();
    match decode_pairs(title) {
        Some(pairs) => {
            for (k, v) in pairs {
                if k == "block" && v == "1" {
                    block = true;
                } else if k.starts_with("ri:") {
                    resource_attrs.push((k, v));
                } else {
                    attrs.push((k, v));
                }
            }
        }
        None => attrs.push(("ac:title".to_string(), title.to_string())),
    }
    let mut out = String::new();
    write_start("ac:image", &attrs, false, &mut out);
    match attachment_target(ctx, dest) {
        Some(file) => {
            resource_attrs.insert(0, ("ri:filename".to_string(), file));
            write_start("ri:attachment", &resource_attrs, true, &mut out);
        }
        None => {
            resource_attrs.insert(0, ("ri:value".to_string(), dest.to_string()));
            write_start("ri:url", &resource_attrs, true, &mut out);
        }
    }
    out.push_str("</ac:image>");
    (out, block)
}
