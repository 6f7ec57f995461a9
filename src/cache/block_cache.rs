//! The block cache shared by the whole mount: memory, then disk, then the server.
//!
//! One `BlockCache` serves every open file so that two handles on the same attachment version
//! share blocks and in-flight fetches. It owns the tiers and the in-flight map ([`Tiers`], which
//! it shares with the fetch jobs it starts); the per-file logic (read-ahead, which blocks a read
//! needs) lives in [`CachedFile`](super::CachedFile).
//! Background work (fetch jobs, disk writes) is counted, so that [`BlockCache::settled`] can
//! wait for it: a clean unmount uses that to leave a complete disk cache, and tests use it to
//! look at the cache without sleeping.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::block::{requests, runs, BlockKey, Geometry};
use super::disk::{DiskCache, VersionFile};
use super::fetch::{self, ObjectSource, StartedJob};
use super::memory::MemoryCache;
use super::tiers::{PendingBlock, Tiers};
use super::{CacheConfig, CacheError, ObjectKey};

/// The block cache of a mount: one per mount, shared by every open file through an `Arc`.
pub struct BlockCache {
    pub(crate) config: CacheConfig,
    /// Shared with the fetch jobs this cache starts.
    pub(crate) tiers: Arc<Tiers>,
    /// Bytes fetched at `open` for files no READ has reached yet, across the mount.
    opened_ahead: Arc<AtomicU64>,
}

/// A share of the mount's budget for files fetched at `open` before their first READ: a
/// program that opens many files and reads none of them holds at most one read-ahead window
/// of them. Given back when the file's first READ comes or the file is closed.
pub(crate) struct OpenedAhead {
    counter: Arc<AtomicU64>,
    bytes: u64,
}

impl Drop for OpenedAhead {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What the cache has done, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes of block data in memory, as moka last counted them.
    pub memory_bytes: u64,
    /// Blocks in memory, as moka last counted them.
    pub memory_blocks: u64,
    /// Bytes of blocks in the disk cache (and of evicted versions whose files are still held
    /// through [`BlockCache::complete_version`]); 0 without a disk tier.
    pub disk_bytes: u64,
    /// Blocks in the disk cache; 0 without a disk tier.
    pub disk_blocks: u64,
    /// Blocks a read found in memory (blocks it found read ahead count as misses when fetched).
    pub memory_hits: u64,
    /// Blocks loaded from the disk cache.
    pub disk_hits: u64,
    /// Blocks fetched from the server.
    pub misses: u64,
    /// Range requests sent to the server (one may carry several blocks).
    pub requests: u64,
    /// Bytes received from the server in answer to range requests.
    pub fetched_bytes: u64,
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
        let memory = MemoryCache::new(config.memory_tier_bytes());
        Ok(Arc::new(BlockCache {
            config,
            tiers: Arc::new(Tiers::new(memory, disk)),
            opened_ahead: Arc::default(),
        }))
    }

    /// `bytes` of the budget for fetching at `open`, or `None` when it is spent (the file then
    /// starts at its first READ, as any other).
    pub(crate) fn opened_ahead(&self, bytes: u64) -> Option<OpenedAhead> {
        let limit = self.config.max_prefetch_bytes;
        self.opened_ahead
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= limit).then_some(held + bytes)
            })
            .ok()?;
        Some(OpenedAhead {
            counter: self.opened_ahead.clone(),
            bytes,
        })
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
            self.tiers.memory.contains(&block)
                || self
                    .tiers
                    .disk
                    .as_ref()
                    .is_some_and(|disk| disk.contains(&block))
        })
    }

    /// Frees `bytes` of the disk tier for someone else on the same filesystem (a file being
    /// written that met a full disk): the cache yields before a write fails. Returns the bytes
    /// freed (0 without a disk tier). Blocking.
    pub fn give_back_disk(&self, bytes: u64) -> u64 {
        self.tiers
            .disk
            .as_ref()
            .map_or(0, |disk| disk.give_back(bytes))
    }

    /// The sizes of the tiers now, and the counters since the cache was built.
    pub fn stats(&self) -> CacheStats {
        let tiers = &self.tiers;
        let (disk_bytes, disk_blocks) = tiers.disk.as_ref().map_or((0, 0), |d| d.usage());
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            memory_bytes: tiers.memory.weighted_size(),
            memory_blocks: tiers.memory.entry_count(),
            disk_bytes,
            disk_blocks,
            memory_hits: load(&tiers.counters.memory_hits),
            disk_hits: load(&tiers.counters.disk_hits),
            misses: load(&tiers.counters.misses),
            requests: load(&tiers.counters.requests),
            fetched_bytes: load(&tiers.counters.fetched_bytes),
        }
    }

    /// Waits until no fetch job or disk write is running, then brings moka's accounting up to
    /// date. Read-ahead started before the call is waited for too.
    pub async fn settled(&self) {
        self.tiers.background_idle().await;
        if let Some(disk) = &self.tiers.disk {
            disk.flushed().await;
        }
        self.tiers.memory.settle();
    }

    /// A read-only file holding exactly the `size` bytes of `key`, when every block of it is
    /// written in the disk cache (`None` otherwise, without a disk tier, and for an empty
    /// version): what FUSE passthrough hands the kernel, so that reads of the version never
    /// reach the daemon. Counts as a use of the version. Keep the [`VersionFile`] for as long
    /// as the kernel may read through it (until RELEASE): the file stays valid if the cache
    /// evicts the version meanwhile (it is unlinked, not cut), and its bytes stay counted
    /// against the disk bound until it is dropped. Blocking (opens a file).
    pub fn complete_version(&self, key: &ObjectKey, size: u64) -> Option<VersionFile> {
        self.tiers.disk.as_ref()?.complete(key, size)
    }

    /// The disk tier's directory, if there is one.
    pub fn disk_dir(&self) -> Option<&std::path::Path> {
        self.tiers.disk.as_ref().map(|disk| disk.root())
    }

    /// Whether [`complete_version`](Self::complete_version) would find every block of `key`
    /// on disk now; opens nothing and does not count as a use. Blocks still in the disk's
    /// write queue do not count.
    pub fn has_complete_version(&self, key: &ObjectKey, size: u64) -> bool {
        self.tiers
            .disk
            .as_ref()
            .is_some_and(|disk| disk.is_complete(key, size))
    }

    /// Brings moka's count of the memory tier up to date (for [`stats`](Self::stats)), without
    /// waiting for the fetches that [`settled`](Self::settled) waits for.
    pub async fn count_memory(&self) {
        self.tiers.memory.settle();
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
        let per_request = self.config.max_request_bytes / self.config.block_size;
        self.claim_cut(source, indexes, read_ahead, per_request)
    }

    /// [`claim`](Self::claim), with requests of up to `per_request` blocks (a whole-file start
    /// asks for the whole first range at once).
    pub(crate) fn claim_cut(
        self: &Arc<Self>,
        source: &ObjectSource,
        indexes: impl IntoIterator<Item = u64>,
        read_ahead: Option<&Arc<Semaphore>>,
        per_request: u64,
    ) -> (Vec<(u64, Claim)>, Vec<StartedJob>) {
        let mut claims = Vec::new();
        let mut jobs = Vec::new();
        let mut missing = Vec::new();
        let mut map = self.tiers.lock_in_flight();
        for index in indexes {
            let key = source.key(index);
            if let Some((_, entry)) = map.get(&key) {
                claims.push((index, Claim::Pending(entry.join())));
            } else if self.tiers.memory.contains(&key) {
                // Checked under the lock because a job inserts into memory before it leaves
                // the map: a block that just finished is found here rather than refetched.
                if read_ahead.is_none() {
                    claims.push((index, Claim::InMemory));
                }
            } else if self
                .tiers
                .disk
                .as_ref()
                .is_some_and(|disk| disk.contains(&key))
            {
                let (pending, job) = fetch::start(
                    &self.tiers,
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
        for run in runs(missing) {
            for blocks in requests(run, per_request) {
                let (pending, job) = fetch::start(
                    &self.tiers,
                    &mut map,
                    source,
                    blocks,
                    false,
                    read_ahead.cloned(),
                );
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
        let fetched =
            fetch::fetch_blocks(&self.tiers, source, blocks.clone(), Box::new(|_, _| {})).await?;
        for (index, block) in blocks.zip(&fetched) {
            self.tiers.memory.insert(source.key(index), block.clone());
        }
        Ok(fetched)
    }
}
