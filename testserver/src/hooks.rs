//! Test hooks outside the Confluence paths (`/__testserver/...`, no auth): a log of every
//! request with the bytes really sent, fault injection (latency, failing statuses, connections
//! cut mid-body, a rate limit; optionally only for one path substring and method), and a dump
//! of the state.
//!
//! The same middleware (`observe`) wraps the API and the media origin. It logs the request
//! when it arrives and fills in the status when the handler answers; the response body is
//! wrapped so that the byte count is what actually went out, and so that a "reset" fault can
//! stop the body half-way with an error — hyper then aborts the connection and the client
//! sees a truncated body, exactly like a dropped connection.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::errors::error_for_path;
use crate::api::Shared;
use crate::clock;

struct Entry {
    method: String,
    path: String,
    query: Option<String>,
    origin: &'static str,
    status: AtomicU16,
    bytes: AtomicU64,
    request_bytes: AtomicU64,
    /// Requests being handled when this one arrived (itself included): arrived, not yet
    /// answered. Shows a client's parallelism without timing anything.
    concurrent: u64,
}

#[derive(Default)]
struct Faults {
    /// Only requests whose path contains this (and whose method is `method`) are affected.
    path_contains: Option<String>,
    method: Option<String>,
    latency: Duration,
    fail_next: VecDeque<u16>,
    retry_after: u64,
    reset_next: u32,
    rate_limit_per_s: Option<u32>,
    window_start: Option<Instant>,
    window_count: u32,
}

#[derive(Deserialize, Default)]
pub(crate) struct FaultSpec {
    path_contains: Option<String>,
    method: Option<String>,
    latency_ms: Option<u64>,
    #[serde(default)]
    fail_next: Vec<u16>,
    retry_after: Option<u64>,
    reset_next: Option<u32>,
    rate_limit_per_s: Option<u32>,
}

#[derive(Default)]
pub(crate) struct Hooks {
    log: Mutex<Vec<Arc<Entry>>>,
    faults: Mutex<Faults>,
    /// Requests arrived and not yet answered (headers not yet sent).
    handling: Arc<AtomicU64>,
}

/// One request counted in [`Hooks::handling`] until its handler answers or is dropped.
struct Handling(Arc<AtomicU64>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Decision {
    Pass {
        latency: Duration,
        cut: bool,
    },
    Fail {
        latency: Duration,
        status: u16,
        retry_after: u64,
    },
    RateLimited {
        limit: u32,
        retry_after: u64,
    },
}

impl Hooks {
    fn decide(&self, method: &str, path: &str) -> Decision {
        let mut f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let selected = f
            .path_contains
            .as_deref()
            .map_or(true, |s| path.contains(s))
            && f.method
                .as_deref()
                .map_or(true, |m| m.eq_ignore_ascii_case(method));
        if !selected {
            return Decision::Pass {
                latency: Duration::ZERO,
                cut: false,
            };
        }
        let latency = f.latency;
        if let Some(limit) = f.rate_limit_per_s {
            let now = Instant::now();
            match f.window_start {
                Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
                _ => {
                    f.window_start = Some(now);
                    f.window_count = 0;
                }
            }
            f.window_count += 1;
            if f.window_count > limit {
                return Decision::RateLimited {
                    limit,
                    retry_after: f.retry_after.max(1),
                };
            }
        }
        if let Some(status) = f.fail_next.pop_front() {
            return Decision::Fail {
                latency,
                status,
                retry_after: f.retry_after,
            };
        }
        let cut = f.reset_next > 0;
        if cut {
            f.reset_next -= 1;
        }
        Decision::Pass { latency, cut }
    }
}

fn with_retry_after(mut r: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Counts request body bytes into the log entry as the handler reads them.
struct CountedRequest {
    inner: Body,
    entry: Arc<Entry>,
}

impl HttpBody for CountedRequest {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(d) = frame.data_ref() {
                self.entry
                    .request_bytes
                    .fetch_add(d.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts response bytes as they are sent and, for a reset fault, errors out half-way.
struct ObservedResponse {
    inner: Body,
    entry: Arc<Entry>,
    cut_at: Option<u64>,
    sent: u64,
    /// Before failing, wait a moment so that hyper flushes the headers and the half body:
    /// the client must see a truncated body, not a connection that never answered.
    grace: Option<Pin<Box<tokio::time::Sleep>>>,
}

fn cut_error() -> axum::Error {
    axum::Error::new(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "injected fault: connection cut mid-body",
    ))
}

impl HttpBody for ObservedResponse {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(cut) = self.cut_at {
            if self.sent >= cut {
                let grace = self
                    .grace
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(50))));
                return match grace.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(cut_error()))),
                    Poll::Pending => Poll::Pending,
                };
            }
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(mut data) => {
                        if let Some(cut) = self.cut_at {
                            let room = (cut - self.sent) as usize;
                            if data.len() > room {
                                data = data.slice(..room);
                            }
                        }
                        self.sent += data.len() as u64;
                        self.entry
                            .bytes
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                        Frame::data(data)
                    }
                    Err(other) => other,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) if self.cut_at.is_some() => {
                // Shorter than announced: still make the connection fail.
                self.cut_at = Some(self.sent);
                Poll::Ready(Some(Err(cut_error())))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.cut_at.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The logging and fault middleware for the API ("api") and media ("media") origins.
pub(crate) async fn observe(
    State((app, origin)): State<(Shared, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let hooks = app.hooks.clone();
    let concurrent = hooks.handling.fetch_add(1, Ordering::SeqCst) + 1;
    let handling = Handling(hooks.handling.clone());
    let entry = Arc::new(Entry {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        origin,
        status: AtomicU16::new(0),
        bytes: AtomicU64::new(0),
        request_bytes: AtomicU64::new(0),
        concurrent,
    });
    hooks
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(entry.clone());
    let path = entry.path.clone();
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(
        parts,
        Body::new(CountedRequest {
            inner: body,
            entry: entry.clone(),
        }),
    );
    let (resp, cut) = match hooks.decide(&entry.method, &path) {
        Decision::RateLimited { limit, retry_after } => {
            let mut r = with_retry_after(
                error_for_path(&path, 429, "Rate limit exceeded"),
                retry_after,
            );
            let h = r.headers_mut();
            let reset = clock::format_minute(clock::now_ms() + 60_000);
            for (k, v) in [
                ("X-RateLimit-Limit", limit.to_string()),
                ("X-RateLimit-Remaining", "0".to_string()),
                ("X-RateLimit-Reset", reset),
                (
                    "RateLimit-Reason",
                    "confluence-quota-tenant-based".to_string(),
                ),
            ] {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            }
            (r, false)
        }
        Decision::Fail {
            latency,
            status,
            retry_after,
        } => {
            tokio::time::sleep(latency).await;
            let text = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Injected failure");
            let r = error_for_path(&path, status, text);
            let r = if status == 429 || status == 503 {
                with_retry_after(r, retry_after)
            } else {
                r
            };
            (r, false)
        }
        Decision::Pass { latency, cut } => {
            tokio::time::sleep(latency).await;
            (next.run(req).await, cut)
        }
    };
    drop(handling);
    entry
        .status
        .store(resp.status().as_u16(), Ordering::Relaxed);
    let (parts, body) = resp.into_parts();
    let cut_at = cut.then(|| {
        let announced = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or(body.size_hint().exact())
            .unwrap_or(0);
        announced / 2
    });
    Response::from_parts(
        parts,
        Body::new(ObservedResponse {
            inner: body,
            entry,
            cut_at,
            sent: 0,
            grace: None,
        }),
    )
}

async fn requests(State(app): State<Shared>) -> Json<Value> {
    let log = app.hooks.log.lock().unwrap_or_else(|p| p.into_inner());
    Json(Value::Array(
        log.iter()
            .map(|e| {
                json!({
                    "method": e.method,
                    "path": e.path,
                    "query": e.query,
                    "status": e.status.load(Ordering::Relaxed),
                    "bytes": e.bytes.load(Ordering::Relaxed),
                    "request_bytes": e.request_bytes.load(Ordering::Relaxed),
                    "origin": e.origin,
                    "concurrent": e.concurrent,
                })
            })
            .collect(),
    ))
}

async fn clear_requests(State(app): State<Shared>) -> StatusCode {
    app.hooks
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    StatusCode::NO_CONTENT
}

async fn set_faults(State(app): State<Shared>, body: Bytes) -> Response {
    let spec: FaultSpec = if body.iter().all(u8::is_ascii_whitespace) {
        FaultSpec::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(s) => s,
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("bad fault spec: {e}")).into_response()
            }
        }
    };
    let mut f = app.hooks.faults.lock().unwrap_or_else(|p| p.into_inner());
    *f = Faults {
        path_contains: spec.path_contains.filter(|s| !s.is_empty()),
        method: spec.method.filter(|s| !s.is_empty()),
        latency: Duration::from_millis(spec.latency_ms.unwrap_or(0)),
        fail_next: spec.fail_next.into_iter().collect(),
        retry_after: spec.retry_after.unwrap_or(1),
        reset_next: spec.reset_next.unwrap_or(0),
        rate_limit_per_s: spec.rate_limit_per_s.filter(|n| *n > 0),
        window_start: None,
        window_count: 0,
    };
    StatusCode::NO_CONTENT.into_response()
}

async fn get_faults(State(app): State<Shared>) -> Json<Value> {
    let f = app.hooks.faults.lock().unwrap_or_else(|p| p.into_inner());
    Json(json!({
        "path_contains": f.path_contains,
        "method": f.method,
        "latency_ms": f.latency.as_millis() as u64,
        "fail_next": f.fail_next.iter().collect::<Vec<_>>(),
        "retry_after": f.retry_after,
        "reset_next": f.reset_next,
        "rate_limit_per_s": f.rate_limit_per_s,
    }))
}

async fn state(State(app): State<Shared>) -> Json<Value> {
    let store = app.store();
    let spaces: Vec<Value> = store
        .spaces
        .values()
        .map(|s| json!({"id": s.id, "key": s.key, "name": s.name, "homepage": s.homepage.to_string()}))
        .collect();
    let contents: Vec<Value> = store
        .contents
        .values()
        .map(|c| {
            json!({
                "id": app.wire_id(c),
                "type": c.kind.as_str(),
                "status": c.status.as_str(),
                "title": c.title,
                "space": c.space_key,
                "parent": c.parent.map(|p| p.to_string()),
                "properties": c.properties.values().map(|p| json!({"key": p.key, "version": p.version, "value": p.value})).collect::<Vec<_>>(),
                "versions": c.versions.iter().map(|v| json!({
                    "number": v.number,
                    "when": clock::format_v2(v.when_ms),
                    "size": v.file.as_ref().map(|f| f.size),
                    "media_type": v.file.as_ref().map(|f| f.media_type.clone()),
                    "file_id": v.file.as_ref().map(|f| f.file_id.clone()),
                    "comment": v.message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({"spaces": spaces, "contents": contents}))
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/__testserver/requests",
            get(requests).delete(clear_requests),
        )
        .route("/__testserver/faults", post(set_faults).get(get_faults))
        .route("/__testserver/state", get(state))
}
