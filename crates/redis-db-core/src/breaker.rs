//! One circuit breaker per database (aliases share their target's).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_db_config::CircuitBreaker as Settings;
use serde::Serialize;

use crate::lock::lock;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Consecutive connection-level failures open it; after `reset_timeout` one probe is let through;
/// the probe's success closes it, its failure opens it again. Counted per call, not per attempt.
#[derive(Debug)]
pub(crate) struct Breaker {
    settings: Settings,
    /// Read on every call without locking; transitions happen under `opened_at`'s lock.
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    openings: AtomicU64,
    opened_at: Mutex<Option<Instant>>,
}

/// Why a call may not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub failures: u32,
    pub retry_in: Duration,
}

/// Leave to make one call. A half-open probe that is dropped without an outcome (its future was
/// cancelled) re-opens the circuit for an immediate new probe instead of wedging it half-open.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

/// A transition worth telling the operator about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Opened { failures: u32 },
    HalfOpened,
    Closed,
}

impl Breaker {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            state: AtomicU8::new(CLOSED),
            consecutive_failures: AtomicU32::new(0),
            openings: AtomicU64::new(0),
            opened_at: Mutex::new(None),
        }
    }

    pub fn state(&self) -> CircuitState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => CircuitState::Closed,
            OPEN => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    pub fn openings(&self) -> u64 {
        self.openings.load(Ordering::Relaxed)
    }

    /// Lets a call through, or says why not. `now` is read only when the circuit is not closed
    /// (a clock read costs about as much as the rest of the check), and is a parameter so that
    /// tests need no sleeps.
    pub fn try_acquire(
        &self,
        now: impl FnOnce() -> Instant,
    ) -> Result<(Permit<'_>, Option<Transition>), Rejected> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok((self.permit(false), None));
        }
        let now = now();
        let mut opened_at = lock(&self.opened_at);
        match self.state.load(Ordering::Acquire) {
            CLOSED => Ok((self.permit(false), None)),
            OPEN => {
                let since = opened_at.map_or(self.settings.reset_timeout, |t| {
                    now.saturating_duration_since(t)
                });
                if since >= self.settings.reset_timeout {
                    self.state.store(HALF_OPEN, Ordering::Release);
                    *opened_at = Some(now);
                    Ok((self.permit(true), Some(Transition::HalfOpened)))
                } else {
                    Err(self.rejected(self.settings.reset_timeout - since))
                }
            }
            _ => Err(self.rejected(Duration::ZERO)),
        }
    }

    fn permit(&self, probe: bool) -> Permit<'_> {
        Permit {
            breaker: self,
            probe,
            settled: false,
        }
    }

    fn rejected(&self, retry_in: Duration) -> Rejected {
        Rejected {
            failures: self.consecutive_failures.load(Ordering::Relaxed),
            retry_in,
        }
    }

    fn on_success(&self) -> Option<Transition> {
        // Only written when it changes: a store on every call would bounce the cache line.
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.state.load(Ordering::Acquire) == CLOSED {
            return None;
        }
        let mut opened_at = lock(&self.opened_at);
        *opened_at = None;
        (self.state.swap(CLOSED, Ordering::AcqRel) != CLOSED).then_some(Transition::Closed)
    }

    fn on_failure(&self, now: Instant, probe: bool) -> Option<Transition> {
        let failures = self
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if !probe && failures < self.settings.failure_threshold {
            return None;
        }
        let mut opened_at = lock(&self.opened_at);
        let previous = self.state.swap(OPEN, Ordering::AcqRel);
        *opened_at = Some(now);
        if previous == OPEN {
            return None;
        }
        self.openings.fetch_add(1, Ordering::Relaxed);
        Some(Transition::Opened { failures })
    }
}

/// Tells the operator about a transition of `database`'s circuit.
pub(crate) fn log_transition(database: &str, transition: Option<Transition>) {
    match transition {
        None => {}
        Some(Transition::Opened { failures }) => {
            tracing::warn!(database, failures, "redis-db: circuit opened")
        }
        Some(Transition::HalfOpened) => {
            tracing::info!(database, "redis-db: circuit half-open, probing")
        }
        Some(Transition::Closed) => tracing::info!(database, "redis-db: circuit closed"),
    }
}

impl Permit<'_> {
    /// The call reached the server and got an answer (even a command error).
    pub fn succeeded(mut self) -> Option<Transition> {
        self.settled = true;
        self.breaker.on_success()
    }

    /// The call failed at connection level after its retries.
    pub fn failed(mut self, now: Instant) -> Option<Transition> {
        self.settled = true;
        self.breaker.on_failure(now, self.probe)
    }

    /// The call ended without telling anything about the server (e.g. readiness wait ran out).
    pub fn neutral(mut self) {
        self.settled = true;
        if self.probe {
            self.reopen_for_next_probe();
        }
    }

    fn reopen_for_next_probe(&self) {
        let mut opened_at = lock(&self.breaker.opened_at);
        if self.breaker.state.load(Ordering::Acquire) == HALF_OPEN {
            self.breaker.state.store(OPEN, Ordering::Release);
            *opened_at = None;
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.reopen_for_next_probe();
        }
    }
}

/// Circuit breaker state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls pass.
    #[default]
    Closed,
    /// Calls fail at once.
    Open,
    /// One probe call is in flight.
    HalfOpen,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, reset_ms: u64) -> Breaker {
        Breaker::new(Settings {
            failure_threshold: threshold,
            reset_timeout: Duration::from_millis(reset_ms),
        })
    }

    fn fail(b: &Breaker, now: Instant) -> Option<Transition> {
        let (permit, _) = b.try_acquire(|| now).expect("permit");
        permit.failed(now)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = breaker(3, 1000);
        let t0 = Instant::now();
        assert_eq!(fail(&b, t0), None);
        assert_eq!(fail(&b, t0), None);
        assert_eq!(fail(&b, t0), Some(Transition::Opened { failures: 3 }));
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.openings(), 1);
        let rejected = b
            .try_acquire(|| t0 + Duration::from_millis(400))
            .unwrap_err();
        assert_eq!(rejected.retry_in, Duration::from_millis(600));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker(2, 1000);
        let t0 = Instant::now();
        fail(&b, t0);
        b.try_acquire(|| t0).unwrap().0.succeeded();
        assert_eq!(fail(&b, t0), None);
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn one_probe_after_reset_timeout_and_its_success_closes() {
        let b = breaker(1, 1000);
        let t0 = Instant::now();
        fail(&b, t0);
        let later = t0 + Duration::from_millis(1000);
        let (probe, transition) = b.try_acquire(|| later).unwrap();
        assert_eq!(transition, Some(Transition::HalfOpened));
        assert!(
            b.try_acquire(|| later).is_err(),
            "only one probe while half-open"
        );
        assert_eq!(probe.succeeded(), Some(Transition::Closed));
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_for_a_full_reset_timeout() {
        let b = breaker(1, 1000);
        let t0 = Instant::now();
        fail(&b, t0);
        let t1 = t0 + Duration::from_millis(1500);
        let (probe, _) = b.try_acquire(|| t1).unwrap();
        assert_eq!(probe.failed(t1), Some(Transition::Opened { failures: 2 }));
        assert_eq!(b.openings(), 2);
        assert!(b.try_acquire(|| t1 + Duration::from_millis(999)).is_err());
        assert!(b.try_acquire(|| t1 + Duration::from_millis(1000)).is_ok());
    }

    #[test]
    fn a_dropped_probe_does_not_wedge_the_breaker_half_open() {
        let b = breaker(1, 1000);
        let t0 = Instant::now();
        fail(&b, t0);
        let t1 = t0 + Duration::from_millis(1000);
        drop(b.try_acquire(|| t1).unwrap());
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.try_acquire(|| t1).is_ok(), "next probe allowed at once");
    }
}
