//! Health: a ping of every database now, and a background monitor that logs state changes.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::{ErrorKind, ServerErrorKind};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::breaker::CircuitState;
use crate::database::Inner;
use crate::deadline::with_timeout;
use crate::lock::lock;
use crate::target::Target;

/// The state of one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Answers promptly, circuit closed. For a user without `+ping`, a prompt `NOPERM` to the
    /// health `PING` counts as an answer.
    Healthy,
    /// Reachable but loading, slow (over half its timeout), or its circuit is not closed.
    Degraded,
    /// Does not answer, or answers with an error.
    Failed,
}

/// One database's health. Serialized under its name.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DatabaseHealth {
    /// The YAML name (the key in the serialized map).
    #[serde(skip)]
    pub name: String,
    /// The Redis database number.
    pub db: u32,
    /// healthy, degraded or failed.
    pub state: HealthState,
    /// Round trip of the ping, when it was answered.
    pub latency_ms: Option<f64>,
    /// The circuit breaker's state.
    pub circuit: CircuitState,
    /// Why it is not healthy.
    pub detail: Option<String>,
}

/// A health check of every database. Serialized:
/// `{"databases": {"<name>": {"state": "healthy" | "degraded" | "failed", ..}, ..}}`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// One entry per database, in file order.
    #[serde(serialize_with = "serialize_by_name")]
    pub databases: Vec<DatabaseHealth>,
}

impl HealthReport {
    /// The health of one database by its YAML name.
    pub fn database(&self, name: &str) -> Option<&DatabaseHealth> {
        self.databases.iter().find(|d| d.name == name)
    }

    /// True when every database is healthy.
    pub fn is_healthy(&self) -> bool {
        self.databases
            .iter()
            .all(|d| d.state == HealthState::Healthy)
    }
}

fn serialize_by_name<S: Serializer>(
    databases: &[DatabaseHealth],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(databases.len()))?;
    for database in databases {
        map.serialize_entry(&database.name, database)?;
    }
    map.end()
}

/// Pings every distinct target once (aliases report their target's result). Observes the
/// breaker but never changes it: only real calls close a circuit.
pub(crate) async fn check(inner: &Inner) -> HealthReport {
    let mut per_target = Vec::with_capacity(inner.targets().len());
    for (index, target) in inner.targets().iter().enumerate() {
        let timeout = inner
            .first_on(index)
            .map_or(inner.config().timeout, |(_, d)| d.timeout());
        per_target.push(ping(target, timeout).await);
    }
    let databases = inner
        .databases()
        .iter()
        .map(|database| {
            let target = &inner.targets()[database.target()];
            let (state, latency, detail) = per_target[database.target()].clone();
            let circuit = target.breaker().state();
            let (state, detail) = match (state, circuit) {
                (HealthState::Healthy, CircuitState::Closed) => (state, detail),
                (HealthState::Healthy, _) => (
                    HealthState::Degraded,
                    Some(format!("circuit {circuit:?}").to_lowercase()),
                ),
                _ => (state, detail),
            };
            DatabaseHealth {
                name: database.name().to_owned(),
                db: database.db(),
                state,
                latency_ms: latency.map(|l| l.as_secs_f64() * 1000.0),
                circuit,
                detail,
            }
        })
        .collect();
    HealthReport { databases }
}

/// A user without `+ping` (least-privilege ACL): the server's `NOPERM` is an answer, so the
/// database is reachable and its latency is measured, and it counts as healthy when prompt. The
/// refusal cannot say whether the server is still loading (ACLs are checked first), so the
/// readiness gate stands in: loading while the calls themselves last saw `LOADING`.
async fn ping(
    target: &Target,
    timeout: Duration,
) -> (HealthState, Option<Duration>, Option<String>) {
    let started = Instant::now();
    let result = with_timeout(Some(timeout), target.lane().ping()).await;
    let latency = started.elapsed();
    let result = match result {
        Err(e) if crate::readiness::is_refused(&e) => {
            target.readiness().note_ping_refused();
            if target.readiness().is_loading() {
                return (
                    HealthState::Degraded,
                    Some(latency),
                    Some("loading dataset (seen by calls; the user may not PING)".to_owned()),
                );
            }
            Ok(())
        }
        other => other,
    };
    match result {
        Ok(_) if latency > timeout / 2 => (
            HealthState::Degraded,
            Some(latency),
            Some(format!("slow: {latency:?}")),
        ),
        Ok(_) => (HealthState::Healthy, Some(latency), None),
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading) => (
            HealthState::Degraded,
            Some(latency),
            Some("loading dataset".to_owned()),
        ),
        Err(e) => (HealthState::Failed, None, Some(e.to_string())),
    }
}

/// The background monitor's last report, which `stats()` shows.
#[derive(Default)]
pub(crate) struct LastReport(Mutex<Option<HealthReport>>);

impl LastReport {
    pub fn get(&self) -> Option<HealthReport> {
        lock(&self.0).clone()
    }

    fn set(&self, report: HealthReport) {
        *lock(&self.0) = Some(report);
    }
}

/// The background monitor: one check per interval, a tracing event on every state change, the
/// report kept in `last`.
pub(crate) async fn monitor(inner: Weak<Inner>, interval: Duration, last: Arc<LastReport>) {
    let mut previous: Vec<Option<HealthState>> = Vec::new();
    loop {
        tokio::time::sleep(interval).await;
        let Some(core) = inner.upgrade() else { return };
        let report = check(&core).await;
        previous.resize(report.databases.len(), None);
        for (database, last) in report.databases.iter().zip(previous.iter_mut()) {
            if *last != Some(database.state) {
                match database.state {
                    HealthState::Healthy => {
                        tracing::info!(database = %database.name, "redis-db: healthy")
                    }
                    HealthState::Degraded => {
                        tracing::warn!(database = %database.name, detail = ?database.detail, "redis-db: degraded")
                    }
                    HealthState::Failed => {
                        tracing::error!(database = %database.name, detail = ?database.detail, "redis-db: failed")
                    }
                }
                *last = Some(database.state);
            }
        }
        last.set(report);
    }
}
