//! What the mount knows of the tree: inodes, listings, names known not to exist, what exists
//! only here, and the caches that go with them.
//!
//! These change together (a listing names inodes; a local entry hides a listed name; our own
//! create, upload or move edits the cached listing and clears the negative entry), so they
//! live in one type and the edits that must keep them in step are its methods. Everything in
//! it is metadata: losing it costs requests, never data (a file's bytes belong to its
//! `FileState`, `files.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ahead_listings::WalkAhead;
use super::dir::Listing;
use super::inode::{Held, InodeTable};
use super::local::LocalLayer;
use crate::confluence::Property;

/// Bound of each metadata cache, in entries.
const CACHE_ENTRIES: u64 = 100_000;

/// Bound of the listing cache, in names (each listing weighs its names plus one): what the
/// listings hold of the inode table when the kernel holds nothing. A page of 10,000
/// attachments fits five times over; a walk's listings ahead (64 at most) fit many times.
pub(crate) const LISTED_NAMES: u64 = 50_000;

pub(crate) struct Tree {
    pub(crate) inodes: InodeTable,
    /// Directory listings, for the metadata TTL and within [`LISTED_NAMES`] (least recently
    /// used first).
    pub(crate) listings: moka::future::Cache<u64, Arc<Listing>>,
    /// What open directory handles hold of the inode table, until RELEASEDIR.
    pub(crate) open_dirs: Mutex<HashMap<u64, Held>>,
    /// One collection of unused inodes at a time (`forget.rs`).
    pub(crate) collecting: tokio::sync::Mutex<()>,
    /// A collection is asked for and has not started yet.
    pub(crate) collect_asked: AtomicBool,
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
    /// Per directory, how many of our own edits found no cached listing to change: a listing
    /// whose fetch began before one of them may lack it, and is fetched again.
    missed: Mutex<HashMap<u64, u64>>,
    /// One edit of a cached listing at a time: each reads it, changes it and puts it back.
    editing: tokio::sync::Mutex<()>,
    /// Directories our own changes edited: what an earlier answer said of their children
    /// (`childTypes`) is no longer to be trusted there.
    edited: Mutex<HashSet<u64>>,
}

/// A listing lives for the TTL from when what it says was confirmed: from its fetch, or for a
/// leaf page's listing made from its parent's answer, from that answer.
struct ListingAge {
    ttl: Duration,
}

impl moka::Expiry<u64, Arc<Listing>> for ListingAge {
    fn expire_after_create(
        &self,
        _dir: &u64,
        listing: &Arc<Listing>,
        _created_at: Instant,
    ) -> Option<Duration> {
        listing
            .as_of()
            .map(|at| self.ttl.saturating_sub(at.elapsed()))
    }
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
            listings: moka::future::Cache::builder()
                .time_to_live(ttl)
                .weigher(|_, listing: &Arc<Listing>| listing.weight())
                .expire_after(ListingAge { ttl })
                .max_capacity(LISTED_NAMES)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
            open_dirs: Mutex::default(),
            collecting: tokio::sync::Mutex::new(()),
            collect_asked: AtomicBool::new(false),
            targeted_lookups: cache(ttl),
            negatives: cache(ttl),
            properties: cache(ttl),
            local: LocalLayer::default(),
            walk: WalkAhead::new(ttl),
            missed: Mutex::default(),
            editing: tokio::sync::Mutex::new(()),
            edited: Mutex::default(),
        }
    }

    /// Whether our own changes edited `dir` (see [`Tree::edited`]'s field).
    pub(crate) fn edited(&self, dir: u64) -> bool {
        self.edited.lock().unwrap().contains(&dir)
    }

    /// Notes that our own change edited `dir`.
    pub(crate) fn mark_edited(&self, dir: u64) {
        self.edited.lock().unwrap().insert(dir);
    }

    /// How many of our own edits of `dir` found no cached listing to change (see
    /// [`Listing::since`]).
    pub(crate) fn missed_edits(&self, dir: u64) -> u64 {
        self.missed.lock().unwrap().get(&dir).copied().unwrap_or(0)
    }

    /// Forgets the missed edits of a directory that is gone from the inode table (its number
    /// is never handed out again, and its listing went with it).
    pub(crate) fn forget_missed(&self, dir: u64) {
        self.missed.lock().unwrap().remove(&dir);
        self.edited.lock().unwrap().remove(&dir);
    }

    /// The cached listing of `dir`, unless one of our own edits of the directory went past it
    /// (the listing was being fetched then): that one is let go.
    pub(crate) async fn cached(&self, dir: u64) -> Option<Arc<Listing>> {
        let listing = self.listings.get(&dir).await?;
        if listing.since() == self.missed_edits(dir) {
            return Some(listing);
        }
        self.listings.invalidate(&dir).await;
        None
    }

    /// Applies our own `change` to the cached listing of `parent`. Without one to change (none
    /// cached, or one being fetched), or when the change fails, the edit is counted as missed,
    /// so that no listing fetched without it is kept.
    async fn edit(&self, parent: u64, change: impl FnOnce(&Listing) -> Result<Listing, u64>) {
        let _one = self.editing.lock().await;
        self.mark_edited(parent);
        if let Some(listing) = self.cached(parent).await {
            if let Ok(listing) = change(&listing) {
                self.listings.insert(parent, Arc::new(listing)).await;
                return;
            }
        }
        *self.missed.lock().unwrap().entry(parent).or_default() += 1;
        self.listings.invalidate(&parent).await;
    }

    /// Removes `name` from the cached listing of `parent` (after our own delete or move), and
    /// remembers that it is gone.
    pub(crate) async fn drop_name(&self, parent: u64, name: &str) {
        self.local.remove(parent, name);
        self.edit(parent, |listing| listing.without(name, &self.inodes))
            .await;
        self.negatives.insert((parent, name.to_string()), ()).await;
    }

    /// Adds (or replaces) `name` in the cached listing of `parent` after our own change, so the
    /// next `ls` or lookup there needs no request.
    pub(crate) async fn add_name(&self, parent: u64, name: &str, ino: u64) {
        self.edit(parent, |listing| listing.with(name, ino, &self.inodes))
            .await;
        self.negatives.invalidate(&(parent, name.to_string())).await;
    }
}
