//! Keeping freed block buffers for reuse instead of handing them back to the kernel.
//!
//! The block cache allocates a 1 MiB buffer per block and frees one for every block moka
//! evicts, hundreds per second during a large read. glibc serves allocations that large with
//! fresh `mmap`s, or trims the heap top it just freed, so each new buffer was faulted in and
//! zeroed by the kernel page by page: measured, `clear_page` and the page-fault path took 17 %
//! of the mount's CPU during a cold 1 GiB read. Raising the mmap and trim thresholds above the
//! block and request sizes keeps freed buffers in the heap, where the next block reuses them.
//! The memory stays bounded by the caches' bounds; it is just not returned between blocks.
//! It is returned when the inode table shrinks by a walk's worth of entries
//! ([`give_back_free_memory`]): their small allocations are spread over the heap, and without
//! it a mount that walked 200,000 files kept the walk's peak RSS after forgetting them.

/// Allocations below this come from the heap (blocks are 1 MiB, range requests 4 MiB).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the heap top kept rather than returned to the kernel.
const TRIM_THRESHOLD: i32 = 64 << 20;

/// Applies the thresholds (glibc only; elsewhere the allocator's defaults stand).
pub fn keep_block_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning parameters; it is called once at
    // start, before the runtime's threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Inodes dropped in one collection past which the freed memory is handed back.
pub const TRIM_AFTER_INODES: usize = 10_000;

/// Hands the heap's free pages back to the kernel (`malloc_trim`), keeping the trim threshold
/// at the top: after the inode table shrinks by a walk's worth of entries, whose small
/// allocations are spread over the heap, so that the mount's RSS comes down with it.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the heap to the kernel; it takes the
    // allocator's own locks.
    unsafe {
        libc::malloc_trim(TRIM_THRESHOLD as usize);
    }
}
