//! Prometheus metrics: `cargo run --example prometheus --features metrics`.
//!
//! Installs `metrics-exporter-prometheus` with its own HTTP listener, serving
//! `http://127.0.0.1:9898/metrics` (or `METRICS_ADDR`), connects to the Redis on 127.0.0.1:6379
//! (or `REDIS_URL`) with `config/redis-databases.yaml`, and sends a little traffic every second
//! (`ROUNDS` rounds, else until stopped). Then, in another shell:
//!
//! ```text
//! curl -s http://127.0.0.1:9898/metrics | grep -E '^(db_client|redis_db)'
//! ```
//!
//! The exporter must be installed before the client connects: the client registers its series
//! with the recorder installed at that time. `crates/redis-db-observability-tests` runs this
//! file against a server of its own and scrapes the page.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use redis_db::redis::AsyncCommands;

#[redis_db::databases(config = "config/redis-databases.yaml")]
pub enum RedisDatabase {}

/// Latency buckets (seconds) of `db.client.operation.duration`, the OpenTelemetry advice for
/// database clients with finer steps below 10 ms. With buckets the exporter renders a true
/// Prometheus histogram (`_bucket`, `_sum`, `_count`), which `histogram_quantile` aggregates
/// across instances; without, a summary.
pub const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[tokio::main]
async fn main() -> ExitCode {
    let listen = std::env::var("METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9898".to_owned());
    let rounds = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok());
    let listen: SocketAddr = match listen.parse() {
        Ok(listen) => listen,
        Err(error) => {
            eprintln!("METRICS_ADDR `{listen}`: {error}");
            return ExitCode::FAILURE;
        }
    };
    match run(listen, None, rounds).await {
        Ok(_client) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("prometheus example failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the exporter on `listen`, connects (to `url`, else as the config and environment
/// say), and runs `rounds` rounds of traffic (`None`: forever), one a second; returns the
/// client, whose pool and breaker gauges stay on the page while it lives.
pub async fn run(
    listen: SocketAddr,
    url: Option<String>,
    rounds: Option<u64>,
) -> Result<RedisDatabaseClient, Box<dyn std::error::Error>> {
    install_exporter(listen)?;
    let mut builder = RedisDatabase::builder().configure(|c| c.retry.attempts = 1);
    if let Some(url) = url {
        builder = builder.url(url).ignore_environment();
    }
    let db = builder.connect().await?;
    println!("serving http://{listen}/metrics");
    let mut done = 0;
    loop {
        traffic(&db).await?;
        done += 1;
        if rounds.is_some_and(|rounds| done >= rounds) {
            return Ok(db);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The recorder, with its HTTP listener serving `/metrics` (spawned on the current runtime).
pub fn install_exporter(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(
            Matcher::Full("db.client.operation.duration".to_owned()),
            BUCKETS,
        )?
        .install()?;
    Ok(())
}

/// One round: ten writes and reads on `knowledge`, a pipeline on `sessions`, and one command
/// that fails (`WRONGTYPE`), to show `error.type`.
pub async fn traffic(db: &RedisDatabaseClient) -> Result<(), redis_db::redis::RedisError> {
    let mut knowledge = db.knowledge();
    for i in 0..10 {
        let _: () = knowledge
            .set(format!("example:doc:{i}"), "hello from redis-db")
            .await?;
        let _: String = knowledge.get(format!("example:doc:{i}")).await?;
    }
    let mut sessions = db.sessions();
    let _: (i64, bool) = redis_db::redis::pipe()
        .incr("example:visits", 1)
        .expire("example:visits", 300)
        .query_async(&mut sessions)
        .await?;
    let refused: Result<i64, _> = knowledge.lpush("example:doc:0", "not a list").await;
    debug_assert!(refused.is_err());
    Ok(())
}
