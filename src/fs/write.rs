//! Writing files: staging on local disk, and the upload on close.
//!
//! A file being written lives in a staging file under the cache directory, never in memory,
//! so a 5 GiB copy is fine. Its current bytes are fetched only when the writes do not replace
//! them (`cp` truncates first and fetches nothing; an append or a write in the middle fills the
//! rest from the server version through the block cache). Dirtiness belongs to the inode,
//! not the handle: FLUSH arrives on every close of every descriptor (FUSE-NOTES §3), and only
//! the first one after a change uploads.
//!
//! The upload is `close()`'s answer: FLUSH puts the bytes in the spool (the record durably,
//! the bytes on the disk only if the upload fails), uploads, and returns the errno of a
//! refusal. The staging file is hard-linked into the spool rather than copied, so it becomes
//! read-only for us: a write after an upload copies it first. A large file written front to
//! back starts uploading before `close` (`early.rs`).

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::early::{Destination, EarlyUpload};
use super::error::FsError;
use super::inode::{LocalFile, Node};
use super::read::AttachmentRange;
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

/// The local copy of a file being written.
pub(crate) struct Staged {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    /// Bytes before this offset are ours (written, or known to be empty).
    covered: u64,
    /// The attachment version whose bytes stand in for everything not covered yet.
    base: Option<Attachment>,
    dirty: bool,
    /// Bytes were written since the last upload. An empty file that no write made (a new
    /// file, a truncation to 0) waits for RELEASE: a shell's `> file` sends FLUSH before its
    /// first write (it dup2s and closes the descriptor), and uploading then would add an empty
    /// version before the real one.
    written: bool,
    /// The staging file is also the spool's: copy it before changing it.
    shared: bool,
    /// A write went past `--max-file-size`: the file is refused whole (EFBIG at close too)
    /// rather than uploaded cut short.
    too_large: bool,
    /// Every byte was written in order from an empty file (see `early.rs`).
    appending: bool,
    /// The upload that started while the file was being written, if one did.
    early: Option<EarlyUpload>,
    /// Whether this run of appending writes has had its chance to start an early upload.
    early_tried: bool,
}

impl Staged {
    /// A file that did not exist before: uploading it empty is still a change.
    pub(crate) fn mark_new(&mut self) {
        self.dirty = true;
    }

    /// Its bytes must go up even though no write touched them (a rename over a file).
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
        self.written = true;
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The bookkeeping of a write of `offset..end` that reached the staging file.
    fn wrote(&mut self, offset: u64, end: u64) {
        if offset != self.size {
            self.appending = false;
        }
        if offset <= self.covered {
            self.covered = self.covered.max(end);
        }
        self.size = self.size.max(end);
        self.dirty = true;
        self.written = true;
        match &self.early {
            Some(early) if self.appending => early.upload.grow(self.size),
            Some(_) => self.give_up_early(),
            None => {}
        }
    }

    /// Whether a write ending at `end` should be the one that starts an early upload.
    fn may_start_early(&self, offset: u64, end: u64) -> bool {
        self.early.is_none()
            && !self.early_tried
            && self.appending
            && offset == self.size
            && end >= super::early::START_AFTER
    }

    /// The bytes no longer grow front to back: the early upload, if any, must not complete.
    fn give_up_early(&mut self) {
        if let Some(early) = self.early.take() {
            tracing::debug!("early upload given up");
            early.upload.abandon();
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) type StagedRef = Arc<StagedCell>;

/// A staged file behind its lock, with its size and dirtiness also readable without the lock:
/// `stat` must not wait for (or guess around) an upload that holds the lock for seconds.
pub(crate) struct StagedCell {
    size: AtomicU64,
    dirty: AtomicBool,
    state: tokio::sync::Mutex<Staged>,
}

impl StagedCell {
    fn new(staged: Staged) -> StagedCell {
        StagedCell {
            size: AtomicU64::new(staged.size),
            dirty: AtomicBool::new(staged.dirty),
            state: tokio::sync::Mutex::new(staged),
        }
    }

    /// The lock, if nobody holds it right now.
    pub(crate) fn try_lock(&self) -> Option<StagedGuard<'_>> {
        Some(StagedGuard {
            guard: self.state.try_lock().ok()?,
            cell: self,
        })
    }

    pub(crate) async fn lock(&self) -> StagedGuard<'_> {
        StagedGuard {
            guard: self.state.lock().await,
            cell: self,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }
}

/// The lock on a staged file; what it changed is published when it is released.
pub(crate) struct StagedGuard<'a> {
    guard: tokio::sync::MutexGuard<'a, Staged>,
    cell: &'a StagedCell,
}

impl std::ops::Deref for StagedGuard<'_> {
    type Target = Staged;
    fn deref(&self) -> &Staged {
        &self.guard
    }
}

impl std::ops::DerefMut for StagedGuard<'_> {
    fn deref_mut(&mut self) -> &mut Staged {
        &mut self.guard
    }
}

impl Drop for StagedGuard<'_> {
    fn drop(&mut self) {
        self.cell.size.store(self.guard.size, Ordering::Release);
        self.cell.dirty.store(self.guard.dirty, Ordering::Release);
    }
}

const FILL_CHUNK: u32 = 1 << 20;

impl ConfluenceFs {
    fn staging_path(&self) -> Result<PathBuf, FsError> {
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

    /// The staging state of `ino`, created on first use (from the node's current bytes).
    pub(crate) fn staged(&self, ino: u64) -> Result<StagedRef, FsError> {
        if let Some(staged) = self.writes.lock().unwrap().get(&ino) {
            return Ok(staged.clone());
        }
        let base = match self.entry(ino)?.node {
            Node::Attachment(att) => Some(att),
            Node::Local(local) => local.origin,
            Node::Version { .. } => return Err(FsError::Permission),
            _ => return Err(FsError::IsDirectory),
        };
        let staged = Arc::new(StagedCell::new(self.new_staged(base)?));
        Ok(self
            .writes
            .lock()
            .unwrap()
            .entry(ino)
            .or_insert(staged)
            .clone())
    }

    pub(crate) fn staged_if_any(&self, ino: u64) -> Option<StagedRef> {
        self.writes.lock().unwrap().get(&ino).cloned()
    }

    /// Size of a file with local changes, when it has any.
    pub(crate) fn staged_size(&self, ino: u64) -> Option<u64> {
        Some(self.staged_if_any(ino)?.size())
    }

    pub async fn write(&self, handle: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        let ino = self.write_handle(handle)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::TooLarge)?;
        let staged = self.staged(ino)?;
        let mut staged = staged.lock().await;
        if end > self.writer()?.config.max_file_size {
            staged.too_large = true;
            staged.give_up_early();
            return Err(FsError::TooLarge);
        }
        self.unshare(&mut staged)?;
        if staged.base.is_some() && offset > staged.covered {
            self.fill(&mut staged).await?;
        }
        let start_early = staged.may_start_early(offset, end);
        if let Err(err) = staged.file.write_all_at(data, offset) {
            staged.give_up_early();
            return Err(err.into());
        }
        staged.wrote(offset, end);
        if start_early {
            staged.early_tried = true;
            staged.early = self.start_early_upload(ino, &staged.path, end);
        }
        Ok(data.len() as u32)
    }

    /// [`ConfluenceFs::write`] without waiting: `None` when it would have to wait (the staged
    /// file is locked, shared with the spool, or needs bytes from the server first), and the
    /// caller should take the async path.
    pub fn write_now(&self, handle: u64, offset: u64, data: &[u8]) -> Option<Result<u32, FsError>> {
        let ino = self.write_handle(handle).ok()?;
        let cell = self.staged_if_any(ino)?;
        let mut staged = cell.try_lock()?;
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
            staged.give_up_early();
            return Some(Err(err.into()));
        }
        staged.wrote(offset, end);
        Some(Ok(data.len() as u32))
    }

    /// `truncate(2)`/`ftruncate(2)`/`O_TRUNC`.
    pub async fn truncate(&self, ino: u64, size: u64) -> Result<(), FsError> {
        if size > self.writer()?.config.max_file_size {
            return Err(FsError::TooLarge);
        }
        let staged = self.staged(ino)?;
        let mut staged = staged.lock().await;
        self.unshare(&mut staged)?;
        if staged.base.is_some() && size > staged.covered {
            self.fill(&mut staged).await?;
        }
        staged.give_up_early();
        staged.file.set_len(size)?;
        staged.appending = size == 0;
        staged.early_tried = false;
        if size <= staged.covered {
            staged.covered = size;
            staged.base = None;
        }
        staged.size = size;
        staged.dirty = true;
        staged.too_large = false;
        Ok(())
    }

    /// Reads through a write handle: the new bytes.
    pub(crate) async fn read_staged(
        &self,
        ino: u64,
        offset: u64,
        len: u32,
    ) -> Result<Bytes, FsError> {
        let staged = self.staged(ino)?;
        let mut staged = staged.lock().await;
        if staged.base.is_some() {
            self.fill(&mut staged).await?;
        }
        let end = staged.size.min(offset.saturating_add(u64::from(len)));
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut buf = vec![0; (end - offset) as usize];
        staged.file.read_exact_at(&mut buf, offset)?;
        Ok(buf.into())
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

    /// FLUSH/FSYNC: uploads the inode's changes, if it has any; the answer is `close()`'s.
    pub async fn flush(&self, ino: u64) -> Result<(), FsError> {
        let Some(staged) = self.staged_if_any(ino) else {
            return Ok(());
        };
        let mut staged = staged.lock().await;
        if staged.too_large {
            return Err(FsError::TooLarge);
        }
        if !staged.dirty || (!staged.written && staged.size == 0) {
            return Ok(());
        }
        if self.is_scratch(ino) {
            return Ok(());
        }
        self.upload_staged(ino, &mut staged).await
    }

    pub(super) fn is_scratch(&self, ino: u64) -> bool {
        matches!(self.inodes.get(ino).map(|e| e.node), Some(Node::Local(l)) if l.temporary)
    }

    /// Spools and uploads the staged bytes of `ino` to where its node says they belong.
    ///
    /// The spool takes the bytes without an `fsync`: the upload goes first, and the bytes are
    /// flushed to the disk only if it fails (they must outlive a power cut then, to be retried).
    /// An upload that succeeds never needed them durable — a 1 GiB `fsync` costs about as
    /// much as the upload itself — and one cut short by a crash never told `close` it was done.
    pub(crate) async fn upload_staged(&self, ino: u64, staged: &mut Staged) -> Result<(), FsError> {
        self.fill(staged).await?;
        let early = staged.early.take();
        let entry = self.entry(ino)?;
        let Destination {
            target, filename, ..
        } = self.destination(entry.parent, &entry.node)?;
        let writer = self.writer()?;
        let comment = self
            .comments
            .lock()
            .unwrap()
            .remove(&ino)
            .unwrap_or_else(|| writer.config.comment.clone());
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
        self.pending_uploads
            .lock()
            .unwrap()
            .insert(spooled.id.clone(), ino);
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
                self.pending_uploads.lock().unwrap().remove(&spooled.id);
                self.uploaded(ino, attachment).await;
                Ok(())
            }
            Err(err) => {
                tracing::warn!(path = %spooled.record.display_path, "upload failed: {err}");
                // Kept for a retry: the bytes must be on the disk before `close` answers.
                let file = staged.file.try_clone()?;
                match tokio::task::spawn_blocking(move || file.sync_all()).await {
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
                Ok(match self.local.vacated(parent, &name) {
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

    /// The background uploader delivered spool entry `id`.
    pub async fn spooled_upload_done(&self, id: &str, attachment: Attachment) {
        let ino = self.pending_uploads.lock().unwrap().remove(id);
        match ino {
            Some(ino) => self.uploaded(ino, attachment).await,
            None => {
                // From an earlier mount: the listing of its page will show it after the TTL;
                // nothing local stands for it.
            }
        }
    }

    /// The server confirmed an upload for `ino`: it is that attachment now.
    pub(crate) async fn uploaded(&self, ino: u64, attachment: Attachment) {
        let Ok(entry) = self.entry(ino) else {
            return;
        };
        let parent = entry.parent;
        let name = super::names::encode(&attachment.title);
        if let Node::Local(local) = &entry.node {
            self.local
                .remove(parent, &super::names::encode(&local.filename));
        }
        self.local.take_vacated(parent, &name);
        self.local.unhide(parent, &name);
        self.inodes
            .rebind(ino, parent, Node::Attachment(attachment));
        self.add_to_listing(parent, &name, ino).await;
    }

    /// A handle's inode, if the handle was opened for writing.
    fn write_handle(&self, handle: u64) -> Result<u64, FsError> {
        match self.files.lock().unwrap().get(&handle) {
            Some(super::read::OpenFile::Write { ino }) => Ok(*ino),
            Some(_) => Err(FsError::BadHandle),
            None => Err(FsError::BadHandle),
        }
    }

    /// The last handle on `ino` closed: a change that FLUSH left alone (no bytes written: a
    /// new empty file, a truncation) is uploaded now, in the background, through the spool;
    /// a clean attachment's staging state is dropped.
    pub(crate) fn release_staged(self: &Arc<Self>, ino: u64) {
        let still_open = self
            .files
            .lock()
            .unwrap()
            .values()
            .any(|f| matches!(f, super::read::OpenFile::Write { ino: i } if *i == ino));
        if still_open {
            return;
        }
        let Some(staged) = self.staged_if_any(ino) else {
            return;
        };
        let fs = self.clone();
        tokio::spawn(async move {
            let mut guard = staged.lock().await;
            if guard.too_large {
                // Refused at close already: drop the changes, and a file that only existed
                // here with them.
                drop(guard);
                fs.discard_refused(ino);
                return;
            }
            if guard.dirty && !fs.is_scratch(ino) {
                if let Err(err) = fs.upload_staged(ino, &mut guard).await {
                    tracing::warn!(ino, "upload after close failed: {err}");
                }
            }
            let local = matches!(fs.inodes.get(ino).map(|e| e.node), Some(Node::Local(_)));
            if !guard.dirty && !local {
                drop(guard);
                fs.writes.lock().unwrap().remove(&ino);
            }
        });
    }

    /// Forgets the changes of a file refused for its size (and the file, if it was new).
    fn discard_refused(&self, ino: u64) {
        self.writes.lock().unwrap().remove(&ino);
        if let Some(entry) = self.inodes.get(ino) {
            if let Node::Local(local) = entry.node {
                self.local
                    .remove(entry.parent, &super::names::encode(&local.filename));
                self.inodes.remove(ino);
            }
        }
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
        self.inodes.upsert(
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
            let Some(entry) = self.inodes.get(current) else {
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
    }
}
