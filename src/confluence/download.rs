//! Reading attachment bytes: a byte range of a given version, whole or as a stream.
//!
//! Cloud: `GET {base}/rest/api/content/{page}/child/attachment/{id}/download?version=N` answers
//! 302 to the media host with a short-lived token in the query. We follow redirects ourselves
//! and send the credential only to the origin it belongs to: the media request goes out with no
//! `Authorization` and no cookies (docs/CONFLUENCE.md §1.6). Data Center serves
//! `{base}/download/attachments/{page}/{filename}?version=N` itself, with the credential.
//!
//! Cloud's redirect costs a round trip per range, so the media URL a download URL led to is
//! reused for up to [`MEDIA_LINK_REUSE`] (the token in it lives 10 minutes on Cloud,
//! docs/CONFLUENCE.md §1.6; we stay well inside that). A reused link that is refused (401/403/404/410: the token
//! expired or the file moved) is forgotten and the redirect followed again.
//!
//! Every hop carries `Range`. A 206 is used as is; a 200 means the range was ignored and we
//! skip to the offset ourselves; 416 is [`ClientError::RangeNotSatisfiable`]. When the size of
//! the version is known (the attachment's current version), a file size the answer states —
//! the total of `Content-Range`, or the `Content-Length` of a whole-file 200 — must agree with
//! it: a server that contradicts itself gets [`ClientError::Decode`] rather than bytes of a file
//! that is not the one listed. (A size of 0 is not held against it: a listing without sizes
//! gives that too.) A body that ends
//! early — a reset, or fewer bytes than `Content-Range`/`Content-Length` announced — is a
//! transport failure and is resumed from the first missing byte, starting again from the
//! Confluence URL (the media token may have expired), up to the retry policy's attempt limit
//! of consecutive failures without progress.
//!
//! A body that moves, however slowly, never trips the read timeout, which measures silence; a
//! server that trickles a byte a second would hold the range (and its request slot) for days.
//! So a body must also bring at least [`MIN_TRANSFER_RATE`](super::MIN_TRANSFER_RATE) bytes per second, averaged over
//! each [`RATE_WINDOW`](super::RATE_WINDOW) of time spent waiting for it (time the consumer spends between chunks,
//! and time spent opening or re-opening the request, which includes waiting for a request slot,
//! do not count). A window that ends short fails the download at once, without a retry: a
//! server that slow is not going to be faster on the next attempt, and a silent one is caught
//! by the same rule after one window. Both figures are deliberately low (1 KiB/s over 30 s):
//! they exist to end downloads that are stuck, not to judge slow links.

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::client::Client;
use super::client_error::ClientError;
#[cfg(doc)]
use super::media_links::MEDIA_LINK_REUSE;
use super::model::Attachment;
use super::retry::Repeat;
use super::site::{same_origin, Flavor};
use super::transport::{transport_error, Channel, Opened, Transport};

/// Attachment bytes as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>;

/// Redirect hops we follow before calling it a loop.
const MAX_REDIRECTS: usize = 5;

impl Client {
    /// `len` bytes of `version` of `attachment` starting at `offset`; fewer when the file ends
    /// first. An offset at or past the end is [`ClientError::RangeNotSatisfiable`].
    pub async fn download_range(
        &self,
        attachment: &Attachment,
        version: u64,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, ClientError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let mut stream = self
            .download_stream(attachment, version, offset, Some(len))
            .await?;
        let mut buffer = BytesMut::with_capacity(len.min(64 << 20) as usize);
        while let Some(chunk) = stream.next().await {
            buffer.extend_from_slice(&chunk?);
        }
        Ok(buffer.freeze())
    }

    /// The bytes of `version` from `offset`, `len` of them or to the end, as a stream that
    /// resumes by itself after a cut connection. Errors that happen before the first byte
    /// (404, 416, refused credentials) are returned here rather than in the stream.
    ///
    /// The stream holds one of the client's concurrency permits until it ends or is dropped:
    /// drop streams you stop reading.
    pub async fn download_stream(
        &self,
        attachment: &Attachment,
        version: u64,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, ClientError> {
        let source = self.download_url(attachment, version);
        let stop = len.map(|l| offset.saturating_add(l));
        // The attachment describes its current version; another version's size is not known.
        let size =
            (version == attachment.version && attachment.size > 0).then_some(attachment.size);
        let body = self.open_download(&source, offset, stop, size).await?;
        let timeouts = self.transport().timeouts();
        let state = DownloadState {
            client: self.clone(),
            source,
            pos: offset,
            stop,
            size,
            body: Some(body),
            failures: 0,
            done: false,
            pace: Pace {
                min_rate: timeouts.min_rate,
                window: timeouts.rate_window,
                waited: Duration::ZERO,
                bytes: 0,
            },
        };
        Ok(Box::pin(futures_util::stream::unfold(state, next_chunk)))
    }

    /// The Confluence URL that serves the bytes of one version.
    fn download_url(&self, attachment: &Attachment, version: u64) -> Url {
        let site = self.site();
        let mut url = match site.flavor {
            Flavor::Cloud => {
                site.v1_attachment(&attachment.container.id, &attachment.id, &["download"])
            }
            Flavor::DataCenter => site.at(&[
                "download",
                "attachments",
                &attachment.container.id,
                &attachment.title,
            ]),
        };
        url.query_pairs_mut()
            .append_pair("version", &version.to_string());
        url
    }

    /// Follows redirects from `source` and returns the body positioned for `[pos, stop)`; a
    /// known `size` of the file is checked against what the answer says.
    async fn open_download(
        &self,
        source: &Url,
        pos: u64,
        stop: Option<u64>,
        size: Option<u64>,
    ) -> Result<Body, ClientError> {
        let range = match stop {
            Some(stop) => format!("bytes={}-{}", pos, stop.saturating_sub(1)),
            None => format!("bytes={pos}-"),
        };
        let base = self.site().base().clone();
        // On Cloud every download redirects to the media host: one request asks, the ranges
        // started with it wait for its answer and go straight there.
        let mut turn = None;
        if self.flavor() == Flavor::Cloud && self.inner.media_links.get(source).is_none() {
            turn = Some(self.inner.media_links.resolving(source).await);
        }
        if let Some(media) = self.inner.media_links.get(source) {
            drop(turn.take());
            match self.open_media(&media, &range, pos, size).await {
                Ok(body) => return Ok(body),
                Err(err) if matches!(err.status(), Some(401 | 403 | 404 | 410)) => {
                    self.inner.media_links.forget(source);
                }
                Err(err) => return Err(err),
            }
        }
        let mut url = source.clone();
        for _ in 0..=MAX_REDIRECTS {
            let channel = if same_origin(&url, &base) {
                Channel::Api
            } else {
                Channel::Media
            };
            let line = Transport::line(channel, &Method::GET, &url);
            let transport = self.transport();
            let opened = transport
                .open(&line, channel, Repeat::Idempotent, || {
                    let request = transport
                        .request(channel, Method::GET, url.clone())
                        .header(RANGE, range.clone());
                    async move { Ok(request) }
                })
                .await?;
            let status = opened.response.status();
            if status.is_redirection() {
                let location = opened
                    .response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| ClientError::Decode {
                        request: line.clone(),
                        detail: format!("{status} without a Location header"),
                    })?;
                url = url.join(location).map_err(|e| ClientError::Decode {
                    request: line.clone(),
                    detail: format!("bad Location {location:?}: {e}"),
                })?;
                if turn.is_some() && !same_origin(&url, &base) {
                    // The waiting ranges can go to the media host now.
                    self.inner.media_links.put(source, url.clone());
                    drop(turn.take());
                }
                continue;
            }
            if channel == Channel::Media {
                self.inner.media_links.put(source, url.clone());
            }
            return Body::new(opened, line, pos, size);
        }
        Err(ClientError::Decode {
            request: Transport::line(Channel::Api, &Method::GET, source),
            detail: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

impl Client {
    /// Opens a media link found earlier, without credentials (another origin).
    async fn open_media(
        &self,
        url: &Url,
        range: &str,
        pos: u64,
        size: Option<u64>,
    ) -> Result<Body, ClientError> {
        let line = Transport::line(Channel::Media, &Method::GET, url);
        let transport = self.transport();
        let opened = transport
            .open(&line, Channel::Media, Repeat::Idempotent, || {
                let request = transport
                    .request(Channel::Media, Method::GET, url.clone())
                    .header(RANGE, range.to_string());
                async move { Ok(request) }
            })
            .await?;
        if opened.response.status().is_redirection() {
            return Err(ClientError::Service {
                status: 410,
                message: "the media link redirects again".into(),
                request: line,
            });
        }
        Body::new(opened, line, pos, size)
    }
}

/// An open response body and where its bytes sit in the file.
struct Body {
    opened: Opened,
    line: super::client_error::RequestLine,
    /// File offset of the next byte the body will deliver.
    file_pos: u64,
    /// File offset just past the last byte the body announced, when it said.
    announced_end: Option<u64>,
}

impl Body {
    fn new(
        opened: Opened,
        line: super::client_error::RequestLine,
        pos: u64,
        size: Option<u64>,
    ) -> Result<Body, ClientError> {
        let headers = opened.response.headers();
        let content_length = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let contradicts = |said: u64| size.is_some_and(|size| size != said);
        let (file_pos, announced_end) = match opened.response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let value = headers
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let (first, last, total) =
                    parse_content_range(value).ok_or_else(|| ClientError::Decode {
                        request: line.clone(),
                        detail: "206 without a usable Content-Range".into(),
                    })?;
                if first > pos {
                    return Err(ClientError::Decode {
                        request: line,
                        detail: format!("asked for bytes from {pos}, got from {first}"),
                    });
                }
                if let Some(total) = total {
                    if last >= total || contradicts(total) {
                        return Err(ClientError::Decode {
                            request: line,
                            detail: format!(
                                "Content-Range {value:?} contradicts the file's size of {} bytes",
                                size.map_or(total, |s| s)
                            ),
                        });
                    }
                }
                (first, Some(last + 1))
            }
            // The server ignored Range and sends the whole file: skip to `pos` ourselves.
            StatusCode::OK => {
                if let Some(length) = content_length.filter(|&l| contradicts(l)) {
                    return Err(ClientError::Decode {
                        request: line,
                        detail: format!(
                            "the whole file came with Content-Length {length}, which contradicts \
                             its size of {} bytes",
                            size.unwrap_or(0)
                        ),
                    });
                }
                (0, content_length)
            }
            other => {
                return Err(ClientError::Service {
                    status: other.as_u16(),
                    message: "unexpected status for a download".into(),
                    request: line,
                })
            }
        };
        Ok(Body {
            opened,
            line,
            file_pos,
            announced_end,
        })
    }
}

/// `bytes a-b/total` → `(a, b, Some(total))`; a total of `*` (unknown) is `None`.
fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let spec = value.trim().strip_prefix("bytes")?.trim();
    let (range, total) = spec.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    (a <= b).then_some((a, b, total))
}

struct DownloadState {
    client: Client,
    source: Url,
    /// File offset of the next byte to hand out.
    pos: u64,
    /// File offset to stop before, if bounded.
    stop: Option<u64>,
    /// The file's size, when known, for checking each answer against.
    size: Option<u64>,
    body: Option<Body>,
    /// Consecutive failures without a byte of progress.
    failures: u32,
    done: bool,
    pace: Pace,
}

/// How fast the bodies of one download arrive: bytes and waiting time in the current window.
struct Pace {
    min_rate: u64,
    window: Duration,
    /// Time spent waiting for body bytes in this window.
    waited: Duration,
    /// Bytes received in this window.
    bytes: u64,
}

impl Pace {
    /// When the current window ends, for a wait that starts at `now`.
    fn deadline(&self, now: Instant) -> Instant {
        now + self.window.saturating_sub(self.waited)
    }

    /// At the end of a window: the reason to give up if too few bytes came in it, else a new
    /// window.
    fn check(&mut self) -> Result<(), String> {
        if self.waited < self.window {
            return Ok(());
        }
        let floor = (self.min_rate as f64 * self.window.as_secs_f64()) as u64;
        if self.bytes < floor {
            return Err(format!(
                "download slower than {} bytes/s: {} bytes in {:.1} s",
                self.min_rate,
                self.bytes,
                self.waited.as_secs_f64()
            ));
        }
        self.waited = Duration::ZERO;
        self.bytes = 0;
        Ok(())
    }
}

async fn next_chunk(
    mut state: DownloadState,
) -> Option<(Result<Bytes, ClientError>, DownloadState)> {
    let item = pull(&mut state).await?;
    Some((item, state))
}

/// The next piece of the range, re-opening the request after a cut; `None` at the end.
async fn pull(state: &mut DownloadState) -> Option<Result<Bytes, ClientError>> {
    loop {
        if state.done || state.stop.is_some_and(|stop| state.pos >= stop) {
            return None;
        }
        let mut body = match state.body.take() {
            Some(body) => body,
            None => match state
                .client
                .open_download(&state.source, state.pos, state.stop, state.size)
                .await
            {
                Ok(body) => body,
                Err(ClientError::RangeNotSatisfiable { .. }) if state.pos > 0 => {
                    // The file ended exactly where the cut happened.
                    return None;
                }
                Err(error) => {
                    state.done = true;
                    return Some(Err(error));
                }
            },
        };
        let began = Instant::now();
        let read = tokio::time::timeout_at(
            state.pace.deadline(began).into(),
            body.opened.response.chunk(),
        )
        .await;
        state.pace.waited += began.elapsed();
        if let Ok(Ok(Some(chunk))) = &read {
            state.pace.bytes += chunk.len() as u64;
        }
        if let Err(reason) = state.pace.check() {
            state.done = true;
            return Some(Err(ClientError::Transport {
                request: body.line.clone(),
                detail: reason,
                source: None,
            }));
        }
        let failure = match read {
            // The window ended with enough bytes in it: keep reading.
            Err(_elapsed) => {
                state.body = Some(body);
                continue;
            }
            Ok(Ok(Some(chunk))) => {
                let chunk_start = body.file_pos;
                let chunk_end = chunk_start + chunk.len() as u64;
                body.file_pos = chunk_end;
                let lo = chunk_start.max(state.pos);
                let hi = state.stop.map_or(chunk_end, |stop| chunk_end.min(stop));
                state.body = Some(body);
                if lo < hi {
                    state.pos = hi;
                    state.failures = 0;
                    let piece =
                        chunk.slice((lo - chunk_start) as usize..(hi - chunk_start) as usize);
                    return Some(Ok(piece));
                }
                continue;
            }
            Ok(Ok(None)) => {
                if body.announced_end.is_some_and(|end| body.file_pos < end) {
                    ClientError::Transport {
                        detail: format!(
                            "body ended at byte {} of {}",
                            body.file_pos,
                            body.announced_end.unwrap_or(0)
                        ),
                        request: body.line.clone(),
                        source: None,
                    }
                } else {
                    return None;
                }
            }
            Ok(Err(error)) => transport_error(&body.line, error),
        };
        drop(body);
        state.failures += 1;
        let policy = &state.client.transport().retry;
        if state.failures >= policy.max_attempts {
            state.done = true;
            return Some(Err(failure));
        }
        let wait = policy.backoff(state.failures);
        tracing::debug!(error = %failure, pos = state.pos, ?wait, "download cut short, resuming");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some((0, 99, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-5/*"), Some((5, 5, None)));
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 9-1/10"), None);
        assert_eq!(parse_content_range("bytes 0-9/-5"), None);
    }
}
