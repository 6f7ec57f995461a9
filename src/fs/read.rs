//! Opening and reading files.
//!
//! A handle pins the version it was opened at, so one reader sees one consistent file even if
//! a new version lands while it reads; its bytes come through the block cache, keyed by that
//! version. The kernel may keep its page cache across opens only while the version is the one
//! it cached (`keep_cache`); after a new version it must drop it, or it would serve old bytes.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::error::FsError;
use super::inode::Node;
use super::ConfluenceFs;
use crate::cache::{CachedFile, ObjectKey, RangeFetch};
use crate::confluence::{Attachment, Client, ClientError};

pub(crate) struct OpenFile {
    file: Arc<CachedFile>,
}

/// The answer to `open`: the handle, and whether the kernel may keep its cached pages.
pub struct Opened {
    pub handle: u64,
    pub keep_cache: bool,
}

/// Fetches byte ranges of one version of one attachment.
struct AttachmentRange {
    client: Client,
    attachment: Attachment,
    version: u64,
}

impl RangeFetch for AttachmentRange {
    fn fetch(&self, offset: u64, len: u64) -> BoxFuture<'static, Result<Bytes, ClientError>> {
        let client = self.client.clone();
        let attachment = self.attachment.clone();
        let version = self.version;
        Box::pin(async move {
            client
                .download_range(&attachment, version, offset, len)
                .await
        })
    }
}

impl ConfluenceFs {
    pub async fn open(&self, ino: u64, write: bool) -> Result<Opened, FsError> {
        let entry = self.entry(ino)?;
        let (attachment, version, size) = match entry.node {
            Node::Attachment(att) => {
                let (version, size) = (att.version, att.size);
                (att, version, size)
            }
            Node::Version {
                attachment,
                number,
                size,
                ..
            } => (attachment, number, size),
            _ => return Err(FsError::IsDirectory),
        };
        if write {
            return Err(self.refuse_write());
        }
        let key = ObjectKey {
            attachment_id: attachment.id.clone(),
            version,
        };
        let fetch = Arc::new(AttachmentRange {
            client: self.client.clone(),
            attachment,
            version,
        });
        let file = Arc::new(self.cache.open(key, size, fetch));
        let handle = self.new_handle();
        self.files.lock().unwrap().insert(handle, OpenFile { file });
        let previous = self.opened_versions.lock().unwrap().insert(ino, version);
        Ok(Opened {
            handle,
            keep_cache: previous == Some(version),
        })
    }

    pub async fn read(&self, handle: u64, offset: u64, len: u32) -> Result<Bytes, FsError> {
        let file = self
            .files
            .lock()
            .unwrap()
            .get(&handle)
            .map(|open| open.file.clone())
            .ok_or(FsError::BadHandle)?;
        Ok(file.read(offset, len).await?)
    }

    pub fn release(&self, handle: u64) {
        self.files.lock().unwrap().remove(&handle);
    }
}
