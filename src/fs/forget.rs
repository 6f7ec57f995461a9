//! FORGET, and dropping the inodes nothing needs any more.
//!
//! The kernel counts the entries it was given (LOOKUP, CREATE, MKDIR, READDIRPLUS) and gives
//! them back with FORGET, in batches when it trims its caches or `drop_caches` is written.
//! The inode table keeps the counts (`inode.rs`); this module decides, for each entry whose
//! counts reached zero, whether anything outside the tree still needs it — an open handle or
//! a file deleted while open (`handles`), local bytes, a pending upload or unsaved page text
//! (`files`), a local entry or a hidden name under it (`local`), modes and times not written
//! to the server yet (`kept_attrs`) — and drops it with what hangs off it (its own listing,
//! properties, lookup counter, opened version) when nothing does. A needed entry is parked and
//! asked about again at every later collection, so it goes once its handle closes or its
//! upload lands.
//!
//! Collections run after FORGETs (one for however many arrive together) and on a tick (`COLLECT_EVERY`), which also ages
//! new entries (`InodeTable::age_fresh`) and lets listings past their TTL go: moka drops
//! expired entries only when it does its housekeeping, which an idle mount never triggers.
//! Listings release their inodes when dropped, so one collection may free a directory's
//! entries and then the directory itself: it loops until nothing more goes.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::inode::Dropped;
use super::ConfluenceFs;

/// How often new entries age and expired listings are let go.
const COLLECT_EVERY: Duration = Duration::from_secs(2);

impl ConfluenceFs {
    /// FORGET (and each entry of BATCH_FORGET): the kernel gives back `n` lookups of `ino`.
    /// Cheap, as the kernel sends thousands at once: the collection runs later, in one task for
    /// however many FORGETs arrive meanwhile (call inside the runtime).
    pub fn forget(self: &Arc<Self>, ino: u64, n: u64) {
        self.tree.inodes.forget(ino, n);
        if !self.tree.collect_asked.swap(true, Ordering::AcqRel) {
            let fs = self.clone();
            tokio::spawn(async move {
                fs.tree.collect_asked.store(false, Ordering::Release);
                fs.collect_inodes().await;
            });
        }
    }

    /// Takes back a count [`remember_lookup`](Self::remember_lookup) made for an entry that
    /// was not replied after all (a READDIRPLUS buffer was full); collected later.
    pub fn forget_now(&self, ino: u64, n: u64) {
        self.tree.inodes.forget(ino, n);
    }

    /// Counts an entry replied to the kernel outside LOOKUP (CREATE, MKDIR, a READDIRPLUS
    /// entry); false if `ino` is gone, and then it must not be replied.
    pub fn remember_lookup(&self, ino: u64) -> bool {
        self.tree.inodes.remember(ino, 1)
    }

    /// How many inodes the table holds now.
    pub fn inode_count(&self) -> usize {
        self.tree.inodes.len()
    }

    /// Files open for writing now: their changes go up when they close (`status`).
    pub fn open_for_writing(&self) -> u64 {
        self.handles.open_for_writing()
    }

    /// What cached listings weigh now, in names (bounded by `tree::LISTED_NAMES`).
    pub fn listed_names(&self) -> u64 {
        self.tree.listings.weighted_size()
    }

    /// Drops every entry whose counts are zero and that nothing else needs.
    pub async fn collect_inodes(&self) {
        let Ok(_one) = self.tree.collecting.try_lock() else {
            // The running collection picks up what this one would have.
            return;
        };
        self.tree.listings.run_pending_tasks().await;
        let mut parked = true;
        let mut total = 0;
        loop {
            let candidates = self.tree.inodes.take_candidates(parked);
            parked = false;
            if candidates.is_empty() {
                if total >= crate::allocator::TRIM_AFTER_INODES {
                    // Their small allocations are spread over the heap: hand the pages back.
                    tokio::task::spawn_blocking(crate::allocator::give_back_free_memory);
                }
                return;
            }
            let needed = self.needed_inodes();
            let mut dropped = Vec::new();
            for ino in candidates {
                if self
                    .tree
                    .inodes
                    .drop_if_unused(ino, |ino| needed.contains(&ino))
                    == Dropped::Yes
                {
                    dropped.push(ino);
                }
            }
            for ino in &dropped {
                self.tree.listings.invalidate(ino).await;
                self.tree.forget_missed(*ino);
                self.tree.properties.invalidate(ino).await;
                self.tree.targeted_lookups.invalidate(ino).await;
                self.handles.forget_version(*ino);
            }
            total += dropped.len();
            if !dropped.is_empty() {
                tracing::trace!(count = dropped.len(), "inodes dropped");
                // The dropped directories' listings let go of their entries.
                self.tree.listings.run_pending_tasks().await;
            }
        }
    }

    /// Inodes that something outside the tree still needs, whatever the kernel holds.
    fn needed_inodes(&self) -> HashSet<u64> {
        let mut needed = self.handles.in_use();
        needed.extend(self.files.cells().iter().map(|cell| cell.ino()));
        needed.extend(self.tree.local.inodes());
        needed.extend(self.attributes.unwritten());
        needed
    }

    /// Starts the tick that ages new entries and lets expired listings go (inside the
    /// runtime); it ends with the filesystem.
    pub(super) fn start_collecting(self: &Arc<Self>) {
        let fs: Weak<ConfluenceFs> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(COLLECT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(fs) = fs.upgrade() else {
                    return;
                };
                fs.tree.inodes.age_fresh();
                fs.collect_inodes().await;
            }
        });
    }
}
