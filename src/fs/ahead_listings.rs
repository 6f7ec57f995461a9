//! Read-ahead of directory listings for tree walks (`find`, `ls -R`, `du`, `rsync`).
//!
//! A walker lists one directory at a time and waits for each answer, so with latency every
//! directory costs a round trip. When the access pattern shows a walk, the listings of the
//! pages it will reach next are fetched in the background and land in the cache the walker
//! reads from (same TTL, same single-flight fetch): nothing is listed twice, and a walk that
//! visits everything costs exactly the requests it cost without read-ahead.
//!
//! Walk mode is earned, so that single operations keep their budgets: a directory enters it
//! when the listings of two distinct child pages of it are asked for within the metadata TTL
//! (listing a page, or a page and one child, fetches nothing more). Its child pages after the
//! one being opened are then queued, and every directory listed while its parent is in walk
//! mode, by the walker or ahead of it, is in walk mode too: its own child pages are queued
//! when its listing is at hand. The queue is kept in walk order (depth first, in listing
//! order, as `find` and `ls -R` go). Listings fetched ahead may hold at most [`MAX_RUNNING`]
//! requests at once, the client's 8 permits: a page's listing is two requests, one or none
//! for a page its parent's answer says has no child pages or no attachments (so up to 8 leaf
//! pages are listed at once where 4 pages were), and one that does not fit waits, keeping its
//! place. Permits are handed out in the order they are asked for, so a foreground request
//! waits for at most one read-ahead request to finish, never for the read-ahead to drain
//! (with 10 ms of latency, the benchmark's walk of 2,000 pages took 15 s with 4 listings at
//! once, 20 s with 3). At most [`MAX_AHEAD`] listings fetched ahead wait for the walker to ask
//! for them, so an abandoned walk stops soon. Only pages and blog posts are read ahead: never the root, a space,
//! `@blog` or history directories. A failed read-ahead is dropped (debug log); the
//! walker's own fetch then tries again as it always did.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dir::Listing;
use super::inode::Node;
use super::ConfluenceFs;

/// Requests of listings fetched ahead at once: a page's listing is two (its child pages and
/// its attachments), one or none for a page its parent's answer says lacks either (`dir.rs`).
pub(crate) const MAX_RUNNING: usize = 8;
/// Listings fetched ahead that the walker has not asked for yet.
pub(crate) const MAX_AHEAD: usize = 64;
/// Bookkeeping entries kept before stale ones (older than the TTL) are dropped.
const PRUNE_FROM: usize = 4096;

/// A place in the walk order: the listing positions from where the walk was noticed.
type Place = Vec<u32>;

/// Who is walking where, and what to fetch next.
pub(crate) struct WalkAhead {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per directory, the first child page whose listing was asked for, and when.
    first_child: HashMap<u64, (u64, Instant)>,
    /// Directories in walk mode: their place in the walk order, and since when.
    walking: HashMap<u64, (Place, Instant)>,
    /// Listings to fetch ahead, in walk order.
    queue: BTreeSet<(Place, u64)>,
    /// Listings fetched (or being fetched) ahead that the walker has not asked for, since when.
    ahead: HashMap<u64, Instant>,
    running: usize,
    /// Walks noticed so far: a new walk is placed after the earlier ones.
    walks: u32,
    prune_at: usize,
}

/// What the walk bookkeeping needs to know about one opened directory.
pub(crate) struct Opened<'a> {
    pub dir: u64,
    pub parent: u64,
    /// The parent's child pages, in listing order, when the parent's listing is cached and
    /// the parent may be walked (not the root).
    pub siblings: Option<&'a [u64]>,
    /// The directory's own child pages, in listing order.
    pub children: &'a [u64],
}

impl WalkAhead {
    pub(crate) fn new(ttl: Duration) -> WalkAhead {
        WalkAhead {
            ttl,
            state: Mutex::new(State {
                prune_at: PRUNE_FROM,
                ..State::default()
            }),
        }
    }

    /// The walker asked for the listing of a page directory: notices walks and queues what
    /// comes next. Returns whether the listing had been fetched ahead.
    pub(crate) fn opened(&self, at: Opened<'_>) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let state = &mut *state;
        state.prune(now, self.ttl);
        let was_ahead = state.ahead.remove(&at.dir).is_some();
        let own_place = state.walking.get(&at.dir).map(|(place, _)| place.clone());
        if let Some(place) = &own_place {
            state.queue.remove(&(place.clone(), at.dir));
        }

        if let Some(siblings) = at.siblings {
            let position = siblings.iter().position(|&s| s == at.dir);
            if !state.is_walking(at.parent, now, self.ttl) {
                match state.first_child.get(&at.parent) {
                    Some(&(first, when)) if first != at.dir && now - when < self.ttl => {
                        state.walks += 1;
                        let place = vec![state.walks];
                        tracing::debug!(dir = at.parent, "tree walk noticed: reading ahead");
                        let after = position.map_or(siblings.len(), |p| p + 1);
                        state.enqueue(&place, siblings, after, now);
                        state.walking.insert(at.parent, (place, now));
                    }
                    Some(&(first, when)) if first == at.dir && now - when < self.ttl => {}
                    _ => {
                        state.first_child.insert(at.parent, (at.dir, now));
                    }
                }
            }
            if own_place.is_none() {
                if let Some((parent_place, _)) = state.walking.get(&at.parent) {
                    let mut place = parent_place.clone();
                    place.push(position.map_or(u32::MAX, |p| p as u32));
                    state.walking.insert(at.dir, (place, now));
                }
            }
        }
        if let Some((place, since)) = state.walking.get_mut(&at.dir) {
            *since = now;
            let place = place.clone();
            state.enqueue(&place, at.children, 0, now);
        }
        was_ahead
    }

    /// The next listing to fetch ahead and the requests it costs, if the limits allow one;
    /// `cost` tells what a listing costs, `None` when it is cached. The caller must report
    /// [`finished`](Self::finished) for it, with the same cost.
    pub(crate) fn next(&self, cost: impl Fn(u64) -> Option<usize>) -> Option<(u64, usize)> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        if state.ahead.len() >= MAX_AHEAD {
            let ttl = self.ttl;
            state.ahead.retain(|_, since| now - *since < ttl);
            if state.ahead.len() >= MAX_AHEAD {
                return None;
            }
        }
        while let Some((place, dir)) = state.queue.pop_first() {
            if state.ahead.contains_key(&dir) {
                continue;
            }
            let Some(cost) = cost(dir) else {
                continue;
            };
            if state.running + cost > MAX_RUNNING {
                // Its turn comes when enough of what runs has finished.
                state.queue.insert((place, dir));
                return None;
            }
            state.ahead.insert(dir, now);
            state.running += cost;
            return Some((dir, cost));
        }
        None
    }

    /// A listing fetched ahead, which cost `cost` requests, is at hand (`Some`: its child
    /// pages) or failed (`None`).
    pub(crate) fn finished(&self, dir: u64, cost: usize, children: Option<&[u64]>) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        state.running -= cost;
        match children {
            Some(children) => {
                if let Some((place, _)) = state.walking.get(&dir) {
                    let place = place.clone();
                    state.enqueue(&place, children, 0, now);
                }
            }
            None => {
                state.ahead.remove(&dir);
            }
        }
    }
}

impl State {
    fn is_walking(&self, dir: u64, now: Instant, ttl: Duration) -> bool {
        self.walking
            .get(&dir)
            .is_some_and(|(_, since)| now - *since < ttl)
    }

    /// Queues `children[from..]` of the directory at `place`; each is in walk mode from now.
    fn enqueue(&mut self, place: &Place, children: &[u64], from: usize, now: Instant) {
        for (i, &child) in children.iter().enumerate().skip(from) {
            let mut child_place = place.clone();
            child_place.push(i as u32);
            if let Some((old, _)) = self.walking.get(&child) {
                if *old == child_place {
                    continue;
                }
                self.queue.remove(&(old.clone(), child));
            }
            self.queue.insert((child_place.clone(), child));
            self.walking.insert(child, (child_place, now));
        }
    }

    /// Drops bookkeeping older than the TTL once there is a lot of it.
    fn prune(&mut self, now: Instant, ttl: Duration) {
        let size = self.walking.len() + self.first_child.len();
        if size < self.prune_at {
            return;
        }
        self.first_child.retain(|_, (_, when)| now - *when < ttl);
        self.walking.retain(|_, (_, when)| now - *when < ttl);
        let walking = &self.walking;
        self.queue.retain(|(_, dir)| walking.contains_key(dir));
        self.ahead.retain(|_, when| now - *when < ttl);
        self.prune_at = PRUNE_FROM.max(2 * (self.walking.len() + self.first_child.len()));
    }
}

impl ConfluenceFs {
    /// Walk bookkeeping for a directory the walker opened, then read-ahead if it is due.
    pub(super) async fn walk_opened(self: &Arc<Self>, dir: u64, listing: &Listing) {
        let Some(entry) = self.tree.inodes.get(dir) else {
            return;
        };
        if !matches!(entry.node, Node::Page(_)) {
            return;
        }
        let parent_walkable = self
            .tree
            .inodes
            .get(entry.parent)
            .is_some_and(|p| !matches!(p.node, Node::Root));
        let siblings = if parent_walkable {
            self.tree
                .listings
                .get(&entry.parent)
                .await
                .map(|parent| self.child_pages(&parent))
        } else {
            None
        };
        let children = self.child_pages(listing);
        let was_ahead = self.tree.walk.opened(Opened {
            dir,
            parent: entry.parent,
            siblings: siblings.as_deref(),
            children: &children,
        });
        if was_ahead {
            tracing::debug!(dir, "listing served from read-ahead");
        }
        self.read_ahead();
    }

    /// Starts the background fetches the limits allow.
    fn read_ahead(self: &Arc<Self>) {
        while let Some((dir, cost)) = self.tree.walk.next(|dir| {
            (!self.tree.listings.contains_key(&dir)).then(|| self.listing_requests(dir))
        }) {
            let fs = Arc::clone(self);
            tokio::spawn(async move {
                match fs.listing(dir).await {
                    Ok(listing) => {
                        let children = fs.child_pages(&listing);
                        fs.tree.walk.finished(dir, cost, Some(&children));
                    }
                    Err(err) => {
                        tracing::debug!(dir, "read-ahead of a listing failed: {err}");
                        fs.tree.walk.finished(dir, cost, None);
                    }
                }
                fs.read_ahead();
            });
        }
    }

    /// The entries of a listing that are pages or blog posts (the directories read ahead).
    fn child_pages(&self, listing: &Listing) -> Vec<u64> {
        self.tree
            .inodes
            .select(listing.inodes(), |node| matches!(node, Node::Page(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    fn open(walk: &WalkAhead, dir: u64, parent: u64, siblings: &[u64], children: &[u64]) {
        walk.opened(Opened {
            dir,
            parent,
            siblings: Some(siblings),
            children,
        });
    }

    fn drain(walk: &WalkAhead) -> Vec<u64> {
        let mut got = Vec::new();
        while let Some((dir, cost)) = walk.next(|_| Some(2)) {
            got.push(dir);
            walk.finished(dir, cost, Some(&[]));
        }
        got
    }

    #[test]
    fn one_child_and_the_same_child_again_are_not_a_walk() {
        let walk = WalkAhead::new(TTL);
        open(&walk, 10, 1, &[10, 11, 12], &[20, 21]);
        open(&walk, 10, 1, &[10, 11, 12], &[20, 21]);
        open(&walk, 20, 10, &[20, 21], &[]);
        assert_eq!(drain(&walk), Vec::<u64>::new());
    }

    #[test]
    fn a_second_child_reads_the_rest_ahead_in_walk_order() {
        let walk = WalkAhead::new(TTL);
        open(&walk, 10, 1, &[10, 11, 12, 13], &[]);
        open(&walk, 11, 1, &[10, 11, 12, 13], &[30, 31]);
        // 11's children come before 11's later siblings, as a depth-first walker goes.
        let first = walk.next(|_| Some(2)).unwrap();
        assert_eq!(first, (30, 2));
        walk.finished(30, 2, Some(&[40]));
        assert_eq!(drain(&walk), vec![40, 31, 12, 13]);
    }

    const SIBLINGS: std::ops::Range<u64> = 100..300;

    /// A walker that has opened the first two of 200 sibling directories.
    fn walk_among_siblings() -> WalkAhead {
        let walk = WalkAhead::new(TTL);
        let siblings: Vec<u64> = SIBLINGS.collect();
        open(&walk, 100, 1, &siblings, &[]);
        open(&walk, 101, 1, &siblings, &[]);
        walk
    }

    #[test]
    fn read_ahead_is_bounded_in_flight_and_ahead_of_the_walker() {
        let walk = walk_among_siblings();
        let running: Vec<(u64, usize)> = std::iter::from_fn(|| walk.next(|_| Some(2))).collect();
        assert_eq!(running.len(), MAX_RUNNING / 2, "pages of two listings each");
        for &(dir, cost) in &running {
            walk.finished(dir, cost, Some(&[]));
        }
        let mut fetched = running.len() + drain(&walk).len();
        assert_eq!(fetched, MAX_AHEAD);
        // The walker reaching one of them lets one more go.
        open(&walk, 102, 1, &SIBLINGS.collect::<Vec<_>>(), &[]);
        fetched += drain(&walk).len();
        assert_eq!(fetched, MAX_AHEAD + 1);
    }

    #[test]
    fn cached_listings_and_failures_cost_nothing() {
        let walk = WalkAhead::new(TTL);
        open(&walk, 10, 1, &[10, 11, 12, 13], &[]);
        open(&walk, 11, 1, &[10, 11, 12, 13], &[]);
        let dir = walk.next(|dir| (dir != 12).then_some(2)).unwrap();
        assert_eq!(dir, (13, 2));
        walk.finished(13, 2, None);
        assert!(walk.next(|_| Some(2)).is_none());
        assert!(walk.state.lock().unwrap().ahead.is_empty());
    }

    #[test]
    fn leaf_pages_run_more_at_once_within_the_same_requests() {
        let walk = walk_among_siblings();
        // Leaves with files: one request each, so twice as many listings at once.
        let leaves: Vec<(u64, usize)> = std::iter::from_fn(|| walk.next(|_| Some(1))).collect();
        assert_eq!(leaves.len(), MAX_RUNNING);
        // A page of two requests waits until two have finished, and keeps its place.
        assert!(walk.next(|_| Some(2)).is_none());
        walk.finished(leaves[0].0, 1, Some(&[]));
        assert!(walk.next(|_| Some(2)).is_none());
        walk.finished(leaves[1].0, 1, Some(&[]));
        assert_eq!(
            walk.next(|_| Some(2)),
            Some((100 + 2 + MAX_RUNNING as u64, 2))
        );
        // Empty leaves cost nothing and are never held back.
        assert!(walk.next(|_| Some(0)).is_some());
    }
}
