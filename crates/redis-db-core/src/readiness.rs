//! Waiting out a server that is still loading its dataset (`LOADING`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::{ErrorKind, ServerErrorKind};

use crate::lane::Lane;

/// Per-target readiness gate. Calls pass it with one atomic load while the server is ready;
/// once a call sees `LOADING`, later calls wait here too, and one of them probes for all.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    loading: AtomicBool,
    prober: tokio::sync::Mutex<()>,
}

/// The wait ran past its deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StillLoading;

impl Readiness {
    pub fn mark_loading(&self) {
        if !self.loading.swap(true, Ordering::AcqRel) {
            tracing::warn!("redis-db: server is loading its dataset; waiting for it");
        }
    }

    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// Returns once a probe `PING` is answered without `LOADING`, or `StillLoading` at `deadline`.
    /// A probe that times out or cannot connect counts as not ready yet: a loading server may not
    /// answer at all for a while.
    pub async fn wait(
        &self,
        lane: &Lane,
        poll_interval: Duration,
        probe_timeout: Duration,
        deadline: Instant,
    ) -> Result<(), StillLoading> {
        if !self.is_loading() {
            return Ok(());
        }
        let _probing = tokio::time::timeout_at(deadline.into(), self.prober.lock())
            .await
            .map_err(|_| StillLoading)?;
        loop {
            if !self.is_loading() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StillLoading);
            }
            let budget = probe_timeout.min(deadline - now);
            if probe(lane, budget).await {
                self.loading.store(false, Ordering::Release);
                tracing::info!("redis-db: server finished loading");
                return Ok(());
            }
            let next = Instant::now() + poll_interval;
            if next >= deadline {
                tokio::time::sleep_until(deadline.into()).await;
                return Err(StillLoading);
            }
            tokio::time::sleep_until(next.into()).await;
        }
    }
}

/// One readiness probe: true when the server answers anything but `LOADING`.
async fn probe(lane: &Lane, budget: Duration) -> bool {
    match tokio::time::timeout(budget, lane.ping()).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            e.kind() != ErrorKind::Server(ServerErrorKind::BusyLoading) && !e.is_io_error()
        }
        Err(_elapsed) => false,
    }
}
