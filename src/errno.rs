//! The errno of a client error: the part of the errno table (docs/SEMANTICS.md, Errors) that
//! both the filesystem and the spool need.
//!
//! The client reports what happened in HTTP and Confluence terms and knows nothing of errnos;
//! the filesystem (`FsError::errno`) and the uploader (`UploadError::errno`) each answer for
//! their own errors, and both turn a client error into an errno here, on the ground floor,
//! so that neither has to borrow the other's table.

use crate::confluence::ClientError;

/// The errno a failed request means to a program.
pub fn of_client(err: &ClientError) -> i32 {
    match err {
        ClientError::NotFound { .. } => libc::ENOENT,
        ClientError::Unauthorized { .. } => libc::EACCES,
        ClientError::TooLarge { .. } => libc::EFBIG,
        ClientError::AlreadyExists { .. } => libc::EEXIST,
        ClientError::Conflict { .. } => libc::EIO,
        ClientError::Service { status, .. } => match status {
            401 | 403 => libc::EACCES,
            404 | 410 => libc::ENOENT,
            413 => libc::EFBIG,
            400 => libc::EINVAL,
            _ => libc::EIO,
        },
        // 416 only happens when a read starts past the end: the file shrank under us.
        ClientError::RangeNotSatisfiable { .. } => libc::EIO,
        ClientError::Transport { .. }
        | ClientError::Decode { .. }
        | ClientError::NotConfluence { .. }
        | ClientError::Config(_) => libc::EIO,
        ClientError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
    }
}
