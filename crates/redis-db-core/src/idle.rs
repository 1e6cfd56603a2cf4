//! Closing idle connections in the background: pooled exclusive connections unused for
//! `idle_timeout`, and a shared lane no call used for as long.

use std::sync::Weak;
use std::time::Duration;

use crate::database::Inner;

/// Runs until the client is dropped (the task is aborted then; the `Weak` also ends it).
pub(crate) async fn reap(inner: Weak<Inner>, idle_timeout: Duration) {
    let tick = (idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let idle_ms = idle_timeout.as_millis() as u64;
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = inner.upgrade() else { return };
        for target in inner.targets() {
            let removed = target
                .pool()
                .retain(|_, metrics| metrics.last_used() < idle_timeout)
                .removed
                .len();
            let lane_closed = target.lane().close_if_idle(idle_ms);
            if removed > 0 || lane_closed {
                tracing::debug!(database = %target.name(), pooled = removed, shared = lane_closed, "redis-db: closed idle connections");
            }
        }
    }
}
