//! The in-memory tier: a moka cache bounded by bytes, not by entries.
//!
//! Blocks are weighed by their length, so `memory_bytes` is a real bound on block data however
//! short the last blocks of small files are. Each stored block owns its own allocation (the
//! fetch path copies blocks out of a multi-block response): a slice would keep the whole
//! response alive after moka evicted its neighbours, and the bound would be a fiction.
//! Admission is moka's TinyLFU, which keeps often-read blocks from being washed out by one big
//! sequential copy; the read-ahead window of each open file holds its own blocks, so a block
//! that TinyLFU declines is still delivered to the reader that asked for it.
//!
//! It holds the blocks the disk tier does not (no disk tier, a version that does not fit, a
//! disk that fails) and blocks loaded from disk (`fetch::store`). It is moka's synchronous
//! cache because the disk's writer, a blocking thread, hands it the blocks it could not write.

use bytes::Bytes;
use moka::sync::Cache;

use super::block::BlockKey;

pub(crate) struct MemoryCache {
    blocks: Cache<BlockKey, Bytes>,
    /// Bytes inserted since moka last applied its pending evictions.
    unsettled: std::sync::atomic::AtomicU64,
    max_bytes: u64,
}

/// How far inserts may run ahead of moka's evictions before we make it catch up. moka applies
/// evictions in batches, lazily; with 1 MiB blocks arriving at hundreds of MiB/s it would
/// otherwise hold far more than its bound (measured: 160 MiB with a 1 MiB bound).
const SETTLE_EVERY: u64 = 8 << 20;

impl MemoryCache {
    pub(crate) fn new(max_bytes: u64) -> MemoryCache {
        let blocks = Cache::builder()
            .max_capacity(max_bytes)
            // Config validation keeps blocks under 4 GiB, so the weight cannot saturate.
            .weigher(|_key: &BlockKey, block: &Bytes| {
                u32::try_from(block.len()).unwrap_or(u32::MAX)
            })
            .build();
        MemoryCache {
            blocks,
            unsettled: std::sync::atomic::AtomicU64::new(0),
            max_bytes,
        }
    }

    pub(crate) fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.blocks.get(key)
    }

    pub(crate) fn contains(&self, key: &BlockKey) -> bool {
        self.blocks.contains_key(key)
    }

    pub(crate) fn insert(&self, key: BlockKey, block: Bytes) {
        use std::sync::atomic::Ordering;
        let len = block.len() as u64;
        if self.max_bytes == 0 {
            return;
        }
        self.blocks.insert(key, block);
        let pending = self.unsettled.fetch_add(len, Ordering::AcqRel) + len;
        if pending >= SETTLE_EVERY.min(self.max_bytes.max(1)) {
            self.unsettled.store(0, Ordering::Release);
            self.blocks.run_pending_tasks();
        }
    }

    /// Bytes held, as moka last counted them (exact after [`MemoryCache::settle`]).
    pub(crate) fn weighted_size(&self) -> u64 {
        self.blocks.weighted_size()
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.blocks.entry_count()
    }

    /// Applies pending inserts and evictions, so the sizes above are current.
    pub(crate) fn settle(&self) {
        self.blocks.run_pending_tasks();
    }
}
