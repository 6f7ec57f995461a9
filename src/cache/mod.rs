//! The read-side data cache: attachment bytes in blocks, in memory and on disk.
//!
//! Attachments are read through FUSE in small pieces and fetched over HTTP, where every
//! request costs a round trip. The cache turns the one into the other: it cuts each object
//! (one *version* of one attachment: versions never change, so a block is valid forever and
//! never stale, docs/DESIGN.md tenet 4) into fixed-size blocks, keeps them in a byte-bounded memory tier
//! and an LRU-bounded disk tier that survives remounts, fetches missing blocks with range
//! requests that cover several blocks at once, shares each fetch among everyone who waits for
//! it, and reads ahead when a file is read sequentially.
//!
//! Module map: `config` (sizes and defaults), `block` (block keys and byte↔block arithmetic),
//! `memory` (moka tier), `disk` (file-per-version tier and its write queue), `fetch` (shared jobs that obtain blocks),
//! `tiers` (memory, disk and the in-flight map, shared with the jobs), `ahead_blocks` (the
//! read-ahead decision), `block_cache` ([`BlockCache`], shared by the mount), `reader`
//! ([`CachedFile`], one per open handle), `ahead_fetched` (whole files fetched before their reader
//! opens them), `cache_error`.
//!
//! Where bytes come from is the [`RangeFetch`] trait: the filesystem implements it with the
//! Confluence client, tests with a fake; the cache never sees an URL.

mod ahead_blocks;
mod ahead_fetched;
mod block;
mod block_cache;
#[cfg(test)]
mod block_cache_tests;
mod cache_error;
mod config;
mod disk;
mod fetch;
mod memory;
mod reader;
mod tiers;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::confluence::ClientError;

pub use ahead_fetched::FetchedAhead;
pub use block_cache::{BlockCache, CacheStats};
pub use cache_error::{CacheError, ReadError};
pub use config::CacheConfig;
pub use disk::{free_space, VersionFile};
pub use reader::CachedFile;

/// Identity of an immutable byte sequence: one version of one attachment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    /// The attachment's id, as the server spells it.
    pub attachment_id: String,
    /// The attachment's version number, counted from 1.
    pub version: u64,
}

/// Told of each whole block of a range as it arrives: its place in the range, and its bytes.
pub type BlockArrived = Box<dyn FnMut(usize, &Bytes) + Send>;

/// Where missing bytes come from. `fetch(offset, len)` must return exactly `len` bytes (the
/// cache asks only for ranges inside the object); anything else is refused as
/// [`CacheError::WrongLength`].
pub trait RangeFetch: Send + Sync + 'static {
    /// Exactly `len` bytes of the object from `offset`, in one buffer.
    fn fetch(&self, offset: u64, len: u64) -> BoxFuture<'static, Result<Bytes, ClientError>>;

    /// The bytes from `offset`, cut into pieces of `lens` (block lengths, in order), each in a
    /// buffer of its own so that caching one block never keeps its neighbours alive; each
    /// piece is handed to `arrived` (with its place in `lens`) as soon as it is whole, so that
    /// a reader waiting for the first block of a long range does not wait for the last. The
    /// default fetches once and copies the pieces out; a source that streams overrides it to
    /// fill each block's buffer as the bytes arrive (one copy instead of two). Fewer bytes
    /// than asked for come back as they are; the cache refuses them.
    fn fetch_cut(
        &self,
        offset: u64,
        lens: Vec<u64>,
        mut arrived: BlockArrived,
    ) -> BoxFuture<'static, Result<Vec<Bytes>, ClientError>> {
        let total = lens.iter().sum();
        let whole = self.fetch(offset, total);
        Box::pin(async move {
            let data = whole.await?;
            if data.len() as u64 != total {
                return Ok(vec![data]);
            }
            let mut at = 0usize;
            Ok(lens
                .iter()
                .enumerate()
                .map(|(index, len)| {
                    let piece = Bytes::copy_from_slice(&data[at..at + *len as usize]);
                    at += *len as usize;
                    arrived(index, &piece);
                    piece
                })
                .collect())
        })
    }
}
