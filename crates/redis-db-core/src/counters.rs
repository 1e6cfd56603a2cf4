//! The live figures of one target (a database and its aliases): written on every call without
//! a shared lock (sharded by worker), read by `stats()` and the metrics sampler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::lock::lock;
use crate::metrics::Metrics;
use crate::shard::{self, SHARDS};

/// What every call writes: a count and its latency.
#[derive(Debug)]
#[repr(align(128))] // one shard per cache line pair: no false sharing between workers
struct Shard {
    commands: AtomicU64,
    /// Microseconds per call; hdrhistogram gives an honest p99 at 2 significant digits.
    latency: Mutex<Histogram<u64>>,
}

/// The counters of one pool target (a database and its aliases).
#[derive(Debug)]
pub(crate) struct Counters {
    shards: Box<[Shard]>,
    failures: AtomicU64,
    retries: AtomicU64,
    /// Shared-lane connections opened and closed; the pool's are counted by `pool_created`.
    connections_created: AtomicU64,
    connections_closed: AtomicU64,
    pool_created: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Written by subscribers only, never on the per-call path.
    pubsub: PubSubCounters,
    /// The database's handles of feature `metrics` (a zero-sized no-op without it).
    pub metrics: Metrics,
}

/// The pub/sub figures of one target, summed over its subscribers.
#[derive(Debug, Default)]
pub(crate) struct PubSubCounters {
    subscriptions: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    reconnections: AtomicU64,
}

impl PubSubCounters {
    pub fn subscriptions_changed(&self, added: bool) {
        if added {
            self.subscriptions.fetch_add(1, Ordering::Relaxed);
        } else {
            // Never below zero, even if a removal were counted twice.
            let _ = self
                .subscriptions
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    pub fn message_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    pub fn message_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reconnected(&self) {
        self.reconnections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> PubSubStats {
        PubSubStats {
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
            messages_received: self.received.load(Ordering::Relaxed),
            messages_dropped: self.dropped.load(Ordering::Relaxed),
            reconnections: self.reconnections.load(Ordering::Relaxed),
        }
    }
}

impl Counters {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    commands: AtomicU64::new(0),
                    latency: Mutex::new(new_histogram()),
                })
                .collect(),
            failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            connections_created: AtomicU64::new(0),
            connections_closed: AtomicU64::new(0),
            pool_created: AtomicU64::new(0),
            last_error: Mutex::new(None),
            pubsub: PubSubCounters::default(),
            metrics: Metrics::default(),
        }
    }

    /// With the metric handles of the database these counters are for.
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics, ..self }
    }

    pub fn pubsub(&self) -> &PubSubCounters {
        &self.pubsub
    }

    pub fn record_call(&self, elapsed: Duration, error: Option<&str>) {
        let shard = &self.shards[shard::index()];
        shard.commands.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        lock(&shard.latency).saturating_record(micros);
        if let Some(error) = error {
            self.failures.fetch_add(1, Ordering::Relaxed);
            *lock(&self.last_error) = Some(error.to_owned());
        }
    }

    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.metrics.retry();
    }

    pub fn connection_created(&self) {
        self.connections_created.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, count: u64) {
        self.connections_closed.fetch_add(count, Ordering::Relaxed);
    }

    pub fn pool_connection_created(&self) {
        self.pool_created.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections opened and closed so far, shared lane and pool; `pool_size` is the pool's
    /// current size: what the pool created and no longer holds was closed.
    pub fn connections(&self, pool_size: usize) -> ConnectionCounts {
        let pool_created = self.pool_created.load(Ordering::Relaxed);
        ConnectionCounts {
            created: self.connections_created.load(Ordering::Relaxed) + pool_created,
            closed: self.connections_closed.load(Ordering::Relaxed)
                + pool_created.saturating_sub(pool_size as u64),
        }
    }

    /// The calls' figures so far (merges every shard's histogram: not for the call path).
    pub fn calls(&self) -> CallCounts {
        let mut histogram = new_histogram();
        for shard in self.shards.iter() {
            // Same bounds everywhere, so adding cannot fail.
            let _ = histogram.add(&*lock(&shard.latency));
        }
        CallCounts {
            commands: self
                .shards
                .iter()
                .map(|s| s.commands.load(Ordering::Relaxed))
                .sum(),
            failures: self.failures.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            latency: LatencyStats {
                samples: histogram.len(),
                mean_us: if histogram.is_empty() {
                    0.0
                } else {
                    histogram.mean()
                },
                p99_us: histogram.value_at_quantile(0.99),
                max_us: histogram.max(),
            },
            last_error: lock(&self.last_error).clone(),
        }
    }
}

/// [`Counters::connections`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionCounts {
    pub created: u64,
    pub closed: u64,
}

/// [`Counters::calls`].
#[derive(Debug, Clone)]
pub(crate) struct CallCounts {
    pub commands: u64,
    pub failures: u64,
    pub retries: u64,
    pub latency: LatencyStats,
    pub last_error: Option<String>,
}

fn new_histogram() -> Histogram<u64> {
    // 1 us .. 1 h at 2 significant digits: a few kB, fixed once built. Constant bounds that
    // hdrhistogram documents as valid, so this cannot fail on any input.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant histogram bounds are valid")
}

/// Latency of calls, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[non_exhaustive]
pub struct LatencyStats {
    /// Calls measured.
    pub samples: u64,
    /// Mean.
    pub mean_us: f64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// Pub/sub figures of one database, summed over its subscribers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PubSubStats {
    /// Channels, patterns and sharded channels held now (re-issued after every reconnect).
    pub subscriptions: u64,
    /// Messages received from the server (delivered or dropped).
    pub messages_received: u64,
    /// Messages dropped because a subscriber's consumer fell behind (its buffer was full).
    pub messages_dropped: u64,
    /// Times a subscriber's connection was re-established after it broke.
    pub reconnections: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_calls_failures_and_latency() {
        let counters = Counters::new();
        for ms in 1..=100 {
            counters.record_call(Duration::from_millis(ms), None);
        }
        counters.record_call(Duration::from_millis(1), Some("boom"));
        counters.record_retry();
        let stats = counters.calls();
        assert_eq!(stats.commands, 101);
        assert_eq!(stats.failures, 1);
        assert_eq!(stats.retries, 1);
        assert_eq!(stats.last_error.as_deref(), Some("boom"));
        assert!(
            (99_000..=100_500).contains(&stats.latency.p99_us),
            "{:?}",
            stats.latency
        );
        assert!(stats.latency.mean_us > 40_000.0 && stats.latency.mean_us < 60_000.0);
    }
}
