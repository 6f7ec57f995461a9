//! The filesystem proper: Confluence objects as inodes, directories and files, with no FUSE in
//! sight.
//!
//! Every operation is an `async fn` returning `Result<_, FsError>`, so it can be tested without
//! a kernel and the FUSE adapter (`crate::fuse`) stays a thin translation. Work is lazy: nothing
//! is fetched until the kernel asks, listings are cached for `metadata_ttl` (moka, which also
//! makes concurrent listings of one directory share one fetch), negative lookups are cached for
//! the same time, and file bytes go through the block cache (`crate::cache`), keyed by
//! attachment id and version so that a new version can never be served from an old one's
//! blocks.
//!
//! State has owners, and `ConfluenceFs` orchestrates them: `tree::Tree` (inodes, listings,
//! negative lookups, local entries, listing read-ahead), `handles::Handles` (open files and
//! directories, files deleted while open), `files::FileTable` (one owner per file: staged
//! bytes, dirtiness, the waiting upload, the next comment, behind one lock per file), and
//! `kept_attrs` (modes, times and chosen names, and their writes to the server).
//!
//! Operations by module: `dir` (listings, lookups, getattr), `read` (open, read, release),
//! `write` (writes, truncation, FLUSH and the upload), `early` (uploads that start while a file
//! is written), `change` (create, unlink, mkdir, rmdir, rename, setattr), `xattr`, `attr`
//! (stat). Read-ahead: `ahead_listings` (listings ahead of a tree walk), `ahead_order` and
//! `ahead_files` (which files a reader opens next, fetched before it does). Rules: `names`
//! (title ↔ file name), `tempname` (scratch names), `fs_error` (the errno table), `inode`
//! (numbers ↔ objects), `forget` (FORGET, and dropping inodes nothing needs), `staged` (a staging file), `local` (what exists only here).

mod ahead_files;
mod ahead_listings;
mod ahead_order;
mod attr;
mod change;
mod dir;
mod early;
mod files;
mod forget;
pub mod fs_error;
mod handles;
pub mod inode;
mod kept_attrs;
mod kernel_writes;
mod local;
pub mod names;
pub mod page_text;
mod passthrough;
mod read;
mod staged;
pub mod tempname;
pub mod text_node;
mod tree;
mod write;
mod xattr;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::cache::BlockCache;
use crate::confluence::Client;
use crate::spool::{Spool, UploadEvent, Uploader};
use tokio::sync::mpsc::UnboundedReceiver;

pub use attr::{Attr, BLOCK_SIZE, IO_SIZE};
pub use change::SetAttr;
pub use dir::DirEntry;
pub use fs_error::FsError;
pub use write::WriteConfig;

/// What the filesystem needs to know about the mount.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// Owner of every file and directory (the mounting user, or `--uid`).
    pub uid: u32,
    /// Group of every file and directory (the mounting user's, or `--gid`).
    pub gid: u32,
    /// Permission bits of a file that has no mode of its own (set by chmod or at creation);
    /// the `w` bits go on a read-only mount and in `@versions`.
    pub file_mode: u16,
    /// Permission bits of a directory that has no mode of its own, as `file_mode`.
    pub dir_mode: u16,
    /// Refuse every change with EROFS (`--read-only`, `-o ro`).
    pub read_only: bool,
    /// How long a listing, an attribute and a negative lookup stay valid.
    pub metadata_ttl: Duration,
    /// Only these spaces (empty: every space the user can see).
    pub spaces: Vec<String>,
    /// List `@versions` in page directories (it is always reachable by name).
    pub show_versions: bool,
    /// Offer the kernel staging files to read and write itself (`passthrough.rs`); the
    /// adapter decides whether the kernel takes them.
    pub passthrough: bool,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            uid: 0,
            gid: 0,
            file_mode: 0o644,
            dir_mode: 0o755,
            read_only: false,
            metadata_ttl: Duration::from_secs(60),
            spaces: Vec::new(),
            show_versions: false,
            passthrough: true,
        }
    }
}

/// What a writable mount has and a read-only one does not.
pub struct Writer {
    /// Comment, notification and size limit of uploads.
    pub config: WriteConfig,
    /// Where files being written are staged (under the cache directory).
    pub staging_dir: std::path::PathBuf,
    /// The durable record of uploads not yet confirmed by the server.
    pub spool: Arc<Spool>,
    /// Delivers spool entries, at close and in the background.
    pub uploader: Arc<Uploader>,
    /// Permits for uploads that start while a file is written (`early.rs`).
    pub early_slots: Arc<tokio::sync::Semaphore>,
    /// What the uploader finishes in the background, until [`ConfluenceFs::start_background`]
    /// takes it to follow.
    events: Mutex<Option<UnboundedReceiver<UploadEvent>>>,
}

impl Writer {
    /// The write side of a mount; `events` is what `uploader` reports of background work.
    pub fn new(
        config: WriteConfig,
        staging_dir: std::path::PathBuf,
        spool: Arc<Spool>,
        uploader: Arc<Uploader>,
        events: UnboundedReceiver<UploadEvent>,
    ) -> Writer {
        Writer {
            config,
            staging_dir,
            spool,
            uploader,
            early_slots: early::slots(),
            events: Mutex::new(Some(events)),
        }
    }
}

/// The filesystem: every operation the FUSE adapter forwards, as an `async fn`.
pub struct ConfluenceFs {
    client: Client,
    writer: Option<Writer>,
    cache: Arc<BlockCache>,
    /// Files of a directory fetched before their reader opens them.
    file_prefetch: ahead_files::FilePrefetch,
    config: FsConfig,
    /// Inodes, listings, negative lookups, local entries: what the mount knows of the tree.
    tree: tree::Tree,
    /// Open file handles, and files deleted while open.
    handles: handles::Handles,
    /// The local state of every file that has one, each behind its own lock.
    files: files::FileTable,
    /// Modes and times set by tools, and their writes to the server (`kept_attrs.rs`).
    attributes: kept_attrs::AttrWrites,
    /// Uploads after RELEASE still running: unmounting waits for them ([`ConfluenceFs::quiesce`]).
    releasing: Arc<tokio::sync::watch::Sender<usize>>,
    /// Free space kept for files the kernel writes itself (`passthrough.rs`).
    room: Arc<passthrough::Room>,
    mounted_at: SystemTime,
}

impl ConfluenceFs {
    /// A filesystem; `writer` is `None` for a read-only mount.
    pub fn new(
        client: Client,
        cache: Arc<BlockCache>,
        config: FsConfig,
        writer: Option<Writer>,
    ) -> ConfluenceFs {
        let ttl = config.metadata_ttl.max(Duration::from_millis(1));
        ConfluenceFs {
            client,
            writer,
            handles: handles::Handles::default(),
            files: files::FileTable::default(),
            attributes: kept_attrs::AttrWrites::default(),
            file_prefetch: ahead_files::FilePrefetch::new(&cache),
            cache,
            tree: tree::Tree::new(ttl),
            releasing: Arc::new(tokio::sync::watch::Sender::new(0)),
            room: Arc::default(),
            mounted_at: SystemTime::now(),
            config,
        }
    }

    /// Starts the work a writable mount does in the background (call inside the runtime): the
    /// uploader's retries of spooled entries, and following what they deliver, so that a file
    /// whose upload a retry finished becomes that attachment.
    pub fn start_background(self: &Arc<Self>) {
        self.start_collecting();
        let Some(writer) = &self.writer else {
            return;
        };
        writer.uploader.spawn_retries();
        let Some(mut events) = writer.events.lock().unwrap().take() else {
            return;
        };
        let fs = self.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    UploadEvent::Done {
                        id,
                        record,
                        attachment,
                    } => {
                        tracing::info!(path = %record.display_path, "uploaded from the spool");
                        fs.spooled_upload_done(&id, attachment).await;
                    }
                    UploadEvent::TextSaved { record, page, .. } => {
                        tracing::info!(path = %record.display_path, "page text saved from the spool");
                        if let Some(ino) = fs.tree.inodes.find_content(&page.id) {
                            fs.text_saved(ino, page).await;
                        }
                    }
                    UploadEvent::Failed { record, errno, .. } => {
                        tracing::warn!(
                            path = %record.display_path,
                            errno,
                            "upload refused for good; it stays in the spool (see `confluencefs pending`)"
                        );
                    }
                }
            }
        });
    }

    /// Waits until the work that RELEASE left running (the upload of a file closed empty)
    /// has reached the spool or the server: the kernel sends the last RELEASEs just before an
    /// unmount, and the process must not end before their uploads are admitted.
    pub async fn quiesce(&self) {
        let mut running = self.releasing.subscribe();
        let _ = running.wait_for(|n| *n == 0).await;
    }

    /// Counts one piece of RELEASE's background work, from now until the guard is dropped
    /// (in the task that does it).
    fn releasing(&self) -> Releasing {
        self.releasing.send_modify(|n| *n += 1);
        Releasing(self.releasing.clone())
    }

    /// What the filesystem was told about the mount.
    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// The time-to-live the kernel may cache entries and attributes for.
    pub fn kernel_ttl(&self) -> Duration {
        self.config.metadata_ttl
    }

    fn new_handle(&self) -> u64 {
        self.handles.next_number()
    }

    /// Whether metadata confirmed at `at` is still within the TTL.
    fn fresh(&self, at: std::time::Instant) -> bool {
        at.elapsed() < self.config.metadata_ttl
    }

    /// The write side, or EROFS on a read-only mount.
    fn writer(&self) -> Result<&Writer, FsError> {
        self.writer.as_ref().ok_or(FsError::ReadOnly)
    }

    /// The spool directory of a writable mount (shown as `user.confluencefs.spool` on the root).
    pub fn spool_dir(&self) -> Option<&std::path::Path> {
        self.writer.as_ref().map(|w| w.spool.dir())
    }

    /// Refuses what Confluence cannot hold: symlinks, hard links, device nodes.
    pub fn refuse_special(&self, what: &'static str) -> FsError {
        if self.config.read_only {
            FsError::ReadOnly
        } else {
            FsError::NotPermitted(what)
        }
    }

    /// The attributes of `ino` as known now, without asking the server.
    pub fn attr_now(&self, ino: u64) -> Result<Attr, FsError> {
        let entry = self.tree.inodes.get(ino).ok_or(FsError::NotFound)?;
        Ok(self.attr_of(ino, &entry))
    }

    /// What `statfs(2)` reports.
    pub fn statfs(&self) -> Statfs {
        Statfs {
            block_size: attr::BLOCK_SIZE,
            name_max: NAME_MAX as u32,
        }
    }
}

/// The longest name, in bytes, of a file or directory (`statfs`'s `f_namemax`, as on every
/// local filesystem): longer titles are shown shortened (README, names), and longer names
/// are refused by every operation rather than made and then shown under another name.
pub const NAME_MAX: usize = 255;

struct Releasing(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for Releasing {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// What `statfs` reports: Confluence has no capacity to speak of, so only the constants.
pub struct Statfs {
    /// `f_bsize`, the unit of `st_blocks` arithmetic (4096).
    pub block_size: u32,
    /// `f_namemax`, the longest name in bytes (255).
    pub name_max: u32,
}
