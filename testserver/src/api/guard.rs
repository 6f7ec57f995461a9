//! Authentication and the XSRF filter, answering failures the way each flavor does.
//!
//! Cloud v1 refuses bad or missing credentials with 403 and a v1 body (`caller cannot access
//! Confluence` on `/user/current`, `Current user not permitted to use Confluence` elsewhere);
//! Cloud v2 hides everything behind a bare 404; Datacenter says 401. Cloud's legacy download
//! servlet refuses API tokens outright (401) since 2026. The XSRF check runs after
//! authentication and only on multipart POST/PUT, answering plain text like the real filter;
//! on Datacenter a browser `User-Agent` fails it on POST even with the token header.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::errors::ApiError;
use super::Shared;
use crate::config::Flavor;

fn credentials_ok(app: &super::App, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let value = value.trim();
    if let Some(b64) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let expected = format!("{}:{}", app.config.user, app.config.token);
        return decoded == expected.as_bytes();
    }
    if app.flavor() == Flavor::Datacenter {
        if let Some(token) = value.strip_prefix("Bearer ") {
            return token.trim() == app.config.token;
        }
    }
    false
}

fn xsrf_ok(app: &super::App, headers: &HeaderMap) -> bool {
    match headers
        .get("x-atlassian-token")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => {
            let v = v.trim();
            v.eq_ignore_ascii_case("no-check")
                || (!app.config.strict_xsrf && v.eq_ignore_ascii_case("nocheck"))
        }
        None => false,
    }
}

pub(crate) async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let rel = path
        .strip_prefix(app.context.as_str())
        .unwrap_or(&path)
        .to_string();
    if app.is_cloud() && rel.starts_with("/download/") {
        // Deprecated servlet: API tokens are refused (CHANGE-2735).
        let mut r = ApiError::plain(401, "Unauthorized").into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Confluence\""),
        );
        return r;
    }
    if !credentials_ok(&app, req.headers()) {
        return match app.flavor() {
            Flavor::Cloud if rel.starts_with("/api/v2") => {
                ApiError::v2(404, "Not Found").into_response()
            }
            Flavor::Cloud => {
                let message = if rel.starts_with("/rest/api/user/current") {
                    "caller cannot access Confluence"
                } else {
                    "Current user not permitted to use Confluence"
                };
                ApiError::v1(403, message).into_response()
            }
            Flavor::Datacenter => {
                let mut r =
                    ApiError::v1(401, "This resource requires authentication").into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Confluence\""),
                );
                // Seraph names the reason only when credentials were offered and refused.
                if req.headers().contains_key(header::AUTHORIZATION) {
                    r.headers_mut().insert(
                        "X-Seraph-LoginReason",
                        HeaderValue::from_static("AUTHENTICATED_FAILED"),
                    );
                }
                r
            }
        };
    }
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
    let writing = req.method() == Method::POST || req.method() == Method::PUT;
    // Datacenter also fails the check for a browser User-Agent on POST, token or not
    // (measured on DC 7.19; Atlassian KB "REST API calls with a browser User-Agent header may
    // fail CSRF checks").
    let browser_post = app.flavor() == Flavor::Datacenter
        && req.method() == Method::POST
        && req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if multipart && writing && (!xsrf_ok(&app, req.headers()) || browser_post) {
        return ApiError::plain(403, "XSRF check failed").into_response();
    }
    next.run(req).await
}
