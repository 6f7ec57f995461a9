//! Sending one logical request: concurrency limit, credentials, retries and error decoding.
//!
//! Three reqwest clients share the work, because their needs differ:
//! - **api**: JSON calls and same-origin downloads; a **10 s connect timeout**, a **30 s read
//!   timeout** (reset by every read, so a slow but moving download is fine; it also bounds the
//!   wait for response headers) and a **120 s total** cap on each JSON call;
//! - **upload**: multipart bodies of any size; the same connect timeout but no read timeout,
//!   because reqwest starts that clock when the request starts and a 5 GiB upload takes longer
//!   than any sensible value (the upload code sets a size-scaled cap per request instead);
//! - **media**: the Cloud media host; never sends the Confluence credential and keeps no cookies.
//!
//! None of them follows redirects: the download code follows them itself, so that it decides
//! per hop whether the credential may go along (same origin only).
//!
//! Two semaphores bound the requests in flight, one per [`Lane`]: bulk transfers (downloads
//! and uploads, default 8) and everything else (listings, lookups, metadata; default 8). They
//! are separate budgets, not one shared pool, because a bulk transfer may hold its slot for
//! minutes (a large or slow download) while a listing is what an interactive `ls` waits for:
//! with one pool, twelve slow downloads left every listing queued behind them. A permit is held
//! from sending until the body has been read — for a streamed download, until the stream is
//! dropped — and never while sleeping before a retry.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use super::client_error::{ClientError, RequestLine};
use super::credentials::Credentials;
use super::retry::{Failure, Repeat, RetryPolicy};
use super::traffic::{Sent, Traffic};

/// Which of the three clients a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Api,
    Upload,
    /// Another origin: no credential, no read of our cookies, query redacted in errors.
    Media,
}

/// Which request budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Attachment bytes, either way: downloads and uploads.
    Bulk,
    /// Everything else: listings, lookups, metadata, properties, page edits.
    Metadata,
}

/// A response whose body is still on the wire, with the concurrency permit it holds.
pub(crate) struct Opened {
    pub(crate) response: Response,
    pub(crate) permit: OwnedSemaphorePermit,
}

/// A fully read response.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Requests in flight at once, per lane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) bulk: usize,
    pub(crate) metadata: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) read: Duration,
    pub(crate) json_total: Duration,
    /// A download slower than this many bytes per second over `rate_window` fails.
    pub(crate) min_rate: u64,
    pub(crate) rate_window: Duration,
}

pub(crate) struct Transport {
    api: reqwest::Client,
    upload: reqwest::Client,
    media: reqwest::Client,
    credentials: Credentials,
    bulk: Arc<Semaphore>,
    metadata: Arc<Semaphore>,
    pub(crate) retry: RetryPolicy,
    timeouts: Timeouts,
    /// Requests, retries and uploads on the wire, for `confluencefs status`.
    pub(crate) traffic: Arc<Traffic>,
}

impl Transport {
    pub(crate) fn new(
        credentials: Credentials,
        retry: RetryPolicy,
        limits: Limits,
        timeouts: Timeouts,
        user_agent: &str,
    ) -> Result<Transport, ClientError> {
        let build = |read_timeout: Option<Duration>| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(timeouts.connect)
                .tcp_keepalive(Duration::from_secs(30))
                // Not a browser-like agent: Confluence runs its XSRF check on those even with
                // the no-check header (docs/CONFLUENCE.md §5.5).
                .user_agent(user_agent.to_string());
            if let Some(read) = read_timeout {
                builder = builder.read_timeout(read);
            }
            builder
                .build()
                .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))
        };
        Ok(Transport {
            api: build(Some(timeouts.read))?,
            upload: build(None)?,
            media: build(Some(timeouts.read))?,
            credentials,
            bulk: Arc::new(Semaphore::new(limits.bulk.max(1))),
            metadata: Arc::new(Semaphore::new(limits.metadata.max(1))),
            retry,
            timeouts,
            traffic: Arc::default(),
        })
    }

    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A request builder on the right client, with the credential when the channel allows it.
    pub(crate) fn request(&self, channel: Channel, method: Method, url: Url) -> RequestBuilder {
        let client = match channel {
            Channel::Api => &self.api,
            Channel::Upload => &self.upload,
            Channel::Media => &self.media,
        };
        let builder = client.request(method, url);
        match channel {
            Channel::Media => builder,
            _ => self
                .credentials
                .apply(builder)
                .header(ACCEPT, HeaderValue::from_static("application/json")),
        }
    }

    /// The request line shown in errors; the media host's query holds a token and is dropped.
    pub(crate) fn line(channel: Channel, method: &Method, url: &Url) -> RequestLine {
        let url = if channel == Channel::Media {
            let mut redacted = url.clone();
            redacted.set_query(None);
            redacted.to_string()
        } else {
            url.to_string()
        };
        RequestLine {
            method: method.clone(),
            url,
        }
    }

    /// A JSON call: GET/PUT/POST/DELETE with an optional JSON body; answers are read whole.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: Url,
        json: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<Answer, ClientError> {
        let line = Self::line(Channel::Api, &method, &url);
        let total = self.timeouts.json_total;
        self.fetch(&line, Channel::Api, repeat, || {
            let mut builder = self
                .request(Channel::Api, method.clone(), url.clone())
                .timeout(total);
            if let Some(body) = json {
                builder = builder.json(body);
            }
            async move { Ok(builder) }
        })
        .await
    }

    /// Like [`call`](Self::call), decoding the JSON answer.
    pub(crate) async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        json: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<T, ClientError> {
        let line = Self::line(Channel::Api, &method, &url);
        let answer = self.call(method, url, json, repeat).await?;
        decode(&line, &answer.body)
    }

    /// Runs `build` until an attempt succeeds or the policy gives up, reading the whole body.
    pub(crate) async fn fetch<F, Fut>(
        &self,
        line: &RequestLine,
        channel: Channel,
        repeat: Repeat,
        mut build: F,
    ) -> Result<Answer, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ClientError>>,
    {
        // Uploads are bulk; every other request read whole is metadata.
        let lane = match channel {
            Channel::Upload => Lane::Bulk,
            Channel::Api | Channel::Media => Lane::Metadata,
        };
        let mut attempt = 0;
        let mut maybe_applied = false;
        loop {
            attempt += 1;
            let opened = match self
                .attempt(line, channel, lane, repeat, attempt, &mut build)
                .await
            {
                Ok(Step::Opened(opened)) => opened,
                Ok(Step::Retry { ambiguous }) => {
                    self.traffic.retry();
                    maybe_applied |= ambiguous;
                    continue;
                }
                Err(error) => return already_done(line, error, maybe_applied),
            };
            let status = opened.response.status();
            let headers = opened.response.headers().clone();
            let mut response = opened.response;
            match read_capped(&mut response, MAX_ANSWER_BYTES).await {
                Ok(None) => {
                    return Err(ClientError::Decode {
                        request: line.clone(),
                        detail: format!(
                            "the answer is larger than {} MiB; refused",
                            MAX_ANSWER_BYTES >> 20
                        ),
                    })
                }
                Ok(Some(body)) => {
                    return Ok(Answer {
                        status,
                        headers,
                        body,
                    })
                }
                Err(error) => {
                    drop(opened.permit);
                    let error = transport_error(line, error);
                    maybe_applied = true;
                    match self.retry.next_delay(attempt, repeat, Failure::Broken) {
                        Some(wait) => {
                            self.traffic.retry();
                            tracing::debug!(%line, attempt, ?wait, "body cut short, retrying");
                            tokio::time::sleep(wait).await;
                        }
                        None => return Err(error),
                    }
                }
            }
        }
    }

    /// Runs `build` until an attempt gets a 2xx or 3xx answer, leaving its body unread. Only
    /// downloads stream their bodies, so this draws on the bulk budget.
    pub(crate) async fn open<F, Fut>(
        &self,
        line: &RequestLine,
        channel: Channel,
        repeat: Repeat,
        mut build: F,
    ) -> Result<Opened, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ClientError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .attempt(line, channel, Lane::Bulk, repeat, attempt, &mut build)
                .await?
            {
                Step::Opened(opened) => return Ok(opened),
                Step::Retry { .. } => self.traffic.retry(),
            }
        }
    }

    /// One attempt: an answer, or "failed, waited, try again".
    async fn attempt<F, Fut>(
        &self,
        line: &RequestLine,
        channel: Channel,
        lane: Lane,
        repeat: Repeat,
        attempt: u32,
        build: &mut F,
    ) -> Result<Step, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ClientError>>,
    {
        let limiter = match lane {
            Lane::Bulk => &self.bulk,
            Lane::Metadata => &self.metadata,
        };
        let permit = limiter
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let request = build().await?;
        self.traffic.request(match (channel, lane) {
            (Channel::Media, _) => Sent::Media,
            (Channel::Upload, _) => Sent::Upload,
            (Channel::Api, Lane::Bulk) => Sent::Download,
            (Channel::Api, Lane::Metadata) => Sent::Metadata,
        });
        let (error, failure_kind) = match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() || status.is_redirection() {
                    tracing::trace!(%line, ?channel, status = status.as_u16(), attempt, "answered");
                    return Ok(Step::Opened(Opened { response, permit }));
                }
                let headers = response.headers().clone();
                let content_type = headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // An error body that fails to arrive still leaves us the status.
                let body = response.bytes().await.unwrap_or_default();
                drop(permit);
                let mut error = ClientError::from_answer(
                    line.clone(),
                    status,
                    content_type.as_deref(),
                    &body,
                    &self.credentials.who(),
                );
                if channel == Channel::Media {
                    if let ClientError::Unauthorized { message, .. } = error {
                        // We send the media host no credential; its 401 is about the token in
                        // the URL (expired, say), not about the user's credentials.
                        error = ClientError::Service {
                            status: status.as_u16(),
                            message,
                            request: line.clone(),
                        };
                    }
                }
                if let ClientError::RangeNotSatisfiable { size, .. } = &mut error {
                    // `Content-Range: bytes */N` tells how long the file really is.
                    *size = headers
                        .get(reqwest::header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().strip_prefix("bytes */"))
                        .and_then(|n| n.trim().parse().ok());
                }
                let delay = self.retry.next_delay(
                    attempt,
                    repeat,
                    Failure::Status(status.as_u16(), &headers),
                );
                match delay {
                    Some(wait) => {
                        tracing::debug!(%line, status = status.as_u16(), attempt, ?wait, "retrying");
                        tokio::time::sleep(wait).await;
                        // A 5xx may come after the work was done; a 429 comes before it.
                        return Ok(Step::Retry {
                            ambiguous: status.is_server_error(),
                        });
                    }
                    None => return Err(error),
                }
            }
            Err(error) => {
                drop(permit);
                let kind = if error.is_connect() {
                    Failure::NotConnected
                } else {
                    Failure::Broken
                };
                (transport_error(line, error), kind)
            }
        };
        match self.retry.next_delay(attempt, repeat, failure_kind) {
            Some(wait) => {
                tracing::debug!(%line, attempt, ?wait, error = %error, "retrying");
                tokio::time::sleep(wait).await;
                Ok(Step::Retry {
                    ambiguous: matches!(failure_kind, Failure::Broken),
                })
            }
            None => Err(error),
        }
    }
}

/// What one attempt came to.
pub(crate) enum Step {
    Opened(Opened),
    /// Failed and waited; `ambiguous` when the server may have acted on it (a 5xx, or a
    /// connection that broke after the request went out).
    Retry {
        ambiguous: bool,
    },
}

/// A DELETE that answers 404 after an earlier attempt may have gone through did what was asked:
/// the object is gone. Reporting "not found" would tell the caller its delete failed.
fn already_done(
    line: &RequestLine,
    error: ClientError,
    maybe_applied: bool,
) -> Result<Answer, ClientError> {
    match error {
        ClientError::NotFound { .. } if maybe_applied && line.method == Method::DELETE => {
            tracing::debug!(%line, "404 on a repeated DELETE: the first one went through");
            Ok(Answer {
                status: StatusCode::NO_CONTENT,
                headers: HeaderMap::new(),
                body: Bytes::new(),
            })
        }
        other => Err(other),
    }
}

/// A reqwest failure as our transport error, with the cause chain spelled out (reqwest's own
/// message is often just "error sending request").
pub(crate) fn transport_error(line: &RequestLine, error: reqwest::Error) -> ClientError {
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = cause.source();
    }
    ClientError::Transport {
        request: line.clone(),
        detail,
        source: Some(error),
    }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    line: &RequestLine,
    body: &[u8],
) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Decode {
        request: line.clone(),
        detail: format!(
            "{e}; body starts with {:?}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        ),
    })
}

/// The most bytes one answer read whole may hold (a listing with page bodies, a range): a
/// server that sends more is refused rather than allowed to fill the memory.
const MAX_ANSWER_BYTES: usize = 512 << 20;

/// The whole body of `response`, or `None` once it passes `cap` bytes.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::new();
    let mut first: Option<bytes::Bytes> = None;
    while let Some(chunk) = response.chunk().await? {
        if body.len() + first.as_ref().map_or(0, |f| f.len()) + chunk.len() > cap {
            return Ok(None);
        }
        // A body that arrives as one chunk is handed on as it is, without a copy.
        if first.is_none() && body.is_empty() {
            first = Some(chunk);
            continue;
        }
        if let Some(first) = first.take() {
            body.reserve(response.content_length().unwrap_or(0) as usize);
            body.extend_from_slice(&first);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(match first {
        Some(only) => only,
        None => body.freeze(),
    }))
}
