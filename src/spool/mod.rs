//! The upload spool: where written bytes wait, durably, until the server has them.
//!
//! Tenet 1 of docs/DESIGN.md says that once `close()` succeeded the bytes are on the server or in a
//! durable local spool from which they will be uploaded. This module is that spool and the
//! uploader that empties it. The filesystem admits a file's bytes (`Spool::admit`: linked or
//! copied, fsynced, with a record of where they go) *before* the upload starts, then calls
//! `Uploader::upload` from FLUSH and replies with its errno. Whatever does not get through stays
//! in the spool: retried in the background with backoff, replayed by the next mount after a
//! crash, listed by `confluencefs pending`. An entry is removed only after the server confirmed.
//!
//! Module map: `record` (what an entry says, on disk as `record.json`), `entries` (the directory
//! and its crash-safe writes), `uploader` (exactly-once delivery, backoff, background retries).

mod entries;
mod record;
mod text_saves;
mod upload_error;
mod uploader;

pub use entries::{EntryLock, Spool, SpoolError};
pub use record::{EntryState, SpoolEntry, UploadRecord, UploadTarget};
pub use text_saves::{conflict_state, deliver_text, retry_text, TextOutcome};
pub use upload_error::UploadError;
pub use uploader::{backoff, site_of, UploadEvent, Uploader, FIRST_BACKOFF, MAX_BACKOFF};

#[cfg(test)]
mod spool_tests;
