//! CQL search: `GET /rest/api/content/search` (a `ContentArray` paged by cursor) and
//! `GET /rest/api/search` (`SearchPageResponseSearchResult`, where Cloud ignores `start` and
//! only `_links.next` tells whether more remain). Data Center pages both by `start`.
//!
//! `text ~` and `siteSearch ~` match whole words of titles, body text (the storage format with
//! tags stripped) and attachment file names, case-insensitively, every word of the query
//! required; the real full-text index also stems and ranks, which no client can rely on.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::paging::{decode_cursor, encode_cursor};
use super::render;
use super::{Expand, Params, Shared};
use crate::clock;
use crate::cql::{self, Clause, Field, Op};
use crate::model::{Content, ContentKind};
use crate::store::Store;

const DAY_MS: i64 = 86_400_000;

fn matches_text(op: Op, values: &[String], actual: &str, fuzzy: bool) -> bool {
    let hit = |v: &String| {
        if fuzzy {
            let needle = v.trim_matches('*').to_lowercase();
            actual.to_lowercase().contains(&needle)
        } else {
            actual.eq_ignore_ascii_case(v)
        }
    };
    match op {
        Op::Eq | Op::In | Op::Contains => values.iter().any(hit),
        Op::Ne | Op::NotIn | Op::NotContains => !values.iter().any(hit),
        _ => false,
    }
}

fn matches_date(op: Op, values: &[String], actual: i64) -> bool {
    values.iter().any(|v| {
        let Some(t) = clock::parse_cql_date(v) else {
            return false;
        };
        let span = if v.trim().contains(' ') {
            60_000
        } else {
            DAY_MS
        };
        match op {
            Op::Eq | Op::In => actual >= t && actual < t + span,
            Op::Ne | Op::NotIn => !(actual >= t && actual < t + span),
            Op::Lt => actual < t,
            Op::Le => actual < t + span,
            Op::Gt => actual >= t + span,
            Op::Ge => actual >= t,
            _ => false,
        }
    })
}

fn matches_id(app: &super::App, op: Op, values: &[String], actual: Option<u64>) -> bool {
    let hit = |v: &String| actual.is_some_and(|a| app.parse_id(v.trim()).ok() == Some(a));
    match op {
        Op::Eq | Op::In => values.iter().any(hit),
        Op::Ne | Op::NotIn => !values.iter().any(hit),
        _ => false,
    }
}

fn clause_holds(app: &super::App, store: &Store, c: &Content, cl: &Clause) -> bool {
    match cl.field {
        Field::Type => matches_text(cl.op, &cl.values, c.kind.as_str(), false),
        Field::Space => matches_text(cl.op, &cl.values, &c.space_key, false),
        Field::Title => matches_text(
            cl.op,
            &cl.values,
            &c.title,
            matches!(cl.op, Op::Contains | Op::NotContains),
        ),
        Field::Id => matches_id(app, cl.op, &cl.values, Some(c.id)),
        Field::Parent => matches_id(
            app,
            cl.op,
            &cl.values,
            if c.kind == ContentKind::Page {
                c.parent
            } else {
                None
            },
        ),
        Field::Container => matches_id(
            app,
            cl.op,
            &cl.values,
            if c.kind == ContentKind::Attachment {
                c.parent
            } else {
                None
            },
        ),
        Field::Ancestor => {
            let anc = store.ancestors(c.id);
            let any = cl
                .values
                .iter()
                .any(|v| app.parse_id(v.trim()).is_ok_and(|id| anc.contains(&id)));
            match cl.op {
                Op::Eq | Op::In => any,
                Op::Ne | Op::NotIn => !any,
                _ => false,
            }
        }
        Field::LastModified => matches_date(cl.op, &cl.values, c.current().when_ms),
        Field::Created => matches_date(cl.op, &cl.values, c.created_ms),
        Field::Text | Field::SiteSearch => {
            let haystack = words(&searchable_text(c));
            let hit = cl.values.iter().any(|v| text_matches(&haystack, v));
            match cl.op {
                Op::Contains => hit,
                _ => !hit,
            }
        }
    }
}

/// The lowercased words of `s` (letters and digits; everything else separates).
fn words(s: &str) -> Vec<String> {
    s.split(|ch: char| !ch.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// What `text ~` looks at: a page's or blog post's title and body text (tags stripped, macro
/// parameters left out), an attachment's file name.
fn searchable_text(c: &Content) -> String {
    match c.kind {
        ContentKind::Attachment => c.title.clone(),
        _ => format!("{} {}", c.title, crate::storage::plain_text(&c.body)),
    }
}

/// Every word of `query` is among `haystack`'s words (case-insensitive); a trailing `*` makes
/// a word a prefix. Confluence hands `text ~` to its full-text index, which also stems words
/// and ranks by relevance; whole-word matching is the part a client can rely on.
fn text_matches(haystack: &[String], query: &str) -> bool {
    let mut any = false;
    for raw in query.split_whitespace() {
        let prefix = raw.ends_with('*');
        for w in words(raw) {
            any = true;
            let found = if prefix {
                haystack.iter().any(|h| h.starts_with(&w))
            } else {
                haystack.contains(&w)
            };
            if !found {
                return false;
            }
        }
    }
    any
}

/// The search result's `excerpt`: the start of the text, plain.
fn excerpt(c: &Content) -> String {
    let text = match c.kind {
        ContentKind::Attachment => String::new(),
        _ => crate::storage::plain_text(&c.body),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// Ids of current content matching the query, in result order.
fn run(app: &super::App, store: &Store, cql_text: &str) -> Result<Vec<u64>, ApiError> {
    let q = cql::parse(cql_text).map_err(|e| ApiError::v1(400, e.to_string()))?;
    let mut hits: Vec<&Content> = store
        .contents
        .values()
        .filter(|c| c.is_current())
        .filter(|c| {
            c.kind != ContentKind::Attachment
                || c.parent
                    .and_then(|p| store.get(p))
                    .is_some_and(Content::is_current)
        })
        .filter(|c| {
            q.expr
                .as_ref()
                .is_some_and(|e| e.eval(&mut |cl| clause_holds(app, store, c, cl)))
        })
        .collect();
    if let Some((f, desc)) = q.order {
        let key = |c: &Content| -> (i64, String) {
            match f {
                Field::LastModified => (c.current().when_ms, String::new()),
                Field::Created => (c.created_ms, String::new()),
                Field::Title => (0, c.title.to_lowercase()),
                _ => (c.id as i64, String::new()),
            }
        };
        hits.sort_by(|a, b| {
            let o = key(a).cmp(&key(b)).then(a.id.cmp(&b.id));
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    Ok(hits.into_iter().map(|c| c.id).collect())
}

fn window(app: &super::App, p: &Params, honour_start: bool) -> Result<(usize, usize), ApiError> {
    let limit = p.number("limit", 25)?.min(app.config.v1_limit_cap);
    let offset = match p.get("cursor") {
        Some(c) if !c.is_empty() => {
            decode_cursor(c).ok_or_else(|| ApiError::v1(400, format!("Invalid cursor: {c}")))?
        }
        _ if honour_start => p.number("start", 0)?,
        _ => 0,
    };
    Ok((offset, limit))
}

/// A `next`/`prev` link: Cloud pages by `cursor`, Data Center by `start`.
fn next_link(
    app: &super::App,
    path: &str,
    p: &Params,
    keep: &[&str],
    limit: usize,
    offset: usize,
    flag: bool,
) -> String {
    let kept = p.encode_only(keep);
    let mut s = format!("{path}?");
    if flag && app.is_cloud() {
        s.push_str("next=true&");
    }
    if !kept.is_empty() {
        s.push_str(&kept);
        s.push('&');
    }
    if app.is_cloud() {
        s.push_str(&format!("limit={limit}&cursor={}", encode_cursor(offset)));
    } else {
        s.push_str(&format!("limit={limit}&start={offset}"));
    }
    s
}

pub(crate) async fn content_search(
    State(app): State<Shared>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let cql_text = p
        .get("cql")
        .ok_or_else(|| ApiError::v1(400, "cql parameter is required"))?
        .to_string();
    let ex = Expand::from_params(&p);
    let (offset, limit) = window(&app, &p, !app.is_cloud())?;
    let store = app.store();
    let ids = run(&app, &store, &cql_text)?;
    let results: Vec<Value> = ids
        .iter()
        .skip(offset)
        .take(limit)
        .filter_map(|i| store.get(*i))
        .map(|c| render::content(&app, &store, c, &ex))
        .collect();
    let size = results.len();
    let mut links = serde_json::Map::new();
    links.insert("base".into(), json!(app.base_url));
    links.insert("context".into(), json!(app.context));
    links.insert(
        "self".into(),
        json!(format!(
            "{}/rest/api/content/search?{}",
            app.base_url,
            p.encode_without(&[])
        )),
    );
    if offset + size < ids.len() && limit > 0 {
        links.insert(
            "next".into(),
            json!(next_link(
                &app,
                "/rest/api/content/search",
                &p,
                &["cql", "expand"],
                limit,
                offset + size,
                false
            )),
        );
    }
    if offset > 0 {
        links.insert(
            "prev".into(),
            json!(next_link(
                &app,
                "/rest/api/content/search",
                &p,
                &["cql", "expand"],
                limit,
                offset.saturating_sub(limit),
                false
            )),
        );
    }
    Ok(Json(
        json!({"results": results, "start": offset, "limit": limit, "size": size, "_links": links}),
    ))
}

pub(crate) async fn search(State(app): State<Shared>, p: Params) -> Result<Json<Value>, ApiError> {
    let started = std::time::Instant::now();
    let cql_text = p
        .get("cql")
        .ok_or_else(|| ApiError::v1(400, "cql parameter is required"))?
        .to_string();
    let ex = Expand::from_params(&p).below("content");
    let (offset, limit) = window(&app, &p, !app.is_cloud())?;
    let store = app.store();
    let ids = run(&app, &store, &cql_text)?;
    let results: Vec<Value> = ids
        .iter()
        .skip(offset)
        .take(limit)
        .filter_map(|i| store.get(*i))
        .map(|c| {
            let space_name = store.space(&c.space_key).map(|s| s.name.clone()).unwrap_or_default();
            json!({
                "content": render::content(&app, &store, c, &ex),
                "title": c.title,
                "excerpt": crate::storage::escape(&excerpt(c)),
                "url": render::webui(&app, &store, c),
                "resultGlobalContainer": {"title": space_name, "displayUrl": format!("/spaces/{}", c.space_key)},
                "breadcrumbs": [],
                "entityType": "content",
                "iconCssClass": format!("aui-icon content-type-{}", c.kind.as_str()),
                "lastModified": clock::format(c.current().when_ms, app.flavor()),
                "friendlyLastModified": render::friendly(c.current().when_ms),
                "score": 0.0
            })
        })
        .collect();
    let size = results.len();
    let mut links = serde_json::Map::new();
    links.insert("base".into(), json!(app.base_url));
    links.insert("context".into(), json!(app.context));
    links.insert(
        "self".into(),
        json!(format!(
            "{}/rest/api/search?{}",
            app.base_url,
            p.encode_without(&[])
        )),
    );
    if offset + size < ids.len() && limit > 0 {
        links.insert(
            "next".into(),
            json!(next_link(
                &app,
                "/rest/api/search",
                &p,
                &["cql", "expand"],
                limit,
                offset + size,
                true
            )),
        );
    }
    Ok(Json(json!({
        "results": results,
        "start": offset,
        "limit": limit,
        "size": size,
        "totalSize": ids.len(),
        "cqlQuery": cql_text,
        "searchDuration": started.elapsed().as_millis() as u64,
        "archivedResultCount": 0,
        "_links": links,
    })))
}
