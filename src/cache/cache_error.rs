//! The one error type of the block cache.
//!
//! A block is fetched once and its outcome handed to every reader waiting on it, so the error
//! must be cloneable: the client's error and I/O errors are held in `Arc`s. The cache says what
//! went wrong (the server refused or the transport failed, the server sent a range of the wrong
//! length, a local directory was unusable); which errno that becomes is the filesystem's call.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::confluence::ClientError;

/// Why the cache could not deliver bytes or could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// Fetching the bytes failed; every reader waiting on the same blocks gets this same error.
    #[error("fetching bytes failed: {0}")]
    Fetch(#[source] Arc<ClientError>),

    /// The server answered a range request with a different number of bytes than asked for:
    /// the object is not the size we were told, so nothing from that answer is cached.
    #[error("asked for {expected} bytes at offset {offset}, got {got}")]
    WrongLength {
        /// Where the range started, in bytes from the start of the object.
        offset: u64,
        /// Bytes asked for.
        expected: u64,
        /// Bytes the answer held.
        got: u64,
    },

    /// The disk cache directory could not be created, secured or indexed.
    #[error("disk cache {path}: {source}")]
    Io {
        /// The directory (or the file in it) that failed.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: Arc<io::Error>,
    },

    /// The configuration cannot work (a zero block size, a block larger than a weight can say).
    #[error("invalid cache configuration: {0}")]
    Config(String),
}

/// What [`CachedFile::read`](super::CachedFile::read) returns on failure. The same enum as
/// [`CacheError`], named for the place it comes from.
pub type ReadError = CacheError;

impl CacheError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> CacheError {
        CacheError::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}
