//! The one error type of the Confluence client.
//!
//! It keeps "the service said no" (an HTTP status with Confluence's own message) apart from
//! "the transport failed" (connect, reset, timeout, a body cut short), because the two call for
//! different reactions: a refusal is final, a transport failure is worth retrying. The most common
//! refusals get their own variants (`NotFound`, `Conflict`, `AlreadyExists`, …) so that callers match
//! on a kind instead of parsing text; each still carries the status and the server's message.
//! Mapping to errno is the filesystem's job, not this module's.

use std::fmt;

use reqwest::{Method, StatusCode};

/// Where a refused request went; shown in every service error so a log line is self-contained.
/// The query string of media-host URLs is dropped because it carries a download token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    /// The HTTP method of the request.
    pub method: Method,
    /// The URL the request went to, without the query string of a media-host URL.
    pub url: String,
}

impl fmt::Display for RequestLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

/// What went wrong with a request to Confluence, or before one could be sent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Confluence answered with an error status that has no more specific variant.
    #[error("{request}: Confluence answered {status}: {message}")]
    Service {
        /// The HTTP status code.
        status: u16,
        /// The server's message from the body, or the status text when the body had none.
        message: String,
        /// The request that was refused.
        request: RequestLine,
    },

    /// 404: the object does not exist or is not visible to this user.
    #[error("{request}: not found: {message}")]
    NotFound {
        /// The server's message from the body, or the status text when the body had none.
        message: String,
        /// The request that was refused.
        request: RequestLine,
    },

    /// 409: the version we sent is not the current one (someone else changed the object).
    #[error("{request}: version conflict: {message}")]
    Conflict {
        /// The server's message from the body, or the status text when the body had none.
        message: String,
        /// The request that was refused.
        request: RequestLine,
    },

    /// 400 saying the name is taken (a second attachment with the same filename, a second page
    /// with the same title in a space).
    #[error("{request}: already exists: {message}")]
    AlreadyExists {
        /// The HTTP status code (400, 409 or what else the server used to say so).
        status: u16,
        /// The server's message from the body, or the status text when the body had none.
        message: String,
        /// The request that was refused.
        request: RequestLine,
    },

    /// 413, or Confluence's 404 "exceeds the maximum configured attachment size".
    #[error("{request}: too large: {message}")]
    TooLarge {
        /// The HTTP status code (413 or 404).
        status: u16,
        /// The server's message from the body, or the status text when the body had none.
        message: String,
        /// The request that was refused.
        request: RequestLine,
    },

    /// 416: the requested byte range starts at or past the end of the file.
    #[error("{request}: range not satisfiable (file size {size:?})")]
    RangeNotSatisfiable {
        /// The file's real size in bytes, from the answer's `Content-Range: bytes */N`; `None` when
        /// the answer did not say.
        size: Option<u64>,
        /// The request that was refused.
        request: RequestLine,
    },

    /// The credentials were refused (401, or Cloud's 403 "caller cannot access Confluence").
    #[error("Confluence at {url} refused the credentials of {who}: {message}")]
    Unauthorized {
        /// The user the credentials name, or "a personal access token".
        who: String,
        /// The URL that refused them.
        url: String,
        /// The server's message, or why we decided the credentials did not count.
        message: String,
    },

    /// The URL does not lead to a Confluence REST API.
    #[error("{url} does not look like Confluence: {detail}")]
    NotConfluence {
        /// The URL as the user gave it.
        url: String,
        /// What the last address we tried answered instead.
        detail: String,
    },

    /// The request or its response body did not make it through: connect, DNS, reset,
    /// timeout, or a body that ended before its announced length.
    #[error("{request}: transport failed: {detail}")]
    Transport {
        /// The request that failed.
        request: RequestLine,
        /// What failed, with the chain of causes spelled out.
        detail: String,
        /// reqwest's error, when the failure came from reqwest.
        #[source]
        source: Option<reqwest::Error>,
    },

    /// The response was not what we expected: JSON of another shape, or an answer we will not
    /// act on (paging that loops or never ends, a `next` link away from the site, a size that
    /// contradicts itself).
    #[error("{request}: unusable response: {detail}")]
    Decode {
        /// The request whose answer was unusable.
        request: RequestLine,
        /// What was wrong with the answer.
        detail: String,
    },

    /// A local file could not be read (an upload source, a token file).
    #[error("{path}: {source}")]
    Io {
        /// The file that could not be read.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The configuration is unusable (a missing variable, a malformed URL, an empty token).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status Confluence answered with, if the failure was an answer at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Service { status, .. }
            | ClientError::AlreadyExists { status, .. }
            | ClientError::TooLarge { status, .. } => Some(*status),
            ClientError::NotFound { .. } => Some(404),
            ClientError::Conflict { .. } => Some(409),
            ClientError::RangeNotSatisfiable { .. } => Some(416),
            ClientError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// Whether trying the same request again later may succeed: transport failures,
    /// rate limiting and server-side errors. The client has already retried these within its
    /// [`RetryPolicy`](super::RetryPolicy); the flag tells a caller (e.g. a write-back queue)
    /// that the failure is temporary rather than a verdict.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Service { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// Builds the error for a non-success answer, classifying it by status and message.
    pub(crate) fn from_answer(
        request: RequestLine,
        status: StatusCode,
        content_type: Option<&str>,
        body: &[u8],
        who: &str,
    ) -> ClientError {
        let message = service_message(status, content_type, body);
        let code = status.as_u16();
        let lower = message.to_ascii_lowercase();
        match code {
            401 => ClientError::Unauthorized {
                who: who.to_string(),
                url: request.url,
                message,
            },
            403 if lower.contains("cannot access confluence")
                || lower.contains("not permitted to use confluence") =>
            {
                ClientError::Unauthorized {
                    who: who.to_string(),
                    url: request.url,
                    message,
                }
            }
            404 if lower.contains("exceeds the maximum") => ClientError::TooLarge {
                status: code,
                message,
                request,
            },
            404 => ClientError::NotFound { message, request },
            409 => ClientError::Conflict { message, request },
            413 => ClientError::TooLarge {
                status: code,
                message,
                request,
            },
            416 => ClientError::RangeNotSatisfiable {
                size: None,
                request,
            },
            400 if lower.contains("same file name") || lower.contains("already exists") => {
                ClientError::AlreadyExists {
                    status: code,
                    message,
                    request,
                }
            }
            _ => ClientError::Service {
                status: code,
                message,
                request,
            },
        }
    }
}

/// Confluence's own words for a refusal: v1 `{statusCode,data,message}`, v2
/// `{errors:[{title,detail}]}`, else the start of the text body, else the status reason.
pub(crate) fn service_message(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(message) = json.get("message").and_then(|m| m.as_str()) {
            if !message.is_empty() {
                return message.to_string();
            }
        }
        if let Some(first) = json
            .get("errors")
            .and_then(|e| e.as_array())
            .and_then(|e| e.first())
        {
            let title = first.get("title").and_then(|t| t.as_str()).unwrap_or("");
            let detail = first.get("detail").and_then(|d| d.as_str()).unwrap_or("");
            let joined = match (title.is_empty(), detail.is_empty()) {
                (false, false) => format!("{title}: {detail}"),
                (false, true) => title.to_string(),
                (true, false) => detail.to_string(),
                (true, true) => String::new(),
            };
            if !joined.is_empty() {
                return joined;
            }
        }
    }
    let is_html = content_type.is_some_and(|c| c.contains("html"));
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.is_empty() && !is_html {
        // One line is enough for a log or an error chain; Confluence's text bodies are short.
        let first_line = text.lines().next().unwrap_or("");
        return first_line.chars().take(300).collect();
    }
    status
        .canonical_reason()
        .map(|r| format!("{} {}", status.as_u16(), r))
        .unwrap_or_else(|| status.as_u16().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> RequestLine {
        RequestLine {
            method: Method::POST,
            url: "http://h/rest/api/content/1/child/attachment".into(),
        }
    }

    #[test]
    fn v1_message_is_used() {
        let body = br#"{"statusCode":400,"data":{},"message":"com.atlassian.confluence.api.service.exceptions.BadRequestException: Cannot add a new attachment with same file name as an existing attachment: a.png"}"#;
        let err = ClientError::from_answer(
            line(),
            StatusCode::BAD_REQUEST,
            Some("application/json"),
            body,
            "u",
        );
        match err {
            ClientError::AlreadyExists { message, .. } => assert!(message.ends_with("a.png")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn v2_errors_are_used() {
        let body = br#"{"errors":[{"status":404,"code":"NOT_FOUND","title":"Cannot find a page with id [9]","detail":null}]}"#;
        let err = ClientError::from_answer(line(), StatusCode::NOT_FOUND, None, body, "u");
        assert_eq!(err.status(), Some(404));
        assert!(err.to_string().contains("Cannot find a page with id [9]"));
    }

    #[test]
    fn cloud_403_is_unauthorized() {
        let body = br#"{"statusCode":403,"message":"caller cannot access Confluence"}"#;
        let err = ClientError::from_answer(line(), StatusCode::FORBIDDEN, None, body, "ann");
        assert!(matches!(err, ClientError::Unauthorized { .. }));
        assert!(err.to_string().contains("ann"));
    }

    #[test]
    fn html_body_falls_back_to_reason() {
        let err = ClientError::from_answer(
            line(),
            StatusCode::BAD_GATEWAY,
            Some("text/html"),
            b"<html>oops</html>",
            "u",
        );
        assert!(err.to_string().contains("502 Bad Gateway"));
        assert!(err.is_retryable());
    }
}
