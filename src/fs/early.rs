//! Uploading a file while `cp` is still writing it.
//!
//! Uploading at `close` makes a large copy cost the write to the staging file plus the upload,
//! one after the other. A file written front to back from empty is what `cp`, `dd`, `curl -o`
//! and `tar -x` produce, and for those the bytes can go out as they are written
//! ([`StreamedUpload`]): `close` then waits for the tail only. The staging file stays the
//! durable copy, so nothing changes about what is kept when the upload fails.
//!
//! The early upload is an optimisation with an exit at every step: it starts only once a file
//! has [`START_AFTER`] bytes written in order (small files gain nothing), only while fewer than
//! [`SLOTS`] others run (each holds a connection and one of the client's request slots), and
//! never for scratch files (they are renamed before they are kept). A write anywhere but the
//! end, a truncation, or a change of name, target or comment by the time of `close` gives it up
//! — the server sees an unfinished body and creates nothing — and `close` uploads the file the
//! ordinary way.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ConfluenceFs;
use crate::confluence::StreamedUpload;
use crate::spool::UploadTarget;

/// Bytes written in order before the upload starts.
pub(super) const START_AFTER: u64 = 16 << 20;
/// Early uploads at once.
pub(super) const SLOTS: usize = 2;

/// The permits early uploads take (one per upload, for its life).
pub(super) fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(SLOTS))
}

/// An upload of a staged file that started before `close`.
pub(crate) struct EarlyUpload {
    pub(crate) upload: StreamedUpload,
    target: UploadTarget,
    filename: String,
    comment: String,
    _slot: OwnedSemaphorePermit,
}

impl EarlyUpload {
    /// Whether it is still the upload `close` would make.
    pub(crate) fn matches(&self, target: &UploadTarget, filename: &str, comment: &str) -> bool {
        &self.target == target && self.filename == filename && self.comment == comment
    }
}

/// Where a file's bytes go and how they are labelled.
pub(crate) struct Destination {
    pub target: UploadTarget,
    pub filename: String,
    /// A new version keeps its attachment's media type; `None` guesses from the name.
    pub media_type: Option<String>,
}

impl ConfluenceFs {
    /// Starts the early upload of `ino`, whose staging file at `path` holds `written` bytes
    /// written in order; `None` when it should not (or cannot) start.
    pub(crate) fn start_early_upload(
        &self,
        ino: u64,
        path: &std::path::Path,
        written: u64,
        comment: Option<String>,
    ) -> Option<EarlyUpload> {
        if written < START_AFTER || self.is_scratch(ino) {
            return None;
        }
        let writer = self.writer().ok()?;
        let slot = writer.early_slots.clone().try_acquire_owned().ok()?;
        let entry = self.entry(ino).ok()?;
        // A file made under a page text's name may be the page's text (`page_text.rs`), which
        // is saved whole at close, never streamed as an attachment.
        if let super::inode::Node::Local(local) = &entry.node {
            if local.filename.ends_with(".md") || local.filename == super::text_node::STORAGE_FILE {
                return None;
            }
        }
        let destination = self.destination(entry.parent, &entry.node).ok()?;
        let comment = comment.unwrap_or_else(|| writer.config.comment.clone());
        tracing::debug!(ino, written, "starting an early upload");
        let upload = writer.uploader.start_early(
            &destination.target,
            &destination.filename,
            destination.media_type.clone(),
            &comment,
            writer.config.minor_edit,
            path,
            written,
            writer.config.max_file_size,
        );
        Some(EarlyUpload {
            upload,
            target: destination.target,
            filename: destination.filename,
            comment,
            _slot: slot,
        })
    }
}
