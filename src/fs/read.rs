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

/// An open file handle: a reader pinned to one version, or a writer of an inode's staged
/// bytes.
pub(crate) enum OpenFile {
    /// `start` is the inode until the handle's first read from offset 0, which may reveal a
    /// reader going through a directory file by file (`file_prefetch`).
    Read {
        file: Arc<CachedFile>,
        start: Option<u64>,
    },
    Write {
        ino: u64,
    },
}

/// The answer to `open`: the handle, and whether the kernel may keep its cached pages.
pub struct Opened {
    pub handle: u64,
    pub keep_cache: bool,
}

/// Fetches byte ranges of one version of one attachment.
pub(crate) struct AttachmentRange {
    client: Client,
    attachment: Attachment,
    version: u64,
}

impl AttachmentRange {
    pub(crate) fn new(client: Client, attachment: Attachment, version: u64) -> AttachmentRange {
        AttachmentRange {
            client,
            attachment,
            version,
        }
    }
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

    /// Streams the range straight into one buffer per block: the bytes are copied once, from
    /// the socket's chunks into the block that keeps them.
    fn fetch_cut(
        &self,
        offset: u64,
        lens: Vec<u64>,
    ) -> BoxFuture<'static, Result<Vec<Bytes>, ClientError>> {
        let client = self.client.clone();
        let attachment = self.attachment.clone();
        let version = self.version;
        Box::pin(async move {
            use futures_util::StreamExt;
            let total = lens.iter().sum();
            let mut stream = client
                .download_stream(&attachment, version, offset, Some(total))
                .await?;
            let mut blocks = Vec::with_capacity(lens.len());
            let mut wanted = lens.into_iter();
            let mut current: Option<(bytes::BytesMut, usize)> = None;
            while let Some(chunk) = stream.next().await {
                let mut chunk = chunk?;
                while !chunk.is_empty() {
                    if current.is_none() {
                        let Some(len) = wanted.next() else {
                            return Ok(blocks);
                        };
                        current =
                            Some((bytes::BytesMut::with_capacity(len as usize), len as usize));
                    }
                    let (buf, len) = current.as_mut().expect("set above");
                    let take = (*len - buf.len()).min(chunk.len());
                    buf.extend_from_slice(&chunk.split_to(take));
                    if buf.len() == *len {
                        let (buf, _) = current.take().expect("set above");
                        blocks.push(buf.freeze());
                    }
                }
            }
            if let Some((buf, _)) = current {
                blocks.push(buf.freeze());
            }
            Ok(blocks)
        })
    }
}

/// The server's bytes of a file without local changes: an attachment's current version
/// (pinned for whoever reads it), or an older version under `@versions`.
pub(crate) struct ServerBytes {
    pub key: ObjectKey,
    pub size: u64,
    pub range: Arc<AttachmentRange>,
}

impl ConfluenceFs {
    /// What reading `ino` from the server takes; `None` for a directory or a file with local
    /// bytes (staged or local only), which are read from the staging file instead.
    pub(crate) fn server_bytes(&self, ino: u64, node: &Node) -> Option<ServerBytes> {
        let (attachment, version, size) = match node {
            Node::Attachment(att) if self.staged_if_any(ino).is_none() => {
                (att.clone(), att.version, att.size)
            }
            Node::Version {
                attachment,
                number,
                size,
                ..
            } => (attachment.clone(), *number, *size),
            _ => return None,
        };
        let key = ObjectKey {
            attachment_id: attachment.id.clone(),
            version,
        };
        let range = Arc::new(AttachmentRange::new(
            self.client.clone(),
            attachment,
            version,
        ));
        Some(ServerBytes { key, size, range })
    }

    pub async fn open(&self, ino: u64, write: bool) -> Result<Opened, FsError> {
        let entry = self.entry(ino)?;
        if write {
            if matches!(entry.node, Node::Version { .. }) {
                return Err(FsError::Permission);
            }
            self.writer()?;
            self.staged(ino)?;
            return Ok(Opened {
                handle: self.open_write_handle(ino),
                keep_cache: false,
            });
        }
        let Some(ServerBytes { key, size, range }) = self.server_bytes(ino, &entry.node) else {
            return match entry.node {
                // A file with local bytes (being written, waiting to upload, or existing only
                // here) reads them: what was written and closed is what is read back, as on a
                // local disk. Readers that opened earlier keep the version they opened.
                Node::Attachment(_) | Node::Local(_) => {
                    self.staged(ino)?;
                    Ok(Opened {
                        handle: self.open_write_handle(ino),
                        keep_cache: false,
                    })
                }
                _ => Err(FsError::IsDirectory),
            };
        };
        let ahead = self.file_prefetch.take(ino, &key);
        let version = key.version;
        let file = Arc::new(self.cache.open(key, size, range));
        if let Some(ahead) = ahead {
            file.adopt(ahead);
        }
        let handle = self.new_handle();
        self.files.lock().unwrap().insert(
            handle,
            OpenFile::Read {
                file,
                start: Some(ino),
            },
        );
        let previous = self.opened_versions.lock().unwrap().insert(ino, version);
        Ok(Opened {
            handle,
            keep_cache: previous == Some(version),
        })
    }

    /// A handle on the staged bytes of `ino`.
    pub(crate) fn open_write_handle(&self, ino: u64) -> u64 {
        let handle = self.new_handle();
        self.files
            .lock()
            .unwrap()
            .insert(handle, OpenFile::Write { ino });
        self.opened_versions.lock().unwrap().remove(&ino);
        handle
    }

    pub async fn read(&self, handle: u64, offset: u64, len: u32) -> Result<Bytes, FsError> {
        let mut started = None;
        let open = match self.files.lock().unwrap().get_mut(&handle) {
            Some(OpenFile::Read { file, start }) => {
                if offset == 0 {
                    started = start.take();
                }
                Ok(file.clone())
            }
            Some(OpenFile::Write { ino }) => Err(*ino),
            None => return Err(FsError::BadHandle),
        };
        if let Some(ino) = started {
            // Before this read, so that the next files' requests overlap with its own.
            self.started_reading(ino).await;
        }
        match open {
            Ok(file) => Ok(file.read(offset, len).await?),
            Err(ino) => self.read_staged(ino, offset, len).await,
        }
    }

    /// The inode a handle is open on, for FLUSH (which uploads inodes, not handles).
    pub fn handle_inode(&self, handle: u64) -> Option<u64> {
        match self.files.lock().unwrap().get(&handle)? {
            OpenFile::Write { ino } => Some(*ino),
            OpenFile::Read { .. } => None,
        }
    }

    pub fn release(self: &Arc<Self>, handle: u64) {
        let removed = self.files.lock().unwrap().remove(&handle);
        if let Some(OpenFile::Write { ino }) = removed {
            self.release_staged(ino);
        }
    }
}
