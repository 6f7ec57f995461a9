//! Files the kernel reads and writes itself: FUSE passthrough (Linux 6.9 and later).
//!
//! Every byte `cp` writes through FUSE is a synchronous round trip and two more copies (into
//! our process, out to the staging file). With passthrough, `open` hands the kernel the
//! file's staging file and its READs and WRITEs never reach us: a large copy costs what a copy
//! onto the local disk costs, and the upload at `close`.
//!
//! What we no longer see, we look up (`kernel_writes.rs`). Whoever takes a file's lock
//! (`files.rs`, the one owner of a file's state) first compares the staging file's size and modification time with what was
//! seen last; a difference is a write like any other: the bytes are dirty and go up at
//! `close`. Our own changes (a truncation) are re-read afterwards so that they do not count
//! as the kernel's. Modification times are fine-grained once someone has looked at them since
//! the last change (Linux 6.13's multigrain timestamps), which is what makes a rewrite of the
//! same size visible; before 6.13 only reads are handed over (`writes_allowed`).
//!
//! Only complete staged bytes are handed over (a new file, one truncated, one written before
//! in this mount): the kernel cannot ask us for the parts of a server version that a partial
//! staging file stands for. The kernel keeps one mode per inode — while any handle of an inode
//! is passthrough, every handle of it must be, on the same file — which the FUSE adapter
//! enforces; here the staging file stays where it is while the kernel holds it.
//!
//! Reads are handed over too: a version wholly in the disk cache (one file per version there)
//! is read by the kernel from the cache's file, and no READ reaches us. On a writable mount a
//! writer may open the file while the kernel reads it, and the kernel's one backing file per
//! inode sends the writer's bytes into that file: so the writer *adopts* it
//! (`adopt_kernel_file`), the cache lets it go (it never serves those bytes as the old
//! version), and its readers become readers of the staged bytes. For the writer to find the
//! file, only the first handle of a file is handed one, under the file's lock (`read.rs`).
//!
//! What a user sees differently (docs/PERFORMANCE.md): a write past `--max-file-size` fails at
//! `close` with EFBIG rather than at the `write`, and a full disk answers ENOSPC without the
//! disk cache giving space back first (it keeps its reserve free for this).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::files::{FileCell, FileGuard, FileState};
use super::fs_error::FsError;
use super::inode::Node;
use super::staged::Staged;
use super::ConfluenceFs;
use crate::cache::{free_space, ObjectKey, VersionFile};
use crate::confluence::Attachment;

/// Free space the staging filesystem keeps while the kernel writes files we do not see: the
/// disk cache gives blocks back before a write through us fails (`give_back_disk`), but a
/// write through the kernel cannot wait for that, so the room is made ahead of it. Below it,
/// files are written through us, where the cache yields write by write.
const ROOM: u64 = 512 << 20;
/// How often the room is checked while the kernel writes.
const ROOM_EVERY: Duration = Duration::from_millis(50);

/// Keeps [`ROOM`] free while files are written through passthrough.
#[derive(Default)]
pub(crate) struct Room {
    writers: AtomicU32,
    keeping: AtomicBool,
    /// `may_adopt`, once decided.
    adoptable: OnceLock<bool>,
}

/// Free bytes of the filesystem holding `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    free_space(path).ok().map(|(free, _)| free)
}

/// Whether this kernel makes a same-size rewrite visible in the modification time (6.13+).
fn writes_allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        kernel_at_least(&release, (6, 13))
    })
}

fn kernel_at_least(release: &str, wanted: (u32, u32)) -> bool {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= wanted
}

impl ConfluenceFs {
    /// A descriptor of the staging file of the locked file, if the kernel may be handed it for
    /// a handle opened for writing (`writable`) or reading.
    pub(crate) fn passthrough_offer(
        &self,
        cell: &FileCell,
        state: &FileState,
        writable: bool,
    ) -> Option<std::fs::File> {
        if !self.config.passthrough || (writable && !writes_allowed()) {
            return None;
        }
        let staged = state.staged.as_ref()?;
        // Short of room, a write through us lets the disk cache yield first (`write.rs`); the
        // kernel's own writes could not wait for it.
        if writable && free_bytes(&staged.path).map_or(true, |free| free < ROOM) {
            return None;
        }
        // Not while the spool shares the staging file (a failed upload waiting for a retry):
        // the kernel's writes would change the bytes the retry sends.
        if !staged.complete() || staged.too_large || staged.shared || staged.early.is_some() {
            return None;
        }
        // A page's text is saved as a document at close, with its own checks: through us.
        if matches!(
            self.tree.inodes.get(cell.ino()).map(|entry| entry.node),
            Some(Node::Text(_)) | None
        ) {
            return None;
        }
        let offered = staged.file.try_clone().ok()?;
        cell.passthrough.lock().unwrap().offered(staged);
        Some(offered)
    }

    /// The disk cache's file of version `key` when the kernel may read it itself for a reader
    /// of `node` (FUSE passthrough): every block of it on disk, and either nobody can write
    /// the file meanwhile — an old version (`@versions`), any file of a read-only mount — or
    /// a writer would find and adopt the cache's file (`locked`: the caller holds the file's
    /// lock and is its first handle; the kernel allows one backing file per inode, so the
    /// writer's bytes go where the readers read).
    pub(crate) async fn version_for_kernel(
        &self,
        node: &Node,
        key: &ObjectKey,
        size: u64,
        locked: bool,
    ) -> Option<VersionFile> {
        let immutable = match node {
            Node::Version { .. } => true,
            Node::Attachment(_) => self.config.read_only || (locked && self.may_adopt()),
            _ => false,
        };
        if !self.config.passthrough || !immutable || !self.cache.has_complete_version(key, size) {
            return None;
        }
        let cache = self.cache.clone();
        let key = key.clone();
        tokio::task::spawn_blocking(move || cache.complete_version(&key, size))
            .await
            .ok()
            .flatten()
    }

    /// Whether a writer of a current version the kernel reads from the disk cache can take
    /// that file over as its staging file (`adopt_kernel_file`): writes are handed over on
    /// this kernel, and the cache's files can be linked into the staging directory (one
    /// filesystem). Decided once.
    pub(crate) fn may_adopt(&self) -> bool {
        *self.room.adoptable.get_or_init(|| {
            use std::os::unix::fs::MetadataExt;
            let device = |path: Option<&std::path::Path>| {
                path.and_then(|path| std::fs::metadata(path).ok())
                    .map(|meta| meta.dev())
            };
            let staging = device(self.writer.as_ref().map(|w| w.staging_dir.as_path()));
            let cache = device(self.cache.disk_dir());
            self.config.passthrough && writes_allowed() && staging.is_some() && staging == cache
        })
    }

    /// Whether a reader opening `node` now may be handed the disk cache's file of its current
    /// version on a writable mount: then the open decides under the file's lock, so that a
    /// writer coming later finds the file to adopt (`read.rs`).
    pub(crate) fn may_hand_over_current(&self, node: &Node, key: &ObjectKey, size: u64) -> bool {
        matches!(node, Node::Attachment(_))
            && !self.config.read_only
            && self.may_adopt()
            && self.cache.has_complete_version(key, size)
    }

    /// The staging file of a writer (or truncation) of the locked file when the kernel reads
    /// it from the disk cache for a reader: that very file, which the kernel will write too
    /// (one backing file per inode), taken out of the cache and named in the staging
    /// directory. `base` is the version the writer starts from. `None` when no reader was
    /// handed a file. The readers of the server bytes become readers of the staged bytes, so
    /// the file lives as long as any of them.
    pub(crate) fn adopt_kernel_file(
        &self,
        file: &mut FileGuard,
        base: Option<&Attachment>,
    ) -> Result<Option<Staged>, FsError> {
        let ino = file.cell().ino();
        let Some((handle, kept)) = self.handles.take_version_file(ino) else {
            return Ok(None);
        };
        let busy = |why: &str| {
            tracing::warn!(
                path = %self.display_path(ino),
                "cannot write a file the kernel reads from the disk cache ({why}); close its readers first"
            );
            FsError::Errno(libc::EBUSY)
        };
        let base = match base {
            Some(att)
                if att.id == kept.key().attachment_id && att.version == kept.key().version =>
            {
                att
            }
            _ => {
                self.handles.keep_version_file(handle, kept);
                return Err(busy("its readers hold an older version"));
            }
        };
        let path = self.staging_path()?;
        if let Err(err) = kept.adopt(&path) {
            self.handles.keep_version_file(handle, kept);
            return Err(busy(&err.to_string()));
        }
        drop(kept);
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path);
        let staged_file = match opened {
            Ok(f) => f,
            Err(err) => {
                let _ = std::fs::remove_file(&path);
                return Err(err.into());
            }
        };
        let staged = Staged::complete_copy(path, staged_file, base.clone());
        tracing::debug!(path = %self.display_path(ino), "the disk cache's file became the staging file");
        file.staged = Some(staged);
        self.restage_readers(file);
        Ok(file.staged.take())
    }

    /// Turns the readers of the locked file's server bytes into readers of its staged bytes;
    /// those the kernel serves itself now watch the staging file (they read the same file).
    pub(crate) fn restage_readers(&self, file: &mut FileGuard) {
        let cell = file.cell().clone();
        let (moved, kernel) = self.handles.restage_readers(cell.ino(), &cell);
        file.handles += moved;
        let Some(staged) = file.staged.as_ref() else {
            return;
        };
        if moved > 0 {
            let limit = self.writer().map_or(u64::MAX, |w| w.config.max_file_size);
            let mut passthrough = cell.passthrough.lock().unwrap();
            // Readers whose open is not answered yet may still be taken by the kernel.
            passthrough.offered(staged);
            for _ in 0..kernel {
                passthrough.started(limit);
            }
        }
    }

    /// The kernel serves handle `handle` from the staging file from now on (the adapter
    /// registered it): its writes are looked up, not received.
    pub fn passthrough_started(self: &Arc<Self>, handle: u64) {
        self.handles.mark_passthrough(handle);
        let Some(cell) = self.handles.staged_cell(handle, false) else {
            return;
        };
        if self.handles.staged_cell(handle, true).is_some() {
            self.room.writers.fetch_add(1, Ordering::AcqRel);
            if !self.room.keeping.swap(true, Ordering::AcqRel) {
                let fs = self.clone();
                tokio::spawn(async move { fs.keep_room().await });
            }
        }
        let limit = self.writer().map_or(u64::MAX, |w| w.config.max_file_size);
        cell.passthrough.lock().unwrap().started(limit);
    }

    /// Handle `handle` (opened for writing if `writable`) is closing: one passthrough handle
    /// fewer on its file.
    pub(crate) fn passthrough_ended(&self, cell: &FileCell, handle: u64, writable: bool) {
        if self.handles.unmark_passthrough(handle) {
            cell.passthrough.lock().unwrap().ended();
            if writable {
                self.room.writers.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// While the kernel writes files itself, keeps [`ROOM`] free on the staging filesystem by
    /// taking it from the disk cache.
    async fn keep_room(self: Arc<Self>) {
        let Some(dir) = self.writer.as_ref().map(|w| w.staging_dir.clone()) else {
            self.room.keeping.store(false, Ordering::Release);
            return;
        };
        loop {
            if self.room.writers.load(Ordering::Acquire) == 0 {
                self.room.keeping.store(false, Ordering::Release);
                // A writer that came in between found `keeping` still set: take it over.
                if self.room.writers.load(Ordering::Acquire) == 0
                    || self.room.keeping.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
            if let Some(free) = free_bytes(&dir).filter(|free| *free < ROOM) {
                let cache = self.cache.clone();
                let freed = tokio::task::spawn_blocking(move || cache.give_back_disk(ROOM - free))
                    .await
                    .unwrap_or(0);
                if freed > 0 {
                    tracing::debug!(freed, "the disk cache gave room to files being written");
                }
            }
            tokio::time::sleep(ROOM_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kernel_at_least;

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(kernel_at_least("6.18.44-cloud-amd64\n", (6, 13)));
        assert!(kernel_at_least("6.13.0", (6, 13)));
        assert!(!kernel_at_least("6.12.9-arch1", (6, 13)));
        assert!(!kernel_at_least("5.19.0", (6, 13)));
        assert!(kernel_at_least("7.0.1", (6, 13)));
        assert!(!kernel_at_least("", (6, 13)));
    }
}
