//! Serving attachment bytes: Cloud's REST `/download` (a 302 to the media origin), the media
//! origin itself, Datacenter's `/download/attachments/...` servlet, and Cloud's deprecated
//! servlet (refused in `guard`).
//!
//! Bytes are streamed from the version's file through a bounded reader, never buffered, so a
//! 1 GiB download runs at disk/loopback speed with flat memory. A single `Range` is honoured
//! (206 + `Content-Range`); an unsatisfiable one gets 416 with `bytes */SIZE`; multi-range
//! requests get the whole file (200), which RFC 9110 allows.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::errors::ApiError;
use super::render::encode_component;
use super::{Params, Shared};
use crate::blobs::new_uuid;
use crate::model::ContentKind;

/// The parsed `Range` header against a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

pub(crate) fn parse_range(header: Option<&str>, size: u64) -> RangeAnswer {
    let Some(h) = header else {
        return RangeAnswer::Whole;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last n bytes.
        return match b.parse::<u64>() {
            Ok(0) => RangeAnswer::Unsatisfiable,
            Ok(_) if size == 0 => RangeAnswer::Unsatisfiable,
            Ok(n) => RangeAnswer::Part {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            Err(_) => RangeAnswer::Whole,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeAnswer::Whole;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeAnswer::Whole,
        }
    };
    if start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Part {
        start,
        end: end.min(size - 1),
    }
}

/// What to serve: one version's file and the headers describing it.
pub(crate) struct Served {
    pub path: PathBuf,
    pub size: u64,
    pub media_type: String,
    pub name: String,
    pub file_id: String,
    pub modified_ms: i64,
}

pub(crate) async fn serve_file(s: Served, headers: &HeaderMap) -> Response {
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        s.size,
    );
    let (status, start, len) = match range {
        RangeAnswer::Whole => (StatusCode::OK, 0, s.size),
        RangeAnswer::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeAnswer::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", s.size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let mut file = match tokio::fs::File::open(&s.path).await {
        Ok(f) => f,
        Err(e) => {
            return ApiError::v1(500, format!("attachment data unavailable: {e}")).into_response()
        }
    };
    if start > 0 {
        if let Err(e) = file.seek(SeekFrom::Start(start)).await {
            return ApiError::v1(500, format!("attachment data unavailable: {e}")).into_response();
        }
    }
    let stream = ReaderStream::with_capacity(file.take(len), 256 * 1024);
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = status;
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(h, header::CONTENT_TYPE, s.media_type.clone());
    set(h, header::CONTENT_LENGTH, len.to_string());
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    set(h, header::ETAG, format!("\"{}\"", s.file_id));
    let modified =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.modified_ms.max(0) as u64);
    set(h, header::LAST_MODIFIED, httpdate::fmt_http_date(modified));
    set(
        h,
        header::CONTENT_DISPOSITION,
        format!("attachment; filename*=UTF-8''{}", encode_component(&s.name)),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            h,
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{}", start + len - 1, s.size),
        );
    }
    r
}

fn served(
    app: &super::App,
    store: &crate::store::Store,
    aid: u64,
    version: Option<u32>,
) -> Result<Served, ApiError> {
    let a = store
        .get(aid)
        .filter(|a| a.kind == ContentKind::Attachment)
        .ok_or_else(|| ApiError::v1(404, format!("No attachment found with id: {aid}")))?;
    let v = match version {
        Some(n) => a.version(n).ok_or_else(|| {
            ApiError::v1(
                400,
                format!("Version {n} of attachment {aid} does not exist"),
            )
        })?,
        None => a.current(),
    };
    let f = v
        .file
        .as_ref()
        .ok_or_else(|| ApiError::v1(404, "No data for this attachment"))?;
    Ok(Served {
        path: app.blobs.path_of(f),
        size: f.size,
        media_type: f.media_type.clone(),
        name: a.title.clone(),
        file_id: f.file_id.clone(),
        modified_ms: v.when_ms,
    })
}

fn version_param(p: &Params) -> Result<Option<u32>, ApiError> {
    match p.get("version") {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ApiError::v1(400, format!("Invalid version: {v}"))),
    }
}

/// Cloud `GET /rest/api/content/{pageId}/child/attachment/{attId}/download[?version=N]` → 302.
pub(crate) async fn cloud_redirect(
    State(app): State<Shared>,
    Path((id, att)): Path<(String, String)>,
    p: Params,
) -> Result<Response, ApiError> {
    let cid = app.parse_id(&id)?;
    let aid = app.parse_id(&att)?;
    let version = version_param(&p)?;
    let (file_id, name) = {
        let store = app.store();
        match store.get(aid) {
            Some(a)
                if a.is_current() && a.kind == ContentKind::Attachment && a.parent == Some(cid) => {
            }
            _ => {
                return Err(ApiError::v1(
                    404,
                    format!("No attachment found with id: {att} on content {id}"),
                ))
            }
        }
        let s = served(&app, &store, aid, version)?;
        (s.file_id, s.name)
    };
    let Some(media) = &app.media_url else {
        return Err(ApiError::v1(500, "no media origin configured"));
    };
    let token = app.grant_media(&file_id);
    let location = format!(
        "{media}/file/{file_id}/binary?token={token}&client={}&dl=true&name={}",
        new_uuid(),
        encode_component(&name)
    );
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// The media origin: the token in the query is the only credential. Any `Authorization`
/// header is refused, as Atlassian's media API refuses a site credential.
pub(crate) async fn media(
    State(app): State<Shared>,
    Path(file_id): Path<String>,
    p: Params,
    headers: HeaderMap,
) -> Response {
    let unauthorized = |msg: &str| {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": {"code": "Unauthorized", "title": msg}})),
        )
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    if headers.contains_key(header::AUTHORIZATION) {
        return unauthorized("Authorization header is not accepted with a media token");
    }
    let Some(token) = p.get("token") else {
        return unauthorized("missing token");
    };
    let granted = {
        let grants = app.media_grants.lock().unwrap_or_else(|p| p.into_inner());
        grants
            .get(token)
            .is_some_and(|g| g.file_id == file_id && g.expires > Instant::now())
    };
    if !granted {
        return unauthorized("token is invalid or expired");
    }
    let s = {
        let store = app.store();
        let Some((aid, number)) = store.file(&file_id) else {
            return ApiError::v1(404, "file not found").into_response();
        };
        match served(&app, &store, aid, Some(number)) {
            Ok(s) => s,
            Err(e) => return e.into_response(),
        }
    };
    serve_file(s, &headers).await
}

/// Datacenter `GET {context}/download/attachments/{pageId}/{filename}?version=N`.
pub(crate) async fn dc_servlet(
    State(app): State<Shared>,
    Path((page, name)): Path<(String, String)>,
    p: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cid: u64 = page
        .parse()
        .map_err(|_| ApiError::plain(404, "Not Found"))?;
    let version = version_param(&p)?;
    let s = {
        let store = app.store();
        let aid = store
            .find_attachment(cid, &name)
            .ok_or_else(|| ApiError::plain(404, "Not Found"))?;
        served(&app, &store, aid, version).map_err(|_| ApiError::plain(404, "Not Found"))?
    };
    Ok(serve_file(s, &headers).await)
}

/// Cloud's servlet is refused in `guard` before this is reached; this answers the same in
/// case the guard is bypassed by a future route change.
pub(crate) async fn cloud_servlet() -> Response {
    ApiError::plain(401, "Unauthorized").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeAnswer::Whole);
        assert_eq!(
            parse_range(Some("bytes=0-3"), 10),
            RangeAnswer::Part { start: 0, end: 3 }
        );
        assert_eq!(
            parse_range(Some("bytes=5-"), 10),
            RangeAnswer::Part { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-4"), 10),
            RangeAnswer::Part { start: 6, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-40"), 10),
            RangeAnswer::Part { start: 0, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=8-100"), 10),
            RangeAnswer::Part { start: 8, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=10-"), 10),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeAnswer::Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 0), RangeAnswer::Unsatisfiable);
    }
}
