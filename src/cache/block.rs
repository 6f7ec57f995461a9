//! Blocks: the unit the cache stores, and the arithmetic between bytes and blocks.
//!
//! An object (one version of one attachment) is cut into blocks of a fixed size, the last one
//! shorter. A block is named by the object's identity *and* its index, never by a path or a
//! file name, so bytes of one version can never answer for another (docs/DESIGN.md tenet 4). All the
//! offset arithmetic lives here, in one small type, so that the rest of the cache counts in
//! whole blocks and the off-by-one cases (the short last block, reads past EOF) are tested once.

use std::ops::Range;
use std::sync::Arc;

use super::ObjectKey;

/// One block of one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BlockKey {
    pub object: Arc<ObjectKey>,
    pub index: u64,
}

/// How an object of `size` bytes is cut into blocks of `block_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub block_size: u64,
    pub size: u64,
}

impl Geometry {
    pub(crate) fn block_count(&self) -> u64 {
        self.size.div_ceil(self.block_size)
    }

    pub(crate) fn block_start(&self, index: u64) -> u64 {
        index * self.block_size
    }

    /// Length of block `index`: `block_size`, except for the last block.
    pub(crate) fn block_len(&self, index: u64) -> u64 {
        let start = self.block_start(index);
        self.block_size.min(self.size.saturating_sub(start))
    }

    /// The blocks that hold bytes `[offset, end)`; empty when the range is.
    pub(crate) fn blocks_for(&self, offset: u64, end: u64) -> Range<u64> {
        let end = end.min(self.size);
        if offset >= end {
            return 0..0;
        }
        offset / self.block_size..end.div_ceil(self.block_size)
    }

    /// The bytes of a run of blocks, as (offset, length).
    pub(crate) fn byte_range(&self, blocks: &Range<u64>) -> (u64, u64) {
        let start = self.block_start(blocks.start);
        let end = (self.block_start(blocks.end)).min(self.size);
        (start, end.saturating_sub(start))
    }
}

/// Cuts a run of blocks into requests of at most `max_blocks` blocks each.
pub(crate) fn requests(run: Range<u64>, max_blocks: u64) -> impl Iterator<Item = Range<u64>> {
    let max_blocks = max_blocks.max(1);
    (run.start..run.end)
        .step_by(max_blocks as usize)
        .map(move |start| start..(start + max_blocks).min(run.end))
}

/// Groups ascending block indexes into runs of consecutive ones.
pub(crate) fn runs(indexes: impl IntoIterator<Item = u64>) -> Vec<Range<u64>> {
    let mut runs: Vec<Range<u64>> = Vec::new();
    for index in indexes {
        match runs.last_mut() {
            Some(run) if run.end == index => run.end += 1,
            _ => runs.push(index..index + 1),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Geometry = Geometry {
        block_size: 10,
        size: 35,
    };

    #[test]
    fn last_block_is_short() {
        assert_eq!(G.block_count(), 4);
        assert_eq!(G.block_len(0), 10);
        assert_eq!(G.block_len(3), 5);
        assert_eq!(G.block_len(4), 0);
        let exact = Geometry {
            block_size: 10,
            size: 30,
        };
        assert_eq!(exact.block_count(), 3);
        assert_eq!(exact.block_len(2), 10);
    }

    #[test]
    fn blocks_for_a_range() {
        assert_eq!(G.blocks_for(0, 10), 0..1);
        assert_eq!(G.blocks_for(9, 11), 0..2);
        assert_eq!(G.blocks_for(10, 20), 1..2);
        assert_eq!(G.blocks_for(30, 100), 3..4);
        assert_eq!(G.blocks_for(35, 100), 0..0);
        assert_eq!(G.blocks_for(5, 5), 0..0);
    }

    #[test]
    fn byte_range_stops_at_eof() {
        assert_eq!(G.byte_range(&(1..3)), (10, 20));
        assert_eq!(G.byte_range(&(2..4)), (20, 15));
    }

    #[test]
    fn runs_and_requests() {
        assert_eq!(runs([1, 2, 3, 5, 7, 8]), vec![1..4, 5..6, 7..9]);
        assert!(runs([]).is_empty());
        let cut: Vec<_> = requests(0..7, 3).collect();
        assert_eq!(cut, vec![0..3, 3..6, 6..7]);
    }
}
