//! How big everything is, in one struct with the defaults next to it.
//!
//! The figures follow the kernel (docs/FUSE-NOTES.md §5): READs are 128 KiB with default readahead and
//! at most 1 MiB, so a 1 MiB block serves several READs per fetch and a READ never spans more
//! than two blocks. Range requests of up to 4 MiB keep the per-request overhead of HTTP small
//! against the bytes moved; four of them in flight and a 32 MiB window keep a link with 20 ms
//! of round trip busy at several hundred MB/s (its bandwidth-delay product is ~10 MB) without
//! letting one open file hold much memory: measured, peak RSS is the memory cache plus 60–80
//! MiB, where 8 MiB requests and a 64 MiB window were no faster and held more. A file read
//! from its start is fetched whole in one request when it is at most 16 MiB: at 10 ms of latency, starting at
//! open made a 16 MiB `cat` as fast as `curl` (0.70× before) with any first range from 1 to 16
//! MiB, and 16 MiB does it in one request instead of 3 to 7 (docs/BENCHMARKS.md).

use std::path::PathBuf;

use super::CacheError;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// The sizes and limits of the block cache; `Default` gives the defaults named on each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Size of a cached block; the last block of an object is shorter. Default 1 MiB.
    pub block_size: u64,
    /// Bound of the in-memory cache, in bytes of block data. Default 256 MiB.
    pub memory_bytes: u64,
    /// Where blocks are kept across mounts; `None` keeps them in memory only.
    pub disk_dir: Option<PathBuf>,
    /// Bound of the disk cache, in bytes of block files. Default 10 GiB.
    pub disk_bytes: u64,
    /// Largest sequential read-ahead window. Default 32 MiB.
    pub max_prefetch_bytes: u64,
    /// Largest single range request. Default 4 MiB.
    pub max_request_bytes: u64,
    /// Read-ahead requests in flight per open file. Default 4.
    pub max_parallel_fetches: usize,
    /// A file read from its start is fetched in one request up to this size (and a larger
    /// one's first range is this long), instead of ramping up from two blocks; never more
    /// than `max_prefetch_bytes`, so it stays inside the read-ahead window's memory bound.
    /// Default 16 MiB; 0 turns it off.
    pub whole_file_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            block_size: MIB,
            memory_bytes: 256 * MIB,
            disk_dir: None,
            disk_bytes: 10 * GIB,
            max_prefetch_bytes: 32 * MIB,
            max_request_bytes: 4 * MIB,
            max_parallel_fetches: 4,
            whole_file_bytes: 16 * MIB,
        }
    }
}

impl CacheConfig {
    /// Refuses what cannot work and rounds the rest to whole blocks, so that the other modules
    /// can count in blocks without re-checking.
    pub(crate) fn validated(mut self) -> Result<CacheConfig, CacheError> {
        // moka weighs entries with a u32, so a block must fit in one.
        if self.block_size == 0 || self.block_size > u64::from(u32::MAX) {
            return Err(CacheError::Config(format!(
                "block size {} is not between 1 byte and 4 GiB",
                self.block_size
            )));
        }
        if self.max_parallel_fetches == 0 {
            return Err(CacheError::Config(
                "at least one fetch per file must be allowed".into(),
            ));
        }
        // At least one block per request, else nothing could ever be fetched.
        self.max_request_bytes =
            (self.max_request_bytes / self.block_size).max(1) * self.block_size;
        // A window of zero would turn read-ahead off; that is a legitimate choice.
        self.max_prefetch_bytes = (self.max_prefetch_bytes / self.block_size) * self.block_size;
        self.whole_file_bytes = (self.whole_file_bytes / self.block_size * self.block_size)
            .min(self.max_prefetch_bytes);
        Ok(self)
    }

    /// What the memory tier itself may hold: `memory_bytes` less what a reader holds outside
    /// it (its read-ahead window and the ranges in flight), so that the option bounds the block
    /// data in memory as a whole — but never less than half of it.
    pub(crate) fn memory_tier_bytes(&self) -> u64 {
        let outside =
            self.max_prefetch_bytes + self.max_request_bytes * self.max_parallel_fetches as u64;
        self.memory_bytes
            .saturating_sub(outside)
            .max(self.memory_bytes / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_block_size_is_refused() {
        let config = CacheConfig {
            block_size: 0,
            ..CacheConfig::default()
        };
        assert!(matches!(config.validated(), Err(CacheError::Config(_))));
    }

    #[test]
    fn request_size_is_rounded_to_whole_blocks() {
        let config = CacheConfig {
            block_size: 1000,
            max_request_bytes: 2500,
            max_prefetch_bytes: 10_500,
            ..CacheConfig::default()
        }
        .validated()
        .unwrap();
        assert_eq!(config.max_request_bytes, 2000);
        assert_eq!(config.max_prefetch_bytes, 10_000);
        // The whole-file first range stays inside the read-ahead window.
        assert_eq!(config.whole_file_bytes, 10_000);

        let tiny = CacheConfig {
            block_size: 1000,
            max_request_bytes: 10,
            ..CacheConfig::default()
        }
        .validated()
        .unwrap();
        assert_eq!(tiny.max_request_bytes, 1000);
    }

    #[test]
    fn the_memory_bound_includes_one_readers_window() {
        let config = CacheConfig::default().validated().unwrap();
        // 256 MiB less a 32 MiB window and 4 × 4 MiB in flight.
        assert_eq!(config.memory_tier_bytes(), 208 * MIB);
        let small = CacheConfig {
            memory_bytes: 40 * MIB,
            ..CacheConfig::default()
        };
        assert_eq!(small.memory_tier_bytes(), 20 * MIB);
        let off = CacheConfig {
            memory_bytes: 0,
            ..CacheConfig::default()
        };
        assert_eq!(off.memory_tier_bytes(), 0);
    }
}
