//! The storage format (Confluence's XHTML plus `ac:`/`ri:` elements) read into a small tree,
//! and turned into what the other body representations need: HTML for `view`, `export_view`
//! and `styled_view`, an ADF document for `atlas_doc_format`, and plain text for CQL `text ~`.
//!
//! Real Confluence renders through its whole macro engine; clients only rely on the result being
//! HTML (never `ac:` elements), with macros as `div`/`pre`/`span`, page links as `<a href>`,
//! attachment images as `<img src=…/download/attachments/…>`, and ADF being a
//! `{"type":"doc","version":1,…}` document. So this is a tolerant hand-written reader (storage
//! bodies written by clients are not always well-formed XML) and a renderer of our own that
//! follows the class names of Confluence's view format where they are known, not pixel-faithful.

use serde_json::{json, Value};

/// One node of a storage body. Text keeps its entities as written (it is re-emitted into HTML
/// as is); CDATA holds literal text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Elem {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<Node>,
    },
    Text(String),
    CData(String),
}

/// An element being read: name, attributes, children so far.
type Open = (String, Vec<(String, String)>, Vec<Node>);

/// (container id, filename) → (attachment id, version number, version time in ms).
pub(crate) type FindAttachment<'a> = &'a dyn Fn(u64, &str) -> Option<(u64, u32, i64)>;

const VOID: &[&str] = &[
    "br", "hr", "img", "col", "input", "meta", "link", "wbr", "area", "base", "source",
];

fn parse_attrs(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if start == i {
            break;
        }
        let name = s[start..i].to_string();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = s[vs..i.min(b.len())].to_string();
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[vs..i].to_string();
            }
        }
        out.push((name, value));
    }
    out
}

/// Reads a storage body. Never fails: unclosed elements close at the end, stray end tags are
/// dropped.
pub(crate) fn parse(s: &str) -> Vec<Node> {
    // (name, attrs, children) of the open elements; the root has an empty name.
    let mut stack: Vec<Open> = vec![(String::new(), Vec::new(), Vec::new())];
    let mut i = 0;
    let close_top = |stack: &mut Vec<Open>| {
        let (name, attrs, children) = stack.pop().expect("not the root");
        stack.last_mut().expect("root").2.push(Node::Elem {
            name,
            attrs,
            children,
        });
    };
    while i < s.len() {
        let rest = &s[i..];
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").unwrap_or(r.len());
            stack
                .last_mut()
                .expect("root")
                .2
                .push(Node::CData(r[..end].to_string()));
            i += 9 + end + 3.min(r.len() - end);
        } else if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            i += rest.find('>').map_or(rest.len(), |e| e + 1);
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').unwrap_or(r.len());
            let name = r[..end].trim().to_string();
            if stack.iter().skip(1).any(|(n, _, _)| *n == name) {
                while stack.len() > 1 {
                    let top = stack.last().expect("open").0 == name;
                    close_top(&mut stack);
                    if top {
                        break;
                    }
                }
            }
            i += 2 + end + 1;
        } else if rest.starts_with('<') && rest[1..].starts_with(|c: char| c.is_ascii_alphabetic())
        {
            let end = rest.find('>').unwrap_or(rest.len());
            let inner = &rest[1..end];
            let self_closing = inner.ends_with('/');
            let inner = inner.trim_end_matches('/');
            let name_end = inner
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(inner.len());
            let name = inner[..name_end].to_string();
            let attrs = parse_attrs(&inner[name_end..]);
            if self_closing || VOID.contains(&name.to_ascii_lowercase().as_str()) {
                stack.last_mut().expect("root").2.push(Node::Elem {
                    name,
                    attrs,
                    children: Vec::new(),
                });
            } else {
                stack.push((name, attrs, Vec::new()));
            }
            i += end + 1;
        } else {
            let end = rest[1..].find('<').map_or(rest.len(), |e| e + 1);
            stack
                .last_mut()
                .expect("root")
                .2
                .push(Node::Text(rest[..end].to_string()));
            i += end;
        }
    }
    while stack.len() > 1 {
        close_top(&mut stack);
    }
    stack.pop().expect("root").2
}

/// Decodes the entities of XML text (the XML five, `&nbsp;` and friends, numeric ones).
pub(crate) fn decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let Some(semi) = after.find(';').filter(|n| *n <= 10) else {
            out.push('&');
            rest = after;
            continue;
        };
        let ent = &after[..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            "ndash" => Some('–'),
            "mdash" => Some('—'),
            "hellip" => Some('…'),
            "rsquo" => Some('’'),
            "lsquo" => Some('‘'),
            "rdquo" => Some('”'),
            "ldquo" => Some('“'),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn child<'a>(children: &'a [Node], name: &str) -> Option<&'a Node> {
    children
        .iter()
        .find(|n| matches!(n, Node::Elem { name: m, .. } if m == name))
}

fn kids(n: &Node) -> &[Node] {
    match n {
        Node::Elem { children, .. } => children,
        _ => &[],
    }
}

/// The text of nodes, entities decoded, CDATA included, parameters of macros left out.
pub(crate) fn text_of(nodes: &[Node]) -> String {
    let mut out = String::new();
    collect_text(nodes, &mut out);
    out
}

fn collect_text(nodes: &[Node], out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(&decode(t)),
            Node::CData(t) => out.push_str(t),
            Node::Elem { name, children, .. } => {
                if name == "ac:parameter" {
                    continue;
                }
                let block = matches!(
                    name.as_str(),
                    "p" | "li"
                        | "td"
                        | "th"
                        | "h1"
                        | "h2"
                        | "h3"
                        | "h4"
                        | "h5"
                        | "h6"
                        | "br"
                        | "tr"
                        | "div"
                        | "pre"
                        | "ac:task"
                        | "ac:structured-macro"
                );
                if block && !out.ends_with([' ', '\n']) && !out.is_empty() {
                    out.push(' ');
                }
                collect_text(children, out);
                if block {
                    out.push(' ');
                }
            }
        }
    }
}

/// Plain text of a storage body: what CQL `text ~` searches.
pub(crate) fn plain_text(storage: &str) -> String {
    text_of(&parse(storage))
}

/// What the HTML renderer needs to know about the site.
pub(crate) struct Site<'a> {
    /// Prefix of site links: the context path (`/wiki`) for `view`, the base URL for
    /// `export_view`.
    pub prefix: &'a str,
    pub page_id: u64,
    pub space_key: &'a str,
    pub title: &'a str,
    pub cloud: bool,
    /// The one user's display name and wire identity (account id or username).
    pub user_name: &'a str,
    pub user_id: &'a str,
    /// (space key, title) → page or blog post id.
    pub find_page: &'a dyn Fn(&str, &str) -> Option<u64>,
    /// (container id, filename) → (attachment id, version number, version time in ms).
    pub find_attachment: FindAttachment<'a>,
}

fn plus_title(s: &str) -> String {
    crate::api::render::encode_component(s).replace("%20", "+")
}

fn anchor(title: &str, heading: &str) -> String {
    let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    format!("{}-{}", strip(title), strip(heading))
}

fn headings(nodes: &[Node], out: &mut Vec<(u8, String)>) {
    for n in nodes {
        if let Node::Elem { name, children, .. } = n {
            let b = name.as_bytes();
            if b.len() == 2 && b[0] == b'h' && (b'1'..=b'6').contains(&b[1]) {
                out.push((b[1] - b'0', text_of(children).trim().to_string()));
            } else {
                headings(children, out);
            }
        }
    }
}

struct Html<'a, 'b> {
    site: &'b Site<'a>,
    toc: Vec<(u8, String)>,
    out: String,
}

impl Html<'_, '_> {
    fn nodes(&mut self, nodes: &[Node]) {
        for n in nodes {
            self.node(n);
        }
    }

    fn node(&mut self, n: &Node) {
        match n {
            Node::Text(t) => self.out.push_str(t),
            Node::CData(t) => self.out.push_str(&escape(t)),
            Node::Elem {
                name,
                attrs,
                children,
            } => {
                if name.starts_with("ac:") || name.starts_with("ri:") {
                    self.special(name, attrs, children);
                } else {
                    self.element(name, attrs, children);
                }
            }
        }
    }

    fn element(&mut self, name: &str, attrs: &[(String, String)], children: &[Node]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            if !k.contains(':') {
                self.out.push_str(&format!(" {k}=\"{v}\""));
            }
        }
        let b = name.as_bytes();
        if b.len() == 2 && b[0] == b'h' && (b'1'..=b'6').contains(&b[1]) {
            let id = anchor(self.site.title, text_of(children).trim());
            self.out.push_str(&format!(" id=\"{}\"", escape(&id)));
        }
        if VOID.contains(&name.to_ascii_lowercase().as_str()) {
            self.out.push_str(" />");
            return;
        }
        self.out.push('>');
        self.nodes(children);
        self.out.push_str(&format!("</{name}>"));
    }

    fn special(&mut self, name: &str, attrs: &[(String, String)], children: &[Node]) {
        match name {
            "ac:structured-macro" | "ac:macro" => self.macro_(attrs, children),
            "ac:task-list" => {
                self.out.push_str(&format!(
                    "<ul class=\"inline-task-list\" data-inline-tasks-content-id=\"{}\">",
                    self.site.page_id
                ));
                for t in children {
                    let tk = kids(t);
                    let id = child(tk, "ac:task-id").map(|n| text_of(kids(n)));
                    let done = child(tk, "ac:task-status")
                        .is_some_and(|n| text_of(kids(n)).trim() == "complete");
                    self.out.push_str(&format!(
                        "<li data-inline-task-id=\"{}\"{}>",
                        escape(id.as_deref().unwrap_or("").trim()),
                        if done { " class=\"checked\"" } else { "" }
                    ));
                    if let Some(body) = child(tk, "ac:task-body") {
                        self.nodes(kids(body));
                    }
                    self.out.push_str("</li>");
                }
                self.out.push_str("</ul>");
            }
            "ac:link" => self.link(children),
            "ac:image" => self.image(attrs, children),
            "ac:layout" => {
                self.out.push_str("<div class=\"contentLayout2\">");
                self.nodes(children);
                self.out.push_str("</div>");
            }
            "ac:layout-section" => {
                let kind = attr(attrs, "ac:type").unwrap_or("single").replace('_', "-");
                self.out.push_str(&format!(
                    "<div class=\"columnLayout {kind}\" data-layout=\"{kind}\">"
                ));
                self.nodes(children);
                self.out.push_str("</div>");
            }
            "ac:layout-cell" => {
                self.out.push_str(
                    "<div class=\"cell normal\" data-type=\"normal\"><div class=\"innerCell\">",
                );
                self.nodes(children);
                self.out.push_str("</div></div>");
            }
            "ac:emoticon" => {
                let n = attr(attrs, "ac:name").unwrap_or("smile");
                let fallback = attr(attrs, "ac:emoji-fallback").unwrap_or(n);
                self.out.push_str(&format!(
                    "<span class=\"emoticon emoticon-{n}\" data-emoticon-name=\"{n}\">{fallback}</span>"
                ));
            }
            "ac:plain-text-body" | "ac:plain-text-link-body" => {
                let t = text_of(children);
                self.out.push_str(&escape(&t));
            }
            "ac:parameter" | "ac:placeholder" | "ac:task-id" | "ac:task-status" => {}
            _ => self.nodes(children),
        }
    }

    fn macro_(&mut self, attrs: &[(String, String)], children: &[Node]) {
        let name = attr(attrs, "ac:name").unwrap_or("unknown").to_string();
        let param = |p: &str| -> Option<String> {
            children.iter().find_map(|n| match n {
                Node::Elem {
                    name,
                    attrs,
                    children,
                } if name == "ac:parameter" && attr(attrs, "ac:name") == Some(p) => {
                    Some(text_of(children))
                }
                _ => None,
            })
        };
        let rich = child(children, "ac:rich-text-body").map(kids);
        let plain = child(children, "ac:plain-text-body").map(|n| text_of(kids(n)));
        match name.as_str() {
            "code" | "noformat" => {
                let lang = param("language").unwrap_or_else(|| "none".to_string());
                self.out.push_str(&format!(
                    "<div class=\"code panel pdl conf-macro output-block\" data-macro-name=\"{name}\"><div class=\"codeContent panelContent pdl\"><pre class=\"syntaxhighlighter-pre\" data-syntaxhighlighter-params=\"brush: {}; gutter: false\" data-theme=\"Confluence\">{}</pre></div></div>",
                    escape(&lang),
                    escape(plain.as_deref().unwrap_or(""))
                ));
            }
            "info" | "note" | "warning" | "tip" => {
                let (class, icon) = match name.as_str() {
                    "info" => ("information", "info"),
                    "note" => ("note", "warning"),
                    "warning" => ("warning", "error"),
                    _ => ("tip", "approve"),
                };
                self.out.push_str(&format!(
                    "<div class=\"confluence-information-macro confluence-information-macro-{class} conf-macro output-block\" data-macro-name=\"{name}\"><span class=\"aui-icon aui-icon-small aui-iconfont-{icon} confluence-information-macro-icon\"></span>"
                ));
                if let Some(t) = param("title") {
                    self.out
                        .push_str(&format!("<p class=\"title\">{}</p>", escape(&t)));
                }
                self.out
                    .push_str("<div class=\"confluence-information-macro-body\">");
                if let Some(r) = rich {
                    self.nodes(r);
                }
                self.out.push_str("</div></div>");
            }
            "expand" => {
                let title = param("title").unwrap_or_else(|| "Click here to expand...".into());
                self.out.push_str(&format!(
                    "<div class=\"expand-container conf-macro output-block\" data-macro-name=\"expand\"><div class=\"expand-control\"><span class=\"expand-control-icon icon\">&nbsp;</span><span class=\"expand-control-text\">{}</span></div><div class=\"expand-content expand-hidden\">",
                    escape(&title)
                ));
                if let Some(r) = rich {
                    self.nodes(r);
                }
                self.out.push_str("</div></div>");
            }
            "toc" => {
                self.out.push_str(
                    "<div class=\"toc-macro client-side-toc-macro conf-macro output-block\" data-macro-name=\"toc\"><ul>",
                );
                let toc = std::mem::take(&mut self.toc);
                for (level, h) in &toc {
                    self.out.push_str(&format!(
                        "<li class=\"toc-level-{level}\"><a href=\"#{}\">{}</a></li>",
                        escape(&anchor(self.site.title, h)),
                        escape(h)
                    ));
                }
                self.toc = toc;
                self.out.push_str("</ul></div>");
            }
            "status" => {
                let colour = param("colour").unwrap_or_else(|| "Grey".into());
                let class = match colour.as_str() {
                    "Green" => " aui-lozenge-success",
                    "Red" => " aui-lozenge-error",
                    "Yellow" => " aui-lozenge-current",
                    "Blue" => " aui-lozenge-complete",
                    "Purple" => " aui-lozenge-progress",
                    _ => "",
                };
                self.out.push_str(&format!(
                    "<span class=\"status-macro aui-lozenge{class} conf-macro output-inline\" data-macro-name=\"status\">{}</span>",
                    escape(&param("title").unwrap_or_default())
                ));
            }
            other => {
                self.out.push_str(&format!(
                    "<div class=\"conf-macro output-block\" data-macro-name=\"{}\">",
                    escape(other)
                ));
                if let Some(r) = rich {
                    self.nodes(r);
                } else if let Some(p) = plain {
                    self.out.push_str(&format!("<pre>{}</pre>", escape(&p)));
                }
                self.out.push_str("</div>");
            }
        }
    }

    fn attachment_url(&self, container: u64, filename: &str) -> (String, Option<u64>) {
        let base = format!(
            "{}/download/attachments/{container}/{}",
            self.site.prefix,
            crate::api::render::encode_component(filename)
        );
        match (self.site.find_attachment)(container, filename) {
            Some((id, v, ms)) => (
                format!("{base}?version={v}&modificationDate={ms}&api=v2"),
                Some(id),
            ),
            None => (base, None),
        }
    }

    fn link(&mut self, children: &[Node]) {
        let body = |me: &mut Self, default: &str| {
            if let Some(b) = child(children, "ac:link-body") {
                me.nodes(kids(b));
            } else if let Some(b) = child(children, "ac:plain-text-link-body") {
                let t = text_of(kids(b));
                me.out.push_str(&escape(&t));
            } else {
                me.out.push_str(&escape(default));
            }
        };
        let anchor_attr = children
            .iter()
            .find(|n| matches!(n, Node::Elem { name, .. } if name.starts_with("ri:")));
        let Some(Node::Elem { name, attrs, .. }) = anchor_attr else {
            body(self, "");
            return;
        };
        match name.as_str() {
            "ri:page" | "ri:blog-post" => {
                let title = decode(attr(attrs, "ri:content-title").unwrap_or(""));
                let key = attr(attrs, "ri:space-key").unwrap_or(self.site.space_key);
                let id = (self.site.find_page)(key, &title);
                let id_attr = id
                    .map(|i| format!(" data-linked-resource-id=\"{i}\""))
                    .unwrap_or_default();
                self.out.push_str(&format!(
                    "<a href=\"{}/display/{key}/{}\"{id_attr} data-linked-resource-type=\"page\">",
                    self.site.prefix,
                    plus_title(&title)
                ));
                body(self, &title);
                self.out.push_str("</a>");
            }
            "ri:attachment" => {
                let filename = decode(attr(attrs, "ri:filename").unwrap_or(""));
                let (url, id) = self.attachment_url(self.site.page_id, &filename);
                let id_attr = id
                    .map(|i| format!(" data-linked-resource-id=\"{i}\""))
                    .unwrap_or_default();
                self.out.push_str(&format!(
                    "<a href=\"{}\"{id_attr} data-linked-resource-type=\"attachment\">",
                    escape(&url)
                ));
                body(self, &filename);
                self.out.push_str("</a>");
            }
            "ri:user" => {
                let (who, href) = if self.site.cloud {
                    (
                        format!("data-account-id=\"{}\"", escape(self.site.user_id)),
                        format!("{}/people/{}", self.site.prefix, self.site.user_id),
                    )
                } else {
                    (
                        format!("data-username=\"{}\"", escape(self.site.user_id)),
                        format!("{}/display/~{}", self.site.prefix, self.site.user_id),
                    )
                };
                self.out.push_str(&format!(
                    "<a class=\"confluence-userlink user-mention\" {who} href=\"{}\" data-linked-resource-type=\"userinfo\">",
                    escape(&href)
                ));
                body(self, &format!("@{}", self.site.user_name));
                self.out.push_str("</a>");
            }
            "ri:url" => {
                let url = attr(attrs, "ri:value").unwrap_or("");
                self.out.push_str(&format!("<a href=\"{url}\">"));
                body(self, &decode(url));
                self.out.push_str("</a>");
            }
            _ => body(self, ""),
        }
    }

    fn image(&mut self, attrs: &[(String, String)], children: &[Node]) {
        let size: String = ["width", "height"]
            .iter()
            .filter_map(|k| attr(attrs, &format!("ac:{k}")).map(|v| format!(" {k}=\"{v}\"")))
            .collect();
        let src = children.iter().find_map(|n| match n {
            Node::Elem { name, attrs, .. } if name == "ri:attachment" => {
                let f = decode(attr(attrs, "ri:filename").unwrap_or(""));
                Some(self.attachment_url(self.site.page_id, &f).0)
            }
            Node::Elem { name, attrs, .. } if name == "ri:url" => {
                Some(decode(attr(attrs, "ri:value").unwrap_or("")))
            }
            _ => None,
        });
        let src = escape(&src.unwrap_or_default());
        self.out.push_str(&format!(
            "<span class=\"confluence-embedded-file-wrapper\"><img class=\"confluence-embedded-image\" src=\"{src}\" data-image-src=\"{src}\"{size} /></span>"
        ));
    }
}

/// The `view` (and `export_view`) HTML of a storage body.
pub(crate) fn to_html(storage: &str, site: &Site<'_>) -> String {
    let tree = parse(storage);
    let mut toc = Vec::new();
    headings(&tree, &mut toc);
    let mut h = Html {
        site,
        toc,
        out: String::with_capacity(storage.len() * 2),
    };
    h.nodes(&tree);
    h.out
}

fn text_node(t: &str, marks: &[&str]) -> Option<Value> {
    if t.is_empty() {
        return None;
    }
    let mut o = json!({"type": "text", "text": t});
    if !marks.is_empty() {
        o["marks"] = Value::Array(marks.iter().map(|m| json!({"type": m})).collect());
    }
    Some(o)
}

fn inline(nodes: &[Node], marks: &mut Vec<&'static str>, out: &mut Vec<Value>) {
    for n in nodes {
        match n {
            Node::Text(t) => out.extend(text_node(&decode(t).replace('\n', " "), marks)),
            Node::CData(t) => out.extend(text_node(t, marks)),
            Node::Elem { name, children, .. } => {
                let mark = match name.as_str() {
                    "strong" | "b" => Some("strong"),
                    "em" | "i" => Some("em"),
                    "code" => Some("code"),
                    "u" => Some("underline"),
                    _ => None,
                };
                if name == "br" {
                    out.push(json!({"type": "hardBreak"}));
                } else if name == "ac:parameter" {
                } else if let Some(m) = mark {
                    marks.push(m);
                    inline(children, marks, out);
                    marks.pop();
                } else {
                    inline(children, marks, out);
                }
            }
        }
    }
}

fn paragraph(nodes: &[Node]) -> Option<Value> {
    let mut content = Vec::new();
    inline(nodes, &mut Vec::new(), &mut content);
    let blank = content
        .iter()
        .all(|c| c["text"].as_str().is_some_and(|t| t.trim().is_empty()));
    (!blank).then(|| json!({"type": "paragraph", "content": content}))
}

fn is_block(n: &Node) -> bool {
    matches!(n, Node::Elem { name, .. } if matches!(name.as_str(),
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "table" | "div" | "pre"
        | "blockquote" | "ac:structured-macro" | "ac:task-list" | "ac:layout" | "ac:layout-section"
        | "ac:layout-cell" | "ac:image" | "hr"))
}

fn blocks(nodes: &[Node], out: &mut Vec<Value>) {
    let mut run: Vec<Node> = Vec::new();
    let flush = |run: &mut Vec<Node>, out: &mut Vec<Value>| {
        out.extend(paragraph(run));
        run.clear();
    };
    for n in nodes {
        if !is_block(n) {
            run.push(n.clone());
            continue;
        }
        flush(&mut run, out);
        let Node::Elem {
            name,
            attrs,
            children,
        } = n
        else {
            continue;
        };
        match name.as_str() {
            "p" => out.extend(paragraph(children)),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let mut content = Vec::new();
                inline(children, &mut Vec::new(), &mut content);
                out.push(json!({"type": "heading", "attrs": {"level": name.as_bytes()[1] - b'0'}, "content": content}));
            }
            "hr" => out.push(json!({"type": "rule"})),
            "ul" | "ol" => {
                let items: Vec<Value> = children
                    .iter()
                    .filter(|c| matches!(c, Node::Elem { name, .. } if name == "li"))
                    .map(|li| {
                        let mut content = Vec::new();
                        blocks(kids(li), &mut content);
                        if content.is_empty() {
                            content.push(json!({"type": "paragraph", "content": []}));
                        }
                        json!({"type": "listItem", "content": content})
                    })
                    .collect();
                if !items.is_empty() {
                    let kind = if name == "ul" {
                        "bulletList"
                    } else {
                        "orderedList"
                    };
                    out.push(json!({"type": kind, "content": items}));
                }
            }
            "pre" => out.push(json!({"type": "codeBlock", "content": [{"type": "text", "text": text_of(children)}]})),
            "ac:structured-macro" => {
                let mname = attr(attrs, "ac:name").unwrap_or("");
                let lang = children.iter().find_map(|c| match c {
                    Node::Elem { name, attrs, children } if name == "ac:parameter" && attr(attrs, "ac:name") == Some("language") => Some(text_of(children)),
                    _ => None,
                });
                let rich = child(children, "ac:rich-text-body").map(kids);
                match mname {
                    "code" | "noformat" => {
                        let t = child(children, "ac:plain-text-body")
                            .map(|b| text_of(kids(b)))
                            .unwrap_or_default();
                        let mut o = json!({"type": "codeBlock", "attrs": {"language": lang.unwrap_or_default()}});
                        if !t.is_empty() {
                            o["content"] = json!([{"type": "text", "text": t}]);
                        }
                        out.push(o);
                    }
                    "info" | "note" | "warning" | "tip" => {
                        let kind = match mname {
                            "tip" => "success",
                            "warning" => "error",
                            "note" => "warning",
                            _ => "info",
                        };
                        let mut content = Vec::new();
                        blocks(rich.unwrap_or(&[]), &mut content);
                        if !content.is_empty() {
                            out.push(json!({"type": "panel", "attrs": {"panelType": kind}, "content": content}));
                        }
                    }
                    _ => {
                        if let Some(r) = rich {
                            blocks(r, out);
                        } else {
                            out.extend(paragraph(std::slice::from_ref(n)));
                        }
                    }
                }
            }
            "ac:task-list" | "table" => {
                for row in children {
                    match row {
                        Node::Elem { name, children, .. } if name == "tbody" || name == "thead" => {
                            for r in children {
                                out.extend(paragraph(std::slice::from_ref(r)));
                            }
                        }
                        Node::Elem { name, .. } if name == "colgroup" => {}
                        other => out.extend(paragraph(std::slice::from_ref(other))),
                    }
                }
            }
            _ => blocks(children, out),
        }
    }
    flush(&mut run, out);
}

/// The `atlas_doc_format` value of a storage body: an ADF document as a JSON string, with
/// headings, paragraphs (text with strong/em/code/underline marks), lists, code blocks and
/// panels; other constructs become paragraphs of their text.
pub(crate) fn to_adf(storage: &str) -> String {
    let mut content = Vec::new();
    blocks(&parse(storage), &mut content);
    json!({"type": "doc", "version": 1, "content": content}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site<'a>(
        find_page: &'a dyn Fn(&str, &str) -> Option<u64>,
        find_attachment: FindAttachment<'a>,
    ) -> Site<'a> {
        Site {
            prefix: "/wiki",
            page_id: 7,
            space_key: "DOCS",
            title: "My Page",
            cloud: true,
            user_name: "Demo User",
            user_id: "557058:abc",
            find_page,
            find_attachment,
        }
    }

    #[test]
    fn html_has_no_storage_elements() {
        let storage = concat!(
            r#"<h2>Intro &amp; more</h2><p>Hi <strong>there</strong><br/>again</p>"#,
            r#"<ac:structured-macro ac:name="toc" />"#,
            r#"<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">rust</ac:parameter><ac:plain-text-body><![CDATA[if a < b { x() }]]></ac:plain-text-body></ac:structured-macro>"#,
            r#"<ac:structured-macro ac:name="info"><ac:rich-text-body><p>note</p></ac:rich-text-body></ac:structured-macro>"#,
            r#"<ac:link><ri:page ri:space-key="ENG" ri:content-title="Storage &amp; Cache" /></ac:link>"#,
            r#"<ac:image ac:width="40"><ri:attachment ri:filename="a b.png" /></ac:image>"#,
            r#"<ac:task-list><ac:task><ac:task-id>3</ac:task-id><ac:task-status>complete</ac:task-status><ac:task-body>done it</ac:task-body></ac:task></ac:task-list>"#,
            r#"<ac:link><ri:user ri:account-id="557058:abc" /></ac:link>"#,
            r#"<ac:layout><ac:layout-section ac:type="two_equal"><ac:layout-cell><p>L</p></ac:layout-cell></ac:layout-section></ac:layout>"#,
        );
        let pages = |k: &str, t: &str| (k == "ENG" && t == "Storage & Cache").then_some(99);
        let atts = |c: u64, f: &str| (c == 7 && f == "a b.png").then_some((100, 2, 5));
        let html = to_html(storage, &site(&pages, &atts));
        assert!(!html.contains("<ac:") && !html.contains("<ri:"), "{html}");
        assert!(
            html.contains("<h2 id=\"MyPage-Intro&amp;more\">Intro &amp; more</h2>"),
            "{html}"
        );
        assert!(html.contains("if a &lt; b { x() }</pre>"));
        assert!(html.contains("brush: rust;"));
        assert!(html.contains("href=\"#MyPage-Intro&amp;more\""));
        assert!(html.contains(
            "<a href=\"/wiki/display/ENG/Storage+%26+Cache\" data-linked-resource-id=\"99\""
        ));
        assert!(html.contains(
            "src=\"/wiki/download/attachments/7/a%20b.png?version=2&amp;modificationDate=5&amp;api=v2\""
        ));
        assert!(html.contains("<li data-inline-task-id=\"3\" class=\"checked\">done it</li>"));
        assert!(html.contains("@Demo User</a>"));
        assert!(html.contains("columnLayout two-equal"));
        assert!(html.contains("<br />"));
    }

    #[test]
    fn text_and_adf() {
        let s = r#"<h1>Title</h1><p>One <em>two</em>&nbsp;three</p><ul><li>item <strong>bold</strong></li></ul><ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter><ac:plain-text-body><![CDATA[echo hi]]></ac:plain-text-body></ac:structured-macro>"#;
        let t = plain_text(s);
        assert!(t.contains("Title") && t.contains("two") && t.contains("echo hi"));
        assert!(!t.contains("bash"), "parameters are not text: {t}");
        let adf: Value = serde_json::from_str(&to_adf(s)).unwrap();
        assert_eq!(adf["type"], "doc");
        assert_eq!(adf["version"], 1);
        let c = adf["content"].as_array().unwrap();
        assert_eq!(c[0]["type"], "heading");
        assert_eq!(c[1]["content"][1]["marks"][0]["type"], "em");
        assert_eq!(c[2]["type"], "bulletList");
        assert_eq!(c[3]["type"], "codeBlock");
        assert_eq!(c[3]["attrs"]["language"], "bash");
    }

    #[test]
    fn tolerates_broken_markup() {
        let nodes = parse("<p>open <b>bold</p> tail</i> <!-- c --> & more");
        let text = text_of(&nodes);
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>().join(" "),
            "open bold tail & more"
        );
        assert_eq!(decode("a&amp;b&#65;&#x42;&bogus;"), "a&bAB&bogus;");
    }
}
