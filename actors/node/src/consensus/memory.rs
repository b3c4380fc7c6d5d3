//! Giving the heap memory a log compaction freed back to the operating system.
//!
//! The log's entries are small allocations (one per entry, typically well under glibc's 128 KiB
//! mmap threshold) spread over malloc's arenas, interleaved with long-lived ones. When a
//! compaction drops hundreds of thousands of them, glibc keeps the freed chunks for reuse and only
//! returns memory at the very top of an arena, so the process's RSS does not go down (measured:
//! `verisim-bench log-memory`, docs/benchmarks.md). `malloc_trim(0)` walks every arena and
//! `madvise(MADV_DONTNEED)`s each whole free page, which is what "the memory is actually freed"
//! needs. It runs once per compaction (so once per snapshot), on a blocking thread.

/// Returns free heap pages to the OS (glibc on Linux; nothing elsewhere).
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    trim();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena in turn); its
    // result only says whether memory was released.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(released = released != 0, "malloc_trim after log compaction");
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_after_freeing_a_large_heap_does_not_disturb_live_data() {
        let keep: Vec<Vec<u8>> = (0..1000).map(|i| vec![i as u8; 1024]).collect();
        let drop_me: Vec<Vec<u8>> = (0..100_000).map(|i| vec![i as u8; 1024]).collect();
        drop(drop_me);
        super::release_freed_heap();
        assert!(
            keep.iter()
                .enumerate()
                .all(|(i, v)| v.iter().all(|&b| b == i as u8))
        );
    }
}
