//! Where blocks are: in memory, on disk, or in flight; and what the cache has done with them.
//!
//! [`Tiers`] is the part of the block cache that fetch jobs work on. [`BlockCache`] owns it
//! behind an `Arc` and hands a clone to every job it starts, so that a job can store its blocks,
//! leave the in-flight map and count itself without knowing the cache that started it: the
//! imports run `block_cache → fetch → tiers` and `block_cache → tiers`, one way.
//!
//! [`BlockCache`]: super::BlockCache

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::future::{BoxFuture, Shared, WeakShared};
use futures_util::FutureExt;
use tokio::sync::Notify;

use super::block::BlockKey;
use super::disk::DiskCache;
use super::memory::MemoryCache;
use super::CacheError;

/// What a waiter gets: the block, the job's error, or `None` if the job was cancelled.
pub(crate) type BlockOutcome = Option<Result<Bytes, CacheError>>;
pub(crate) type PendingBlock = Shared<BoxFuture<'static, BlockOutcome>>;

/// Blocks being fetched or loaded, each with the id of the job that owns its entry.
pub(crate) type InFlightMap = HashMap<BlockKey, (u64, InFlight)>;

/// A block in the in-flight map.
pub(crate) enum InFlight {
    /// Being fetched: held weakly, so that the job ends when its last waiter leaves; `ended`
    /// resolves when the job has left the map.
    Fetching {
        block: WeakShared<BoxFuture<'static, BlockOutcome>>,
        ended: Shared<BoxFuture<'static, ()>>,
    },
    /// Delivered and being stored.
    Delivered(PendingBlock),
}

impl InFlight {
    /// Something to wait on. A job that has lost every waiter is ending: either it noticed and
    /// dropped its request, or its answer came in at that very moment and is being stored.
    /// Which one is not known yet, so its end is waited for and then reported as `None`
    /// ("cancelled, look again"): the block is then in memory, or fetched anew.
    pub(crate) fn join(&self) -> PendingBlock {
        match self {
            InFlight::Fetching { block, ended } => block.upgrade().unwrap_or_else(|| {
                ended
                    .clone()
                    .map(|()| -> BlockOutcome { None })
                    .boxed()
                    .shared()
            }),
            InFlight::Delivered(block) => block.clone(),
        }
    }
}

/// The memory and disk tiers, the in-flight map, the counters and the count of background work.
pub(crate) struct Tiers {
    pub(crate) memory: Arc<MemoryCache>,
    pub(crate) disk: Option<Arc<DiskCache>>,
    in_flight: Mutex<InFlightMap>,
    next_job: AtomicU64,
    pub(crate) counters: Counters,
    background: Arc<Background>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) memory_hits: AtomicU64,
    pub(crate) disk_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) fetched_bytes: AtomicU64,
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

impl Tiers {
    pub(crate) fn new(memory: MemoryCache, disk: Option<Arc<DiskCache>>) -> Tiers {
        let memory = Arc::new(memory);
        if let Some(disk) = &disk {
            let memory = memory.clone();
            disk.spill_to(Box::new(move |key, block| memory.insert(key, block)));
        }
        Tiers {
            memory,
            disk,
            in_flight: Mutex::new(InFlightMap::new()),
            next_job: AtomicU64::new(0),
            counters: Counters::default(),
            background: Arc::default(),
        }
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

    /// Waits until no background work counted by a [`BackgroundToken`] is running.
    pub(crate) async fn background_idle(&self) {
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
    }
}
