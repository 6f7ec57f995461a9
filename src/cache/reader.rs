//! One open file handle reading through the cache.
//!
//! A `CachedFile` knows which object it reads, how large it is and where missing bytes come
//! from. For each READ it works out the blocks the read touches, takes what memory (or its own
//! read-ahead) already has, claims the rest from the shared cache, and lets the read-ahead
//! decision ([`ReadAhead`]) start background jobs for the blocks after it.
//!
//! Blocks read ahead are held by the file itself until the reader passes them: moka may decline
//! or evict a block before the reader gets there, and a block fetched ahead must not have to be
//! fetched again. That makes memory "moka's bound plus each open file's window", both bounded.
//! A jump lets go of the read-ahead that no longer serves the reader, and dropping the file
//! lets go of all of it; a fetch job whose blocks nobody else waits for then ends on its own
//! (see `fetch`), while one that another reader joined goes on for that reader.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures_util::future;
use futures_util::FutureExt;
use tokio::sync::Semaphore;

use super::ahead_blocks::ReadAhead;
use super::block::Geometry;
use super::block_cache::{BlockCache, Claim, OpenedAhead};
use super::fetch::ObjectSource;
use super::tiers::{BlockOutcome, PendingBlock};
use super::{CacheError, ObjectKey, RangeFetch, ReadError};

/// How often a reader joins shared jobs for a block before it fetches the block on its own.
const SHARED_ATTEMPTS: usize = 3;

/// One open file handle's view of an object through the shared cache: its read-ahead and the
/// blocks it holds. Dropping it cancels the read-ahead nobody else waits for.
pub struct CachedFile {
    cache: Arc<BlockCache>,
    source: ObjectSource,
    /// Read-ahead jobs in flight for this file (`max_parallel_fetches`).
    permits: Arc<Semaphore>,
    state: Mutex<FileState>,
}

struct FileState {
    read_ahead: ReadAhead,
    /// Blocks read ahead and not yet passed by the reader, and the blocks of the last read.
    /// Holding one is what keeps its fetch job running.
    ahead: BTreeMap<u64, PendingBlock>,
    /// The mount's budget for what `start_whole` fetched, until the first READ.
    opened: Option<OpenedAhead>,
}

/// Blocks behind the reader that a file keeps holding, for READs that arrive late.
const HELD_BEHIND: u64 = 4;

impl BlockCache {
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
}

impl CachedFile {
    pub(crate) fn new(
        cache: Arc<BlockCache>,
        key: ObjectKey,
        size: u64,
        fetch: Arc<dyn RangeFetch>,
    ) -> CachedFile {
        let config = &cache.config;
        let geometry = Geometry {
            block_size: config.block_size,
            size,
        };
        let read_ahead = ReadAhead::new(
            geometry,
            config.max_prefetch_bytes,
            config.max_request_bytes,
        );
        let permits = Arc::new(Semaphore::new(config.max_parallel_fetches));
        CachedFile {
            source: ObjectSource {
                object: Arc::new(key),
                geometry,
                fetch,
            },
            permits,
            state: Mutex::new(FileState {
                read_ahead,
                ahead: BTreeMap::new(),
                opened: None,
            }),
            cache,
        }
    }

    /// The attachment version this file reads.
    pub fn key(&self) -> &ObjectKey {
        &self.source.object
    }

    /// The object's size in bytes, as given to [`BlockCache::open`].
    pub fn size(&self) -> u64 {
        self.source.geometry.size
    }

    /// Bytes `[offset, min(offset + len, size))`; empty at or after EOF.
    pub async fn read(&self, offset: u64, len: u32) -> Result<Bytes, ReadError> {
        let geometry = self.source.geometry;
        let end = offset.saturating_add(u64::from(len)).min(geometry.size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let needed = geometry.blocks_for(offset, end);
        let count = (needed.end - needed.start) as usize;

        let (whole, prefetch, mut slots) = self.plan(offset, end, &needed);
        // A first READ at the start: the first range in one request, before this READ's own
        // claim, which then joins it.
        if let Some(blocks) = whole.filter(|blocks| !blocks.is_empty()) {
            self.claim_ahead(blocks, self.whole_blocks());
            let state = self.lock();
            for (at, index) in needed.clone().enumerate() {
                if slots[at].is_none() {
                    slots[at] = state.ahead.get(&index).cloned();
                }
            }
        }

        // Memory next, for what the read-ahead does not hold.
        let mut ready: Vec<Option<Bytes>> = vec![None; count];
        for (at, index) in needed.clone().enumerate() {
            if slots[at].is_none() {
                if let Some(block) = self.cache.tiers.memory.get(&self.source.key(index)) {
                    self.cache
                        .tiers
                        .counters
                        .memory_hits
                        .fetch_add(1, Ordering::Relaxed);
                    ready[at] = Some(block);
                }
            }
        }
        let wanted: Vec<u64> = needed
            .clone()
            .filter(|index| {
                let at = (index - needed.start) as usize;
                slots[at].is_none() && ready[at].is_none()
            })
            .collect();
        if !wanted.is_empty() {
            // Demand jobs are not tracked for cancellation: this read is waiting for them.
            let (claims, _jobs) = self.cache.claim(&self.source, wanted, None);
            for (index, claim) in claims {
                if let Claim::Pending(pending) = claim {
                    slots[(index - needed.start) as usize] = Some(pending);
                }
            }
        }
        if let Some(blocks) = prefetch.filter(|blocks| !blocks.is_empty()) {
            let per_request = self.cache.config.max_request_bytes / geometry.block_size;
            self.claim_ahead(blocks, per_request);
        }

        let mut parts = Vec::with_capacity(count);
        for (at, index) in needed.clone().enumerate() {
            let block = match (ready[at].take(), slots[at].take()) {
                (Some(block), _) => block,
                (None, Some(pending)) => match pending.await {
                    Some(Ok(block)) => block,
                    Some(Err(error)) => {
                        // Not kept anywhere: the next read of this block tries again.
                        self.lock().ahead.remove(&index);
                        return Err(error);
                    }
                    None => {
                        self.lock().ahead.remove(&index);
                        self.block_again(index).await?
                    }
                },
                // Claimed as "in memory" but not fetched from there yet.
                (None, None) => self.block_again(index).await?,
            };
            // Every tier checks lengths already; this catches two opens that disagree on the
            // size of one version, which would otherwise shift bytes silently.
            let expected = geometry.block_len(index);
            if block.len() as u64 != expected {
                return Err(CacheError::WrongLength {
                    offset: geometry.block_start(index),
                    expected,
                    got: block.len() as u64,
                });
            }
            parts.push(block);
        }
        self.hold(&needed, &parts);
        assemble(&parts, geometry.block_start(needed.start), offset, end)
    }

    /// Starts fetching the file from its start before its first READ (an `open` for reading,
    /// whose size is known): the whole file in one request when it is at most
    /// `whole_file_bytes`, else that much of it, the window open that wide for the READs to
    /// come. Nothing when the file was read already, holds blocks fetched ahead for it, or the
    /// mount's budget for files opened and not read yet is spent.
    pub fn start_whole(&self) {
        if !self.fits_whole() {
            return;
        }
        let first_bytes = self.cache.config.whole_file_bytes.min(self.size());
        let Some(budget) = self.cache.opened_ahead(first_bytes) else {
            return;
        };
        let blocks = {
            let mut state = self.lock();
            if !state.ahead.is_empty() {
                return;
            }
            let Some(blocks) = state.read_ahead.start_whole(first_bytes) else {
                return;
            };
            state.opened = Some(budget);
            blocks
        };
        self.claim_ahead(blocks.collect(), self.whole_blocks());
    }

    /// Whether the file is small enough to be fetched whole in one request. A larger file is
    /// ramped up as before: a reader that wants only its head (`head`, `file`, a thumbnailer,
    /// a file manager's type sniffing) must not wait for, or cost, its first 16 MiB.
    fn fits_whole(&self) -> bool {
        self.size() <= self.cache.config.whole_file_bytes
    }

    /// Blocks of a whole-file start's one request.
    fn whole_blocks(&self) -> u64 {
        (self.cache.config.whole_file_bytes / self.source.geometry.block_size).max(1)
    }

    /// Claims `blocks` as this file's read-ahead, in requests of up to `per_request` blocks.
    fn claim_ahead(&self, blocks: Vec<u64>, per_request: u64) {
        let (claims, _jobs) =
            self.cache
                .claim_cut(&self.source, blocks, Some(&self.permits), per_request);
        let mut state = self.lock();
        for (index, claim) in claims {
            if let Claim::Pending(pending) = claim {
                state.ahead.insert(index, pending);
            }
        }
    }

    /// Updates the read-ahead state for a read of `[offset, end)` and returns the first range
    /// of a whole-file start (a first READ at offset 0), the blocks to read ahead, and the
    /// read-ahead slots already holding blocks of `needed`.
    #[allow(clippy::type_complexity)]
    fn plan(
        &self,
        offset: u64,
        end: u64,
        needed: &Range<u64>,
    ) -> (
        Option<Vec<u64>>,
        Option<Vec<u64>>,
        Vec<Option<PendingBlock>>,
    ) {
        let mut state = self.lock();
        // The first READ came: what `start_whole` fetched is this reader's now.
        state.opened = None;
        // Before the first read, what the file holds was fetched ahead for this reader
        // (`adopt`), not for an old position: a first read is no jump away from it.
        let first = !state.read_ahead.has_read();
        let whole = if first && offset == 0 && state.ahead.is_empty() && self.fits_whole() {
            let first_bytes = self.cache.config.whole_file_bytes;
            state.read_ahead.start_whole(first_bytes)
        } else {
            None
        };
        let decision = state.read_ahead.on_read(offset, end);
        // The reader has passed these; holding them longer would only cost memory. A few
        // blocks of slack, for READs that arrive after the ones that followed them. Blocks
        // still on their way are kept until they arrive: a sequential reader may skip a few
        // blocks, and letting go of them would cancel fetches a late READ may still want.
        let kept = state
            .ahead
            .split_off(&needed.start.saturating_sub(HELD_BEHIND));
        let passed = std::mem::replace(&mut state.ahead, kept);
        state.ahead.extend(
            passed
                .into_iter()
                .filter(|(_, block)| block.peek().is_none()),
        );
        if !decision.sequential && !first {
            // Let go of the read-ahead for the old position: jobs that nobody else waits for
            // end as soon as the last block they carry is let go.
            state.ahead.retain(|index, _| needed.contains(index));
        }
        let slots = needed
            .clone()
            .map(|index| state.ahead.get(&index).cloned())
            .collect();
        // Blocks held already (fetched ahead for this file before it was opened) are not
        // fetched again, even when memory declined them.
        let unheld = |blocks: Range<u64>| -> Vec<u64> {
            blocks
                .filter(|index| !state.ahead.contains_key(index))
                .collect()
        };
        let whole = whole.map(unheld);
        let prefetch = decision.prefetch.map(unheld);
        (whole, prefetch, slots)
    }

    /// Keeps the blocks just read with the read-ahead, so that the next READs inside the same
    /// blocks (the kernel's 128 KiB pieces of a 1 MiB block) find them even if memory declined
    /// them. A jump or the reader moving on releases them.
    fn hold(&self, needed: &Range<u64>, parts: &[Bytes]) {
        let mut state = self.lock();
        for (index, block) in needed.clone().zip(parts) {
            state.ahead.entry(index).or_insert_with(|| {
                let outcome: BlockOutcome = Some(Ok(block.clone()));
                future::ready(outcome).boxed().shared()
            });
        }
    }

    /// One block, after the job that was to deliver it was cancelled (or memory lost it).
    async fn block_again(&self, index: u64) -> Result<Bytes, CacheError> {
        let key = self.source.key(index);
        for _ in 0..SHARED_ATTEMPTS {
            if let Some(block) = self.cache.tiers.memory.get(&key) {
                return Ok(block);
            }
            let (claims, _jobs) = self.cache.claim(&self.source, [index], None);
            if let Some((_, Claim::Pending(pending))) = claims.into_iter().next() {
                if let Some(outcome) = pending.await {
                    return outcome;
                }
            }
        }
        let mut blocks = self
            .cache
            .fetch_unshared(&self.source, index..index + 1)
            .await?;
        Ok(blocks.remove(0))
    }

    /// Holds `blocks` (fetched ahead by someone else for this file), which keeps their jobs
    /// running for this reader.
    pub(crate) fn take_ahead(&self, blocks: Vec<(u64, PendingBlock)>) {
        let mut state = self.lock();
        for (index, block) in blocks {
            state.ahead.entry(index).or_insert(block);
        }
    }

    /// Blocks this file holds read ahead (for tests of the memory bound).
    #[cfg(test)]
    pub(crate) fn held_ahead(&self) -> usize {
        self.lock().ahead.len()
    }

    fn lock(&self) -> MutexGuard<'_, FileState> {
        // The state is a cache of decisions; after a panic elsewhere it is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Bytes `[offset, end)` out of consecutive whole blocks (lengths checked by the caller), the
/// first of which starts at `first_start`. A single block is sliced without copying.
fn assemble(parts: &[Bytes], first_start: u64, offset: u64, end: u64) -> Result<Bytes, ReadError> {
    let len = (end - offset) as usize;
    let skip = (offset - first_start) as usize;
    if let [block] = parts {
        return Ok(block.slice(skip..skip + len));
    }
    let mut out = BytesMut::with_capacity(len);
    let mut skip = skip;
    for block in parts {
        let take = (block.len() - skip).min(len - out.len());
        out.extend_from_slice(&block[skip..skip + take]);
        skip = 0;
    }
    Ok(out.freeze())
}
