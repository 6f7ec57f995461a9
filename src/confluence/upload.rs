//! Uploading attachments: new files, and new versions of existing ones.
//!
//! Both are v1 multipart requests (v2 has no attachment writes): `POST …/child/attachment` for new
//! files (several `file` parts may share one request) and `POST …/child/attachment/{id}/data` for
//! a new version. Each carries `X-Atlassian-Token: no-check` (the XSRF guard answers 403 without
//! it), `minorEdit`, and `comment` parts labelled `text/plain; charset=UTF-8` (unlabelled text is
//! read as ISO-8859-1). Filenames go out as raw UTF-8 in `Content-Disposition`, which is how
//! Confluence reads them (docs/CONFLUENCE.md §1.2). File bodies are streamed from disk in 1 MiB chunks
//! (`file_chunks`) and re-opened for each attempt, so a 5 GiB file never sits in memory. One upload request may
//! take 2 minutes plus the size at 32 KiB/s before it is abandoned.
//!
//! An upload is not idempotent: repeating one that did land creates a duplicate (or a second
//! version). So after a transport failure or a 5xx we look before we retry — a new attachment
//! counts as delivered if the container now has that filename with the expected size, a new
//! version if the attachment's version number moved past the one we started from. A look that
//! finds the container or the attachment gone (404) is the answer: nothing landed, and a server
//! may well have refused the upload unread and closed the connection on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use reqwest::Method;

use super::client::Client;
use super::client_error::{ClientError, RequestLine};
use super::model::{Attachment, ContainerRef};
use super::retry::Repeat;
use super::traffic::BodyCounter;
use super::transport::{decode, Channel, Transport};
use super::wire::{V1Content, V1List};

/// Where the bytes of an upload come from.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// A local file, streamed (and re-opened for each attempt).
    Path(PathBuf),
    /// Bytes already in memory.
    Bytes(Bytes),
}

/// One file to upload.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// The attachment's filename on Confluence (any UTF-8 except `/`).
    pub filename: String,
    /// Where the bytes come from.
    pub source: UploadSource,
    /// `None` guesses from the filename's extension.
    pub media_type: Option<String>,
    /// The comment of the new version; `None` sends none.
    pub comment: Option<String>,
}

impl NewAttachment {
    /// An upload of the file at `path`, named `filename`, with no comment and a guessed media type.
    pub fn from_path(filename: impl Into<String>, path: impl Into<PathBuf>) -> NewAttachment {
        NewAttachment {
            filename: filename.into(),
            source: UploadSource::Path(path.into()),
            media_type: None,
            comment: None,
        }
    }

    /// An upload of `bytes`, named `filename`, with no comment and a guessed media type.
    pub fn from_bytes(filename: impl Into<String>, bytes: impl Into<Bytes>) -> NewAttachment {
        NewAttachment {
            filename: filename.into(),
            source: UploadSource::Bytes(bytes.into()),
            media_type: None,
            comment: None,
        }
    }

    /// Sets the comment of the new version.
    pub fn with_comment(mut self, comment: impl Into<String>) -> NewAttachment {
        self.comment = Some(comment.into());
        self
    }

    /// Sets the media type instead of guessing it from the filename.
    pub fn with_media_type(mut self, media_type: impl Into<String>) -> NewAttachment {
        self.media_type = Some(media_type.into());
        self
    }
}

impl UploadSource {
    async fn len(&self) -> Result<u64, ClientError> {
        match self {
            UploadSource::Bytes(bytes) => Ok(bytes.len() as u64),
            UploadSource::Path(path) => tokio::fs::metadata(path)
                .await
                .map(|m| m.len())
                .map_err(|source| io_error(path, source)),
        }
    }

    async fn part(&self, counter: BodyCounter) -> Result<Part, ClientError> {
        let len = self.len().await?;
        match self {
            UploadSource::Bytes(bytes) => {
                let chunk = futures_util::stream::once(std::future::ready(
                    Ok::<_, std::io::Error>(bytes.clone()),
                ));
                Ok(Part::stream_with_length(
                    reqwest::Body::wrap_stream(counter.count(chunk)),
                    len,
                ))
            }
            UploadSource::Path(path) => {
                let file = std::fs::File::open(path).map_err(|source| io_error(path, source))?;
                let chunks = super::file_chunks::chunks(file, len);
                Ok(Part::stream_with_length(
                    reqwest::Body::wrap_stream(counter.count(chunks)),
                    len,
                ))
            }
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> ClientError {
    ClientError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Client {
    /// Uploads one new attachment. A filename already present in the container is
    /// [`ClientError::AlreadyExists`] with Confluence's message; use
    /// [`upload_new_version`](Self::upload_new_version) for that.
    pub async fn upload_attachment(
        &self,
        container: &ContainerRef,
        file: NewAttachment,
        minor_edit: bool,
    ) -> Result<Attachment, ClientError> {
        let mut uploaded = self
            .upload_attachments(container, vec![file], minor_edit)
            .await?;
        uploaded.pop().ok_or_else(|| ClientError::Decode {
            request: self.upload_line(container),
            detail: "the upload answer lists no attachment".into(),
        })
    }

    /// Uploads several new attachments in as few requests as possible, in the given order.
    pub async fn upload_attachments(
        &self,
        container: &ContainerRef,
        files: Vec<NewAttachment>,
        minor_edit: bool,
    ) -> Result<Vec<Attachment>, ClientError> {
        let mut sizes = Vec::with_capacity(files.len());
        for file in &files {
            sizes.push(file.source.len().await?);
        }
        let mut done: Vec<Option<Attachment>> = vec![None; files.len()];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let pending: Vec<usize> = (0..files.len()).filter(|i| done[*i].is_none()).collect();
            if pending.is_empty() {
                return Ok(done.into_iter().flatten().collect());
            }
            let batch: Vec<&NewAttachment> = pending.iter().map(|i| &files[*i]).collect();
            let error = match self.post_new(container, &batch, minor_edit).await {
                Ok(created) => {
                    for attachment in created {
                        if let Some(i) = pending
                            .iter()
                            .copied()
                            .find(|i| files[*i].filename == attachment.title)
                        {
                            done[i] = Some(attachment);
                        }
                    }
                    // An answer that left some out: look them up rather than guess.
                    for i in pending {
                        if done[i].is_none() {
                            done[i] = self.find_attachment(container, &files[i].filename).await?;
                        }
                    }
                    return Ok(done.into_iter().flatten().collect());
                }
                Err(error) if may_have_landed(&error) => error,
                Err(error) => return Err(error),
            };
            // The request may have been applied: see which files arrived before sending again.
            // If even the check fails, the original failure is the one worth reporting, unless
            // the check found the container gone.
            let mut all_there = true;
            for i in pending {
                match self.find_attachment(container, &files[i].filename).await {
                    Ok(Some(found)) if found.size == sizes[i] => done[i] = Some(found),
                    Ok(None) => all_there = false,
                    // The container is gone: nothing landed, and sending again can only be
                    // refused. (A server may refuse an upload unread and close the connection,
                    // so that the refusal reached us as a broken connection.)
                    Err(gone @ ClientError::NotFound { .. }) => return Err(gone),
                    Ok(Some(_)) | Err(_) => return Err(error),
                }
            }
            if all_there {
                tracing::info!(error = %error, "upload failed in transit but arrived");
                continue;
            }
            let policy = &self.transport().retry;
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            let wait = policy.backoff(attempt);
            tracing::debug!(error = %error, ?wait, "upload did not arrive, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Uploads `source` as a new version of `attachment` (same id, version + 1).
    pub async fn upload_new_version(
        &self,
        attachment: &Attachment,
        source: UploadSource,
        comment: Option<&str>,
        minor_edit: bool,
    ) -> Result<Attachment, ClientError> {
        let file = NewAttachment {
            filename: attachment.title.clone(),
            source,
            media_type: Some(attachment.media_type.clone()),
            comment: comment.map(str::to_string),
        };
        let expected_size = file.source.len().await?;
        let site = self.site();
        let url = site.v1_attachment(&attachment.container.id, &attachment.id, &["data"]);
        let line = Transport::line(Channel::Upload, &Method::POST, &url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.send_multipart(&line, &url, &[&file], minor_edit).await {
                Ok(value) => {
                    let content = first_content(&line, value)?;
                    let has_size = content.extensions.is_some();
                    let mut updated = content
                        .into_attachment(site, Some(&attachment.container))
                        .ok_or_else(|| ClientError::Decode {
                            request: line.clone(),
                            detail: "the answer is not an attachment".into(),
                        })?;
                    if !has_size {
                        updated.size = expected_size;
                    }
                    return Ok(updated);
                }
                Err(error) if may_have_landed(&error) => error,
                Err(error) => return Err(error),
            };
            let now = match self.get_attachment(&attachment.id).await {
                Ok(now) => now,
                // The attachment is gone: no version can have landed, nor ever will.
                Err(gone @ ClientError::NotFound { .. }) => return Err(gone),
                Err(_) => return Err(error),
            };
            if now.version > attachment.version {
                tracing::info!(error = %error, "new version failed in transit but arrived");
                return Ok(now);
            }
            let policy = &self.transport().retry;
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            tokio::time::sleep(policy.backoff(attempt)).await;
        }
    }

    fn upload_line(&self, container: &ContainerRef) -> RequestLine {
        let url = self.site().v1_attachments(&container.id);
        Transport::line(Channel::Upload, &Method::POST, &url)
    }

    async fn post_new(
        &self,
        container: &ContainerRef,
        files: &[&NewAttachment],
        minor_edit: bool,
    ) -> Result<Vec<Attachment>, ClientError> {
        let site = self.site();
        let url = site.v1_attachments(&container.id);
        let line = Transport::line(Channel::Upload, &Method::POST, &url);
        let value = self.send_multipart(&line, &url, files, minor_edit).await?;
        let sizes: Vec<u64> = {
            let mut sizes = Vec::new();
            for f in files {
                sizes.push(f.source.len().await.unwrap_or(0));
            }
            sizes
        };
        let contents: Vec<V1Content> = if value.get("results").is_some() {
            let list: V1List<V1Content> =
                serde_json::from_value(value).map_err(|e| ClientError::Decode {
                    request: line.clone(),
                    detail: e.to_string(),
                })?;
            list.results
        } else {
            vec![first_content(&line, value)?]
        };
        Ok(contents
            .into_iter()
            .filter_map(|content| {
                let has_size = content.extensions.is_some();
                let mut attachment = content.into_attachment(site, Some(container))?;
                // A new attachment has no properties yet.
                attachment.fs.get_or_insert_with(Default::default);
                if !has_size {
                    if let Some(i) = files.iter().position(|f| f.filename == attachment.title) {
                        attachment.size = sizes[i];
                    }
                }
                Some(attachment)
            })
            .collect())
    }

    /// One multipart request (retried by the transport only when it surely did not land).
    async fn send_multipart(
        &self,
        line: &RequestLine,
        url: &url::Url,
        files: &[&NewAttachment],
        minor_edit: bool,
    ) -> Result<serde_json::Value, ClientError> {
        let mut total = 0;
        for file in files {
            total += file.source.len().await?;
        }
        let timeout = upload_timeout(total);
        let transport = self.transport();
        let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
        let ticket = transport.traffic.upload(names.join(", "), Some(total));
        let ticket = &ticket;
        let answer = transport
            .fetch(
                line,
                Channel::Upload,
                Repeat::NotIdempotent,
                move || async move {
                    let form = build_form(files, minor_edit, ticket.attempt()).await?;
                    Ok(transport
                        .request(Channel::Upload, Method::POST, url.clone())
                        .header("X-Atlassian-Token", "no-check")
                        .timeout(timeout)
                        .multipart(form))
                },
            )
            .await?;
        decode(line, &answer.body)
    }
}

/// The cap on one upload request: 2 minutes plus the time to send `bytes` at 32 KiB/s. The
/// upload client has no read timeout (see `transport`), so this is what ends an upload to a
/// server that stopped reading; it is generous so that slow links still get big files through.
pub(super) fn upload_timeout(bytes: u64) -> Duration {
    Duration::from_secs(120 + bytes / (32 * 1024))
}

/// Whether a failed write might nevertheless have been applied.
pub(crate) fn may_have_landed(error: &ClientError) -> bool {
    match error {
        ClientError::Transport { .. } => true,
        ClientError::Service { status, .. } => *status >= 500,
        _ => false,
    }
}

pub(super) fn first_content(
    line: &RequestLine,
    value: serde_json::Value,
) -> Result<V1Content, ClientError> {
    let value = match value.get("results").and_then(|r| r.as_array()) {
        Some(results) => results.first().cloned().unwrap_or_default(),
        None => value,
    };
    serde_json::from_value(value).map_err(|e| ClientError::Decode {
        request: line.clone(),
        detail: e.to_string(),
    })
}

async fn build_form(
    files: &[&NewAttachment],
    minor_edit: bool,
    counter: BodyCounter,
) -> Result<Form, ClientError> {
    let mut parts = Vec::with_capacity(files.len());
    for file in files {
        parts.push(FilePart {
            part: file.source.part(counter.clone()).await?,
            filename: file.filename.clone(),
            media_type: file
                .media_type
                .clone()
                .unwrap_or_else(|| guess_media_type(&file.filename).to_string()),
            comment: file.comment.clone(),
        });
    }
    multipart_form(parts, minor_edit)
}

/// One `file` part of an upload form, with what labels it.
pub(super) struct FilePart {
    pub part: Part,
    pub filename: String,
    pub media_type: String,
    pub comment: Option<String>,
}

/// The form Confluence expects: the `file` parts, then their `comment`s, then `minorEdit`.
pub(super) fn multipart_form(files: Vec<FilePart>, minor_edit: bool) -> Result<Form, ClientError> {
    // Either every file has a comment, in order, or none does (docs/CONFLUENCE.md §1.2).
    let comments: Option<Vec<String>> = files.iter().any(|f| f.comment.is_some()).then(|| {
        files
            .iter()
            .map(|f| f.comment.clone().unwrap_or_default())
            .collect()
    });
    // Raw UTF-8 filenames: reqwest would otherwise percent-encode non-ASCII names.
    let mut form = Form::new().percent_encode_noop();
    for file in files {
        let media_type = file.media_type;
        let part = file
            .part
            .file_name(file.filename)
            .mime_str(&media_type)
            .map_err(|e| ClientError::Config(format!("bad media type {media_type:?}: {e}")))?;
        form = form.part("file", part);
    }
    for comment in comments.into_iter().flatten() {
        let comment = Part::text(comment)
            .mime_str("text/plain; charset=UTF-8")
            .expect("a valid media type");
        form = form.part("comment", comment);
    }
    Ok(form.text("minorEdit", if minor_edit { "true" } else { "false" }))
}

/// A media type from the extension, for the common cases; Confluence sniffs the rest.
pub fn guess_media_type(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "md" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => "application/octet-stream",
    }
}
