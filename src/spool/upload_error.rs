//! Why an upload of a spool entry did not succeed, and what that means for `close` and for
//! retrying: one type for the attachment uploads (`uploader.rs`) and the page texts
//! (`text_saves.rs`), kept apart from both so neither has to import the other for it.

use std::sync::Arc;

use super::entries::SpoolError;
use crate::confluence::ClientError;

/// Why an upload of a spool entry did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum UploadError {
    /// The server refused the upload or could not be reached.
    #[error(transparent)]
    Client(Arc<ClientError>),
    /// The spool could not be read or written.
    #[error(transparent)]
    Spool(SpoolError),
    /// The spooled bytes are not all there (a power cut before they reached the disk): they
    /// are never sent.
    #[error("spool entry {id} has {found} bytes instead of {expected}: the copy is incomplete")]
    Incomplete {
        /// The entry's id.
        id: String,
        /// Bytes its record says it holds.
        expected: u64,
        /// Bytes its data file holds.
        found: u64,
    },
    /// The entry was written for another site; it is left alone.
    #[error("spool entry {id} belongs to {entry_site}, not to {client_site}")]
    OtherSite {
        /// The entry's id.
        id: String,
        /// The site the entry's record names.
        entry_site: String,
        /// The site this uploader's client talks to.
        client_site: String,
    },
}

impl From<ClientError> for UploadError {
    fn from(err: ClientError) -> UploadError {
        UploadError::Client(Arc::new(err))
    }
}

impl UploadError {
    /// The errno of the table in docs/SEMANTICS.md (Errors); client errors go through the filesystem's one mapping.
    pub fn errno(&self) -> i32 {
        match self {
            UploadError::Client(err) => crate::errno::of_client(err),
            UploadError::Spool(err) => err.errno(),
            UploadError::OtherSite { .. } | UploadError::Incomplete { .. } => libc::EIO,
        }
    }

    /// A refusal that trying again will not change: 400, 401, 403, 404, 413, or spooled bytes
    /// that cannot be read any more or are incomplete.
    pub fn is_permanent(&self) -> bool {
        match self {
            UploadError::Client(err) => match &**err {
                ClientError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
                other => matches!(other.status(), Some(400 | 401 | 403 | 404 | 413)),
            },
            UploadError::Incomplete { .. } => true,
            UploadError::Spool(_) | UploadError::OtherSite { .. } => false,
        }
    }
}
