//! The disk tier: one sparse file per version, a record of its blocks beside it, an LRU index in
//! memory, survives remounts.
//!
//! A version (one attachment at one version) is one data file of exactly the version's size,
//! created sparse, into which each block is written at its own offset; beside it a small record
//! file (`.present`: a header with the block size and the version's size, then one bit per
//! block) says which blocks are there. One file per version is what FUSE passthrough needs: a
//! version whose blocks are all present can be handed to the kernel as one file
//! ([`DiskCache::complete`]), and reads then never reach the daemon.
//!
//! A block counted present must really be there. Its bytes are written first, its bit after
//! (a crash between the two leaves bytes nobody counts), and at start every counted block is
//! checked against the data file: the file must have the version's exact length and no hole
//! inside a counted block (`SEEK_HOLE`; after a power loss, bytes that never reached the disk
//! read back as a hole). Nothing is fsynced: the cache must never be wrong, not durable. A
//! block that fails the check is forgotten; a pair whose header or length disagrees is deleted.
//!
//! File names are the hex of the attachment id (so no id, however odd, can escape the directory
//! or collide with another), then the version and the block size: a block index means nothing
//! without it, so a remount with another block size drops the old files. Files live in 256
//! sub-directories chosen by a hash of the name, so no directory grows huge. Files of the
//! previous layout (one file per block, named `<hex>_<version>_<block size>_<index>`) are
//! deleted at start.
//!
//! The unit of eviction is the version, least recently used first: a version is read whole far
//! more often than in part, and a file handed to the kernel must stay whole. A version larger
//! than the room left keeps its first blocks (a re-read then starts from disk) and the blocks
//! that do not fit are not cached. The index is rebuilt at start from the files themselves,
//! oldest first by the data file's mtime; the first hit of a version in a mount sets it, so the
//! order survives the next remount. The directory is 0700 and files are 0600: cached
//! attachments are as private as the credentials that fetched them.
//!
//! The cache shares its filesystem with the staging directory and the upload spool, whose
//! writes matter more than any cached block: a cache that filled the disk would make every
//! later write through the mount fail with ENOSPC. So the bound is not `--cache-size` alone but
//! `min(--cache-size, cache bytes + free space − reserve)`, with free space measured by
//! `statvfs` on the cache directory and a reserve of a quarter of the filesystem, at most
//! [`RESERVE_MAX`]. It is measured again after every [`MEASURE_BYTES`] written, and at least
//! every [`MEASURE_INTERVAL`] while blocks are written, so that what others wrote meanwhile
//! shrinks it. Room is made (and reserved) before a block is written; a block that does not fit
//! is simply not cached. A write that still meets a full disk is logged once, not once per
//! block, and the bound is measured again at the next write. A version evicted while a file
//! handed out by [`DiskCache::complete`] is still held is unlinked but its bytes stay counted
//! until the holder lets go: the space is still used.
//!
//! Writes are queued ([`DiskCache::enqueue`]) and done by one blocking task that runs while the
//! queue is not empty; a queued block counts as on disk (it is read from the queue), so the
//! fetch jobs can let go of it at once. The queue holds at most [`QUEUE_BYTES`]; past that the
//! job that stores a block waits for room (still holding its reader's read-ahead slot), which
//! slows the read-ahead to the disk's pace instead of dropping blocks: a file read whole ends up
//! wholly on disk. A blocking task is used because the runtime waits for running blocking tasks
//! when it shuts down, so the queue is written out at unmount. A fetched block the disk keeps is
//! not kept in memory as well (`fetch::store`), so a block the writer does not write after all
//! (no room, a failing disk) goes to the memory tier before it leaves the queue
//! ([`DiskCache::spill_to`]).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use lru::LruCache;
use tokio::sync::Notify;

use super::block::{BlockKey, Geometry};
use super::{CacheError, ObjectKey};
use crate::confluence::read_at_most;

/// Longest hex-encoded attachment id we store on disk; longer (and empty) ids stay in memory
/// only, so a file name never exceeds NAME_MAX (255).
const MAX_HEX_ID: usize = 192;
const TEMP_PREFIX: &str = ".tmp";
/// The record file's suffix.
const RECORD_SUFFIX: &str = ".present";
/// The record file's first bytes; the layout version is in it.
const RECORD_MAGIC: &[u8; 8] = b"CFSVER1\n";
/// Magic, block size, version size.
const RECORD_HEADER: u64 = 24;
/// Version files kept open for reading and writing.
const OPEN_FILES: usize = 64;

/// Largest free space the cache leaves untouched on its filesystem (less on a filesystem
/// smaller than four times this: a quarter of it).
pub(crate) const RESERVE_MAX: u64 = 1 << 30;
/// Bytes written between two measurements of the free space.
pub(crate) const MEASURE_BYTES: u64 = 8 << 20;
/// Longest time between two measurements while blocks are written.
pub(crate) const MEASURE_INTERVAL: Duration = Duration::from_secs(2);
/// Bytes waiting for the disk writer, at most (one block more may be queued when it is empty).
/// A cold read on loopback outruns the writer only in bursts; this absorbs them.
pub(crate) const QUEUE_BYTES: u64 = 32 << 20;
/// Blocks written in one go (one lock round trip and one record update).
const WRITE_BATCH: usize = 64;

/// Where the writer hands blocks it could not keep (see [`DiskCache::spill_to`]).
pub(crate) type Spill = Box<dyn Fn(BlockKey, Bytes) + Send + Sync>;

pub(crate) struct DiskCache {
    root: PathBuf,
    block_size: u64,
    capacity: u64,
    index: Mutex<DiskIndex>,
    queue: Mutex<Queue>,
    /// Woken when the writer has written a batch (room in the queue) or stopped (idle).
    room: Notify,
    idle: Notify,
    /// Set while writes fail for lack of space, so a full disk logs once, not once per block.
    full: AtomicBool,
    /// Set while free space, not `capacity`, bounds the cache (logged once).
    short: AtomicBool,
    spill: OnceLock<Spill>,
}

/// One cached version.
struct Version {
    /// The data file's name; the record's is this plus [`RECORD_SUFFIX`].
    name: String,
    size: u64,
    /// One bit per block, as in the record file.
    present: Vec<u8>,
    blocks: u64,
    /// Bytes of present blocks plus those being written.
    bytes: u64,
    /// Tells an entry from a later one of the same version (after an eviction).
    generation: u64,
    /// Files handed out by [`DiskCache::complete`] and not dropped yet.
    leases: u32,
    /// Whether its mtime was set in this mount (recency for the next one).
    touched: bool,
}

impl Version {
    fn has(&self, index: u64) -> bool {
        let (byte, bit) = ((index / 8) as usize, index % 8);
        self.present.get(byte).is_some_and(|b| b & (1 << bit) != 0)
    }

    fn set(&mut self, index: u64) {
        self.present[(index / 8) as usize] |= 1 << (index % 8);
    }
}

struct DiskIndex {
    versions: LruCache<ObjectKey, Version>,
    /// Open data files (read and write) of recently used versions.
    handles: LruCache<ObjectKey, Arc<File>>,
    /// Bytes of the versions in the index (evicted ones still held are `detached_bytes`).
    bytes: u64,
    blocks: u64,
    /// Evicted versions whose files are still held: generation → (bytes, holders).
    detached: HashMap<u64, (u64, u32)>,
    detached_bytes: u64,
    next_generation: u64,
    /// What the cache may hold given the free space when last measured (`None`: measure).
    room: Option<u64>,
    measured_at: Instant,
    written_since: u64,
}

impl DiskIndex {
    fn used(&self) -> u64 {
        self.bytes + self.detached_bytes
    }
}

/// Blocks of one version waiting to be written, consecutive from `first`.
struct Run {
    object: Arc<ObjectKey>,
    size: u64,
    first: u64,
    blocks: Vec<Bytes>,
}

#[derive(Default)]
struct Queue {
    runs: VecDeque<Run>,
    /// The same blocks, for readers.
    queued: HashMap<BlockKey, Bytes>,
    bytes: u64,
    writing: bool,
}

/// A read-only open file holding exactly one version's bytes, from [`DiskCache::complete`].
/// Holding it keeps the version's bytes counted against the bound even if the cache evicts the
/// version meanwhile (the file is unlinked then; the open file stays whole).
pub struct VersionFile {
    file: File,
    lease: Lease,
}

impl VersionFile {
    /// The open file (read-only, positioned at 0).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The version this file holds.
    pub fn key(&self) -> &ObjectKey {
        &self.lease.key
    }

    /// Gives this very file (the same inode, which the kernel may be reading) a second name,
    /// `to`, and takes it out of the cache: someone is about to change its bytes, so the cache
    /// must never serve them as the version again. Fails when the cache no longer holds this
    /// file (evicted while held: unlinked, it cannot be named again), or when `to` is on
    /// another filesystem. Blocking.
    pub fn adopt(&self, to: &Path) -> io::Result<()> {
        let disk = &self.lease.disk;
        let mut index = disk.lock();
        let name = match index.versions.peek(&self.lease.key) {
            Some(version) if version.generation == self.lease.generation => version.name.clone(),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the version left the disk cache while it was held",
                ))
            }
        };
        fs::hard_link(disk.path(&name), to)?;
        // The bytes are the file's now, not the cache's: uncounted, and the names go. A reader
        // that took the open file before this checks the generation after its `pread` (`read`).
        let version = index.versions.pop(&self.lease.key).expect("peeked above");
        index.handles.pop(&self.lease.key);
        index.blocks -= version.blocks;
        index.bytes -= version.bytes;
        disk.remove_names(&version.name);
        Ok(())
    }
}

impl AsFd for VersionFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

struct Lease {
    disk: Arc<DiskCache>,
    key: ObjectKey,
    generation: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut index = self.disk.lock();
        if let Some(version) = index.versions.peek_mut(&self.key) {
            if version.generation == self.generation {
                version.leases -= 1;
                return;
            }
        }
        if let Some((bytes, holders)) = index.detached.get_mut(&self.generation) {
            *holders -= 1;
            if *holders == 0 {
                let bytes = *bytes;
                index.detached.remove(&self.generation);
                index.detached_bytes -= bytes;
            }
        }
    }
}

impl DiskCache {
    /// Creates (or secures) `root` and indexes the versions already in it.
    pub(crate) fn open(
        root: &Path,
        block_size: u64,
        capacity: u64,
    ) -> Result<DiskCache, CacheError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| CacheError::io(root, e))?;
        // An existing directory keeps its old mode through create(); fix it.
        fs::set_permissions(root, Permissions::from_mode(0o700))
            .map_err(|e| CacheError::io(root, e))?;

        let mut found = scan(root, block_size)?;
        found.sort_by_key(|(_, _, used)| *used);
        let mut index = DiskIndex {
            versions: LruCache::unbounded(),
            handles: LruCache::new(OPEN_FILES.try_into().expect("not zero")),
            bytes: 0,
            blocks: 0,
            detached: HashMap::new(),
            detached_bytes: 0,
            next_generation: 0,
            room: None,
            measured_at: Instant::now(),
            written_since: 0,
        };
        for (key, mut version, _) in found {
            version.generation = index.next_generation;
            index.next_generation += 1;
            index.bytes += version.bytes;
            index.blocks += version.blocks;
            index.versions.put(key, version);
        }
        let disk = DiskCache {
            root: root.to_path_buf(),
            block_size,
            capacity,
            index: Mutex::new(index),
            queue: Mutex::default(),
            room: Notify::new(),
            idle: Notify::new(),
            full: AtomicBool::new(false),
            short: AtomicBool::new(false),
            spill: OnceLock::new(),
        };
        {
            let mut index = disk.lock();
            let limit = disk.limit(&mut index);
            disk.evict(&mut index, limit, None);
        }
        Ok(disk)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the block is on disk or queued for it.
    pub(crate) fn contains(&self, key: &BlockKey) -> bool {
        if self.lock_queue().queued.contains_key(key) {
            return true;
        }
        self.lock()
            .versions
            .peek(&key.object)
            .is_some_and(|version| version.has(key.index))
    }

    /// The block's bytes if the disk (or the queue) has exactly `expected_len` of them. Blocking.
    pub(crate) fn read(&self, key: &BlockKey, expected_len: u64) -> Option<Bytes> {
        if let Some(block) = self.lock_queue().queued.get(key) {
            return (block.len() as u64 == expected_len).then(|| block.clone());
        }
        let (file, touch, generation) = {
            let mut index = self.lock();
            // `get` (not `peek`) makes this version the most recently used.
            let version = index.versions.get_mut(&key.object)?;
            if !version.has(key.index) {
                return None;
            }
            let touch = !std::mem::replace(&mut version.touched, true);
            let generation = version.generation;
            (
                self.handle(&mut index, &key.object).ok()?,
                touch,
                generation,
            )
        };
        let offset = key.index * self.block_size;
        match read_exact_at(&file, offset, expected_len as usize) {
            // A file adopted meanwhile (`VersionFile::adopt`) may have been written since:
            // its bytes count only if the version was still the cache's after they were read.
            Ok(Some(_)) if !self.holds(&key.object, generation) => None,
            Ok(Some(data)) => {
                if touch {
                    // Recency for the next remount's LRU order; a failure costs only that.
                    let _ = file.set_modified(SystemTime::now());
                }
                Some(Bytes::from(data))
            }
            Ok(None) => {
                tracing::warn!(name = %self.name_of(&key.object), expected_len, "disk cache file is shorter than its version; dropping it");
                self.drop_version(&key.object);
                None
            }
            Err(e) => {
                tracing::warn!(name = %self.name_of(&key.object), error = %e, "cannot read disk cache file; fetching again");
                self.drop_version(&key.object);
                None
            }
        }
    }

    /// Whether the index still holds `generation` of `key`.
    fn holds(&self, key: &ObjectKey, generation: u64) -> bool {
        self.lock()
            .versions
            .peek(key)
            .is_some_and(|version| version.generation == generation)
    }

    /// Whether every block of `key` (`size` bytes) is written to disk (queued ones do not count).
    pub(crate) fn is_complete(&self, key: &ObjectKey, size: u64) -> bool {
        let count = self.geometry(size).block_count();
        self.lock()
            .versions
            .peek(key)
            .is_some_and(|v| v.size == size && v.blocks == count && count > 0)
    }

    /// A read-only file of exactly `size` bytes holding the version, when every block is on
    /// disk; counts as a use. `None` otherwise (also for an empty version, which has no file).
    pub(crate) fn complete(self: &Arc<Self>, key: &ObjectKey, size: u64) -> Option<VersionFile> {
        let count = self.geometry(size).block_count();
        let mut index = self.lock();
        let version = index.versions.get_mut(key)?;
        if version.size != size || version.blocks != count || count == 0 {
            return None;
        }
        // Opened under the lock: an eviction cannot come between the check and the open.
        let file = File::open(self.path(&version.name)).ok()?;
        if file.metadata().ok()?.len() != size {
            return None;
        }
        version.leases += 1;
        let generation = version.generation;
        drop(index);
        Some(VersionFile {
            file,
            lease: Lease {
                disk: self.clone(),
                key: key.clone(),
                generation,
            },
        })
    }

    /// Queues consecutive blocks of one version (`size` bytes) for writing, or hands them back
    /// when the queue is full. Must be called within a tokio runtime.
    fn try_enqueue(self: &Arc<Self>, run: Run) -> Result<(), Run> {
        let bytes: u64 = run.blocks.iter().map(|b| b.len() as u64).sum();
        let mut queue = self.lock_queue();
        if queue.bytes > 0 && queue.bytes + bytes > QUEUE_BYTES {
            return Err(run);
        }
        for (at, block) in run.blocks.iter().enumerate() {
            let key = BlockKey {
                object: run.object.clone(),
                index: run.first + at as u64,
            };
            queue.queued.insert(key, block.clone());
        }
        queue.bytes += bytes;
        queue.runs.push_back(run);
        if !std::mem::replace(&mut queue.writing, true) {
            let disk = self.clone();
            tokio::task::spawn_blocking(move || disk.drain());
        }
        Ok(())
    }

    /// Hands every queued block that the writer does not keep (the disk is full or failing, or
    /// the version does not fit) to `spill`, the memory tier: a block the fetch path left to the
    /// disk alone (`fetch::store`) is then still cached, as it was before it was queued.
    pub(crate) fn spill_to(&self, spill: Spill) {
        let _ = self.spill.set(spill);
    }

    /// Whether blocks of `object` (`size` bytes) written now would be kept: its name can be
    /// stored and the whole version fits within the bound (older versions are evicted for it).
    pub(crate) fn keeps(&self, object: &ObjectKey, size: u64) -> bool {
        file_name(object, self.block_size).is_some() && {
            let mut index = self.lock();
            size <= self.limit(&mut index)
        }
    }

    /// Queues consecutive blocks of `object` (`size` bytes) from `first` for writing if the
    /// queue has room; hands them back if not. Must be called within a tokio runtime.
    pub(crate) fn offer(
        self: &Arc<Self>,
        object: &Arc<ObjectKey>,
        size: u64,
        first: u64,
        blocks: Vec<Bytes>,
    ) -> Option<Vec<Bytes>> {
        let run = Run {
            object: object.clone(),
            size,
            first,
            blocks,
        };
        self.try_enqueue(run).err().map(|run| run.blocks)
    }

    /// Queues consecutive blocks of `object` (`size` bytes) from `first` for writing, waiting
    /// while the queue is full. Must be called within a tokio runtime.
    pub(crate) async fn enqueue(
        self: &Arc<Self>,
        object: Arc<ObjectKey>,
        size: u64,
        first: u64,
        blocks: Vec<Bytes>,
    ) {
        let mut run = Run {
            object,
            size,
            first,
            blocks,
        };
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the attempt, so a wake-up in between is not lost.
            room.as_mut().enable();
            match self.try_enqueue(run) {
                Ok(()) => return,
                Err(back) => run = back,
            }
            room.await;
        }
    }

    /// Waits until the queue is written out.
    pub(crate) async fn flushed(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if !self.lock_queue().writing {
                return;
            }
            idle.await;
        }
    }

    /// The writer: writes queued runs until the queue is empty.
    fn drain(&self) {
        struct Stopped<'a>(&'a DiskCache);
        impl Drop for Stopped<'_> {
            fn drop(&mut self) {
                self.0.lock_queue().writing = false;
                self.0.idle.notify_waiters();
                self.0.room.notify_waiters();
            }
        }
        let _stopped = Stopped(self);
        loop {
            let run = {
                let mut queue = self.lock_queue();
                let Some(mut run) = queue.runs.pop_front() else {
                    return;
                };
                // Runs that continue this one go in the same write.
                while run.blocks.len() < WRITE_BATCH {
                    match queue.runs.front() {
                        Some(next)
                            if next.object == run.object
                                && next.first == run.first + run.blocks.len() as u64 =>
                        {
                            let next = queue.runs.pop_front().expect("just seen");
                            run.blocks.extend(next.blocks);
                        }
                        _ => break,
                    }
                }
                run
            };
            let left = self.write_run(&run.object, run.size, run.first, &run.blocks);
            // Into memory before they leave the queue, so that a reader finds them in one place
            // or the other.
            if let Some(spill) = self.spill.get() {
                for index in left {
                    let block = &run.blocks[(index - run.first) as usize];
                    let key = BlockKey {
                        object: run.object.clone(),
                        index,
                    };
                    spill(key, block.clone());
                }
            }
            let mut queue = self.lock_queue();
            for (at, block) in run.blocks.iter().enumerate() {
                let key = BlockKey {
                    object: run.object.clone(),
                    index: run.first + at as u64,
                };
                queue.queued.remove(&key);
                queue.bytes -= block.len() as u64;
            }
            drop(queue);
            self.room.notify_waiters();
        }
    }

    /// Writes consecutive blocks of one version (`size` bytes) from `first`, making room first
    /// (least recently used versions are evicted); the blocks that do not fit are not written.
    /// Failures are logged, not returned as errors: the disk is a cache, and the reader has its
    /// bytes already. Returns the indices of the blocks that are not on disk after all (that
    /// did not fit, or whose write failed). Blocking.
    pub(crate) fn write_run(
        &self,
        object: &ObjectKey,
        size: u64,
        first: u64,
        blocks: &[Bytes],
    ) -> Vec<u64> {
        let geometry = self.geometry(size);
        let Some(name) = file_name(object, self.block_size) else {
            return (first..first + blocks.len() as u64).collect();
        };
        // Reserve room, under the lock, for the blocks not present yet that fit.
        let (generation, new, handle, writes, reserved, left) = {
            let mut index = self.lock();
            let limit = self.limit(&mut index);
            let new = match index.versions.get(object) {
                Some(version) if version.size == size => false,
                Some(_) => {
                    // Two sizes for one version: the server is not what we think; start over.
                    self.evict_one(&mut index, object);
                    true
                }
                None => true,
            };
            if new {
                let generation = index.next_generation;
                index.next_generation += 1;
                index.versions.put(
                    object.clone(),
                    Version {
                        name: name.clone(),
                        size,
                        present: vec![0; geometry.block_count().div_ceil(8) as usize],
                        blocks: 0,
                        bytes: 0,
                        generation,
                        leases: 0,
                        touched: true,
                    },
                );
            }
            let wanted: Vec<(u64, &Bytes)> = {
                let version = index.versions.peek(object).expect("just put");
                (first..)
                    .zip(blocks)
                    .filter(|(i, b)| !version.has(*i) && b.len() as u64 == geometry.block_len(*i))
                    .collect()
            };
            let needed: u64 = wanted.iter().map(|(_, b)| b.len() as u64).sum();
            self.evict(&mut index, limit.saturating_sub(needed), Some(object));
            let mut room = limit.saturating_sub(index.used());
            let fitting = wanted
                .iter()
                .take_while(|(_, b)| {
                    let fits = b.len() as u64 <= room;
                    room = room.saturating_sub(b.len() as u64);
                    fits
                })
                .count();
            let left: Vec<u64> = wanted[fitting..].iter().map(|(i, _)| *i).collect();
            let mut writes = wanted;
            writes.truncate(fitting);
            let reserved: u64 = writes.iter().map(|(_, b)| b.len() as u64).sum();
            let version = index.versions.peek_mut(object).expect("kept");
            version.bytes += reserved;
            let generation = version.generation;
            index.bytes += reserved;
            if writes.is_empty() && new {
                index.versions.pop(object);
            }
            let handle = index.handles.get(object).cloned();
            (generation, new, handle, writes, reserved, left)
        };
        if writes.is_empty() {
            return left;
        }
        let dir = self.root.join(bucket(&name));
        let written = (|| -> io::Result<Arc<File>> {
            let file = match handle {
                Some(file) if !new => file,
                _ => Arc::new(self.create_or_open(&dir, &name, size, new)?),
            };
            for (index, block) in &writes {
                file.write_all_at(block, geometry.block_start(*index))?;
            }
            Ok(file)
        })();
        // What is not on disk when the write failed, or the version was evicted meanwhile.
        let not_written = || {
            let mut all = left.clone();
            all.extend(writes.iter().map(|(i, _)| *i));
            all
        };
        let file = match written {
            Ok(file) => {
                if self.full.swap(false, Ordering::Relaxed) {
                    tracing::info!(dir = %self.root.display(), "disk cache writable again");
                }
                file
            }
            Err(e) => {
                if no_space(&e) {
                    if !self.full.swap(true, Ordering::Relaxed) {
                        tracing::warn!(dir = %self.root.display(), "disk cache: no space left on device; blocks stay in memory until there is room");
                    }
                } else {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot write disk cache file");
                }
                let mut index = self.lock();
                // Someone else took the space: measure again before the next write.
                index.room = None;
                let ours = index
                    .versions
                    .peek_mut(object)
                    .filter(|version| version.generation == generation)
                    .map(|version| {
                        version.bytes -= reserved;
                        version.blocks == 0
                    });
                if let Some(empty) = ours {
                    index.bytes -= reserved;
                    if empty {
                        self.evict_one(&mut index, object);
                    }
                }
                return not_written();
            }
        };
        // The bytes are there: now count them, then record them.
        let record = {
            let mut index = self.lock();
            index.written_since += reserved;
            let Some(version) = index.versions.peek_mut(object) else {
                return not_written();
            };
            if version.generation != generation {
                return not_written();
            }
            for (i, _) in &writes {
                version.set(*i);
            }
            version.blocks += writes.len() as u64;
            let lo = (writes[0].0 / 8) as usize;
            let hi = (writes[writes.len() - 1].0 / 8) as usize;
            let record = (lo, version.present[lo..=hi].to_vec());
            index.blocks += writes.len() as u64;
            if !index.handles.contains(object) {
                index.handles.put(object.clone(), file);
            }
            record
        };
        let path = self.path(&format!("{name}{RECORD_SUFFIX}"));
        let recorded = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.write_all_at(&record.1, RECORD_HEADER + record.0 as u64));
        if let Err(e) = recorded {
            // The blocks are counted in this mount; the next one simply does not find them.
            tracing::debug!(path = %path.display(), error = %e, "cannot update a disk cache record");
        }
        left
    }

    /// Evicts least recently used versions until `bytes` are freed (or the cache is empty), and
    /// keeps the cache that much smaller until the free space is measured again. Returns the
    /// bytes freed. Blocking.
    pub(crate) fn give_back(&self, bytes: u64) -> u64 {
        let mut index = self.lock();
        // Versions still held stay counted (their space is not freed), so `used` tells.
        let before = index.used();
        self.evict(&mut index, before.saturating_sub(bytes), None);
        let freed = before - index.used();
        index.room = Some(index.used());
        index.measured_at = Instant::now();
        freed
    }

    /// Bytes and blocks in the disk cache (evicted versions still held count as bytes).
    pub(crate) fn usage(&self) -> (u64, u64) {
        let index = self.lock();
        (index.used(), index.blocks)
    }

    /// The bound now: `capacity`, or less when the filesystem is short of space. Measures the
    /// free space when it is due.
    fn limit(&self, index: &mut DiskIndex) -> u64 {
        let due = index.room.is_none()
            || index.written_since >= MEASURE_BYTES
            || index.measured_at.elapsed() >= MEASURE_INTERVAL;
        if due {
            index.room = match free_space(&self.root) {
                Ok((free, total)) => {
                    let reserve = (total / 4).min(RESERVE_MAX);
                    Some((index.used() + free).saturating_sub(reserve))
                }
                Err(e) => {
                    tracing::debug!(dir = %self.root.display(), error = %e, "statvfs failed");
                    Some(u64::MAX)
                }
            };
            index.measured_at = Instant::now();
            index.written_since = 0;
        }
        let room = index.room.unwrap_or(u64::MAX);
        let short = room < self.capacity;
        if short != self.short.swap(short, Ordering::Relaxed) {
            if short {
                tracing::info!(dir = %self.root.display(), room, capacity = self.capacity, "disk cache bounded by free space");
            } else {
                tracing::info!(dir = %self.root.display(), "disk cache bounded by --cache-size again");
            }
        }
        room.min(self.capacity)
    }

    /// Evicts least recently used versions, never `keep`, until the cache holds at most `limit`.
    fn evict(&self, index: &mut DiskIndex, limit: u64, keep: Option<&ObjectKey>) {
        while index.used() > limit {
            let Some((key, _)) = index.versions.peek_lru() else {
                break;
            };
            if Some(key) == keep {
                break;
            }
            let key = key.clone();
            self.evict_one(index, &key);
        }
    }

    fn evict_one(&self, index: &mut DiskIndex, key: &ObjectKey) {
        let Some(version) = index.versions.pop(key) else {
            return;
        };
        index.handles.pop(key);
        index.blocks -= version.blocks;
        index.bytes -= version.bytes;
        if version.leases > 0 {
            // Still held: unlinked, but its bytes stay counted until the last holder lets go.
            index.detached_bytes += version.bytes;
            index
                .detached
                .insert(version.generation, (version.bytes, version.leases));
        }
        // Unlinking under the lock keeps a concurrent write of the same version from being
        // deleted right after it was indexed. A reader that already opened the file still
        // reads it whole (unlink does not cut open files short).
        self.remove_names(&version.name);
    }

    /// Removes a version's data file and record (what is already gone is fine).
    fn remove_names(&self, name: &str) {
        for path in [
            self.path(name),
            self.path(&format!("{name}{RECORD_SUFFIX}")),
        ] {
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a disk cache file");
                }
            }
        }
    }

    fn drop_version(&self, key: &ObjectKey) {
        let mut index = self.lock();
        self.evict_one(&mut index, key);
    }

    /// The open data file of a version in the index (opened now if it is not open).
    fn handle(&self, index: &mut DiskIndex, key: &ObjectKey) -> io::Result<Arc<File>> {
        if let Some(file) = index.handles.get(key) {
            return Ok(file.clone());
        }
        let name = &index.versions.peek(key).expect("in the index").name;
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.path(name))?,
        );
        index.handles.put(key.clone(), file.clone());
        Ok(file)
    }

    /// A new version's data file (sparse, `size` long) and empty record, or an existing one's
    /// data file.
    fn create_or_open(&self, dir: &Path, name: &str, size: u64, new: bool) -> io::Result<File> {
        if !new {
            return OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.join(name));
        }
        let create = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
        };
        let data = match create(&dir.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new().mode(0o700).create(dir).or_else(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                create(&dir.join(name))?
            }
            other => other?,
        };
        data.set_len(size)?;
        let mut header = Vec::with_capacity(RECORD_HEADER as usize);
        header.extend_from_slice(RECORD_MAGIC);
        header.extend_from_slice(&self.block_size.to_le_bytes());
        header.extend_from_slice(&size.to_le_bytes());
        header.resize(
            (RECORD_HEADER + self.geometry(size).block_count().div_ceil(8)) as usize,
            0,
        );
        let record = create(&dir.join(format!("{name}{RECORD_SUFFIX}")))?;
        record.write_all_at(&header, 0)?;
        Ok(data)
    }

    fn geometry(&self, size: u64) -> Geometry {
        Geometry {
            block_size: self.block_size,
            size,
        }
    }

    fn name_of(&self, key: &ObjectKey) -> String {
        file_name(key, self.block_size).unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, DiskIndex> {
        // The index holds no invariant a panic elsewhere could break half-way.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn path(&self, name: &str) -> PathBuf {
        let data = name.strip_suffix(RECORD_SUFFIX).unwrap_or(name);
        self.root.join(bucket(data)).join(name)
    }
}

/// `<hex id>_<version>_<block size>`, or `None` for an id too long (or empty) to be a name.
fn file_name(key: &ObjectKey, block_size: u64) -> Option<String> {
    let id = key.attachment_id.as_bytes();
    if id.is_empty() || id.len() * 2 > MAX_HEX_ID {
        return None;
    }
    let mut name = String::with_capacity(id.len() * 2 + 32);
    for byte in id {
        // Writing to a String cannot fail.
        let _ = write!(name, "{byte:02x}");
    }
    let _ = write!(name, "_{}_{}", key.version, block_size);
    Some(name)
}

/// The sub-directory of a version's files: two hex digits of an FNV-1a hash of the data file's
/// name. FNV is written out here because its result must never change between builds (std's
/// hasher may).
fn bucket(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:02x}", hash & 0xff)
}

/// The parts of `<hex>_<n>_<n>[_<n>…]`: the id's bytes and the numbers; `None` if not ours.
fn parse_name(name: &str) -> Option<(Vec<u8>, Vec<u64>)> {
    let mut parts = name.split('_');
    let hex = parts.next()?;
    let hex_ok = !hex.is_empty()
        && hex.len() % 2 == 0
        && hex.len() <= MAX_HEX_ID
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex_ok {
        return None;
    }
    let id = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let numbers = parts
        .map(|n| {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse::<u64>().ok())
                .flatten()
        })
        .collect::<Option<Vec<u64>>>()?;
    Some((id, numbers))
}

/// Lists the versions under `root` whose record and data file agree, each with its time of
/// last use; deletes temp files, files of the previous layout, files of another block size and
/// pairs that do not agree.
fn scan(root: &Path, block_size: u64) -> Result<Vec<(ObjectKey, Version, SystemTime)>, CacheError> {
    let mut found = Vec::new();
    for bucket_entry in fs::read_dir(root).map_err(|e| CacheError::io(root, e))? {
        let bucket_entry = bucket_entry.map_err(|e| CacheError::io(root, e))?;
        let bucket_name = bucket_entry.file_name();
        let bucket_name = bucket_name.to_string_lossy();
        let is_bucket = bucket_name.len() == 2
            && bucket_name.bytes().all(|b| b.is_ascii_hexdigit())
            && bucket_entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_bucket {
            continue;
        }
        let dir = bucket_entry.path();
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| CacheError::io(&dir, e))? {
            let entry = entry.map_err(|e| CacheError::io(&dir, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        let remove = |name: &str| {
            let _ = fs::remove_file(dir.join(name));
        };
        for name in &names {
            if name.starts_with(TEMP_PREFIX) {
                remove(name);
                continue;
            }
            let data_name = name.strip_suffix(RECORD_SUFFIX).unwrap_or(name);
            let Some((id, numbers)) = parse_name(data_name) else {
                continue;
            };
            if bucket(data_name) != bucket_name {
                continue;
            }
            if numbers.len() != 2 || numbers[1] != block_size {
                // The previous layout (one file per block) or another block size.
                remove(name);
                continue;
            }
            if name.ends_with(RECORD_SUFFIX) {
                if !names.iter().any(|n| n == data_name) {
                    remove(name);
                }
                continue;
            }
            let Ok(attachment_id) = String::from_utf8(id) else {
                continue;
            };
            let key = ObjectKey {
                attachment_id,
                version: numbers[0],
            };
            match load(&dir, name, block_size) {
                Some((version, used)) => found.push((key, version, used)),
                None => {
                    remove(name);
                    remove(&format!("{name}{RECORD_SUFFIX}"));
                }
            }
        }
    }
    Ok(found)
}

/// A version's entry from its record, keeping only the blocks the data file really holds.
fn load(dir: &Path, name: &str, block_size: u64) -> Option<(Version, SystemTime)> {
    let mut record = Vec::new();
    File::open(dir.join(format!("{name}{RECORD_SUFFIX}")))
        .ok()?
        .read_to_end(&mut record)
        .ok()?;
    if record.len() < RECORD_HEADER as usize || &record[..8] != RECORD_MAGIC {
        return None;
    }
    let number = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes"));
    let (recorded_block_size, size) = (number(8), number(16));
    let geometry = Geometry { block_size, size };
    let count = geometry.block_count();
    if recorded_block_size != block_size || record.len() as u64 != RECORD_HEADER + count.div_ceil(8)
    {
        return None;
    }
    let data = File::open(dir.join(name)).ok()?;
    let meta = data.metadata().ok()?;
    if !meta.is_file() || meta.len() != size {
        return None;
    }
    let mut version = Version {
        name: name.to_string(),
        size,
        present: vec![0; count.div_ceil(8) as usize],
        blocks: 0,
        bytes: 0,
        generation: 0,
        leases: 0,
        touched: false,
    };
    let bits = &record[RECORD_HEADER as usize..];
    for index in 0..count {
        let counted = bits[(index / 8) as usize] & (1 << (index % 8)) != 0;
        let start = geometry.block_start(index);
        let end = start + geometry.block_len(index);
        if counted && next_hole(&data, start).is_some_and(|hole| hole >= end) {
            version.set(index);
            version.blocks += 1;
            version.bytes += end - start;
        }
    }
    if version.blocks == 0 {
        return None;
    }
    Some((version, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// The first hole at or after `offset` (the end of the file counts as one).
fn next_hole(file: &File, offset: u64) -> Option<u64> {
    let offset = libc::off_t::try_from(offset).ok()?;
    // SAFETY: lseek on an open descriptor reads no memory of ours.
    let hole = unsafe { libc::lseek(file.as_raw_fd(), offset, libc::SEEK_HOLE) };
    u64::try_from(hole).ok()
}

/// Exactly `len` bytes at `offset` (`Ok(None)` if the file ends sooner).
fn read_exact_at(file: &File, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    let data = read_at_most(file, offset, len)?;
    Ok((data.len() == len).then_some(data))
}

/// Free bytes (for an unprivileged user) and total bytes of the filesystem holding `path`.
/// Free bytes for an unprivileged writer and total bytes of the filesystem holding `path`.
pub fn free_space(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `stat` points to
    // writable memory of the right type, which statvfs fills when it returns 0.
    let result = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    // The field types differ between targets (32-bit ones use 32-bit counts).
    #[allow(clippy::unnecessary_cast)]
    let (unit, available, blocks) = (
        stat.f_frsize as u64,
        stat.f_bavail as u64,
        stat.f_blocks as u64,
    );
    Ok((available.saturating_mul(unit), blocks.saturating_mul(unit)))
}

/// Whether `error` says the disk (or the user's quota) is full, however deeply it is wrapped.
fn no_space(error: &io::Error) -> bool {
    let full = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT));
    if full(error) {
        return true;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = error
        .get_ref()
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    while let Some(current) = cause {
        if current.downcast_ref::<io::Error>().is_some_and(full) {
            return true;
        }
        cause = current.source();
    }
    false
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
