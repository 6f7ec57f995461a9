//! Uploading a file while it is still being written.
//!
//! A large `cp` into the mount would otherwise write the whole file to the staging disk and
//! only then, at `close`, send it: the two take about as long as each other, and they add up.
//! Sent as it grows, the file is on its way while it is written, and `close` waits only for the
//! tail. The length is not known when the request starts, so the multipart body goes out with
//! chunked transfer encoding; the bytes are read back from the staging file, which is the
//! durable copy, as the writer reports how far it got.
//!
//! The request is only an optimisation and is treated as expendable: the writer may
//! [abandon](StreamedUpload::abandon) it (it wrote somewhere other than the end, or renamed the
//! file), and a writer that stops reporting for [`IDLE`] has it abandoned for it. An abandoned
//! body ends in an error, so the server never sees the end of the request and creates nothing.
//! Whatever goes wrong, the caller uploads the finished file the ordinary way, looking first
//! when the failure may have landed.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::multipart::Part;
use reqwest::Method;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client::Client;
use super::client_error::ClientError;
use super::file_chunks::{read_chunk, CHUNK};
use super::model::{Attachment, ContainerRef};
use super::retry::Repeat;
use super::traffic::BodyCounter;
use super::transport::{decode, Channel, Transport};
use super::upload::{first_content, multipart_form, upload_timeout, FilePart};

/// How long the body waits for the writer before it gives the request up.
pub(super) const IDLE: Duration = Duration::from_secs(20);

/// How far the writer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Growth {
    /// This many bytes from the start are written, and more are coming.
    Writing(u64),
    /// The file is complete at this size.
    Done(u64),
    /// The request must not complete.
    Abandoned,
}

/// Where a streamed upload goes.
#[derive(Debug, Clone)]
pub enum StreamTarget {
    /// A new attachment in the container.
    New(ContainerRef),
    /// A new version of this attachment.
    Version {
        /// The page or blog post that holds the attachment.
        container: ContainerRef,
        /// The attachment that gets the new version.
        attachment_id: String,
    },
}

impl StreamTarget {
    fn container(&self) -> &ContainerRef {
        match self {
            StreamTarget::New(container) | StreamTarget::Version { container, .. } => container,
        }
    }
}

/// What a streamed upload says besides its bytes.
#[derive(Debug, Clone)]
pub struct StreamLabels {
    /// The attachment's filename on Confluence.
    pub filename: String,
    /// The media (MIME) type the attachment is stored with.
    pub media_type: String,
    /// The comment of the new version; `None` sends none.
    pub comment: Option<String>,
    /// Marks the new version as a minor edit, so that Confluence does not notify watchers.
    pub minor_edit: bool,
}

/// An upload in flight, fed by the writer of its file.
pub struct StreamedUpload {
    growth: watch::Sender<Growth>,
    task: Option<JoinHandle<Result<Attachment, ClientError>>>,
}

impl StreamedUpload {
    /// The first `written` bytes are in the file.
    pub fn grow(&self, written: u64) {
        self.growth.send_replace(Growth::Writing(written));
    }

    /// Gives the request up: the server sees an unfinished body and creates nothing.
    pub fn abandon(self) {
        // Drop does it.
    }

    /// The file is complete at `size`: sends the rest and returns the server's answer.
    pub async fn finish(mut self, size: u64) -> Result<Attachment, ClientError> {
        self.growth.send_replace(Growth::Done(size));
        let task = self.task.take().expect("a streamed upload finishes once");
        match task.await {
            Ok(result) => result,
            Err(error) => Err(ClientError::Config(format!(
                "the upload task failed: {error}"
            ))),
        }
    }
}

impl Drop for StreamedUpload {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.growth.send_replace(Growth::Abandoned);
        }
    }
}

impl Client {
    /// Starts uploading the file at `path`, of which `written` bytes exist so far; the caller
    /// reports growth, then finishes or abandons the upload. `max_size` bounds the request's
    /// time (see `upload_timeout`). Must be called inside the runtime.
    pub fn start_streamed_upload(
        &self,
        target: StreamTarget,
        labels: StreamLabels,
        path: PathBuf,
        written: u64,
        max_size: u64,
    ) -> StreamedUpload {
        let (growth, watcher) = watch::channel(Growth::Writing(written));
        let client = self.clone();
        let task = tokio::spawn(async move {
            client
                .send_streamed(&target, &labels, &path, watcher, max_size)
                .await
        });
        StreamedUpload {
            growth,
            task: Some(task),
        }
    }

    async fn send_streamed(
        &self,
        target: &StreamTarget,
        labels: &StreamLabels,
        path: &PathBuf,
        watcher: watch::Receiver<Growth>,
        max_size: u64,
    ) -> Result<Attachment, ClientError> {
        let site = self.site();
        let url = match target {
            StreamTarget::New(container) => site.v1_attachments(&container.id),
            StreamTarget::Version {
                container,
                attachment_id,
            } => site.v1_attachment(&container.id, attachment_id, &["data"]),
        };
        let line = Transport::line(Channel::Upload, &Method::POST, &url);
        let timeout = upload_timeout(max_size);
        let transport = self.transport();
        let ticket = transport.traffic.upload(labels.filename.clone(), None);
        let ticket = &ticket;
        let answer = transport
            .fetch(&line, Channel::Upload, Repeat::NotIdempotent, || {
                let watcher = watcher.clone();
                let url = url.clone();
                async move {
                    let body = growing_body(path, watcher, ticket.attempt()).await?;
                    let form = multipart_form(
                        vec![FilePart {
                            part: Part::stream(body),
                            filename: labels.filename.clone(),
                            media_type: labels.media_type.clone(),
                            comment: labels.comment.clone(),
                        }],
                        labels.minor_edit,
                    )?;
                    Ok(transport
                        .request(Channel::Upload, Method::POST, url)
                        .header("X-Atlassian-Token", "no-check")
                        .timeout(timeout)
                        .multipart(form))
                }
            })
            .await?;
        let content = first_content(&line, decode(&line, &answer.body)?)?;
        let has_size = content.extensions.is_some();
        let mut attachment = content
            .into_attachment(site, Some(target.container()))
            .ok_or_else(|| ClientError::Decode {
                request: line.clone(),
                detail: "the answer is not an attachment".into(),
            })?;
        if !has_size {
            if let Growth::Done(size) = *watcher.borrow() {
                attachment.size = size;
            }
        }
        Ok(attachment)
    }
}

/// The bytes of `path` from the start, as far as the writer got, until it is done.
async fn growing_body(
    path: &PathBuf,
    watcher: watch::Receiver<Growth>,
    counter: BodyCounter,
) -> Result<reqwest::Body, ClientError> {
    let file = std::fs::File::open(path).map_err(|source| ClientError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let file = std::sync::Arc::new(file);
    let chunks = futures_util::stream::try_unfold(
        (file, 0u64, watcher),
        |(file, pos, mut watcher)| async move {
            loop {
                let growth = *watcher.borrow_and_update();
                let limit = match growth {
                    Growth::Writing(n) | Growth::Done(n) => n,
                    Growth::Abandoned => return Err(stopped("abandoned by the writer")),
                };
                if pos < limit {
                    let want = (limit - pos).min(CHUNK) as usize;
                    let chunk = read_chunk(file.clone(), pos, want).await?;
                    if chunk.len() < want {
                        return Err(stopped("the file is shorter than written"));
                    }
                    let next = pos + want as u64;
                    return Ok(Some((chunk, (file, next, watcher))));
                }
                if matches!(growth, Growth::Done(_)) {
                    return Ok(None);
                }
                match tokio::time::timeout(IDLE, watcher.changed()).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(_)) => return Err(stopped("the writer went away")),
                    Err(_) => return Err(stopped("the writer paused")),
                }
            }
        },
    );
    Ok(reqwest::Body::wrap_stream(counter.count(chunks)))
}

fn stopped(why: &str) -> std::io::Error {
    std::io::Error::other(format!("streamed upload stopped: {why}"))
}
