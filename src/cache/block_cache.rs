//! The block cache shared by the whole mount: memory, then disk, then the server.
//!
//! One `BlockCache` serves every open file so that two handles on the same attachment version
//! share blocks and in-flight fetches. It owns the tiers and the in-flight map; the per-file
//! logic (read-ahead, which blocks a read needs) lives in [`CachedFile`](super::CachedFile).
//! Background work (fetch jobs, disk writes) is counted, so that [`BlockCache::settled`] can
//! wait for it: a clean unmount uses that to leave a complete disk cache, and tests use it to
//! look at the cache without sleeping.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore};

use super::block::{requests, runs, BlockKey, Geometry};
use super::disk::DiskCache;
use super::fetch::{self, InFlightMap, ObjectSource, PendingBlock, StartedJob};
use super::memory::MemoryCache;
use super::{CacheConfig, CacheError, CachedFile, ObjectKey, RangeFetch};

pub struct BlockCache {
    pub(crate) config: CacheConfig,
    pub(crate) memory: MemoryCache,
    pub(crate) disk: Option<Arc<DiskCache>>,
    in_flight: Mutex<InFlightMap>,
    next_job: AtomicU64,
    pub(crate) counters: Counters,
    background: Arc<Background>,
}

/// What the cache has done, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes of block data in memory, as moka last counted them.
    pub memory_bytes: u64,
    pub memory_blocks: u64,
    pub disk_bytes: u64,
    pub disk_blocks: u64,
    /// Blocks a read found in memory (blocks it found read ahead count as misses when fetched).
    pub memory_hits: u64,
    /// Blocks loaded from the disk cache.
    pub disk_hits: u64,
    /// Blocks fetched from the server.
    pub misses: u64,
    /// Range requests sent to the server (one may carry several blocks).
    pub requests: u64,
    pub fetched_bytes: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub memory_hits: AtomicU64,
    pub disk_hits: AtomicU64,
    pub misses: AtomicU64,
    pub requests: AtomicU64,
    pub fetched_bytes: AtomicU64,
    /// Bytes handed to the disk writer and not written yet.
    pub disk_backlog: AtomicU64,
    /// Blocks not written to disk because the writer was too far behind.
    pub disk_skipped: AtomicU64,
}

#[derive(Default)]
struct Background {
    running: AtomicUsize,
    idle: Notify,
}

/// Counts one piece of background work for as long as it lives.
pub(crate) struct BackgroundToken(Arc<Background>);

impl Drop for BackgroundToken {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// How a block a reader needs will arrive.
pub(crate) enum Claim {
    /// It was in memory when we looked (the reader gets it from there).
    InMemory,
    /// A job (ours or someone else's) will deliver it.
    Pending(PendingBlock),
}

impl BlockCache {
    /// Builds the cache; with a `disk_dir`, creates it (mode 0700) and indexes the blocks that
    /// previous mounts left there, evicting down to `disk_bytes`.
    pub fn new(config: CacheConfig) -> Result<Arc<BlockCache>, CacheError> {
        let config = config.validated()?;
        let disk = match &config.disk_dir {
            Some(dir) => Some(Arc::new(DiskCache::open(
                dir,
                config.block_size,
                config.disk_bytes,
            )?)),
            None => None,
        };
        Ok(Arc::new(BlockCache {
            memory: MemoryCache::new(config.memory_tier_bytes()),
            disk,
            config,
            in_flight: Mutex::new(InFlightMap::new()),
            next_job: AtomicU64::new(0),
            counters: Counters::default(),
            background: Arc::default(),
        }))
    }

    /// A reader for one open file handle on `size` bytes of `key`. `fetch` is asked for the
    /// bytes the cache does not have. Must be called within a tokio runtime.
    pub fn open(
        self: &Arc<Self>,
        key: ObjectKey,
        size: u64,
        fetch: Arc<dyn RangeFetch>,
    ) -> CachedFile {
        CachedFile::new(self.clone(), key, size, fetch)
    }

    /// Whether every block of `key` (of `size` bytes) is in memory or on disk, so that reading
    /// it needs no request.
    pub fn is_cached(&self, key: &ObjectKey, size: u64) -> bool {
        let geometry = Geometry {
            block_size: self.config.block_size,
            size,
        };
        let object = Arc::new(key.clone());
        (0..geometry.block_count()).all(|index| {
            let block = BlockKey {
                object: object.clone(),
                index,
            };
            self.memory.contains(&block)
                || self.disk.as_ref().is_some_and(|disk| disk.contains(&block))
        })
    }

    pub fn stats(&self) -> CacheStats {
        let (disk_bytes, disk_blocks) = self.disk.as_ref().map_or((0, 0), |d| d.usage());
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            memory_bytes: self.memory.weighted_size(),
            memory_blocks: self.memory.entry_count(),
            disk_bytes,
            disk_blocks,
            memory_hits: load(&self.counters.memory_hits),
            disk_hits: load(&self.counters.disk_hits),
            misses: load(&self.counters.misses),
            requests: load(&self.counters.requests),
            fetched_bytes: load(&self.counters.fetched_bytes),
        }
    }

    /// Waits until no fetch job or disk write is running, then brings moka's accounting up to
    /// date. Read-ahead started before the call is waited for too.
    pub async fn settled(&self) {
        loop {
            let idle = self.background.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so a wake-up between the two is not lost.
            idle.as_mut().enable();
            if self.background.running.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
        self.memory.settle().await;
    }

    /// Finds or starts what delivers `indexes` (ascending) of `source`'s object.
    ///
    /// Blocks in flight are joined; blocks on disk get a load job each; the rest are grouped
    /// into runs of contiguous blocks and fetched with one request per run (cut at
    /// `max_request_bytes`). With `read_ahead` set, blocks already in memory are left alone,
    /// and the new jobs wait for the file's read-ahead permits. Blocks on disk are read ahead
    /// too: the file then holds them, which memory's admission policy might not.
    pub(crate) fn claim(
        self: &Arc<Self>,
        source: &ObjectSource,
        indexes: impl IntoIterator<Item = u64>,
        read_ahead: Option<&Arc<Semaphore>>,
    ) -> (Vec<(u64, Claim)>, Vec<StartedJob>) {
        let mut claims = Vec::new();
        let mut jobs = Vec::new();
        let mut missing = Vec::new();
        let mut map = self.lock_in_flight();
        for index in indexes {
            let key = source.key(index);
            if let Some((_, entry)) = map.get(&key) {
                claims.push((index, Claim::Pending(entry.join())));
            } else if self.memory.contains(&key) {
                // Checked under the lock because a job inserts into memory before it leaves
                // the map: a block that just finished is found here rather than refetched.
                if read_ahead.is_none() {
                    claims.push((index, Claim::InMemory));
                }
            } else if self.disk.as_ref().is_some_and(|disk| disk.contains(&key)) {
                let (pending, job) = fetch::start(
                    self,
                    &mut map,
                    source,
                    index..index + 1,
                    true,
                    read_ahead.cloned(),
                );
                claims.extend(pending.into_iter().map(|(i, p)| (i, Claim::Pending(p))));
                jobs.push(job);
            } else {
                missing.push(index);
            }
        }
        let per_request = self.config.max_request_bytes / self.config.block_size;
        for run in runs(missing) {
            for blocks in requests(run, per_request) {
                let (pending, job) =
                    fetch::start(self, &mut map, source, blocks, false, read_ahead.cloned());
                claims.extend(pending.into_iter().map(|(i, p)| (i, Claim::Pending(p))));
                jobs.push(job);
            }
        }
        (claims, jobs)
    }

    /// Fetches `blocks` without registering them anywhere: the last resort of a reader whose
    /// shared jobs kept being cancelled under it.
    pub(crate) async fn fetch_unshared(
        &self,
        source: &ObjectSource,
        blocks: Range<u64>,
    ) -> Result<Vec<bytes::Bytes>, CacheError> {
        let fetched = fetch::fetch_blocks(self, source, blocks.clone()).await?;
        for (index, block) in blocks.zip(&fetched) {
            self.memory.insert(source.key(index), block.clone()).await;
        }
        Ok(fetched)
    }

    pub(crate) fn lock_in_flight(&self) -> MutexGuard<'_, InFlightMap> {
        // The map is consistent after every statement; a panic elsewhere cannot tear it.
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn next_job_id(&self) -> u64 {
        self.next_job.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn background_token(&self) -> BackgroundToken {
        self.background.running.fetch_add(1, Ordering::AcqRel);
        BackgroundToken(self.background.clone())
    }
}
