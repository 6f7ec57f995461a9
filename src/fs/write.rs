//! Writing files: staging on local disk, and the upload on close.
//!
//! A file being written lives in a staging file under the cache directory, never in memory,
//! so a 5 GiB copy is fine. Its current bytes are fetched only when the writes do not replace
//! them (`cp` truncates first and fetches nothing; an append or a write in the middle fills the
//! rest from the server version through the block cache). Dirtiness belongs to the inode,
//! not the handle: FLUSH arrives on every close of every descriptor (docs/FUSE-NOTES.md §3), and only
//! the first one after a change uploads.
//!
//! The upload is `close()`'s answer: FLUSH puts the bytes in the spool (the record durably,
//! the bytes on the disk only if the upload fails), uploads, and returns the errno of a
//! refusal. The staging file is hard-linked into the spool rather than copied, so it becomes
//! read-only for us: a write after an upload copies it first. A large file written front to
//! back starts uploading before `close` (`early.rs`).

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::early::Destination;
use super::files::{FileCell, FileGuard};
use super::fs_error::FsError;
use super::inode::{LocalFile, Node};
use super::page_text::TextForm;
use super::read::AttachmentRange;
use super::staged::Staged;
use super::text_node::TextNode;
use super::ConfluenceFs;
use crate::cache::ObjectKey;
use crate::confluence::{Attachment, ContainerRef};
use crate::spool::{EntryState, UploadRecord, UploadTarget};

/// How writes behave (from the mount options).
#[derive(Debug, Clone)]
pub struct WriteConfig {
    /// Version comment of uploads (a file's `user.confluence.comment` overrides it once).
    pub comment: String,
    /// Minor edits notify no watchers.
    pub minor_edit: bool,
    /// Writes past this size fail early with EFBIG.
    pub max_file_size: u64,
}

impl Default for WriteConfig {
    fn default() -> Self {
        WriteConfig {
            comment: "Saved with confluencefs".to_string(),
            minor_edit: true,
            max_file_size: 100 << 20,
        }
    }
}

const FILL_CHUNK: u32 = 1 << 20;
/// Times a write that met a full disk asks the disk cache for room before it fails.
const GIVE_BACK_TRIES: usize = 4;
/// The pause before trying again when the cache had nothing more to give.
const GIVE_BACK_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

impl ConfluenceFs {
    pub(super) fn staging_path(&self) -> Result<PathBuf, FsError> {
        let dir = self.writer()?.staging_dir.clone();
        let serial = self.new_handle();
        Ok(dir.join(format!("staged-{}-{serial}", std::process::id())))
    }

    fn new_staged(&self, base: Option<Attachment>) -> Result<Staged, FsError> {
        let path = self.staging_path()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let size = base.as_ref().map_or(0, |b| b.size);
        Ok(Staged {
            path,
            file,
            size,
            covered: 0,
            base,
            dirty: false,
            written: false,
            shared: false,
            too_large: false,
            appending: size == 0,
            early: None,
            early_tried: false,
        })
    }

    /// The staged bytes of the file locked in `file`, created from the inode's current bytes
    /// on first use.
    pub(crate) fn ensure_staged<'a>(
        &self,
        file: &'a mut FileGuard,
    ) -> Result<&'a mut Staged, FsError> {
        if file.staged.is_none() {
            let entry = self.entry(file.cell().ino())?;
            if let Node::Text(text) = &entry.node {
                file.staged = Some(self.new_staged_text(entry.parent, text)?);
                return Ok(file.staged.as_mut().expect("staged above"));
            }
            let base = match entry.node {
                Node::Attachment(att) => Some(att),
                Node::Local(local) => local.origin,
                Node::Version { .. } => return Err(FsError::Permission),
                _ => return Err(FsError::IsDirectory),
            };
            // The kernel may be reading the disk cache's file for a reader: it will send the
            // writes there too, so that file becomes the staging file.
            let staged = match self.adopt_kernel_file(file, base.as_ref())? {
                Some(staged) => staged,
                None => self.new_staged(base)?,
            };
            file.staged = Some(staged);
        }
        Ok(file.staged.as_mut().expect("staged above"))
    }

    /// Staged bytes of a page's text, starting from the text at the page's version (which
    /// `open` and `truncate` made sure is kept: `text_bytes`).
    fn new_staged_text(&self, page_ino: u64, text: &TextNode) -> Result<Staged, FsError> {
        let (page, form) = match text {
            TextNode::Markdown { page, .. } => (page, TextForm::Markdown),
            TextNode::Storage { page, .. } => (page, TextForm::Storage),
            _ => return Err(FsError::Permission),
        };
        let body = self
            .tree
            .inodes
            .bodies
            .get(&page.id, page.version)
            .ok_or(FsError::Errno(libc::EAGAIN))?;
        let bytes = self.render(page_ino, page, &body, form);
        let mut staged = self.new_staged(None)?;
        staged.file.write_all_at(&bytes, 0)?;
        staged.size = bytes.len() as u64;
        staged.covered = staged.size;
        staged.appending = false;
        Ok(staged)
    }

    /// Size of a file with local changes, when it has any.
    pub(crate) fn staged_size(&self, ino: u64) -> Option<u64> {
        self.files.staged_size(ino)
    }

    /// Writes `data` at `offset` through handle `handle` (WRITE) and returns how many bytes were
    /// written. The bytes go to the file's staging file; the upload comes at FLUSH.
    pub async fn write(&self, handle: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        let cell = self
            .handles
            .staged_cell(handle, true)
            .ok_or(FsError::BadHandle)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::TooLarge)?;
        let max = self.writer()?.config.max_file_size;
        let mut file = cell.lock().await;
        let comment = file.comment.clone();
        let staged = self.ensure_staged(&mut file)?;
        if end > max {
            staged.too_large = true;
            staged.give_up_early();
            return Err(FsError::TooLarge);
        }
        self.unshare(staged)?;
        if staged.base.is_some() && offset > staged.covered {
            self.fill(staged).await?;
        }
        let start_early = staged.may_start_early(offset, end);
        let mut written = staged.file.write_all_at(data, offset);
        // The disk cache shares the filesystem: it yields before a write fails. Its writer may
        // be in the middle of putting blocks of a file read just before on the disk: what it
        // gives back is free once that write ends, so the write is tried a few times, asking
        // for four times more each time, a moment apart when nothing more could be given.
        for attempt in 0..GIVE_BACK_TRIES {
            if !written.as_ref().is_err_and(no_space) {
                break;
            }
            let needed = (data.len() as u64 + (1 << 20)) << (2 * attempt);
            let cache = self.cache.clone();
            let freed = tokio::task::spawn_blocking(move || cache.give_back_disk(needed))
                .await
                .unwrap_or(0);
            if freed > 0 {
                tracing::info!(
                    freed,
                    "the disk cache gave space back to a file being written"
                );
            } else {
                tokio::time::sleep(GIVE_BACK_PAUSE).await;
            }
            written = staged.file.write_all_at(data, offset);
        }
        if let Err(err) = written {
            staged.give_up_early();
            return Err(err.into());
        }
        staged.wrote(offset, end);
        self.bytes_changed(cell.ino());
        if start_early {
            staged.early_tried = true;
            staged.early = self.start_early_upload(cell.ino(), &staged.path, end, comment);
        }
        Ok(data.len() as u32)
    }

    /// [`ConfluenceFs::write`] without waiting: `None` when it would have to wait (the staged
    /// file is locked, shared with the spool, or needs bytes from the server first), and the
    /// caller should take the async path.
    pub fn write_now(&self, handle: u64, offset: u64, data: &[u8]) -> Option<Result<u32, FsError>> {
        let cell = self.handles.staged_cell(handle, true)?;
        let mut file = cell.try_lock()?;
        let staged = file.staged.as_mut()?;
        let end = offset.checked_add(data.len() as u64)?;
        let max = self.writer.as_ref()?.config.max_file_size;
        if staged.shared
            || (staged.base.is_some() && offset > staged.covered)
            || end > max
            // Starting an early upload needs the runtime: the async path does it.
            || staged.may_start_early(offset, end)
        {
            return None;
        }
        if let Err(err) = staged.file.write_all_at(data, offset) {
            if no_space(&err) {
                // The async path asks the disk cache for room and writes again.
                return None;
            }
            staged.give_up_early();
            return Some(Err(err.into()));
        }
        staged.wrote(offset, end);
        self.bytes_changed(cell.ino());
        Some(Ok(data.len() as u32))
    }

    /// `truncate(2)`/`ftruncate(2)`/`O_TRUNC`. A truncation nobody holds open (`truncate` by
    /// path) is uploaded at once, since no close will follow it; its answer is the upload's.
    pub async fn truncate(&self, ino: u64, size: u64) -> Result<(), FsError> {
        if size > self.writer()?.config.max_file_size {
            return Err(FsError::TooLarge);
        }
        if matches!(self.entry(ino)?.node, Node::Text(_)) && !self.files.has_staged(ino) {
            self.text_bytes(ino).await?;
        }
        let mut file = self.files.lock(ino).await;
        let cell = file.cell().clone();
        let staged = self.ensure_staged(&mut file)?;
        self.unshare(staged)?;
        if staged.base.is_some() && size > staged.covered {
            self.fill(staged).await?;
        }
        staged.give_up_early();
        staged.file.set_len(size)?;
        super::kernel_writes::look_again(&mut cell.passthrough.lock().unwrap(), staged);
        staged.appending = size == 0;
        staged.early_tried = false;
        if size <= staged.covered {
            staged.covered = size;
            staged.base = None;
        }
        staged.size = size;
        staged.dirty = true;
        staged.too_large = false;
        if file.handles == 0 && !self.is_scratch(ino) && !self.handles.is_orphan(ino) {
            self.upload_staged(ino, &mut file).await?;
            let local = self.is_local(ino);
            self.files.settle(&mut file, local);
        }
        Ok(())
    }

    /// Reads through a handle on staged bytes: the new bytes.
    pub(crate) async fn read_staged(
        &self,
        cell: &Arc<FileCell>,
        offset: u64,
        len: u32,
    ) -> Result<Bytes, FsError> {
        let mut file = cell.lock().await;
        let staged = self.ensure_staged(&mut file)?;
        if staged.base.is_some() {
            self.fill(staged).await?;
        }
        let end = staged.size.min(offset.saturating_add(u64::from(len)));
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut buf = vec![0; (end - offset) as usize];
        staged.file.read_exact_at(&mut buf, offset)?;
        Ok(buf.into())
    }

    /// Completes the locked file's staged bytes from its base version.
    pub(super) async fn fill_staged(&self, file: &mut FileGuard) -> Result<(), FsError> {
        let staged = self.ensure_staged(file)?;
        self.fill(staged).await
    }

    /// Copies the base version's bytes that no write has replaced into the staging file.
    async fn fill(&self, staged: &mut Staged) -> Result<(), FsError> {
        let Some(base) = staged.base.take() else {
            return Ok(());
        };
        let end = base.size.min(staged.size);
        if staged.covered < end {
            let file = self.cache.open(
                ObjectKey {
                    attachment_id: base.id.clone(),
                    version: base.version,
                },
                base.size,
                Arc::new(AttachmentRange::new(
                    self.client.clone(),
                    base.clone(),
                    base.version,
                )),
            );
            let mut pos = staged.covered;
            while pos < end {
                let len = FILL_CHUNK.min((end - pos) as u32);
                let bytes = match file.read(pos, len).await {
                    Ok(bytes) => bytes,
                    Err(err) => {
                        staged.base = Some(base);
                        return Err(err.into());
                    }
                };
                if bytes.is_empty() {
                    break;
                }
                staged.file.write_all_at(&bytes, pos)?;
                pos += bytes.len() as u64;
            }
        }
        staged.covered = staged.size;
        Ok(())
    }

    /// Gives the staging state a private copy when the spool shares its file.
    fn unshare(&self, staged: &mut Staged) -> Result<(), FsError> {
        if !staged.shared {
            return Ok(());
        }
        let path = self.staging_path()?;
        std::fs::copy(&staged.path, &path)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)?;
        // The old name goes; the spool keeps its own link to the bytes.
        let _ = std::fs::remove_file(&staged.path);
        staged.path = path;
        staged.file = file;
        staged.shared = false;
        Ok(())
    }

    /// Whether FLUSH of `handle` may have work (it was opened for writing), answered without
    /// waiting: FLUSH comes on every close of every descriptor, readers' included.
    pub fn has_changes_to_flush(&self, handle: u64) -> bool {
        self.handles.staged_cell(handle, true).is_some()
    }

    /// FLUSH/FSYNC of `handle`: uploads its file's changes, if it has any; the answer is
    /// `close()`'s. Handles opened read-only change nothing, and a deleted file uploads nothing.
    pub async fn flush(&self, handle: u64) -> Result<(), FsError> {
        let Some(cell) = self.handles.staged_cell(handle, true) else {
            return Ok(());
        };
        let ino = cell.ino();
        let mut file = cell.lock().await;
        let Some(staged) = file.staged.as_ref() else {
            return Ok(());
        };
        if staged.too_large {
            return Err(FsError::TooLarge);
        }
        if !staged.dirty || (!staged.written && staged.size == 0) {
            return Ok(());
        }
        if self.is_scratch(ino) || self.handles.is_orphan(ino) {
            return Ok(());
        }
        self.upload_staged(ino, &mut file).await
    }

    pub(super) fn is_scratch(&self, ino: u64) -> bool {
        matches!(self.tree.inodes.get(ino).map(|e| e.node), Some(Node::Local(l)) if l.temporary)
    }

    /// Whether `ino` exists only here (its staged bytes are its only copy).
    pub(super) fn is_local(&self, ino: u64) -> bool {
        matches!(
            self.tree.inodes.get(ino).map(|e| e.node),
            Some(Node::Local(_))
        )
    }

    /// Takes back the spool entry still waiting to deliver an earlier state of `file`: newer
    /// bytes, a rename or a delete supersede it. If it reached the server meanwhile, the inode
    /// becomes that attachment, so what follows acts on what is there.
    pub(super) async fn withdraw_pending(&self, file: &mut FileGuard) -> Result<(), FsError> {
        let Some(id) = self.files.take_pending(file) else {
            return Ok(());
        };
        let ino = file.cell().ino();
        match self.writer()?.uploader.withdraw(&id).await {
            Ok(Some(attachment)) => {
                self.uploaded(ino, attachment).await;
                Ok(())
            }
            Ok(None) => {
                // The bytes are only here again: they still have to go up.
                if let Some(staged) = file.staged.as_mut() {
                    staged.shared = false;
                    staged.mark_dirty();
                }
                Ok(())
            }
            Err(err) => {
                tracing::warn!(ino, "cannot take back a waiting upload: {err}");
                self.files.set_pending(file, id);
                Err(FsError::Errno(err.errno()))
            }
        }
    }

    /// Spools and uploads the staged bytes of `file` to where its node says they belong.
    ///
    /// The spool takes the bytes without an `fsync`: the upload goes first, and the bytes are
    /// flushed to the disk only if it fails (they must outlive a power cut then, to be retried).
    /// An upload that succeeds never needed them durable — a 1 GiB `fsync` costs about as
    /// much as the upload itself — and one cut short by a crash never told `close` it was done.
    pub(crate) async fn upload_staged(
        &self,
        ino: u64,
        file: &mut FileGuard,
    ) -> Result<(), FsError> {
        if let Some((page_ino, page, form)) = self.text_target(ino).await {
            return self.save_text(ino, file, page_ino, page, form).await;
        }
        self.withdraw_pending(file).await?;
        let comment = file.comment.take();
        let writer = self.writer()?;
        let comment = comment.unwrap_or_else(|| writer.config.comment.clone());
        let staged = self.ensure_staged(file)?;
        self.fill(staged).await?;
        let early = staged.early.take();
        let entry = self.entry(ino)?;
        let Destination {
            target, filename, ..
        } = self.destination(entry.parent, &entry.node)?;
        let early = match early {
            Some(early) if staged.appending && early.matches(&target, &filename, &comment) => {
                Some(early)
            }
            Some(early) => {
                tracing::debug!(ino, "early upload no longer matches the file; giving it up");
                early.upload.abandon();
                None
            }
            None => None,
        };
        let record = UploadRecord {
            target,
            filename,
            comment,
            minor_edit: writer.config.minor_edit,
            size: staged.size,
            display_path: self.display_path(ino),
            site: self.client.base_url().to_string(),
            created_unix_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            attempts: 0,
            last_error: None,
            state: EntryState::Pending,
        };
        let spooled = writer
            .spool
            .admit_unsynced(&staged.path, record)
            .map_err(|err| {
                tracing::warn!("cannot spool an upload: {err}");
                FsError::Errno(err.errno())
            })?;
        staged.shared = true;
        staged.dirty = false;
        staged.written = false;
        let result = match early {
            Some(early) => {
                writer
                    .uploader
                    .upload_streamed(&spooled, early.upload)
                    .await
            }
            None => writer.uploader.upload(&spooled).await,
        };
        match result {
            Ok(attachment) => {
                // The spool's link to the staging file went with its entry.
                if let Some(staged) = file.staged.as_mut() {
                    staged.shared = false;
                }
                self.uploaded(ino, attachment).await;
                Ok(())
            }
            Err(err) => {
                tracing::warn!(path = %spooled.record.display_path, "upload failed: {err}");
                self.files.set_pending(file, spooled.id.clone());
                if file.cell().passthrough.lock().unwrap().active() {
                    // The kernel may go on writing the staging file: the retry gets bytes
                    // of its own, on the disk before `close` answers.
                    let spool = writer.spool.clone();
                    let detach = tokio::task::spawn_blocking(move || spool.detach_data(&spooled));
                    return match detach.await {
                        Ok(Ok(())) => {
                            if let Some(staged) = file.staged.as_mut() {
                                staged.shared = false;
                            }
                            Err(FsError::Errno(err.errno()))
                        }
                        Ok(Err(detach)) => {
                            tracing::warn!("cannot keep the spooled bytes: {detach}");
                            Err(FsError::Errno(libc::EIO))
                        }
                        Err(_) => Err(FsError::Errno(libc::EIO)),
                    };
                }
                // Kept for a retry: the bytes must be on the disk before `close` answers.
                let staged = file.staged.as_ref().expect("staged above");
                let sync = staged.file.try_clone()?;
                match tokio::task::spawn_blocking(move || sync.sync_all()).await {
                    Ok(Ok(())) => Err(FsError::Errno(err.errno())),
                    Ok(Err(sync)) => {
                        tracing::warn!(path = %spooled.record.display_path, "cannot flush the spooled bytes: {sync}");
                        Err(FsError::Errno(libc::EIO))
                    }
                    Err(_) => Err(FsError::Errno(libc::EIO)),
                }
            }
        }
    }

    /// Where the bytes of `node` go: a new version of the attachment it is (or that its name
    /// stood for before an editor renamed it away), or a new attachment.
    pub(super) fn destination(&self, parent: u64, node: &Node) -> Result<Destination, FsError> {
        match node {
            Node::Attachment(att) => Ok(Destination {
                target: UploadTarget::Version {
                    container: att.container.clone(),
                    attachment_id: att.id.clone(),
                    base_version: att.version,
                },
                filename: att.title.clone(),
                media_type: Some(att.media_type.clone()),
            }),
            Node::Local(local) => {
                let name = super::names::encode(&local.filename);
                Ok(match self.tree.local.vacated(parent, &name) {
                    Some(att) => Destination {
                        target: UploadTarget::Version {
                            container: att.container.clone(),
                            attachment_id: att.id.clone(),
                            base_version: att.version,
                        },
                        filename: att.title,
                        media_type: Some(att.media_type),
                    },
                    None => Destination {
                        target: UploadTarget::New {
                            container: local.container.clone(),
                        },
                        filename: local.filename.clone(),
                        media_type: None,
                    },
                })
            }
            _ => Err(FsError::IsDirectory),
        }
    }

    /// The background uploader delivered spool entry `id`. Unless a newer state of the file
    /// took the entry back meanwhile, the file is that attachment now.
    pub async fn spooled_upload_done(&self, id: &str, attachment: Attachment) {
        let Some(ino) = self.files.pending_ino(id) else {
            // From an earlier mount, or superseded: the listing shows what is there.
            return;
        };
        let mut file = self.files.lock(ino).await;
        if file.pending.as_deref() != Some(id) {
            return;
        }
        self.files.take_pending(&mut file);
        self.uploaded(ino, attachment).await;
        self.files.settle(&mut file, false);
    }

    /// The server confirmed an upload for `ino`: it is that attachment now.
    pub(crate) async fn uploaded(&self, ino: u64, attachment: Attachment) {
        let Ok(entry) = self.entry(ino) else {
            return;
        };
        let parent = entry.parent;
        let name = super::names::encode(&attachment.title);
        self.tree
            .inodes
            .rebind(ino, parent, Node::Attachment(attachment));
        // Into the listing before out of the local layer: a listing made meanwhile (readdir
        // reads the layer first) names the file one way or the other.
        self.add_to_listing(parent, &name, ino).await;
        let local_name = match &entry.node {
            Node::Local(local) => Some(super::names::encode(&local.filename)),
            _ => None,
        };
        self.tree.local.landed(parent, local_name.as_deref(), &name);
    }

    /// At unmount: uploads every change still only here. The kernel may drop the last
    /// RELEASEs of an unmount before we read them, and a file closed empty is uploaded only at
    /// its RELEASE; so whatever is dirty now goes up (or into the spool) before the process
    /// ends. Scratch files and files deleted while open stay local, as always.
    pub async fn upload_dirty(&self) {
        for cell in self.files.cells() {
            let ino = cell.ino();
            let mut file = cell.lock().await;
            if !file.is_dirty() || self.is_scratch(ino) || self.handles.is_orphan(ino) {
                continue;
            }
            if file.staged.as_ref().is_some_and(|s| s.too_large) {
                continue;
            }
            if let Err(err) = self.upload_staged(ino, &mut file).await {
                tracing::warn!(path = %self.display_path(ino), "upload at unmount failed: {err}");
            }
        }
    }

    /// The last handle on the staged bytes of `cell` closed. A change that FLUSH left alone
    /// (no bytes written: a new empty file, a truncation) is uploaded now, through the spool,
    /// holding the file's lock, so that whatever the user does next to the file waits for it;
    /// a clean attachment's staging state is dropped.
    pub(crate) async fn release_staged(&self, cell: Arc<FileCell>, last_of_orphan: bool) {
        let ino = cell.ino();
        let mut file = cell.lock().await;
        file.handles = file.handles.saturating_sub(1);
        if file.handles > 0 {
            return;
        }
        if self.handles.is_orphan(ino) || last_of_orphan {
            // Deleted while open: its bytes go nowhere.
            self.files.retire(&mut file);
            if last_of_orphan {
                self.tree.inodes.remove(ino);
            }
            return;
        }
        if file.staged.as_ref().is_some_and(|s| s.too_large) {
            // Refused at close already: drop the changes, and a file that only existed here
            // with them.
            self.files.retire(&mut file);
            if let Some(entry) = self.tree.inodes.get(ino) {
                if let Node::Local(local) = entry.node {
                    self.tree
                        .local
                        .remove(entry.parent, &super::names::encode(&local.filename));
                    self.tree.inodes.remove(ino);
                }
            }
            return;
        }
        if file.is_dirty() && !self.is_scratch(ino) {
            if let Err(err) = self.upload_staged(ino, &mut file).await {
                tracing::warn!(ino, "upload after close failed: {err}");
            }
        }
        let local = self.is_local(ino);
        self.files.settle(&mut file, local);
    }

    /// Creates a local file in a page directory; it reaches the server on close.
    pub(crate) fn new_local_file(
        &self,
        parent: u64,
        container: ContainerRef,
        filename: String,
        temporary: bool,
        origin: Option<Attachment>,
    ) -> u64 {
        let serial = self.new_handle();
        self.tree.inodes.upsert(
            parent,
            Node::Local(LocalFile {
                serial,
                container,
                filename,
                temporary,
                origin,
                created: SystemTime::now(),
            }),
        )
    }

    /// The path of `ino` inside the mount, for logs and `confluencefs pending`.
    pub(crate) fn display_path(&self, ino: u64) -> String {
        let mut parts = Vec::new();
        let mut current = ino;
        for _ in 0..64 {
            if current == super::inode::ROOT_INO {
                break;
            }
            let Some(entry) = self.tree.inodes.get(current) else {
                break;
            };
            parts.push(display_name(&entry.node));
            current = entry.parent;
        }
        parts.reverse();
        parts.join("/")
    }
}

/// A node's name for messages (collision tags aside, which only listings know).
fn display_name(node: &Node) -> String {
    use super::names::encode;
    match node {
        Node::Root => String::new(),
        Node::Space(space) => encode(&space.key),
        Node::Page(page) => encode(&page.title),
        Node::Blog { .. } => super::names::BLOG_DIR.to_string(),
        Node::Attachment(att) | Node::VersionsOf(att) => encode(&att.title),
        Node::Versions { .. } => super::names::VERSIONS_DIR.to_string(),
        Node::Version {
            attachment, number, ..
        } => super::names::version_file_name(&attachment.title, *number),
        Node::Local(local) => encode(&local.filename),
        Node::Text(text) => text.display_name(),
    }
}

/// Whether a local write failed for want of space.
fn no_space(err: &std::io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOSPC)
}
