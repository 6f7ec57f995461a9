//! Error answers in the exact shapes each API speaks.
//!
//! v1 answers `{"statusCode","data":{…},"message"}`; v2 answers `{"errors":[{status,code,title,
//! detail}]}`; the XSRF filter and a few servlets answer plain text. A handler picks the shape by
//! constructing the matching variant, and `StoreError` converts to the v1 shape because the store
//! rules are v1 rules (v2 handlers map them explicitly).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{status}: {message}")]
    V1 { status: u16, message: String },
    #[error("{status}: {title}")]
    V2 { status: u16, title: String },
    #[error("{status}: {text}")]
    Plain { status: u16, text: String },
}

impl ApiError {
    pub(crate) fn v1(status: u16, message: impl Into<String>) -> ApiError {
        ApiError::V1 {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn v2(status: u16, title: impl Into<String>) -> ApiError {
        ApiError::V2 {
            status,
            title: title.into(),
        }
    }

    pub(crate) fn plain(status: u16, text: impl Into<String>) -> ApiError {
        ApiError::Plain {
            status,
            text: text.into(),
        }
    }

    /// The same failure, in the v2 shape.
    pub(crate) fn into_v2(self) -> ApiError {
        match self {
            ApiError::V1 { status, message } => ApiError::V2 {
                status,
                title: message,
            },
            other => other,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(m) => ApiError::v1(404, m),
            StoreError::BadRequest(m) => ApiError::v1(400, m),
            StoreError::Conflict(m) => ApiError::v1(409, m),
        }
    }
}

pub(crate) fn v2_code(status: u16) -> &'static str {
    match status {
        400 => "INVALID_REQUEST_PARAMETER",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        409 => "CONFLICT",
        413 => "REQUEST_ENTITY_TOO_LARGE",
        429 => "TOO_MANY_REQUESTS",
        503 => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

pub(crate) fn v1_body(status: u16, message: &str) -> serde_json::Value {
    json!({
        "statusCode": status,
        "data": {
            "authorized": status != 401 && status != 403,
            "valid": true,
            "errors": [],
            "successful": false
        },
        "message": message
    })
}

pub(crate) fn v2_body(status: u16, title: &str) -> serde_json::Value {
    json!({"errors": [{"status": status, "code": v2_code(status), "title": title, "detail": null}]})
}

fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::V1 { status, message } => {
                (code(status), axum::Json(v1_body(status, &message))).into_response()
            }
            ApiError::V2 { status, title } => {
                (code(status), axum::Json(v2_body(status, &title))).into_response()
            }
            ApiError::Plain { status, text } => {
                let mut r = (code(status), text).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain;charset=UTF-8"),
                );
                r
            }
        }
    }
}

/// An error in the shape the path's API uses (for injected faults, which happen before routing).
pub(crate) fn error_for_path(path: &str, status: u16, message: &str) -> Response {
    if path.contains("/api/v2/") || path.ends_with("/api/v2") {
        ApiError::v2(status, message).into_response()
    } else if path.starts_with("/file/") {
        let mut r = (
            code(status),
            axum::Json(json!({"error": {"code": status, "title": message}})),
        )
            .into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    } else {
        ApiError::v1(status, message).into_response()
    }
}
