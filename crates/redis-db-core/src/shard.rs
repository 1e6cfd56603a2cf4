//! Which shard of a per-thread structure the current thread uses: the per-call figures
//! (`stats.rs`) are split so that the workers of a runtime rarely write the same cache line.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many shards a per-thread structure has.
pub(crate) const SHARDS: usize = 8;

/// This thread's shard, picked once per thread.
pub(crate) fn index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|index| *index)
}
