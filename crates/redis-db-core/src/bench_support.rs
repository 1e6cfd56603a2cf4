//! Not a public API: hooks for `benches/compare.rs` to time the per-call layer on its own, without
//! a server. Nothing here is covered by semver; the types it drives stay crate-private.
//!
//! [`CallLayer::call`] does, in the same order, the work `Inner::run` and `run_guarded` add to
//! every successful call on top of the send itself: the command's traits, the clock reads, the
//! breaker permit and its success, the readiness check, the attempt deadline and the stats
//! record (the retry schedule is built only on a first retry). The shared lane's `get()` and the per-attempt `tokio::time::timeout`
//! need a live connection and a runtime, so they are measured by the end-to-end comparison.

use std::hint::black_box;
use std::time::{Duration, Instant};

use redis::Cmd;
use redis_db_config::{CircuitBreaker, Retry};

use crate::breaker::Breaker;
use crate::command::CommandTraits;
use crate::readiness::Readiness;
use crate::retry;
use crate::stats::Counters;

/// One target's per-call state (breaker, readiness gate, counters), with default settings.
pub struct CallLayer {
    breaker: Breaker,
    readiness: Readiness,
    counters: Counters,
    retry: Retry,
    timeout: Duration,
}

impl Default for CallLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CallLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLayer").finish_non_exhaustive()
    }
}

impl CallLayer {
    /// The documented defaults: breaker threshold 5 / reset 60 s, 3 retries from 1 s, timeout 5 s.
    pub fn new() -> Self {
        Self {
            breaker: Breaker::new(CircuitBreaker {
                failure_threshold: 5,
                reset_timeout: Duration::from_secs(60),
            }),
            readiness: Readiness::default(),
            counters: Counters::new(),
            retry: Retry {
                attempts: 3,
                delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
            },
            timeout: Duration::from_secs(5),
        }
    }

    /// The whole per-call layer of one successful call, as `Inner::run` does it.
    pub fn call(&self, cmd: &Cmd) -> bool {
        let traits = CommandTraits::of_cmd(cmd);
        let started = Instant::now();
        if traits.needs_exclusive {
            return false;
        }
        let Ok((permit, transition)) = self.breaker.try_acquire(Instant::now) else {
            return false;
        };
        black_box(transition);
        let deadline = traits.deadline(self.timeout);
        if self.readiness.is_loading() {
            return false;
        }
        black_box(deadline);
        black_box(permit.succeeded());
        self.counters.record_call(started.elapsed(), None);
        traits.read_only
    }

    /// `CommandTraits::of_cmd` alone (the command's name, read-only, blocking, exclusive facts).
    pub fn traits(&self, cmd: &Cmd) -> bool {
        let traits = CommandTraits::of_cmd(black_box(cmd));
        black_box(&traits);
        traits.read_only
    }

    /// The breaker alone: `try_acquire` on a closed circuit, then `succeeded`.
    pub fn breaker(&self) -> bool {
        match self.breaker.try_acquire(Instant::now) {
            Ok((permit, transition)) => {
                black_box(transition);
                black_box(permit.succeeded());
                true
            }
            Err(_) => false,
        }
    }

    /// The readiness gate alone: one atomic load while the server is ready.
    pub fn readiness(&self) -> bool {
        black_box(&self.readiness).is_loading()
    }

    /// Building the retry schedule (done on a call's first retry only).
    pub fn backoff(&self) {
        drop(black_box(retry::backoff(black_box(&self.retry))));
    }

    /// The stats record alone (counter, latency histogram under its mutex).
    pub fn record(&self, elapsed: Duration) {
        self.counters.record_call(black_box(elapsed), None);
    }

    /// The two clock reads a call makes (start of the call, breaker `now`) and one `elapsed`.
    pub fn clock(&self) -> Duration {
        let started = Instant::now();
        black_box(Instant::now());
        started.elapsed()
    }
}
