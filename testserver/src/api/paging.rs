//! The two pagination dialects.
//!
//! v1 pages by offset: `{results,start,limit,size,_links{base,context,self,next?}}`, with `limit`
//! clamped to a cap and echoed, and `next` (context-relative; on Cloud it carries `next=true`)
//! present only when more remain.
//! v2 pages by opaque cursor: `{results,_links{next?,base}}` plus a `Link` header, both only when
//! more remain, and `next` carries the `/wiki` prefix. Cursors here encode an offset, but they are
//! base64 so that clients cannot (and need not) read them.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::{App, Params};

/// A v1 offset window: the effective start and limit of a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub start: usize,
    pub limit: usize,
}

impl Window {
    pub(crate) fn v1(app: &App, p: &Params, default_limit: usize) -> Result<Window, ApiError> {
        let start = p.number("start", 0)?;
        let limit = p
            .number("limit", default_limit)?
            .min(app.config.v1_limit_cap);
        Ok(Window { start, limit })
    }

    pub(crate) fn slice<T: Clone>(&self, all: &[T]) -> Vec<T> {
        all.iter()
            .skip(self.start)
            .take(self.limit)
            .cloned()
            .collect()
    }
}

/// Builds a v1 array envelope. `path` is context-relative; `keep` names the request parameters
/// that the `next` link carries over.
pub(crate) fn v1_envelope(
    app: &App,
    results: Vec<Value>,
    w: Window,
    total: usize,
    path: &str,
    p: &Params,
    keep: &[&str],
) -> Value {
    let size = results.len();
    let mut links = serde_json::Map::new();
    links.insert("base".into(), json!(app.base_url));
    links.insert("context".into(), json!(app.context));
    let own = p.encode_without(&[]);
    let self_link = if own.is_empty() {
        format!("{}{path}", app.base_url)
    } else {
        format!("{}{path}?{own}", app.base_url)
    };
    links.insert("self".into(), json!(self_link));
    if w.limit > 0 && w.start + size < total {
        links.insert(
            "next".into(),
            json!(next_link(app, path, p, keep, w.limit, w.start + size)),
        );
    }
    json!({"results": results, "start": w.start, "limit": w.limit, "size": size, "_links": links})
}

/// The context-relative `next` link of an offset page. Cloud starts it with `next=true`
/// (seen live, docs/CONFLUENCE.md §1.1); Datacenter's documented example has no such flag.
pub(crate) fn next_link(
    app: &App,
    path: &str,
    p: &Params,
    keep: &[&str],
    limit: usize,
    start: usize,
) -> String {
    let mut query = String::new();
    if app.is_cloud() {
        query.push_str("next=true&");
    }
    let kept = p.encode_only(keep);
    if !kept.is_empty() {
        query.push_str(&kept);
        query.push('&');
    }
    format!("{path}?{query}limit={limit}&start={start}")
}

/// An embedded v1 array (inside an expansion): the first `results` of `total`, as
/// `{results,start:0,limit,size,_links{self,next?}}`.
pub(crate) fn v1_embedded(
    app: &App,
    results: Vec<Value>,
    total: usize,
    limit: usize,
    path: &str,
) -> Value {
    let size = results.len();
    let mut links = serde_json::Map::new();
    links.insert("self".into(), json!(format!("{}{path}", app.base_url)));
    if size < total {
        let flag = if app.is_cloud() { "next=true&" } else { "" };
        links.insert(
            "next".into(),
            json!(format!("{path}?{flag}limit={limit}&start={size}")),
        );
    }
    json!({"results": results, "start": 0, "limit": limit, "size": size, "_links": links})
}

pub(crate) fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

pub(crate) fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

/// A v2 cursor window: limit defaults per endpoint and is capped at 250.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    pub offset: usize,
    pub limit: usize,
}

impl Cursor {
    pub(crate) fn v2(p: &Params, default_limit: usize) -> Result<Cursor, ApiError> {
        let offset = match p.get("cursor") {
            None | Some("") => 0,
            Some(c) => decode_cursor(c).ok_or_else(|| {
                ApiError::v2(400, "Invalid cursor: the cursor could not be decoded")
            })?,
        };
        let limit = match p.get("limit") {
            None | Some("") => default_limit,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=250).contains(&n) => n,
                Ok(n) if n > 250 => 250,
                _ => return Err(ApiError::v2(400, format!("Invalid value for limit: {v}"))),
            },
        };
        Ok(Cursor { offset, limit })
    }

    pub(crate) fn slice<T: Clone>(&self, all: &[T]) -> Vec<T> {
        all.iter()
            .skip(self.offset)
            .take(self.limit)
            .cloned()
            .collect()
    }
}

/// A v2 list response: body envelope plus the `Link` header when more remain.
/// `path` is context-relative (`/api/v2/...`); the links carry the context prefix.
pub(crate) fn v2_list(
    app: &App,
    results: Vec<Value>,
    c: Cursor,
    total: usize,
    path: &str,
    p: &Params,
) -> Response {
    let shown = results.len();
    let mut links = serde_json::Map::new();
    let mut link_header = None;
    if c.offset + shown < total {
        let others = p.encode_without(&["cursor", "limit"]);
        let sep = if others.is_empty() {
            String::new()
        } else {
            format!("{others}&")
        };
        let next = format!(
            "{}{path}?{sep}limit={}&cursor={}",
            app.context,
            c.limit,
            encode_cursor(c.offset + shown)
        );
        link_header = Some(format!(
            "<{next}>; rel=\"next\", <{}>; rel=\"base\"",
            app.base_url
        ));
        links.insert("next".into(), json!(next));
    }
    links.insert("base".into(), json!(app.base_url));
    let mut resp = axum::Json(json!({"results": results, "_links": links})).into_response();
    if let Some(h) = link_header.and_then(|h| HeaderValue::from_str(&h).ok()) {
        resp.headers_mut().insert(header::LINK, h);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(1234)), Some(1234));
        assert_eq!(decode_cursor("abc"), None);
    }
}
