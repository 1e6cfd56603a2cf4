//! Waiting out a server that is still loading its dataset (`LOADING`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// Per-target readiness gate. Calls pass it with one atomic load while the server is ready;
/// once a call sees `LOADING`, later calls wait here too, and one of them probes for all.
///
/// The probe is `PING`. A least-privilege ACL user may not run it, and the server checks ACLs
/// before `LOADING` (measured on Redis 7.0.15: `NOPERM` for PING, `LOADING` for a permitted
/// GET during the same load), so a refused probe says that the server answers, not that it has
/// finished loading. Then the calls' own commands are the probe: the wait sleeps one
/// `poll_interval` and lets the call send again (a `LOADING` reply means the server did not run
/// it, so this is safe for writes too); a call that sees `LOADING` again comes back here.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    loading: AtomicBool,
    /// The user may not `PING` (`NOPERM`): probes cannot tell loading from ready.
    ping_refused: AtomicBool,
    prober: tokio::sync::Mutex<()>,
}

/// What one probe learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// Answered without `LOADING`.
    Ready,
    /// `LOADING`, a timeout or no connection.
    NotReady,
    /// Answered `NOPERM`: up, but whether it still loads is unknown.
    Refused,
}

/// The wait ran past its deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StillLoading;

impl Readiness {
    pub fn mark_loading(&self) {
        if !self.loading.swap(true, Ordering::AcqRel) {
            if self.ping_refused() {
                // Marked again at every poll while the calls probe for a PING-less user.
                tracing::debug!("redis-db: server is loading its dataset; waiting for it");
            } else {
                tracing::warn!("redis-db: server is loading its dataset; waiting for it");
            }
        }
    }

    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// Whether a probe was refused with `NOPERM` (a user without `+ping`).
    pub fn ping_refused(&self) -> bool {
        self.ping_refused.load(Ordering::Relaxed)
    }

    /// Records a `NOPERM` answer to a probe; logs the first one.
    pub fn note_ping_refused(&self) {
        if !self.ping_refused.swap(true, Ordering::Relaxed) {
            tracing::debug!(
                "redis-db: the ACL user may not run PING; readiness waits use the calls' own commands as probes, and health reports only that the server answers"
            );
        }
    }

    /// Returns once a probe `PING` (`ping`) is answered without `LOADING`, or `StillLoading` at `deadline`.
    /// A probe that times out or cannot connect counts as not ready yet: a loading server may not
    /// answer at all for a while.
    pub async fn wait<Ping, Fut>(
        &self,
        ping: &mut Ping,
        poll_interval: Duration,
        probe_timeout: Duration,
        deadline: Instant,
    ) -> Result<(), StillLoading>
    where
        Ping: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), RedisError>>,
    {
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
            let outcome = probe(ping(), budget).await;
            if outcome == Probe::Ready {
                self.loading.store(false, Ordering::Release);
                tracing::info!("redis-db: server finished loading");
                return Ok(());
            }
            if outcome == Probe::Refused {
                self.note_ping_refused();
            }
            let next = Instant::now() + poll_interval;
            if next >= deadline {
                tokio::time::sleep_until(deadline.into()).await;
                return Err(StillLoading);
            }
            tokio::time::sleep_until(next.into()).await;
            if outcome == Probe::Refused {
                // Paced by `poll_interval`, the caller's own command finds out: it clears the
                // gate, and marks it again if it gets `LOADING`.
                self.loading.store(false, Ordering::Release);
                return Ok(());
            }
        }
    }
}

/// Whether a probe's error is the ACL refusing the command (`NOPERM`): the server answered.
pub(crate) fn is_refused(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::NoPerm)
}

/// One readiness probe: `ping` (the shared lane's `PING`) within `budget`.
async fn probe(
    ping: impl std::future::Future<Output = Result<(), RedisError>>,
    budget: Duration,
) -> Probe {
    match tokio::time::timeout(budget, ping).await {
        Ok(Ok(_)) => Probe::Ready,
        Ok(Err(e)) if is_refused(&e) => Probe::Refused,
        Ok(Err(e)) if e.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading) => {
            Probe::NotReady
        }
        Ok(Err(e)) if e.is_io_error() => Probe::NotReady,
        Ok(Err(_)) => Probe::Ready,
        Err(_elapsed) => Probe::NotReady,
    }
}

/// Whether an error of the connect-time `PING` (`Core::connect`) is the ACL refusing it: the
/// server answered, so `connect()` may go on for a least-privilege user (its first calls then
/// meet any `LOADING` in the call path's own wait).
pub(crate) fn refused_at_connect(error: &crate::Error) -> bool {
    matches!(error, crate::Error::Command { source, .. } if is_refused(source))
}
