//! Hands the memory the allocator keeps free back to the OS, every few seconds.
//!
//! glibc's malloc keeps freed memory for reuse, and above a dynamic threshold it stops
//! giving the top of a heap back. A short stall under load (a slow disk, a checkpoint)
//! queues thousands of packets and writes; once they are freed, that memory stays
//! resident as free chunks, and the process's RSS grows in steps although nothing is
//! leaked (the soak in bench/README.md). `malloc_trim(0)` releases the free pages of
//! every arena (the heap stays as it is, only unused pages go back).

use std::time::Duration;

/// How often free memory is handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Runs until dropped: hands free memory back every [`TRIM_EVERY`], on a blocking
/// thread (it takes the allocator's locks for a moment). Does nothing where the
/// allocator is not glibc's.
pub async fn release_free_memory_periodically() {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = tokio::task::spawn_blocking(release_free_memory).await {
            tracing::warn!(error = %e, "handing free memory back failed");
        }
    }
}

/// Hands the allocator's free pages back to the OS now; returns whether any went back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim has no preconditions: it walks glibc's own arenas under their
    // locks and returns free pages with madvise.
    unsafe { libc::malloc_trim(0) != 0 }
}

/// Hands the allocator's free pages back to the OS now; returns whether any went back.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("readable");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    #[test]
    fn freed_memory_held_by_the_allocator_goes_back_to_the_os() {
        // 48 MiB in small blocks, touched; every 16th is kept, so the freed ones are
        // holes the allocator cannot give back by shrinking its heap from the top:
        // they stay resident until they are trimmed.
        let mut blocks: Vec<Vec<u8>> = (0..12 * 1024).map(|i| vec![i as u8 | 1; 4096]).collect();
        let kept: Vec<Vec<u8>> = blocks.iter_mut().step_by(16).map(std::mem::take).collect();
        drop(blocks);
        let before = rss_kib();
        assert!(release_free_memory(), "something was handed back");
        let after = rss_kib();
        assert!(
            before.saturating_sub(after) >= 24 * 1024,
            "RSS {before} KiB -> {after} KiB"
        );
        drop(kept);
    }
}
