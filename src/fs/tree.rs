//! What the mount knows of the tree: inodes, listings, names known not to exist, what exists
//! only here, and the caches that go with them.
//!
//! These change together (a listing names inodes; a local entry hides a listed name; our own
//! create, upload or move edits the cached listing and clears the negative entry), so they
//! live in one type and the edits that must keep them in step are its methods. Everything in
//! it is metadata: losing it costs requests, never data (a file's bytes belong to its
//! `FileState`, `files.rs`).

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use super::ahead_listings::WalkAhead;
use super::dir::Listing;
use super::inode::InodeTable;
use super::local::LocalLayer;
use crate::confluence::Property;

/// Bound of each metadata cache, in entries.
const CACHE_ENTRIES: u64 = 100_000;

pub(crate) struct Tree {
    pub(crate) inodes: InodeTable,
    /// Directory listings, for the metadata TTL.
    pub(crate) listings: moka::future::Cache<u64, Arc<Listing>>,
    /// How many names were looked up one by one in a directory (see `dir.rs`).
    pub(crate) targeted_lookups: moka::future::Cache<u64, Arc<AtomicU32>>,
    /// (parent, name) pairs known not to exist, for the TTL.
    pub(crate) negatives: moka::future::Cache<(u64, String), ()>,
    /// Content properties of an inode's object, fetched on the first xattr question.
    pub(crate) properties: moka::future::Cache<u64, Arc<Vec<Property>>>,
    /// Entries that exist only here, and names hidden here (`local.rs`).
    pub(crate) local: LocalLayer,
    /// Read-ahead of listings for tree walks (`ahead_listings.rs`).
    pub(crate) walk: WalkAhead,
}

fn cache<K, V>(ttl: Duration) -> moka::future::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::future::Cache::builder()
        .time_to_live(ttl)
        .max_capacity(CACHE_ENTRIES)
        .build()
}

impl Tree {
    pub(crate) fn new(ttl: Duration) -> Tree {
        Tree {
            inodes: InodeTable::new(),
            listings: cache(ttl),
            targeted_lookups: cache(ttl),
            negatives: cache(ttl),
            properties: cache(ttl),
            local: LocalLayer::default(),
            walk: WalkAhead::new(ttl),
        }
    }

    /// Removes `name` from the cached listing of `parent` (after our own delete or move), and
    /// remembers that it is gone.
    pub(crate) async fn drop_name(&self, parent: u64, name: &str) {
        self.local.remove(parent, name);
        if let Some(listing) = self.listings.get(&parent).await {
            self.listings
                .insert(parent, Arc::new(listing.without(name)))
                .await;
        }
        self.negatives.insert((parent, name.to_string()), ()).await;
    }

    /// Adds (or replaces) `name` in the cached listing of `parent` after our own change, so the
    /// next `ls` or lookup there needs no request.
    pub(crate) async fn add_name(&self, parent: u64, name: &str, ino: u64) {
        if let Some(listing) = self.listings.get(&parent).await {
            self.listings
                .insert(parent, Arc::new(listing.with(name, ino)))
                .await;
        }
        self.negatives.invalidate(&(parent, name.to_string())).await;
    }
}
