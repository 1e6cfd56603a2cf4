//! Per-database figures: counted on every call, read as a serializable snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::database::Inner;
use crate::lock::lock;
use crate::shard::{self, SHARDS};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

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
    pub metrics: crate::metrics::Metrics,
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

    fn snapshot(&self) -> PubSubStats {
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
            metrics: crate::metrics::Metrics::default(),
        }
    }

    /// With the metric handles of the database these counters are for.
    pub fn with_metrics(self, metrics: crate::metrics::Metrics) -> Self {
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

    /// `pool_size` is the pool's current size: what the pool created and no longer holds was closed.
    pub fn snapshot_connections(&self, stats: &mut DatabaseStats, pool_size: usize) {
        let pool_created = self.pool_created.load(Ordering::Relaxed);
        stats.connections_created = self.connections_created.load(Ordering::Relaxed) + pool_created;
        stats.connections_closed = self.connections_closed.load(Ordering::Relaxed)
            + pool_created.saturating_sub(pool_size as u64);
    }

    pub fn snapshot_into(&self, stats: &mut DatabaseStats) {
        stats.commands = self
            .shards
            .iter()
            .map(|s| s.commands.load(Ordering::Relaxed))
            .sum();
        stats.failures = self.failures.load(Ordering::Relaxed);
        stats.retries = self.retries.load(Ordering::Relaxed);
        let mut histogram = new_histogram();
        for shard in self.shards.iter() {
            // Same bounds everywhere, so adding cannot fail.
            let _ = histogram.add(&*lock(&shard.latency));
        }
        stats.latency = LatencyStats {
            samples: histogram.len(),
            mean_us: if histogram.is_empty() {
                0.0
            } else {
                histogram.mean()
            },
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
        };
        stats.last_error = lock(&self.last_error).clone();
        stats.pubsub = self.pubsub.snapshot();
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 us .. 1 h at 2 significant digits: a few kB, fixed once built. Constant bounds that
    // hdrhistogram documents as valid, so this cannot fail on any input.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant histogram bounds are valid")
}

/// `stats()`: each target's figures once, then one entry per database (an alias shows its
/// target's), with the health monitor's last verdict.
pub(crate) fn snapshot(inner: &Inner) -> Stats {
    let last_health = inner.last_health();
    let mut totals = Totals::default();
    let per_target: Vec<DatabaseStats> = inner
        .targets()
        .iter()
        .map(|target| {
            let mut stats = DatabaseStats::default();
            let counters = target.counters();
            counters.snapshot_into(&mut stats);
            let status = target.pool().status();
            counters.snapshot_connections(&mut stats, status.size);
            stats.pool = PoolStats {
                max_size: status.max_size,
                size: status.size,
                idle: status.available,
                in_use: status.size.saturating_sub(status.available),
                waiting: status.waiting,
            };
            stats.circuit = target.breaker().state();
            stats.circuit_openings = target.breaker().openings();
            totals.commands += stats.commands;
            totals.failures += stats.failures;
            totals.retries += stats.retries;
            totals.connections_created += stats.connections_created;
            totals.connections_closed += stats.connections_closed;
            stats
        })
        .collect();
    let databases = inner
        .databases()
        .iter()
        .map(|database| DatabaseStats {
            name: database.name().to_owned(),
            db: database.db(),
            alias_of: database.alias_of().map(str::to_owned),
            health: last_health
                .as_ref()
                .and_then(|h| h.database(database.name()))
                .map(|h| h.state),
            ..per_target[database.target()].clone()
        })
        .collect();
    Stats {
        uptime_seconds: inner.uptime().as_secs_f64(),
        totals,
        databases,
    }
}

/// A snapshot of every database's figures. Serialized:
/// `{"uptime_seconds": .., "totals": {..}, "databases": {"<name>": {..}, ..}}`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Seconds since the client connected.
    pub uptime_seconds: f64,
    /// Sums over the distinct pools (aliases are not counted twice).
    pub totals: Totals,
    /// One entry per database, in file order; an alias reports its target's shared figures.
    #[serde(serialize_with = "serialize_by_name")]
    pub databases: Vec<DatabaseStats>,
}

impl Stats {
    /// The figures of one database by its YAML name.
    pub fn database(&self, name: &str) -> Option<&DatabaseStats> {
        self.databases.iter().find(|d| d.name == name)
    }
}

fn serialize_by_name<S: Serializer>(
    databases: &[DatabaseStats],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(databases.len()))?;
    for database in databases {
        map.serialize_entry(&database.name, database)?;
    }
    map.end()
}

/// Sums over all pools.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Calls made.
    pub commands: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Retry attempts made.
    pub retries: u64,
    /// Connections opened.
    pub connections_created: u64,
    /// Connections closed.
    pub connections_closed: u64,
}

/// The figures of one database.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatabaseStats {
    /// The YAML name (the key in the serialized map).
    #[serde(skip)]
    pub name: String,
    /// The Redis database number.
    pub db: u32,
    /// The database whose figures these are, for an alias.
    pub alias_of: Option<String>,
    /// Calls made.
    pub commands: u64,
    /// Calls that failed (after retries).
    pub failures: u64,
    /// Retry attempts made.
    pub retries: u64,
    /// The circuit breaker's state.
    pub circuit: CircuitState,
    /// The background monitor's last verdict (`None` before its first check or when disabled).
    pub health: Option<crate::health::HealthState>,
    /// How often the circuit opened.
    pub circuit_openings: u64,
    /// Connections opened (shared lane and pool).
    pub connections_created: u64,
    /// Connections closed (idle, broken or replaced).
    pub connections_closed: u64,
    /// The exclusive-connection pool.
    pub pool: PoolStats,
    /// Call latency, including retries and readiness waits.
    pub latency: LatencyStats,
    /// The last failure's text (never a password).
    pub last_error: Option<String>,
    /// Pub/sub subscribers of this database (`Handle::subscriber`, `Handle::keyspace_events`).
    pub pubsub: PubSubStats,
}

/// Pub/sub figures of one database, summed over its subscribers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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

/// Pool figures at the snapshot.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PoolStats {
    /// Largest allowed size.
    pub max_size: usize,
    /// Connections that exist.
    pub size: usize,
    /// Of which idle.
    pub idle: usize,
    /// Of which checked out.
    pub in_use: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// Latency of calls, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
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

    #[test]
    fn records_calls_failures_and_latency() {
        let counters = Counters::new();
        for ms in 1..=100 {
            counters.record_call(Duration::from_millis(ms), None);
        }
        counters.record_call(Duration::from_millis(1), Some("boom"));
        counters.record_retry();
        let mut stats = DatabaseStats::default();
        counters.snapshot_into(&mut stats);
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

    #[test]
    fn serializes_databases_as_a_map_by_name() {
        let stats = Stats {
            uptime_seconds: 1.0,
            totals: Totals::default(),
            databases: vec![
                DatabaseStats {
                    name: "main".into(),
                    ..Default::default()
                },
                DatabaseStats {
                    name: "cache".into(),
                    db: 5,
                    ..Default::default()
                },
            ],
        };
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["databases"]["cache"]["db"], 5);
        assert_eq!(json["databases"]["main"]["commands"], 0);
        assert_eq!(json["databases"]["main"]["circuit"], "closed");
    }
}
