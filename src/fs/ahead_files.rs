//! Read-ahead across files: fetching the next files of a directory while its reader is busy
//! with the current one.
//!
//! `ahead_order` decides when a reader goes through a directory file by file and which files
//! come next; this module fetches them whole through the block cache (`BlockCache::fetch_ahead`,
//! so a reader that opens a file while it is on its way joins the fetch) and keeps what it
//! fetched until the file is opened, when `open` hands it to the new handle. Bounds: the
//! window (a few files, at most the cache's read-ahead bytes not yet opened across the mount,
//! none larger than a few blocks) and a few requests in flight for the whole mount, so that
//! foreground reads keep most of the client's connections. Only listings already cached are
//! used (or, once it expired, the one the reader started with): working out what comes next
//! never costs a request. When the reader strays from the
//! order, what was fetched for it and not opened is dropped, and fetches still running are
//! cancelled.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::ahead_order::{self, DirOrders, Trail, Upcoming, Window};
use super::dir::Listing;
use super::read::{AttachmentRange, ServerBytes};
use super::ConfluenceFs;
use crate::cache::{BlockCache, FetchedAhead, ObjectKey};

/// Files looked at after the reader's.
const FILES_AHEAD: usize = 8;
/// Files larger than this are left to the in-file read-ahead.
const LARGEST_FILE: u64 = 8 << 20;
/// Directories whose readers are followed at once.
const TRAILS: usize = 16;
/// A file fetched ahead and not opened for this long is dropped.
const UNCLAIMED: Duration = Duration::from_secs(60);

pub(crate) struct FilePrefetch {
    /// Requests in flight for files ahead, across the mount.
    permits: Arc<Semaphore>,
    window: Window,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Most recently used last.
    trails: VecDeque<DirTrail>,
    /// Files fetched ahead and not opened yet, by inode.
    held: HashMap<u64, Held>,
}

struct DirTrail {
    dir: u64,
    /// The listing `orders` was built from.
    listing: Arc<Listing>,
    orders: Arc<DirOrders>,
    trail: Trail,
}

struct Held {
    dir: u64,
    since: Instant,
    ahead: FetchedAhead,
}

/// A file the reader may open next, as the server has it.
struct Candidate {
    ino: u64,
    key: ObjectKey,
    size: u64,
    range: Arc<AttachmentRange>,
}

impl FilePrefetch {
    /// Sized after the cache's in-file read-ahead: the same bytes ahead and requests in
    /// flight; a read-ahead window of 0 turns this off too.
    pub(crate) fn new(cache: &BlockCache) -> FilePrefetch {
        let config = &cache.config;
        FilePrefetch {
            permits: Arc::new(Semaphore::new(config.max_parallel_fetches)),
            window: Window {
                files: if config.max_prefetch_bytes == 0 {
                    0
                } else {
                    FILES_AHEAD
                },
                bytes: config.max_prefetch_bytes,
                file_bytes: LARGEST_FILE,
            },
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Only bookkeeping of what was fetched ahead; usable after a panic elsewhere.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What was fetched ahead for `ino`, if it is `key` (the version being opened).
    pub(crate) fn take(&self, ino: u64, key: &ObjectKey) -> Option<FetchedAhead> {
        let held = self.lock().held.remove(&ino)?;
        if held.ahead.key() != key {
            return None;
        }
        tracing::debug!(
            ino,
            in_flight = held.ahead.in_flight(),
            "opened a file fetched ahead"
        );
        Some(held.ahead)
    }
}

impl ConfluenceFs {
    /// A reader started `ino` from its beginning: if that continues an order through its
    /// directory, fetch the files after it.
    pub(crate) async fn started_reading(&self, ino: u64) {
        if self.file_prefetch.window.files == 0 {
            return;
        }
        let Ok(entry) = self.entry(ino) else { return };
        let dir = entry.parent;
        // A listing that expired since the reader started is still good for its order.
        let listing = match self.tree.listings.get(&dir).await {
            Some(listing) => listing,
            None => {
                let state = self.file_prefetch.lock();
                match state.trails.iter().find(|t| t.dir == dir) {
                    Some(trail) => trail.listing.clone(),
                    None => return,
                }
            }
        };
        let orders = self.orders_for(dir, &listing);
        let mut dropped = Vec::new();
        let mut state = self.file_prefetch.lock();
        let now = Instant::now();
        drop_held(&mut state, &mut dropped, |_, held| {
            now.duration_since(held.since) >= UNCLAIMED
        });
        let followed = {
            let trail = trail_for(&mut state, &mut dropped, dir, &listing, &orders);
            if trail.trail.is_last(ino) {
                // The same file again: nothing new about the order, nothing to change.
                return;
            }
            trail.trail.on_start(ino, &orders)
        };
        let Some(order) = followed else {
            // Not (or no longer) a walk through the directory: what was fetched for one goes.
            drop_held(&mut state, &mut dropped, |_, held| held.dir == dir);
            if !dropped.is_empty() {
                tracing::debug!(dir, files = dropped.len(), "reader left the order");
            }
            drop(state);
            return;
        };
        let next: Vec<u64> = orders
            .after(ino, order)
            .iter()
            .take(self.file_prefetch.window.files)
            .copied()
            .collect();
        // Held for this directory but no longer ahead of the reader: it went past them.
        drop_held(&mut state, &mut dropped, |held_ino, held| {
            held.dir == dir && !next.contains(&held_ino)
        });
        let candidates: Vec<Option<Candidate>> = next.iter().map(|n| self.candidate(*n)).collect();
        let upcoming: Vec<Upcoming> = next
            .iter()
            .zip(&candidates)
            .map(|(n, candidate)| Upcoming {
                ino: *n,
                size: candidate.as_ref().map(|c| c.size),
                held: state.held.contains_key(n),
            })
            .collect();
        let held_bytes = state.held.values().map(|h| h.ahead.size()).sum();
        let fetch = ahead_order::to_fetch(&upcoming, &self.file_prefetch.window, held_bytes);
        for candidate in candidates.into_iter().flatten() {
            if !fetch.contains(&candidate.ino) {
                continue;
            }
            let ahead = self.cache.fetch_ahead(
                candidate.key,
                candidate.size,
                candidate.range,
                &self.file_prefetch.permits,
            );
            state.held.insert(
                candidate.ino,
                Held {
                    dir,
                    since: now,
                    ahead,
                },
            );
        }
        if !fetch.is_empty() {
            tracing::debug!(
                dir,
                ino,
                ?order,
                files = fetch.len(),
                "fetching files ahead"
            );
        }
        // Cancelling jobs is done outside our lock.
        drop(state);
        drop(dropped);
    }

    /// The orders of `dir`'s files, built once per listing.
    fn orders_for(&self, dir: u64, listing: &Arc<Listing>) -> Arc<DirOrders> {
        {
            let state = self.file_prefetch.lock();
            if let Some(trail) = state.trails.iter().find(|t| t.dir == dir) {
                if Arc::ptr_eq(&trail.listing, listing) {
                    return trail.orders.clone();
                }
            }
        }
        let files = listing
            .entries()
            .iter()
            .filter(|(_, ino)| {
                self.tree
                    .inodes
                    .get(*ino)
                    .is_some_and(|entry| !entry.node.is_dir())
            })
            .cloned()
            .collect();
        Arc::new(DirOrders::new(files))
    }

    /// What fetching `ino` ahead takes: a server file without local changes.
    fn candidate(&self, ino: u64) -> Option<Candidate> {
        let entry = self.tree.inodes.get(ino)?;
        let ServerBytes { key, size, range } = self.server_bytes(ino, &entry.node)?;
        Some(Candidate {
            ino,
            key,
            size,
            range,
        })
    }
}

/// `dir`'s trail (made the most recent), started afresh when its listing changed. The least
/// recent trail makes room, and what was fetched for it goes into `dropped`.
fn trail_for<'a>(
    state: &'a mut State,
    dropped: &mut Vec<Held>,
    dir: u64,
    listing: &Arc<Listing>,
    orders: &Arc<DirOrders>,
) -> &'a mut DirTrail {
    let existing = state.trails.iter().position(|t| t.dir == dir);
    let mut trail = match existing.and_then(|at| state.trails.remove(at)) {
        Some(trail) if Arc::ptr_eq(&trail.listing, listing) => trail,
        _ => DirTrail {
            dir,
            listing: listing.clone(),
            orders: orders.clone(),
            trail: Trail::default(),
        },
    };
    trail.orders = orders.clone();
    if state.trails.len() >= TRAILS {
        if let Some(old) = state.trails.pop_front() {
            drop_held(state, dropped, |_, held| held.dir == old.dir);
        }
    }
    state.trails.push_back(trail);
    state.trails.back_mut().expect("just pushed")
}

/// Moves the held files that `which` picks into `dropped` (to be dropped outside the lock).
fn drop_held(state: &mut State, dropped: &mut Vec<Held>, which: impl Fn(u64, &Held) -> bool) {
    let inos: Vec<u64> = state
        .held
        .iter()
        .filter(|(ino, held)| which(**ino, held))
        .map(|(ino, _)| *ino)
        .collect();
    for ino in inos {
        dropped.extend(state.held.remove(&ino));
    }
}
