//! The one place where a failure becomes an errno.
//!
//! Every layer below has its own error type (the client's `ClientError`, the cache's
//! `ReadError`, local I/O); the filesystem wraps them in `FsError`, and `FsError::errno` is the
//! errno table of docs/SEMANTICS.md (Errors), written once. The FUSE adapter calls nothing else.

use std::sync::Arc;

use crate::cache::CacheError;
use crate::confluence::ClientError;

/// Why a filesystem operation failed; [`FsError::errno`] says what the caller sees.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// ENOENT: no such object.
    #[error("no such file or directory")]
    NotFound,
    /// ENOTDIR: a directory operation on a file.
    #[error("not a directory")]
    NotDirectory,
    /// EISDIR: a file operation on a directory.
    #[error("is a directory")]
    IsDirectory,
    /// EROFS: a change on a read-only mount.
    #[error("read-only file system")]
    ReadOnly,
    /// EPERM: something Confluence cannot do (a symlink, a hard link, …), with what it was.
    #[error("operation not permitted: {0}")]
    NotPermitted(&'static str),
    /// ENODATA: no extended attribute of that name.
    #[error("no such attribute")]
    NoAttribute,
    /// ERANGE: the caller's buffer cannot hold the value or the list of names.
    #[error("buffer too small")]
    BufferTooSmall,
    /// EINVAL: an argument we refuse, with why.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// EBADF: a file or directory handle we do not know (or no longer know).
    #[error("stale file handle")]
    BadHandle,
    /// EACCES: a change to something that is read-only by nature (`@versions`).
    #[error("permission denied")]
    Permission,
    /// EFBIG: a file larger than `--max-file-size`.
    #[error("file too large")]
    TooLarge,
    /// EEXIST: the name is taken.
    #[error("file exists")]
    Exists,
    /// ENAMETOOLONG: a name longer than 255 bytes.
    #[error("file name longer than 255 bytes")]
    NameTooLong,
    /// ETIMEDOUT: the operation outlasted `--op-timeout`.
    #[error("the operation took longer than its deadline")]
    TimedOut,
    /// EINTR: the process that asked has gone away.
    #[error("the process that asked is gone")]
    Interrupted,
    /// ENOTEMPTY: rmdir of a page that still has children or attachments.
    #[error("directory not empty")]
    NotEmpty,
    /// EBUSY: the object is being uploaded.
    #[error("busy: an upload of it is in progress")]
    Busy,
    /// EXDEV: a rename between spaces.
    #[error("cannot move between spaces")]
    CrossDevice,
    /// EOPNOTSUPP: an operation or attribute namespace we do not offer.
    #[error("not supported")]
    NotSupported,
    /// An errno decided by a lower layer (the uploader's own table).
    #[error("errno {0}")]
    Errno(i32),
    /// A client error; its errno comes from the one mapping in `crate::errno`.
    #[error(transparent)]
    Client(Arc<ClientError>),
    /// A local I/O error (staging, the spool): its own errno, or EIO.
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl From<ClientError> for FsError {
    fn from(err: ClientError) -> FsError {
        FsError::Client(Arc::new(err))
    }
}

impl From<CacheError> for FsError {
    fn from(err: CacheError) -> FsError {
        match err {
            CacheError::Fetch(client) => FsError::Client(client),
            CacheError::Io { source, .. } => {
                FsError::Io(std::io::Error::new(source.kind(), source.to_string()))
            }
            // The server sent a different size than it announced: the file changed under us.
            other => FsError::Io(std::io::Error::other(other.to_string())),
        }
    }
}

impl From<Arc<ClientError>> for FsError {
    fn from(err: Arc<ClientError>) -> FsError {
        FsError::Client(err)
    }
}

impl FsError {
    /// The errno table (docs/SEMANTICS.md "Errors"): one row per condition.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotDirectory => libc::ENOTDIR,
            FsError::IsDirectory => libc::EISDIR,
            FsError::ReadOnly => libc::EROFS,
            FsError::NotPermitted(_) => libc::EPERM,
            FsError::NoAttribute => libc::ENODATA,
            FsError::BufferTooSmall => libc::ERANGE,
            FsError::Invalid(_) => libc::EINVAL,
            FsError::BadHandle => libc::EBADF,
            FsError::Permission => libc::EACCES,
            FsError::TooLarge => libc::EFBIG,
            FsError::Exists => libc::EEXIST,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::TimedOut => libc::ETIMEDOUT,
            FsError::Interrupted => libc::EINTR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::Busy => libc::EBUSY,
            FsError::CrossDevice => libc::EXDEV,
            FsError::NotSupported => libc::EOPNOTSUPP,
            FsError::Errno(errno) => *errno,
            FsError::Io(err) => err.raw_os_error().unwrap_or(libc::EIO),
            FsError::Client(err) => crate::errno::of_client(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluence::RequestLine;

    fn line() -> RequestLine {
        RequestLine {
            method: reqwest::Method::GET,
            url: "http://x/rest/api/content/1".into(),
        }
    }

    fn service(status: u16) -> FsError {
        ClientError::Service {
            status,
            message: "no".into(),
            request: line(),
        }
        .into()
    }

    #[test]
    fn the_errno_table() {
        let not_found: FsError = ClientError::NotFound {
            message: "gone".into(),
            request: line(),
        }
        .into();
        assert_eq!(not_found.errno(), libc::ENOENT);
        assert_eq!(service(403).errno(), libc::EACCES);
        assert_eq!(service(401).errno(), libc::EACCES);
        assert_eq!(service(413).errno(), libc::EFBIG);
        assert_eq!(service(400).errno(), libc::EINVAL);
        assert_eq!(service(429).errno(), libc::EIO);
        assert_eq!(service(503).errno(), libc::EIO);
        let too_large: FsError = ClientError::TooLarge {
            status: 413,
            message: "big".into(),
            request: line(),
        }
        .into();
        assert_eq!(too_large.errno(), libc::EFBIG);
        let transport: FsError = ClientError::Transport {
            request: line(),
            detail: "reset".into(),
            source: None,
        }
        .into();
        assert_eq!(transport.errno(), libc::EIO);
        assert_eq!(FsError::ReadOnly.errno(), libc::EROFS);
        assert_eq!(FsError::NotPermitted("symlink").errno(), libc::EPERM);
        assert_eq!(FsError::NoAttribute.errno(), libc::ENODATA);
        assert_eq!(FsError::BufferTooSmall.errno(), libc::ERANGE);
    }
}
