//! The disk tier: one file per block, an LRU index in memory, survives remounts.
//!
//! A block file appears whole or not at all: it is written to a temp file in the same
//! directory and renamed into place, so a crash leaves at most a `.tmp*` file, which the next
//! start deletes. Because a file can still be cut short by hand or by a broken disk, every read
//! checks the length against the block's known length and drops a file that disagrees.
//!
//! File names are the hex of the attachment id (so no id, however odd, can escape the
//! directory or collide with another), then the version, the block size and the block index.
//! The block size is in the name because a block index means nothing without it: a remount with
//! another block size simply never hits the old files, which age out of the LRU. Files live in
//! 256 sub-directories chosen by a hash of the name, so no directory grows huge.
//!
//! The index (name → length, in LRU order) is rebuilt at start from the files themselves,
//! oldest first by the later of mtime and atime; a hit sets the file's mtime so the order
//! survives the next remount. The directory is 0700 and files are 0600: cached attachments are
//! as private as the credentials that fetched them.
//!
//! The cache shares its filesystem with the staging directory and the upload spool, whose
//! writes matter more than any cached block: a cache that filled the disk would make every
//! later write through the mount fail with ENOSPC. So the bound is not `--cache-size` alone but
//! `min(--cache-size, cache bytes + free space − reserve)`, with free space measured by
//! `statvfs` on the cache directory and a reserve of a quarter of the filesystem, at most
//! [`RESERVE_MAX`]. It is measured again after every [`MEASURE_BYTES`] written, and at least
//! every [`MEASURE_INTERVAL`] while blocks are written, so that what others wrote meanwhile
//! shrinks it. Blocks are evicted (least recently used first) before a write to stay under it;
//! a block that does not fit is simply not cached. A write that still meets a full disk is
//! logged once, not once per block, and the bound is measured again at the next write.

use std::fmt::Write as _;
use std::fs::{self, DirBuilder, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use lru::LruCache;

use super::block::BlockKey;
use super::CacheError;

/// Longest hex-encoded attachment id we store on disk; longer (and empty) ids stay in memory
/// only, so a file name never exceeds NAME_MAX (255).
const MAX_HEX_ID: usize = 192;
const TEMP_PREFIX: &str = ".tmp";

/// Largest free space the cache leaves untouched on its filesystem (less on a filesystem
/// smaller than four times this: a quarter of it).
pub(crate) const RESERVE_MAX: u64 = 1 << 30;
/// Bytes written between two measurements of the free space.
pub(crate) const MEASURE_BYTES: u64 = 8 << 20;
/// Longest time between two measurements while blocks are written.
pub(crate) const MEASURE_INTERVAL: Duration = Duration::from_secs(2);

pub(crate) struct DiskCache {
    root: PathBuf,
    block_size: u64,
    capacity: u64,
    index: Mutex<DiskIndex>,
    /// Set while writes fail for lack of space, so a full disk logs once, not once per block.
    full: AtomicBool,
    /// Set while free space, not `capacity`, bounds the cache (logged once).
    short: AtomicBool,
}

struct DiskIndex {
    files: LruCache<String, u64>,
    bytes: u64,
    /// What the cache may hold given the free space when last measured (`None`: measure).
    room: Option<u64>,
    measured_at: Instant,
    written_since: u64,
}

impl DiskIndex {
    fn forget(&mut self, name: &str) {
        if let Some(len) = self.files.pop(name) {
            self.bytes -= len;
        }
    }
}

impl DiskCache {
    /// Creates (or secures) `root` and indexes the blocks already in it.
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

        let mut found = scan(root)?;
        found.sort_by_key(|file| file.used);
        let mut index = DiskIndex {
            files: LruCache::unbounded(),
            bytes: 0,
            room: None,
            measured_at: Instant::now(),
            written_since: 0,
        };
        for file in found {
            index.bytes += file.len;
            index.files.put(file.name, file.len);
        }
        let disk = DiskCache {
            root: root.to_path_buf(),
            block_size,
            capacity,
            index: Mutex::new(index),
            full: AtomicBool::new(false),
            short: AtomicBool::new(false),
        };
        {
            let mut index = disk.lock();
            let limit = disk.limit(&mut index);
            disk.evict(&mut index, limit);
        }
        Ok(disk)
    }

    pub(crate) fn contains(&self, key: &BlockKey) -> bool {
        match self.file_name(key) {
            Some(name) => self.lock().files.contains(&name),
            None => false,
        }
    }

    /// The block's bytes if a file of exactly `expected_len` bytes holds it. Blocking.
    pub(crate) fn read(&self, key: &BlockKey, expected_len: u64) -> Option<Bytes> {
        let name = self.file_name(key)?;
        // `get` (not `peek`) makes this block the most recently used.
        self.lock().files.get(&name)?;
        let path = self.path(&name);
        match read_exact_len(&path, expected_len) {
            Ok(Some(data)) => Some(data),
            Ok(None) => {
                tracing::warn!(path = %path.display(), expected_len, "disk cache block has the wrong length; dropping it");
                self.remove(&name, &path);
                None
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read disk cache block; fetching it again");
                }
                self.remove(&name, &path);
                None
            }
        }
    }

    /// Stores a block, evicting least recently used files first to stay under the bound; a
    /// block that does not fit is not stored. Failures are logged, never returned: the disk is
    /// a cache, and the reader has its bytes already. Blocking.
    pub(crate) fn write(&self, key: &BlockKey, data: &[u8]) {
        let Some(name) = self.file_name(key) else {
            return;
        };
        let len = data.len() as u64;
        {
            let mut index = self.lock();
            let limit = self.limit(&mut index);
            if len > limit {
                return;
            }
            // Room first, so that the new file never needs space the cache could give back.
            let before = index.files.peek(&name).copied().unwrap_or(0);
            self.evict(&mut index, (limit - len).saturating_add(before));
        }
        let dir = self.root.join(bucket(&name));
        match write_atomically(&dir, &name, data) {
            Ok(()) => {
                if self.full.swap(false, Ordering::Relaxed) {
                    tracing::info!(dir = %self.root.display(), "disk cache writable again");
                }
            }
            Err(e) if no_space(&e) => {
                if !self.full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(dir = %self.root.display(), "disk cache: no space left on device; blocks stay in memory until there is room");
                }
                // Someone else took the space: measure again before the next write.
                self.lock().room = None;
                return;
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write disk cache block");
                return;
            }
        }
        let mut index = self.lock();
        if let Some(old) = index.files.put(name, len) {
            index.bytes -= old;
        }
        index.bytes += len;
        index.written_since += len;
        let limit = self.limit(&mut index);
        self.evict(&mut index, limit);
    }

    /// Evicts least recently used blocks until `bytes` are freed (or the cache is empty), and
    /// keeps the cache that much smaller until the free space is measured again. Returns the
    /// bytes freed. Blocking.
    pub(crate) fn give_back(&self, bytes: u64) -> u64 {
        let mut index = self.lock();
        let before = index.bytes;
        self.evict(&mut index, before.saturating_sub(bytes));
        let freed = before - index.bytes;
        index.room = Some(index.bytes);
        index.measured_at = Instant::now();
        freed
    }

    /// Bytes and files in the disk cache.
    pub(crate) fn usage(&self) -> (u64, u64) {
        let index = self.lock();
        (index.bytes, index.files.len() as u64)
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
                    Some((index.bytes + free).saturating_sub(reserve))
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

    fn evict(&self, index: &mut DiskIndex, limit: u64) {
        while index.bytes > limit {
            let Some((name, len)) = index.files.pop_lru() else {
                break;
            };
            index.bytes -= len;
            // Unlinking under the lock keeps a concurrent write of the same block from being
            // deleted right after it was indexed. A reader that already opened the file still
            // reads it whole (unlink does not cut open files short).
            let path = self.path(&name);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot evict disk cache block");
                }
            }
        }
    }

    fn remove(&self, name: &str, path: &Path) {
        let mut index = self.lock();
        index.forget(name);
        let _ = fs::remove_file(path);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DiskIndex> {
        // The index holds no invariant a panic elsewhere could break half-way.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn file_name(&self, key: &BlockKey) -> Option<String> {
        let id = key.object.attachment_id.as_bytes();
        if id.is_empty() || id.len() * 2 > MAX_HEX_ID {
            return None;
        }
        let mut name = String::with_capacity(id.len() * 2 + 48);
        for byte in id {
            // Writing to a String cannot fail.
            let _ = write!(name, "{byte:02x}");
        }
        let _ = write!(
            name,
            "_{}_{}_{}",
            key.object.version, self.block_size, key.index
        );
        Some(name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(bucket(name)).join(name)
    }
}

/// The sub-directory of a block file: two hex digits of an FNV-1a hash of its name. FNV is
/// written out here because its result must never change between builds (std's hasher may).
fn bucket(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:02x}", hash & 0xff)
}

/// Whether `name` is one of ours: `<hex id>_<version>_<block size>_<index>`.
fn is_block_name(name: &str) -> bool {
    let mut parts = name.split('_');
    let hex_ok = parts.next().is_some_and(|hex| {
        !hex.is_empty()
            && hex.len() % 2 == 0
            && hex.len() <= MAX_HEX_ID
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    let numbers: Vec<&str> = parts.collect();
    hex_ok
        && numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

struct FoundBlock {
    name: String,
    len: u64,
    used: SystemTime,
}

/// Lists the block files under `root`, deleting temp files that a crash left behind.
fn scan(root: &Path) -> Result<Vec<FoundBlock>, CacheError> {
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
        for entry in fs::read_dir(&dir).map_err(|e| CacheError::io(&dir, e))? {
            let entry = entry.map_err(|e| CacheError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if !is_block_name(&name) || bucket(&name) != bucket_name {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let accessed = meta.accessed().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push(FoundBlock {
                name,
                len: meta.len(),
                used: modified.max(accessed),
            });
        }
    }
    Ok(found)
}

/// Reads `path` if it holds exactly `expected_len` bytes (`Ok(None)` if not), and marks it used.
fn read_exact_len(path: &Path, expected_len: u64) -> io::Result<Option<Bytes>> {
    let file = File::open(path)?;
    let mut data = Vec::with_capacity(expected_len as usize);
    // One byte more than expected is enough to tell a long file from a right one.
    (&file).take(expected_len + 1).read_to_end(&mut data)?;
    if data.len() as u64 != expected_len {
        return Ok(None);
    }
    // Recency for the next remount's LRU order; a failure only costs that ordering.
    let _ = file.set_modified(SystemTime::now());
    Ok(Some(Bytes::from(data)))
}

/// Free bytes (for an unprivileged user) and total bytes of the filesystem holding `path`.
fn free_space(path: &Path) -> io::Result<(u64, u64)> {
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

/// Whether `error` says the disk (or the user's quota) is full, however deeply it is wrapped:
/// the tempfile crate wraps I/O errors with the path, which hides the OS error code from
/// `raw_os_error` on the outer error.
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

fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(TEMP_PREFIX)
        .permissions(Permissions::from_mode(0o600));
    let mut temp = match builder.tempfile_in(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new().mode(0o700).create(dir).or_else(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
            builder.tempfile_in(dir)?
        }
        other => other?,
    };
    // No fsync: after a power loss a block may be lost or short, and the length check on read
    // catches a short one; the cache never needs to be durable, only never wrong.
    temp.write_all(data)?;
    temp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_names_round_trip_through_the_check() {
        assert!(is_block_name("617474313233_3_1048576_0"));
        assert!(!is_block_name("617474313233_3_1048576"));
        assert!(!is_block_name("6174743_3_1_0"));
        assert!(!is_block_name("ATT_3_1_0"));
        assert!(!is_block_name(".tmpabc"));
        // FNV-1a of "a" is 0xaf63dc4c8601ec8c: files already on disk were placed by this value,
        // so it must never change.
        assert_eq!(bucket("a"), "8c");
    }

    #[test]
    fn a_full_disk_is_recognised_when_wrapped() {
        let enospc = || io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(no_space(&enospc()));
        // As tempfile reports it: the OS error inside an error that adds the path.
        #[derive(Debug)]
        struct WithPath(io::Error);
        impl std::fmt::Display for WithPath {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} at /some/path", self.0)
            }
        }
        impl std::error::Error for WithPath {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = io::Error::other(WithPath(enospc()));
        assert_eq!(wrapped.raw_os_error(), None);
        assert!(no_space(&wrapped));
        assert!(no_space(&io::Error::other(enospc())));
        let other = io::Error::other(WithPath(io::Error::from_raw_os_error(libc::EACCES)));
        assert!(!no_space(&other));
    }

    #[test]
    fn the_cache_leaves_the_reserve_free() {
        let dir = tempfile::tempdir().unwrap();
        let (free, total) = free_space(dir.path()).unwrap();
        assert!(free > 0 && total >= free);
        // A capacity far beyond the disk: free space is the bound, less the reserve.
        let disk = DiskCache::open(dir.path(), 4096, u64::MAX).unwrap();
        let limit = disk.limit(&mut disk.lock());
        let reserve = (total / 4).min(RESERVE_MAX);
        assert!(
            limit <= free.saturating_sub(reserve) + (1 << 20),
            "{limit} of {free} free"
        );
        // A small capacity is the bound when there is room.
        let small = DiskCache::open(dir.path(), 4096, 10_000).unwrap();
        assert_eq!(small.limit(&mut small.lock()), 10_000.min(limit));
    }
}
