//! One owner per file: everything that can change about a file's local state, behind one lock.
//!
//! A file's local state is its staged bytes, whether they are dirty, how many handles hold
//! them, the spool entry still waiting to deliver them, and the comment of its next upload.
//! These used to live in several maps, changed by FLUSH, by RELEASE's background upload of an
//! empty file, and by unlink/rename/truncate, each on its own: a write that arrived while the
//! background upload ran went to state that was then thrown away, and a delete was undone by
//! the upload that finished after it. Now every change of a file takes its [`FileState`] lock
//! first ([`FileTable::lock`]), so an operation that arrives during an upload waits for it (or,
//! for a spool entry waiting to retry, takes it back and supersedes it) — it never races it.
//!
//! A cell leaves the table only while its lock is held and nothing is left in it (no handle,
//! no dirty bytes, no waiting entry); it is marked retired then, so whoever was waiting on the
//! old cell's lock looks the file up again instead of changing a state nobody will read.
//! Size and dirtiness are also published in atomics when the lock is released: `stat` must not
//! wait for an upload that holds the lock for seconds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::kernel_writes::{self, Passthrough};
use super::staged::Staged;

/// The local state of one file.
#[derive(Default)]
pub(crate) struct FileState {
    /// The file's bytes on local disk, once anything opened it for writing (or truncated it).
    pub(crate) staged: Option<Staged>,
    /// Open handles on the staged bytes (writers, and readers of a file with local bytes).
    pub(crate) handles: u32,
    /// A spool entry of these bytes that failed and waits for a retry in the background.
    pub(crate) pending: Option<String>,
    /// `user.confluence.comment`: the version comment of the next upload.
    pub(crate) comment: Option<String>,
    retired: bool,
}

impl FileState {
    pub(crate) fn is_dirty(&self) -> bool {
        self.staged.as_ref().is_some_and(Staged::is_dirty)
    }

    /// Nothing here needs keeping: no handle, no change, nothing waiting.
    fn idle(&self) -> bool {
        self.handles == 0 && self.pending.is_none() && self.comment.is_none() && !self.is_dirty()
    }
}

pub(crate) struct FileCell {
    ino: u64,
    /// Published on unlock: the staged size, and whether there are staged bytes at all.
    size: AtomicU64,
    staged: AtomicBool,
    state: Arc<AsyncMutex<FileState>>,
    /// What the kernel may be writing behind our back (`passthrough.rs`).
    pub(crate) passthrough: Mutex<Passthrough>,
}

impl FileCell {
    fn new(ino: u64) -> FileCell {
        FileCell {
            ino,
            size: AtomicU64::new(0),
            staged: AtomicBool::new(false),
            state: Arc::new(AsyncMutex::new(FileState::default())),
            passthrough: Mutex::default(),
        }
    }

    pub(crate) fn ino(&self) -> u64 {
        self.ino
    }

    /// The state of a cell a handle holds (a held cell is never retired).
    pub(crate) async fn lock(self: &Arc<Self>) -> FileGuard {
        FileGuard::new(self.state.clone().lock_owned().await, self.clone())
    }

    /// The state, if nobody holds it right now.
    pub(crate) fn try_lock(self: &Arc<Self>) -> Option<FileGuard> {
        Some(FileGuard::new(
            self.state.clone().try_lock_owned().ok()?,
            self.clone(),
        ))
    }
}

/// The lock on one file's state; what it changed is published when it is released.
pub(crate) struct FileGuard {
    guard: OwnedMutexGuard<FileState>,
    cell: Arc<FileCell>,
}

impl FileGuard {
    /// The lock taken: first what the kernel wrote without us is taken in.
    fn new(mut guard: OwnedMutexGuard<FileState>, cell: Arc<FileCell>) -> FileGuard {
        kernel_writes::observe(&mut cell.passthrough.lock().unwrap(), guard.staged.as_mut());
        FileGuard { guard, cell }
    }

    pub(crate) fn cell(&self) -> &Arc<FileCell> {
        &self.cell
    }
}

impl std::ops::Deref for FileGuard {
    type Target = FileState;
    fn deref(&self) -> &FileState {
        &self.guard
    }
}

impl std::ops::DerefMut for FileGuard {
    fn deref_mut(&mut self) -> &mut FileState {
        &mut self.guard
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        let staged = self.guard.staged.as_ref();
        self.cell
            .size
            .store(staged.map_or(0, Staged::size), Ordering::Release);
        self.cell.staged.store(staged.is_some(), Ordering::Release);
    }
}

/// Every file with local state, by inode, and the spool entries waiting for them.
#[derive(Default)]
pub(crate) struct FileTable {
    cells: Mutex<HashMap<u64, Arc<FileCell>>>,
    /// Spool entry id → inode, for the background uploader's news.
    pending: Mutex<HashMap<String, u64>>,
}

impl FileTable {
    /// Locks the state of `ino` (an empty one if it has none), waiting for whoever holds it.
    pub(crate) async fn lock(&self, ino: u64) -> FileGuard {
        loop {
            let cell = self
                .cells
                .lock()
                .unwrap()
                .entry(ino)
                .or_insert_with(|| Arc::new(FileCell::new(ino)))
                .clone();
            let guard = cell.lock().await;
            if !guard.retired {
                return guard;
            }
        }
    }

    /// Locks the state of `ino` if it has one.
    pub(crate) async fn lock_existing(&self, ino: u64) -> Option<FileGuard> {
        loop {
            let cell = self.cells.lock().unwrap().get(&ino)?.clone();
            let guard = cell.lock().await;
            if !guard.retired {
                return Some(guard);
            }
        }
    }

    /// Every file with local state now.
    pub(crate) fn cells(&self) -> Vec<Arc<FileCell>> {
        self.cells.lock().unwrap().values().cloned().collect()
    }

    /// The staged size of `ino`, if it has staged bytes (without waiting for the lock).
    pub(crate) fn staged_size(&self, ino: u64) -> Option<u64> {
        let cells = self.cells.lock().unwrap();
        let cell = cells.get(&ino)?;
        if let Some(size) = cell.passthrough.lock().unwrap().live_size() {
            return Some(size);
        }
        cell.staged
            .load(Ordering::Acquire)
            .then(|| cell.size.load(Ordering::Acquire))
    }

    pub(crate) fn has_staged(&self, ino: u64) -> bool {
        self.staged_size(ino).is_some()
    }

    /// Drops the state if nothing in it needs keeping; `keep_bytes` keeps clean staged bytes
    /// too (a file that exists only here has no other copy).
    pub(crate) fn settle(&self, file: &mut FileGuard, keep_bytes: bool) {
        if file.idle() && !(keep_bytes && file.staged.is_some()) {
            self.retire(file);
        }
    }

    /// Drops the state whatever it holds (the file is gone).
    pub(crate) fn retire(&self, file: &mut FileGuard) {
        file.staged = None;
        file.retired = true;
        if let Some(id) = file.pending.take() {
            self.pending.lock().unwrap().remove(&id);
        }
        let mut cells = self.cells.lock().unwrap();
        let ino = file.cell.ino;
        if cells.get(&ino).is_some_and(|c| Arc::ptr_eq(c, &file.cell)) {
            cells.remove(&ino);
        }
    }

    /// Records that spool entry `id` holds the bytes of `file` until the background delivers.
    pub(crate) fn set_pending(&self, file: &mut FileGuard, id: String) {
        self.pending
            .lock()
            .unwrap()
            .insert(id.clone(), file.cell.ino);
        if let Some(old) = file.pending.replace(id) {
            self.pending.lock().unwrap().remove(&old);
        }
    }

    /// Takes the waiting spool entry of `file`, if there is one.
    pub(crate) fn take_pending(&self, file: &mut FileGuard) -> Option<String> {
        let id = file.pending.take()?;
        self.pending.lock().unwrap().remove(&id);
        Some(id)
    }

    /// The inode whose bytes spool entry `id` holds.
    pub(crate) fn pending_ino(&self, id: &str) -> Option<u64> {
        self.pending.lock().unwrap().get(id).copied()
    }
}
