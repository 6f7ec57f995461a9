//! Whole files fetched before anyone opened them, waiting for the reader that will.
//!
//! Read-ahead across files (the filesystem decides which files) needs what read-ahead inside a
//! file has: the fetches go through the shared jobs of the in-flight map, so a reader that
//! arrives while one runs joins it instead of fetching again, and the blocks are held until the
//! reader takes them, because moka's admission may decline a block nobody has read yet. The
//! holder is a [`FetchedAhead`]; opening the file hands it to the new [`CachedFile`], which then
//! holds the blocks like its own read-ahead. Dropping one that was never handed over lets go
//! of its blocks, which ends the jobs nobody else waits for (see `fetch`).
//!
//! A failed fetch ahead is nobody's error: the reader sees the block as missing and fetches it
//! in the foreground, where a failure is reported as usual.

use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Semaphore;

use super::block::Geometry;
use super::block_cache::{BlockCache, Claim};
use super::fetch::{ObjectSource, StartedJob};
use super::tiers::{BlockOutcome, PendingBlock};
use super::{CachedFile, ObjectKey, RangeFetch};

/// The blocks of one object being fetched (or fetched) ahead of its reader.
pub struct FetchedAhead {
    key: ObjectKey,
    size: u64,
    pub(crate) blocks: Vec<(u64, PendingBlock)>,
    pub(crate) jobs: Vec<StartedJob>,
}

impl FetchedAhead {
    /// The attachment version these blocks belong to.
    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// Bytes this holds once its fetches are done.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether any of its requests is still waiting or running.
    pub fn in_flight(&self) -> bool {
        self.jobs.iter().any(|job| !job.handle.is_finished())
    }
}

impl BlockCache {
    /// Starts fetching every block of `key` (`size` bytes) that is neither in memory nor in
    /// flight, each job waiting for one of `permits` first. Blocks on disk are loaded.
    pub fn fetch_ahead(
        self: &Arc<Self>,
        key: ObjectKey,
        size: u64,
        fetch: Arc<dyn RangeFetch>,
        permits: &Arc<Semaphore>,
    ) -> FetchedAhead {
        let geometry = Geometry {
            block_size: self.config.block_size,
            size,
        };
        let source = ObjectSource {
            object: Arc::new(key.clone()),
            geometry,
            fetch,
        };
        let (claims, jobs) = self.claim(&source, 0..geometry.block_count(), Some(permits));
        let blocks = claims
            .into_iter()
            .filter_map(|(index, claim)| match claim {
                Claim::Pending(pending) => Some((index, quiet(&source, index, pending))),
                Claim::InMemory => None,
            })
            .collect();
        FetchedAhead {
            key,
            size,
            blocks,
            jobs,
        }
    }
}

/// The block, or "missing" instead of the fetch's error.
fn quiet(source: &ObjectSource, index: u64, pending: PendingBlock) -> PendingBlock {
    let attachment = source.object.attachment_id.clone();
    pending
        .map(move |outcome| -> BlockOutcome {
            match outcome {
                Some(Err(error)) => {
                    tracing::debug!(%attachment, index, %error, "fetch ahead failed");
                    None
                }
                other => other,
            }
        })
        .boxed()
        .shared()
}

impl CachedFile {
    /// Takes over blocks fetched ahead for this file: they are held (and their jobs owned) as
    /// if this file had read them ahead itself. Blocks of another object are ignored.
    pub fn adopt(&self, mut ahead: FetchedAhead) {
        if &ahead.key != self.key() {
            return;
        }
        self.take_ahead(std::mem::take(&mut ahead.blocks));
    }
}
