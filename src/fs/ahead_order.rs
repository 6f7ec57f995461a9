//! Which files of a directory a reader will open next, judged from the files it opened.
//!
//! Backups and copies (`rsync`, `cp -r`, `cat *`) read a directory's files one after another,
//! each from its start; every first read is a cache miss and costs a round trip, so with many
//! small files the round trips are the whole cost. Fetching the next files before they are
//! opened removes them, but only when the pattern is evident: a single file, or files opened in
//! no particular order, must cost what they cost without it. So a directory's trail follows
//! the files started from offset 0, and only when one comes right after the previous one in an
//! order we know do the files after it count as the reader's next ones. Two orders are known:
//! readdir's (ours is the server's: child pages, then attachments) and names in byte order
//! (what `rsync` and sorting tools use); whichever the last two files fit is the one followed.
//!
//! How far ahead to go ([`Window`]): a few files and a few MiB, and only files small enough
//! that one open costs a round trip that matters; large files have the in-file read-ahead.
//! This module only decides; `ahead_files` carries it out.

use std::collections::HashMap;

/// An order in which a reader takes a directory's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    Listing,
    Name,
}

/// The files of one directory in each known [`Order`].
#[derive(Debug)]
pub(crate) struct DirOrders {
    listing: Vec<u64>,
    by_name: Vec<u64>,
    /// Each file's place in `listing` and in `by_name`.
    places: HashMap<u64, (usize, usize)>,
}

impl DirOrders {
    /// From a directory's files (name and inode), in readdir order.
    pub(super) fn new(files: Vec<(String, u64)>) -> DirOrders {
        let listing: Vec<u64> = files.iter().map(|(_, ino)| *ino).collect();
        let mut sorted = files;
        sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let by_name: Vec<u64> = sorted.into_iter().map(|(_, ino)| ino).collect();
        let mut places = HashMap::with_capacity(listing.len());
        for (at, ino) in listing.iter().enumerate() {
            places.insert(*ino, (at, usize::MAX));
        }
        for (at, ino) in by_name.iter().enumerate() {
            if let Some(place) = places.get_mut(ino) {
                place.1 = at;
            }
        }
        DirOrders {
            listing,
            by_name,
            places,
        }
    }

    fn place(&self, ino: u64, order: Order) -> Option<usize> {
        let (listing, by_name) = *self.places.get(&ino)?;
        Some(match order {
            Order::Listing => listing,
            Order::Name => by_name,
        })
    }

    /// The files after `ino` in `order` (empty if `ino` is not one of them).
    pub(super) fn after(&self, ino: u64, order: Order) -> &[u64] {
        let Some(at) = self.place(ino, order) else {
            return &[];
        };
        let files = match order {
            Order::Listing => &self.listing,
            Order::Name => &self.by_name,
        };
        &files[at + 1..]
    }

    fn follows(&self, previous: u64, ino: u64, order: Order) -> bool {
        match (self.place(previous, order), self.place(ino, order)) {
            (Some(a), Some(b)) => a + 1 == b,
            _ => false,
        }
    }
}

/// What the files started in one directory show about its reader.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    last: Option<u64>,
    order: Option<Order>,
}

impl Trail {
    /// Whether `ino` is the file started last.
    pub(super) fn is_last(&self, ino: u64) -> bool {
        self.last == Some(ino)
    }

    /// Records that `ino` was read from its start. Returns the order the reader follows if
    /// `ino` comes right after the file started before it in one (the one followed so far is
    /// tried first); `None` if it does not, which also forgets the order.
    pub(super) fn on_start(&mut self, ino: u64, orders: &DirOrders) -> Option<Order> {
        let previous = self.last.replace(ino)?;
        if previous == ino {
            // The same file again: no step in any order, and no reason to forget one.
            return None;
        }
        let mut candidates = vec![Order::Listing, Order::Name];
        if let Some(order) = self.order {
            candidates.retain(|o| *o != order);
            candidates.insert(0, order);
        }
        self.order = candidates
            .into_iter()
            .find(|order| orders.follows(previous, ino, *order));
        self.order
    }
}

/// How far ahead of a reader files are fetched.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Files after the reader's one that are looked at.
    pub files: usize,
    /// Bytes fetched ahead and not opened yet, at most (across the mount).
    pub bytes: u64,
    /// Larger files are skipped.
    pub file_bytes: u64,
}

/// One of the files after the reader's, as far as the window needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Upcoming {
    pub ino: u64,
    /// `None` for what cannot be fetched ahead (not a plain file on the server).
    pub size: Option<u64>,
    /// Fetched ahead already (and not opened yet).
    pub held: bool,
}

/// Of the `upcoming` files (in the reader's order, starting right after its current one), the
/// ones to fetch now, given `held_bytes` already fetched ahead and not opened. Files in the
/// window that are held count against its bytes; the first file that would overflow them ends
/// the batch, so files are always fetched in the reader's order.
pub(crate) fn to_fetch(upcoming: &[Upcoming], window: &Window, held_bytes: u64) -> Vec<u64> {
    let mut budget = held_bytes;
    let mut fetch = Vec::new();
    for file in upcoming.iter().take(window.files) {
        let Some(size) = file.size else { continue };
        if file.held || size == 0 || size > window.file_bytes {
            continue;
        }
        if budget.saturating_add(size) > window.bytes {
            break;
        }
        budget += size;
        fetch.push(file.ino);
    }
    fetch
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// Files 1..=n named so that byte order reverses the listing.
    fn reversed(n: u64) -> DirOrders {
        DirOrders::new((1..=n).map(|i| (format!("f{:02}", 100 - i), i)).collect())
    }

    fn sorted(n: u64) -> DirOrders {
        DirOrders::new((1..=n).map(|i| (format!("f{i:02}"), i)).collect())
    }

    #[test]
    fn the_first_file_predicts_nothing() {
        let mut trail = Trail::default();
        assert_eq!(trail.on_start(1, &sorted(10)), None);
    }

    #[test]
    fn the_second_file_in_order_reveals_the_order() {
        let orders = sorted(10);
        let mut trail = Trail::default();
        trail.on_start(1, &orders);
        assert_eq!(trail.on_start(2, &orders), Some(Order::Listing));
        assert_eq!(orders.after(2, Order::Listing), &[3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(trail.on_start(3, &orders), Some(Order::Listing));
    }

    #[test]
    fn name_order_is_followed_when_the_listing_differs() {
        let orders = reversed(5);
        let mut trail = Trail::default();
        // By name: f95 (5), f96 (4), f97 (3), …
        trail.on_start(5, &orders);
        assert_eq!(trail.on_start(4, &orders), Some(Order::Name));
        assert_eq!(orders.after(4, Order::Name), &[3, 2, 1]);
        assert_eq!(orders.after(4, Order::Listing), &[5]);
    }

    #[test]
    fn files_out_of_order_predict_nothing() {
        let orders = sorted(10);
        let mut trail = Trail::default();
        trail.on_start(3, &orders);
        assert_eq!(trail.on_start(7, &orders), None);
        assert_eq!(trail.on_start(2, &orders), None);
        assert_eq!(trail.on_start(9, &orders), None);
    }

    #[test]
    fn a_stray_step_forgets_the_order_and_a_new_run_starts_over() {
        let orders = sorted(10);
        let mut trail = Trail::default();
        trail.on_start(1, &orders);
        assert!(trail.on_start(2, &orders).is_some());
        assert_eq!(trail.on_start(6, &orders), None);
        assert_eq!(trail.on_start(7, &orders), Some(Order::Listing));
    }

    #[test]
    fn the_same_file_again_is_no_step() {
        let orders = sorted(10);
        let mut trail = Trail::default();
        trail.on_start(1, &orders);
        assert!(trail.is_last(1));
        assert_eq!(trail.on_start(1, &orders), None);
        assert_eq!(trail.on_start(2, &orders), Some(Order::Listing));
    }

    #[test]
    fn unknown_files_predict_nothing() {
        let orders = sorted(3);
        let mut trail = Trail::default();
        trail.on_start(1, &orders);
        assert_eq!(trail.on_start(99, &orders), None);
        assert!(orders.after(99, Order::Name).is_empty());
        assert!(orders.after(3, Order::Name).is_empty());
    }

    fn upcoming(sizes: &[u64]) -> Vec<Upcoming> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| Upcoming {
                ino: i as u64 + 1,
                size: Some(*size),
                held: false,
            })
            .collect()
    }

    const WINDOW: Window = Window {
        files: 8,
        bytes: 32 * MIB,
        file_bytes: 8 * MIB,
    };

    #[test]
    fn the_window_stops_at_its_file_count() {
        let files = upcoming(&[256 * 1024; 20]);
        assert_eq!(to_fetch(&files, &WINDOW, 0), (1..=8).collect::<Vec<_>>());
    }

    #[test]
    fn the_window_stops_at_its_bytes_and_counts_what_is_held() {
        let files = upcoming(&[6 * MIB; 8]);
        assert_eq!(to_fetch(&files, &WINDOW, 0), vec![1, 2, 3, 4, 5]);
        assert_eq!(to_fetch(&files, &WINDOW, 20 * MIB), vec![1, 2]);
        let mut some_held = files.clone();
        some_held[0].held = true;
        some_held[1].held = true;
        // Held files are not fetched again; what is held is in `held_bytes` already.
        assert_eq!(to_fetch(&some_held, &WINDOW, 12 * MIB), vec![3, 4, 5]);
    }

    #[test]
    fn large_empty_and_unfetchable_files_are_skipped() {
        let mut files = upcoming(&[MIB, 100 * MIB, 0, MIB]);
        files[3].size = None;
        files.push(Upcoming {
            ino: 5,
            size: Some(MIB),
            held: false,
        });
        assert_eq!(to_fetch(&files, &WINDOW, 0), vec![1, 5]);
    }
}
