//! Getting missing blocks: one job per run of blocks, shared by everyone who waits on any of
//! them.
//!
//! A job fetches a contiguous run of blocks with one range request (or loads one block from
//! disk, falling back to the server if the file is gone or torn), cuts the answer into blocks,
//! hands each block to its waiters, then stores it on disk or in memory. While a job runs, each
//! of its blocks has an entry in the in-flight map, and anyone else who needs that block joins
//! the entry instead of fetching it again; that covers read-ahead too, so a block is never
//! fetched twice at once. The entry is removed only after the block is stored (the disk's
//! write queue counts as on disk), so there is no moment when a block is in neither place nor
//! in flight.
//!
//! A failure is delivered to every waiter and cached nowhere; the next read starts a new job.
//!
//! A job runs only while someone waits for one of its blocks. Waiters hold the job's
//! [`PendingBlock`]s (a reader's READ, a file's read-ahead window, a whole file fetched ahead);
//! the in-flight map holds them only weakly while the job fetches, so when the last waiter is
//! gone (its READ dropped, its file released, its read-ahead passed by a jump, its fetch ahead
//! abandoned) every receiver of the job is dropped, the job notices at once and drops its
//! request — which frees the request slot — instead of running it to completion for nobody.
//! Someone who looks for such a block in between finds the entry dead and starts a job of its
//! own. Once the answer is in, the entries become strong (the bytes are paid for, and a block
//! must never be in neither place nor in flight) and storing is no longer cancellable.
//!
//! A block of a multi-block response goes to its waiters as soon as it is whole, before the
//! rest of the range has arrived: a reader of a file fetched in one 16 MiB request answers
//! its first READ after the first block, not after the last (its in-flight entry stays until
//! the job stores it, as for every block).
//!
//! Blocks of a multi-block response arrive in buffers of their own (`RangeFetch::fetch_cut`):
//! a `Bytes` slice would keep the whole response alive for as long as any one of its blocks is
//! cached.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use super::block::{BlockKey, Geometry};
use super::tiers::{BackgroundToken, BlockOutcome, InFlight, InFlightMap, PendingBlock, Tiers};
use super::{BlockArrived, CacheError, ObjectKey, RangeFetch};

/// A job that was started, as its starter remembers it (to see whether it still runs).
pub(crate) struct StartedJob {
    pub handle: AbortHandle,
}

/// What the job needs to know about the object it works on.
#[derive(Clone)]
pub(crate) struct ObjectSource {
    pub object: Arc<ObjectKey>,
    pub geometry: Geometry,
    pub fetch: Arc<dyn RangeFetch>,
}

impl ObjectSource {
    pub(crate) fn key(&self, index: u64) -> BlockKey {
        BlockKey {
            object: self.object.clone(),
            index,
        }
    }
}

/// Registers `blocks` in the in-flight map (the caller holds its lock) and spawns the job.
/// `from_disk` is only for single blocks the disk index has; `permits` makes the job wait for a
/// read-ahead slot of its file before it fetches.
pub(crate) fn start(
    tiers: &Arc<Tiers>,
    map: &mut InFlightMap,
    source: &ObjectSource,
    blocks: Range<u64>,
    from_disk: bool,
    permits: Option<Arc<Semaphore>>,
) -> (Vec<(u64, PendingBlock)>, StartedJob) {
    let id = tiers.next_job_id();
    let (end_signal, end) = oneshot::channel::<()>();
    let ended = end.map(|_| ()).boxed().shared();
    let mut pending = Vec::new();
    let mut senders = Vec::new();
    let mut keys = Vec::new();
    for index in blocks.clone() {
        let (sender, receiver) = oneshot::channel();
        let block: PendingBlock = receiver.map(Result::ok).boxed().shared();
        let key = source.key(index);
        let weak = block.downgrade().expect("a new future has not completed");
        let entry = InFlight::Fetching {
            block: weak,
            ended: ended.clone(),
        };
        map.insert(key.clone(), (id, entry));
        pending.push((index, block));
        senders.push(sender);
        keys.push(key);
    }
    // Built before the spawn and moved into the task, so that the entries are removed even if
    // the task is cancelled before it ever runs.
    let guard = JobGuard {
        tiers: tiers.clone(),
        keys,
        id,
        _token: tiers.background_token(),
        _end_signal: end_signal,
    };
    let job = Job {
        tiers: tiers.clone(),
        source: source.clone(),
        blocks: blocks.clone(),
        from_disk,
        senders,
    };
    let handle = tokio::spawn(job.run(permits, guard)).abort_handle();
    (pending, StartedJob { handle })
}

struct Job {
    tiers: Arc<Tiers>,
    source: ObjectSource,
    blocks: Range<u64>,
    from_disk: bool,
    senders: Vec<oneshot::Sender<Result<Bytes, CacheError>>>,
}

impl Job {
    async fn run(mut self, permits: Option<Arc<Semaphore>>, guard: JobGuard) {
        // Taken out as each block is handed over: the rest are who still waits.
        let mut senders: Vec<_> = std::mem::take(&mut self.senders)
            .into_iter()
            .map(Some)
            .collect();
        let (arrived_tx, mut arrived_rx) = tokio::sync::mpsc::unbounded_channel();
        let arrived: BlockArrived = Box::new(move |index, block: &Bytes| {
            let _ = arrived_tx.send((index, block.clone()));
        });
        let (permit, fetched, outcome) = {
            let work = async {
                let permit = match permits {
                    // The semaphore is never closed; a failure would only mean "no limit".
                    Some(permits) => permits.acquire_owned().await.ok(),
                    None => None,
                };
                if self.from_disk {
                    if let Some(block) = self.load_from_disk().await {
                        return (permit, false, Ok(vec![block]));
                    }
                }
                (permit, true, self.fetch(arrived).await)
            };
            tokio::pin!(work);
            loop {
                let step = {
                    // Every receiver still waiting dropped: nobody wants the rest any more.
                    let waiting: Vec<_> =
                        senders.iter_mut().flatten().map(|s| s.closed()).collect();
                    let abandoned = async move {
                        if waiting.is_empty() {
                            std::future::pending::<()>().await;
                        }
                        futures_util::future::join_all(waiting).await;
                    };
                    // Abandonment first: a job whose waiters left before it ran sends no
                    // request.
                    tokio::select! {
                        biased;
                        _ = abandoned => Step::Abandoned,
                        Some((index, block)) = arrived_rx.recv() => Step::Arrived(index, block),
                        done = &mut work => Step::Done(done),
                    }
                };
                match step {
                    Step::Abandoned => {
                        tracing::debug!(
                            attachment = %self.source.object.attachment_id,
                            blocks = ?self.blocks,
                            "nobody waits for these blocks any more; request dropped"
                        );
                        return;
                    }
                    // Its reader need not wait for the rest of the range.
                    Step::Arrived(index, block) => {
                        if let Some(sender) = senders.get_mut(index).and_then(Option::take) {
                            let _ = sender.send(Ok(block));
                        }
                    }
                    Step::Done(done) => break done,
                }
            }
        };

        let blocks = match outcome {
            Ok(blocks) => blocks,
            Err(error) => {
                for sender in senders.into_iter().flatten() {
                    let _ = sender.send(Err(error.clone()));
                }
                return;
            }
        };
        let keyed: Vec<(BlockKey, Bytes)> = self
            .blocks
            .clone()
            .map(|index| self.source.key(index))
            .zip(blocks)
            .collect();
        // Strong entries from now on: a reader arriving while the blocks are stored joins
        // them rather than fetching them again, even if every waiter has had its block.
        {
            let mut map = self.tiers.lock_in_flight();
            for (key, block) in &keyed {
                if let Some((id, entry)) = map.get_mut(key) {
                    if *id == guard.id {
                        let outcome: BlockOutcome = Some(Ok(block.clone()));
                        *entry = InFlight::Delivered(
                            futures_util::future::ready(outcome).boxed().shared(),
                        );
                    }
                }
            }
        }
        // Into the disk's write queue at once when it has room (a cheap push): a block that
        // reached its reader is then on its way to disk before anything else can happen, even
        // the runtime shutting down at unmount. A full queue is waited for in `store`.
        // A block the disk keeps is not kept in memory too (see `store`).
        let on_disk = fetched
            && self
                .tiers
                .disk
                .as_ref()
                .is_some_and(|disk| disk.keeps(&self.source.object, self.source.geometry.size));
        let to_disk = match (fetched, &self.tiers.disk) {
            (true, Some(disk)) => disk.offer(
                &self.source.object,
                self.source.geometry.size,
                self.blocks.start,
                keyed.iter().map(|(_, block)| block.clone()).collect(),
            ),
            _ => None,
        };
        // Waiters first (those not served as their block arrived): they are what the user is
        // waiting for; storing can follow.
        for (sender, (_, block)) in senders.into_iter().zip(&keyed) {
            if let Some(sender) = sender {
                let _ = sender.send(Ok(block.clone()));
            }
        }
        // The bytes are paid for: storing them must not be cancelled with the job, or a block
        // could reach its waiters and then be fetched again. A task of its own, which nobody
        // holds a handle to, takes the in-flight entries along.
        tokio::spawn(store(
            self.tiers,
            self.source,
            keyed,
            to_disk,
            !on_disk,
            guard,
            permit,
        ));
    }

    async fn load_from_disk(&self) -> Option<Bytes> {
        let disk = self.tiers.disk.clone()?;
        let key = self.source.key(self.blocks.start);
        let expected = self.source.geometry.block_len(self.blocks.start);
        let block = tokio::task::spawn_blocking(move || disk.read(&key, expected))
            .await
            .ok()
            .flatten()?;
        self.tiers
            .counters
            .disk_hits
            .fetch_add(1, Ordering::Relaxed);
        Some(block)
    }

    async fn fetch(&self, arrived: BlockArrived) -> Result<Vec<Bytes>, CacheError> {
        fetch_blocks(&self.tiers, &self.source, self.blocks.clone(), arrived).await
    }
}

/// What a job's wait ended with.
enum Step {
    Abandoned,
    Arrived(usize, Bytes),
    Done(
        (
            Option<OwnedSemaphorePermit>,
            bool,
            Result<Vec<Bytes>, CacheError>,
        ),
    ),
}

/// Puts delivered blocks into memory (`to_memory`) and `to_disk` (blocks fetched from the
/// server that the disk's write queue had no room for when they arrived) into the queue, then
/// lets the in-flight entries go. A queued block counts as on disk.
///
/// Blocks fetched from the server that the disk keeps are not kept in memory as well: the
/// kernel's page cache holds what its reader read, the disk tier (and its page cache) serves
/// the next reader, and a copy in memory cost more than it saved. A fresh 1 MiB buffer per
/// block, never freed while the memory tier kept it, was faulted in page by page; buffers that
/// go back to the allocator after their disk write are reused warm. Measured on a cold 256 MiB
/// read: 62,000 page faults and 0.56 CPU-seconds of the mount's before, 11,500 and 0.38 after. Blocks loaded from disk, and every block when the disk tier is off or cannot
/// keep the version, still go to memory. When the queue is full this waits
/// for room, still holding the read-ahead slot of the reader that asked: a reader that outruns
/// the disk is slowed to its pace rather than leaving blocks off it, so a file read whole ends
/// up wholly on disk (the queue absorbs the bursts, see `disk`).
async fn store(
    tiers: Arc<Tiers>,
    source: ObjectSource,
    keyed: Vec<(BlockKey, Bytes)>,
    to_disk: Option<Vec<Bytes>>,
    to_memory: bool,
    guard: JobGuard,
    permit: Option<OwnedSemaphorePermit>,
) {
    if to_memory {
        for (key, block) in &keyed {
            tiers.memory.insert(key.clone(), block.clone());
        }
    }
    if let (Some(blocks), Some(disk), Some((first, _))) =
        (to_disk, tiers.disk.clone(), keyed.first())
    {
        disk.enqueue(
            source.object.clone(),
            source.geometry.size,
            first.index,
            blocks,
        )
        .await;
    }
    drop(permit);
    drop(guard);
}

/// One range request for `blocks`, cut into blocks. Checks the length: an answer of the wrong
/// size means the object is not what we think it is, and none of it may be cached.
pub(crate) async fn fetch_blocks(
    tiers: &Tiers,
    source: &ObjectSource,
    blocks: Range<u64>,
    mut arrived: BlockArrived,
) -> Result<Vec<Bytes>, CacheError> {
    let geometry = source.geometry;
    let (offset, len) = geometry.byte_range(&blocks);
    tiers.counters.requests.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(
        attachment = %source.object.attachment_id,
        version = source.object.version,
        offset,
        len,
        blocks = blocks.end - blocks.start,
        "range request"
    );
    let lens: Vec<u64> = blocks.clone().map(|i| geometry.block_len(i)).collect();
    let cut = if lens.len() == 1 {
        // One block: its waiter gets it with the job's end, nothing to hand over early.
        drop(arrived);
        vec![source
            .fetch
            .fetch(offset, len)
            .await
            .map_err(|e| CacheError::Fetch(Arc::new(e)))?]
    } else {
        // A block is handed over early only with the length it must have.
        let expected = lens.clone();
        let checked: BlockArrived = Box::new(move |index, block: &Bytes| {
            if expected.get(index) == Some(&(block.len() as u64)) {
                arrived(index, block);
            }
        });
        source
            .fetch
            .fetch_cut(offset, lens.clone(), checked)
            .await
            .map_err(|e| CacheError::Fetch(Arc::new(e)))?
    };
    let got: u64 = cut.iter().map(|b| b.len() as u64).sum();
    let shaped =
        cut.len() == lens.len() && cut.iter().zip(&lens).all(|(b, l)| b.len() as u64 == *l);
    if got != len || !shaped {
        return Err(CacheError::WrongLength {
            offset,
            expected: len,
            got,
        });
    }
    tiers
        .counters
        .fetched_bytes
        .fetch_add(len, Ordering::Relaxed);
    tiers
        .counters
        .misses
        .fetch_add(blocks.end - blocks.start, Ordering::Relaxed);
    Ok(cut)
}

/// Removes a job's in-flight entries when the job ends, however it ends.
struct JobGuard {
    tiers: Arc<Tiers>,
    keys: Vec<BlockKey>,
    id: u64,
    _token: BackgroundToken,
    /// Dropped after the entries are removed (fields drop after `drop` runs): wakes those
    /// who wait for the job's end.
    _end_signal: oneshot::Sender<()>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let mut map = self.tiers.lock_in_flight();
        for key in &self.keys {
            // Only our own entry: after a cancellation another job may own the key now.
            if map.get(key).is_some_and(|(id, _)| *id == self.id) {
                map.remove(key);
            }
        }
    }
}
