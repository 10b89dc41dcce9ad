//! glibc's allocator as tete wants it: a larger per-thread cache of free chunks (set at
//! start), and the memory it keeps free handed back to the OS every few seconds.
//!
//! glibc's malloc keeps freed memory for reuse, and above a dynamic threshold it stops
//! giving the top of a heap back. A short stall under load (a slow disk, a checkpoint)
//! queues thousands of packets and writes; once they are freed, that memory stays
//! resident as free chunks, and the process's RSS grows in steps although nothing is
//! leaked (the soak in bench/README.md). `malloc_trim(0)` releases the free pages of
//! every arena (the heap stays as it is, only unused pages go back).

use std::time::Duration;

/// glibc's tunable for how many free chunks of each size a thread keeps for reuse.
pub const TCACHE_TUNABLE: &str = "glibc.malloc.tcache_count";
/// tete's value for [`TCACHE_TUNABLE`] (glibc's default is 7).
pub const TCACHE_COUNT: u32 = 64;

/// Starts this program again, once, with glibc's per-thread cache of free chunks
/// holding [`TCACHE_COUNT`] chunks of each size instead of 7 (docs/decisions.md).
///
/// A message's strings are allocated as it arrives and freed when its batch has been
/// answered, a few hundred messages later: with room for only 7 of each size, most
/// frees and allocations missed the cache and went through malloc's bins (callgrind,
/// flood: 23.3k → 22.0k instructions per message with 64). glibc reads the setting
/// only when a program starts, from `GLIBC_TUNABLES`, so the process image is replaced
/// (same pid, arguments and descriptors) with it added. Nothing happens when
/// `GLIBC_TUNABLES` already names it (whoever started tete chose, or this is the
/// restart) or cannot be read; if the restart fails, tete goes on as it is. Call it
/// first thing, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn restart_with_larger_malloc_cache() {
    use std::os::unix::process::CommandExt;

    let current = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
    let Some(current) = current.to_str() else {
        return;
    };
    if current.contains(TCACHE_TUNABLE) {
        return;
    }
    let tunables = if current.is_empty() {
        format!("{TCACHE_TUNABLE}={TCACHE_COUNT}")
    } else {
        format!("{TCACHE_TUNABLE}={TCACHE_COUNT}:{current}")
    };
    let mut args = std::env::args_os();
    let Some(program) = args.next() else {
        return;
    };
    // `exec` returns only if the program could not be started again.
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(program)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    eprintln!("tete: going on with glibc's default malloc cache: {error}");
}

/// Does nothing where the allocator is not glibc's.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn restart_with_larger_malloc_cache() {}

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
