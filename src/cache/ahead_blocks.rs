//! Read-ahead: when to fetch blocks before anyone asked for them, and how many.
//!
//! The kernel reads a file in 128 KiB pieces (1 MiB at most), which is far too little per HTTP
//! request. When a file is read sequentially we therefore fetch ahead of the reader, in a window
//! that starts at two blocks and doubles with every sequential read up to `max_prefetch_bytes`,
//! so that a short read of a file's header costs one block while a long copy soon keeps several
//! large requests in flight. A read that jumps elsewhere resets the window: random access gets
//! exactly the blocks it touches, and the read-ahead that was meant for the old position can be
//! cancelled.
//!
//! "Sequential" tolerates slack either way around the previous read's end — a block, or four
//! reads' worth when reads are larger (the kernel sends 1 MiB READs with a raised read-ahead,
//! and dispatches them concurrently, so one arriving a place late starts 2 MiB back); a late
//! READ taken for a jump would reset the window and cancel the read-ahead it is part of;
//! only a read that moves the end forward grows the window, so a program that reads the same
//! header again and again never triggers read-ahead.
//!
//! A read from the very start of a file is the exception to starting small: `cat`, `cp`,
//! `rsync` and editors read a file whole, so the first range covers the first
//! `whole_file_bytes` at once (the whole file, when it is no larger), in one request, and the
//! window continues from there (`start_whole`). The open may start it before any READ comes
//! (the size is known from the listing); a first READ elsewhere is a jump like any other and
//! lets it go.
//!
//! The window is topped up in batches (at least half the window, capped by the largest request)
//! rather than block by block as the reader advances; otherwise a full window would be refilled
//! with one small request per block and the requests-per-byte would be those of random access.
//! This type only decides; the reader carries the decision out.

use std::ops::Range;

use super::block::Geometry;

#[derive(Debug)]
pub(crate) struct ReadAhead {
    geometry: Geometry,
    max_window: u64,
    max_request: u64,
    /// End of the furthest sequential read so far; `None` before the first read.
    last_end: Option<u64>,
    /// Current window in bytes; 0 means no read-ahead.
    window: u64,
    /// Blocks below this index were requested already (or needed by a read).
    scheduled_end: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The read continued the previous one.
    pub sequential: bool,
    /// Blocks to fetch ahead now (never past EOF, never below what was scheduled before).
    pub prefetch: Option<Range<u64>>,
}

impl ReadAhead {
    pub(super) fn new(geometry: Geometry, max_window: u64, max_request: u64) -> ReadAhead {
        ReadAhead {
            geometry,
            max_window,
            max_request,
            last_end: None,
            window: 0,
            scheduled_end: 0,
        }
    }

    /// Whether any read was recorded yet.
    pub(super) fn has_read(&self) -> bool {
        self.last_end.is_some()
    }

    /// Starts a read of the file from its start before its first READ (at `open`, or for a
    /// first READ at offset 0): the first `first_bytes` (whole blocks, at most the file) are
    /// to be fetched now, in one request, and the window opens that wide, so the READs that
    /// follow continue it instead of ramping up. `None` once a read was recorded, for an empty
    /// file, or with read-ahead off.
    pub(super) fn start_whole(&mut self, first_bytes: u64) -> Option<Range<u64>> {
        if self.last_end.is_some() || self.max_window == 0 || first_bytes == 0 {
            return None;
        }
        let blocks = first_bytes
            .min(self.geometry.size)
            .div_ceil(self.geometry.block_size);
        if blocks == 0 {
            return None;
        }
        self.last_end = Some(0);
        self.window = first_bytes.min(self.max_window);
        self.scheduled_end = blocks;
        Some(0..blocks)
    }

    /// Records a read of bytes `[offset, end)` (`end` already clamped to EOF, `offset < end`).
    pub(super) fn on_read(&mut self, offset: u64, end: u64) -> Decision {
        let block_size = self.geometry.block_size;
        let needed = self.geometry.blocks_for(offset, end);
        let slack = block_size.max((end - offset).saturating_mul(4));
        let near = self.last_end.filter(|&previous| {
            offset.saturating_add(slack) >= previous && offset <= previous.saturating_add(slack)
        });
        let sequential = near.is_some();
        match near {
            // Moving forward: the reader streams, so the window grows.
            Some(previous) if end > previous => {
                let grown = if self.window == 0 {
                    2 * block_size
                } else {
                    self.window.saturating_mul(2)
                };
                self.window = grown.min(self.max_window);
                self.last_end = Some(end);
            }
            // Near but not forward (a late READ, or the same header read again): keep the
            // window as it is, and fetch nothing more for it.
            Some(_) => {
                self.scheduled_end = self.scheduled_end.max(needed.end);
                return Decision {
                    sequential,
                    prefetch: None,
                };
            }
            None => {
                self.window = 0;
                self.last_end = Some(end);
                self.scheduled_end = needed.end;
            }
        }
        self.scheduled_end = self.scheduled_end.max(needed.end);
        if self.window == 0 {
            return Decision {
                sequential,
                prefetch: None,
            };
        }

        let target_bytes = end.saturating_add(self.window).min(self.geometry.size);
        let target = target_bytes.div_ceil(block_size);
        let gap = target.saturating_sub(self.scheduled_end);
        let batch = (self.window / 2).clamp(block_size, self.max_request) / block_size;
        let at_eof = target == self.geometry.block_count();
        let prefetch = if gap > 0 && (gap >= batch || at_eof) {
            let blocks = self.scheduled_end..target;
            self.scheduled_end = target;
            Some(blocks)
        } else {
            None
        };
        Decision {
            sequential,
            prefetch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;

    fn read_ahead(size: u64) -> ReadAhead {
        let geometry = Geometry {
            block_size: MIB,
            size,
        };
        ReadAhead::new(geometry, 64 * MIB, 8 * MIB)
    }

    #[test]
    fn first_read_fetches_nothing_ahead() {
        let mut ra = read_ahead(100 * MIB);
        let decision = ra.on_read(0, 128 * KIB);
        assert_eq!(
            decision,
            Decision {
                sequential: false,
                prefetch: None
            }
        );
    }

    #[test]
    fn window_doubles_and_is_capped() {
        let mut ra = read_ahead(1024 * MIB);
        ra.on_read(0, 128 * KIB);
        let mut offset = 128 * KIB;
        let mut scheduled = Vec::new();
        for _ in 0..200 {
            let decision = ra.on_read(offset, offset + 128 * KIB);
            assert!(decision.sequential);
            if let Some(blocks) = decision.prefetch {
                scheduled.push(blocks);
            }
            offset += 128 * KIB;
        }
        assert_eq!(ra.window, 64 * MIB);
        // The first top-up is the initial window of two blocks.
        assert_eq!(scheduled[0], 1..3);
        // Batches follow each other without gaps or overlaps.
        for pair in scheduled.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        // Once the window is full, batches are at least a full request (8 blocks) long.
        assert!(scheduled[6..].iter().all(|b| b.end - b.start >= 8));
        // Reading 25 MiB never schedules further ahead than the window.
        let read_end = offset.div_ceil(MIB);
        assert!(scheduled.last().unwrap().end <= read_end + 64 + 1);
    }

    #[test]
    fn never_past_eof() {
        let size = 5 * MIB + 3;
        let mut ra = read_ahead(size);
        ra.on_read(0, MIB);
        let mut all = Vec::new();
        let mut offset = MIB;
        while offset < size {
            let end = (offset + MIB).min(size);
            if let Some(blocks) = ra.on_read(offset, end).prefetch {
                all.push(blocks);
            }
            offset = end;
        }
        let last = all.last().unwrap().end;
        assert_eq!(last, 6, "the short last block is fetched, nothing beyond");
    }

    #[test]
    fn large_reads_arriving_out_of_order_stay_sequential() {
        let mut ra = read_ahead(1024 * MIB);
        let offset = 500 * KIB;
        ra.on_read(offset, offset + MIB);
        let mut scheduled = 0;
        // 1 MiB READs, unaligned, each pair swapped as two fuser threads may deliver them.
        for pair in 0..40u64 {
            let a = offset + (1 + 2 * pair) * MIB;
            let b = a + MIB;
            for (start, end) in [(b, b + MIB), (a, a + MIB)] {
                let decision = ra.on_read(start, end);
                assert!(decision.sequential, "read at {start} taken for a jump");
                scheduled += decision.prefetch.map_or(0, |r| r.end - r.start);
            }
        }
        assert_eq!(ra.window, 64 * MIB);
        assert!(
            scheduled <= 82 + 64,
            "{scheduled} blocks scheduled for 81 MiB read"
        );
    }

    #[test]
    fn a_whole_start_fetches_the_first_range_and_reads_continue_it() {
        let mut ra = read_ahead(1024 * MIB);
        assert_eq!(ra.start_whole(16 * MIB), Some(0..16));
        // Started once only.
        assert_eq!(ra.start_whole(16 * MIB), None);
        // The READs that follow are sequential and continue after the first range.
        let first = ra.on_read(0, 128 * KIB);
        assert!(first.sequential);
        assert_eq!(first.prefetch.map(|r| r.start), Some(16));
        assert!(ra.on_read(128 * KIB, 256 * KIB).sequential);

        // A file smaller than the first range is fetched whole; an empty one not at all.
        let mut small = read_ahead(3 * MIB + 5);
        assert_eq!(small.start_whole(16 * MIB), Some(0..4));
        assert_eq!(read_ahead(0).start_whole(16 * MIB), None);
        // A file read before is not started again.
        let mut read = read_ahead(100 * MIB);
        read.on_read(0, 4 * KIB);
        assert_eq!(read.start_whole(16 * MIB), None);
    }

    #[test]
    fn a_first_read_elsewhere_after_a_whole_start_is_a_jump() {
        let mut ra = read_ahead(1024 * MIB);
        ra.start_whole(16 * MIB);
        let decision = ra.on_read(500 * MIB, 500 * MIB + 4 * KIB);
        assert!(!decision.sequential);
        assert_eq!(ra.window, 0);
    }

    #[test]
    fn jump_resets_the_window() {
        let mut ra = read_ahead(1024 * MIB);
        ra.on_read(0, MIB);
        ra.on_read(MIB, 2 * MIB);
        ra.on_read(2 * MIB, 3 * MIB);
        assert!(ra.window >= 4 * MIB);
        let decision = ra.on_read(500 * MIB, 500 * MIB + 4 * KIB);
        assert!(!decision.sequential);
        assert_eq!(decision.prefetch, None);
        assert_eq!(ra.window, 0);
        // Continuing from the new place starts a fresh, small window there.
        let next = ra.on_read(500 * MIB + 4 * KIB, 500 * MIB + 8 * KIB);
        assert_eq!(next.prefetch, Some(501..503));
    }

    #[test]
    fn slightly_out_of_order_reads_stay_sequential() {
        let mut ra = read_ahead(1024 * MIB);
        ra.on_read(0, 128 * KIB);
        assert!(ra.on_read(256 * KIB, 384 * KIB).sequential);
        assert!(ra.on_read(128 * KIB, 256 * KIB).sequential);
        assert!(ra.on_read(384 * KIB, 512 * KIB).sequential);
    }

    #[test]
    fn rereading_the_same_bytes_reads_nothing_ahead() {
        let mut ra = read_ahead(1024 * MIB);
        for _ in 0..10 {
            let decision = ra.on_read(0, 4 * KIB);
            assert_eq!(decision.prefetch, None);
        }
        assert_eq!(ra.window, 0);
    }

    #[test]
    fn zero_window_means_no_read_ahead() {
        let geometry = Geometry {
            block_size: MIB,
            size: 100 * MIB,
        };
        let mut ra = ReadAhead::new(geometry, 0, 8 * MIB);
        ra.on_read(0, MIB);
        assert_eq!(ra.on_read(MIB, 2 * MIB).prefetch, None);
    }
}
