//! `stats()`: every database's figures as a serializable snapshot, read from the targets'
//! counters (`counters.rs`), pools and breakers; and, with feature `metrics`, the background
//! sampler that hands the same readings to the metrics recorder once a second, so that the two
//! always agree.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::breaker::CircuitState;
use crate::counters::{LatencyStats, PubSubStats};
use crate::database::Inner;
use crate::health::{HealthReport, HealthState};
use crate::target::Target;

/// `stats()`: each target's figures once, then one entry per database (an alias shows its
/// target's), with the health monitor's last verdict.
pub(crate) fn snapshot(inner: &Inner, last_health: Option<&HealthReport>) -> Stats {
    let mut totals = Totals::default();
    let per_target: Vec<DatabaseStats> = inner
        .targets()
        .iter()
        .map(|target| {
            let stats = of_target(target);
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

fn of_target(target: &Target) -> DatabaseStats {
    let counters = target.counters();
    let calls = counters.calls();
    let status = target.pool().status();
    let connections = counters.connections(status.size);
    DatabaseStats {
        commands: calls.commands,
        failures: calls.failures,
        retries: calls.retries,
        latency: calls.latency,
        last_error: calls.last_error,
        pubsub: counters.pubsub().snapshot(),
        connections_created: connections.created,
        connections_closed: connections.closed,
        pool: PoolStats {
            max_size: status.max_size,
            size: status.size,
            idle: status.available,
            in_use: status.size.saturating_sub(status.available),
            waiting: status.waiting,
        },
        circuit: target.breaker().state(),
        circuit_openings: target.breaker().openings(),
        ..DatabaseStats::default()
    }
}

/// The metrics sampler (`None` without feature `metrics`): every second, the pool's gauges,
/// the breaker's state and openings and the connection counts, read as `stats()` reads them.
pub(crate) fn metrics_sampler(
    inner: &std::sync::Arc<Inner>,
) -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(feature = "metrics")]
    {
        Some(tokio::spawn(sample(std::sync::Arc::downgrade(inner))))
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = inner;
        None
    }
}

#[cfg(feature = "metrics")]
async fn sample(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(crate::metrics::SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        for target in inner.targets() {
            let status = target.pool().status();
            let connections = target.counters().connections(status.size);
            target.counters().metrics.sampled(crate::metrics::Sampled {
                idle: status.available as u64,
                used: status.size.saturating_sub(status.available) as u64,
                max: status.max_size as u64,
                pending: status.waiting as u64,
                circuit_open: u64::from(target.breaker().state() != CircuitState::Closed),
                circuit_openings: target.breaker().openings(),
                connections_created: connections.created,
                connections_closed: connections.closed,
            });
        }
    }
}

/// A snapshot of every database's figures. Serialized:
/// `{"uptime_seconds": .., "totals": {..}, "databases": {"<name>": {..}, ..}}`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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
    pub health: Option<HealthState>,
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

/// Pool figures at the snapshot.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[non_exhaustive]
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

#[cfg(test)]
mod tests {
    use super::*;

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
