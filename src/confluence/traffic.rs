//! What the client has sent: requests, retries, and the uploads on the wire now.
//!
//! Counted where it happens, so that nobody has to guess: the transport counts each request it
//! hands to reqwest and each retry it decides on (`transport.rs`), and an upload's body counts
//! its bytes as reqwest takes them (`upload.rs`, `streamed.rs`). Every counter is an atomic
//! bumped on the request's own task; [`Client::traffic`](super::Client::traffic) copies them
//! into a plain [`TrafficStats`] for `confluencefs status`, which is the only reader. An upload
//! in flight is registered for as long as its request runs ([`UploadTicket`]), with a byte
//! counter its body stream shares; a retry starts that counter again, since the bytes go again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What kind of request was sent (the transport tells; this module knows no transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Listings, lookups, metadata, page edits.
    Metadata,
    /// Attachment bytes from the site itself.
    Download,
    /// Attachment bytes from Cloud's media host.
    Media,
    /// Attachment bytes to the site.
    Upload,
}

/// The client's counters since it was built (its connect included).
#[derive(Default)]
pub(crate) struct Traffic {
    requests: AtomicU64,
    retries: AtomicU64,
    media_requests: AtomicU64,
    direct_downloads: AtomicU64,
    upload_requests: AtomicU64,
    upload_bytes: Arc<AtomicU64>,
    next_upload: AtomicU64,
    uploads: Mutex<BTreeMap<u64, Arc<Progress>>>,
}

/// One upload request on the wire.
struct Progress {
    name: String,
    size: Option<u64>,
    sent: AtomicU64,
    started: Mutex<Instant>,
}

/// A copy of the client's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// HTTP requests sent, every attempt and redirect hop counted, the media host's included.
    pub requests: u64,
    /// Attempts that failed and were tried again (a 429, a 5xx, a broken connection).
    pub retries: u64,
    /// Requests to Cloud's media host (downloads redirected there; no credential goes along).
    pub media_requests: u64,
    /// Download requests to the site itself (on Cloud, the ones that answer the redirect).
    pub direct_downloads: u64,
    /// Upload requests (multipart POSTs of attachment bytes).
    pub upload_requests: u64,
    /// Body bytes of upload requests handed to the connection, every attempt counted.
    pub upload_bytes: u64,
    /// The uploads on the wire now, oldest first.
    pub uploads: Vec<UploadInFlight>,
}

/// An upload request on the wire now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInFlight {
    /// The attachment's filename (several, comma-separated, when one request carries several).
    pub name: String,
    /// Its size; `None` while a file being written is streamed (the size is not known yet).
    pub size: Option<u64>,
    /// Body bytes handed to the connection by this attempt.
    pub sent: u64,
    /// How long this attempt has run.
    pub elapsed: Duration,
}

impl Traffic {
    /// Counts a request about to be sent.
    pub(crate) fn request(&self, sent: Sent) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match sent {
            Sent::Media => &self.media_requests,
            Sent::Upload => &self.upload_requests,
            Sent::Download => &self.direct_downloads,
            Sent::Metadata => return,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed attempt that will be tried again.
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Registers an upload until the ticket is dropped.
    pub(crate) fn upload(self: &Arc<Self>, name: String, size: Option<u64>) -> UploadTicket {
        let id = self.next_upload.fetch_add(1, Ordering::Relaxed);
        let progress = Arc::new(Progress {
            name,
            size,
            sent: AtomicU64::new(0),
            started: Mutex::new(Instant::now()),
        });
        self.lock_uploads().insert(id, progress.clone());
        UploadTicket {
            traffic: self.clone(),
            id,
            progress,
        }
    }

    pub(crate) fn stats(&self) -> TrafficStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let uploads = self
            .lock_uploads()
            .values()
            .map(|p| UploadInFlight {
                name: p.name.clone(),
                size: p.size,
                sent: load(&p.sent),
                elapsed: p
                    .started
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed(),
            })
            .collect();
        TrafficStats {
            requests: load(&self.requests),
            retries: load(&self.retries),
            media_requests: load(&self.media_requests),
            direct_downloads: load(&self.direct_downloads),
            upload_requests: load(&self.upload_requests),
            upload_bytes: load(&self.upload_bytes),
            uploads,
        }
    }

    fn lock_uploads(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Progress>>> {
        self.uploads.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An upload registered with the client's traffic; dropping it ends the registration.
pub(crate) struct UploadTicket {
    traffic: Arc<Traffic>,
    id: u64,
    progress: Arc<Progress>,
}

impl UploadTicket {
    /// A new attempt: its body starts from the first byte again. Returns what the body counts
    /// its bytes with.
    pub(crate) fn attempt(&self) -> BodyCounter {
        self.progress.sent.store(0, Ordering::Relaxed);
        *self
            .progress
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Instant::now();
        BodyCounter {
            progress: self.progress.clone(),
            total: self.traffic.upload_bytes.clone(),
        }
    }
}

impl Drop for UploadTicket {
    fn drop(&mut self) {
        self.traffic.lock_uploads().remove(&self.id);
    }
}

/// Counts the bytes of one upload body as reqwest takes them.
#[derive(Clone)]
pub(crate) struct BodyCounter {
    progress: Arc<Progress>,
    total: Arc<AtomicU64>,
}

impl BodyCounter {
    pub(crate) fn add(&self, bytes: usize) {
        self.progress
            .sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.total.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// `stream`, counting each chunk as it is taken.
    pub(crate) fn count<S, E>(
        self,
        stream: S,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    {
        use futures_util::StreamExt;
        stream.map(move |chunk| {
            if let Ok(bytes) = &chunk {
                self.add(bytes.len());
            }
            chunk
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_counts_its_bytes_and_leaves_with_its_ticket() {
        let traffic = Arc::new(Traffic::default());
        traffic.request(Sent::Metadata);
        traffic.request(Sent::Upload);
        traffic.request(Sent::Media);
        traffic.request(Sent::Download);
        traffic.retry();
        let ticket = traffic.upload("a.bin".into(), Some(10));
        ticket.attempt().add(4);
        let stats = traffic.stats();
        assert_eq!(
            (stats.requests, stats.retries, stats.upload_requests),
            (4, 1, 1)
        );
        assert_eq!((stats.media_requests, stats.direct_downloads), (1, 1));
        assert_eq!(stats.uploads.len(), 1);
        assert_eq!(stats.uploads[0].sent, 4);
        // A retry sends the body again: this attempt's count restarts, the total goes on.
        ticket.attempt().add(10);
        let stats = traffic.stats();
        assert_eq!((stats.uploads[0].sent, stats.upload_bytes), (10, 14));
        drop(ticket);
        assert!(traffic.stats().uploads.is_empty());
    }
}
