//! Opening and reading files.
//!
//! A handle pins the version it was opened at, so one reader sees one consistent file even if
//! a new version lands while it reads; its bytes come through the block cache, keyed by that
//! version. The kernel may keep its page cache across opens only while the version is the one
//! it cached (`keep_cache`); after a new version it must drop it, or it would serve old bytes.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::files::FileGuard;
use super::fs_error::FsError;
use super::handles::OpenFile;
use super::inode::Node;
use super::text_node::TextNode;
use super::ConfluenceFs;
use crate::cache::{BlockArrived, ObjectKey, RangeFetch};
use crate::confluence::{Attachment, Client, ClientError};

/// The answer to `open`: the handle, and whether the kernel may keep its cached pages.
pub struct Opened {
    pub handle: u64,
    pub keep_cache: bool,
    /// A local file holding exactly the handle's bytes, which the kernel may read and write
    /// itself (FUSE passthrough, `passthrough.rs`); the adapter decides whether it does.
    pub backing: Option<std::fs::File>,
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
        mut arrived: BlockArrived,
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
                        let block = buf.freeze();
                        arrived(blocks.len(), &block);
                        blocks.push(block);
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
            Node::Attachment(att) if !self.files.has_staged(ino) => {
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

    /// Opens file `ino` (OPEN): for reading through the block cache, or with `write` for writing
    /// through a staging file.
    pub async fn open(&self, ino: u64, write: bool) -> Result<Opened, FsError> {
        let entry = self.entry(ino)?;
        if let Node::Text(text) = &entry.node {
            return self.open_text(ino, text, write).await;
        }
        if write {
            if matches!(entry.node, Node::Version { .. }) {
                return Err(FsError::Permission);
            }
            self.writer()?;
            return self.open_staged(ino, true).await;
        }
        let Some(ServerBytes { key, size, range }) = self.server_bytes(ino, &entry.node) else {
            return match entry.node {
                // A file with local bytes (being written, waiting to upload, or existing only
                // here) reads them: what was written and closed is what is read back, as on a
                // local disk. Readers that opened earlier keep the version they opened.
                Node::Attachment(_) | Node::Local(_) => self.open_staged(ino, false).await,
                _ => Err(FsError::IsDirectory),
            };
        };
        // On a writable mount, a writer that comes while the kernel reads the disk cache's
        // file takes that file over (`passthrough.rs`): the file is handed over under the
        // file's lock, where a writer looks for it, and only to the first handle of the file
        // (later ones follow the first one's mode and file in the kernel anyway).
        let mut guard = None;
        if self.may_hand_over_current(&entry.node, &key, size) {
            let file = self.files.lock(ino).await;
            if file.staged.is_some() {
                // A writer came first: its bytes are the file's.
                drop(file);
                return self.open_staged(ino, false).await;
            }
            guard = Some(file);
        }
        let kept = if guard.is_some() && self.handles.is_open(ino) {
            None
        } else {
            self.version_for_kernel(&entry.node, &key, size, guard.is_some())
                .await
        };
        let ahead = self.file_prefetch.take(ino, &key);
        let version = key.version;
        let file = Arc::new(self.cache.open(key, size, range));
        let keep_cache = self.handles.opened_at(ino, version);
        match ahead {
            Some(ahead) => file.adopt(ahead),
            // The kernel may read the version from the disk cache itself: nothing to fetch.
            None if kept.is_some() => {}
            // Opened for reading, its size known: most readers read it whole from the start
            // (`cat`, `cp`, editors), so its first range is on its way before the first READ
            // (on Cloud, with the redirect to the media host). Not when the kernel may still
            // hold its pages: then READs may never come.
            None if !keep_cache => file.start_whole(),
            None => {}
        }
        // A file the kernel may read itself sends no READ to reveal a reader going through
        // the directory file by file (`ahead_files`): its open is that sign.
        let handed_over = kept.is_some();
        let handle = self.new_handle();
        self.handles.insert(
            handle,
            OpenFile::Read {
                ino,
                file,
                start: (!handed_over).then_some(ino),
            },
        );
        let backing = kept.and_then(|kept| {
            let backing = kept.file().try_clone().ok();
            self.handles.keep_version_file(handle, kept);
            backing
        });
        drop(guard);
        if handed_over {
            self.started_reading(ino).await;
        }
        Ok(Opened {
            handle,
            keep_cache,
            backing,
        })
    }

    /// Opens page text: a reader gets the text rendered now (or the local bytes of a text
    /// being written); a writer stages it, like any file.
    async fn open_text(&self, ino: u64, text: &TextNode, write: bool) -> Result<Opened, FsError> {
        match text {
            TextNode::Markdown { .. } | TextNode::Storage { .. } => {}
            TextNode::Old { .. } if !write => {}
            _ if text.is_dir() => return Err(FsError::IsDirectory),
            _ => return Err(FsError::Permission),
        }
        if write {
            self.writer()?;
        }
        if write || self.files.has_staged(ino) {
            if !self.files.has_staged(ino) {
                // The text the staging starts from, at the page's current version.
                self.text_bytes(ino).await?;
            }
            return self.open_staged(ino, write).await;
        }
        let bytes = self.text_bytes(ino).await?;
        let handle = self.new_handle();
        self.handles.insert(handle, OpenFile::Text { ino, bytes });
        Ok(Opened {
            handle,
            keep_cache: false,
            backing: None,
        })
    }

    /// A handle on the staged bytes of `ino` (staged now from its current bytes if need be).
    pub(crate) async fn open_staged(&self, ino: u64, writable: bool) -> Result<Opened, FsError> {
        let mut file = self.files.lock(ino).await;
        self.ensure_staged(&mut file)?;
        let handle = self.add_staged_handle(&mut file, writable);
        Ok(Opened {
            handle,
            keep_cache: false,
            backing: self.passthrough_offer(file.cell(), &file, writable),
        })
    }

    /// Counts a new handle on the locked file's staged bytes.
    pub(crate) fn add_staged_handle(&self, file: &mut FileGuard, writable: bool) -> u64 {
        file.handles += 1;
        let handle = self.new_handle();
        let cell = file.cell().clone();
        self.handles.forget_version(cell.ino());
        self.handles
            .insert(handle, OpenFile::Staged { cell, writable });
        handle
    }

    /// Up to `len` bytes of handle `handle` from `offset` (READ); fewer at the end of the file.
    pub async fn read(&self, handle: u64, offset: u64, len: u32) -> Result<Bytes, FsError> {
        let mut started = None;
        let open = self
            .handles
            .with(handle, |open| match open {
                OpenFile::Read { file, start, .. } => {
                    if offset == 0 {
                        started = start.take();
                    }
                    Ok(file.clone())
                }
                OpenFile::Staged { cell, .. } => Err(Ok(cell.clone())),
                OpenFile::Text { bytes, .. } => Err(Err(bytes.clone())),
            })
            .ok_or(FsError::BadHandle)?;
        if let Some(ino) = started {
            // Before this read, so that the next files' requests overlap with its own.
            self.started_reading(ino).await;
        }
        match open {
            Ok(file) => Ok(file.read(offset, len).await?),
            Err(Ok(cell)) => self.read_staged(&cell, offset, len).await,
            Err(Err(bytes)) => {
                let start = (offset as usize).min(bytes.len());
                let end = start.saturating_add(len as usize).min(bytes.len());
                Ok(bytes.slice(start..end))
            }
        }
    }

    /// RELEASE: the handle goes; the last one on a file's staged bytes may upload them (in
    /// the background, holding the file's lock), the last one on a deleted file drops it.
    pub fn release(self: &Arc<Self>, handle: u64) {
        let Some((open, last_of_orphan)) = self.handles.remove(handle) else {
            return;
        };
        match open {
            OpenFile::Read { ino, .. } | OpenFile::Text { ino, .. } => {
                self.handles.unmark_passthrough(handle);
                if last_of_orphan {
                    self.tree.inodes.remove(ino);
                }
            }
            OpenFile::Staged { cell, writable } => {
                self.passthrough_ended(&cell, handle, writable);
                let fs = self.clone();
                let counted = self.releasing();
                tokio::spawn(async move {
                    fs.release_staged(cell, last_of_orphan).await;
                    drop(counted);
                });
            }
        }
    }
}
