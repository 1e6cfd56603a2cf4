//! Feature `metrics` against a real server, read through a Prometheus recorder's rendering.
//!
//! One recorder per process (the global one): the tests of this binary run one after the other
//! behind a lock, each reading deltas or its own database.

#[path = "../../../tests/support/mod.rs"]
mod support;

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use redis_db::redis::AsyncCommands;
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "config/redis-databases.yaml")]
pub enum Db {}

/// The global recorder, installed once before any client connects.
async fn recorder() -> (
    &'static PrometheusHandle,
    tokio::sync::MutexGuard<'static, ()>,
) {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let handle = HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("db.client.operation.duration".to_owned()),
                &[0.001, 0.01, 0.1, 1.0],
            )
            .unwrap()
            .install_recorder()
            .expect("the only recorder of this process")
    });
    (handle, SERIAL.lock().await)
}

async fn connect(server: &RedisServer) -> DbClient {
    Db::builder().on(server).connect().await.expect("connect")
}

fn scrape(handle: &PrometheusHandle) -> Vec<common::Sample> {
    common::parse(&handle.render())
}

const KNOWLEDGE: [(&str, &str); 2] = [("database", "knowledge"), ("db", "1")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_commands_on_knowledge_count_n_and_sample_n_latencies() {
    let (handle, _serial) = recorder().await;
    let server = RedisServer::start(&[]);
    let before = scrape(handle);
    let db = connect(&server).await;
    const N: usize = 25;
    let mut knowledge = db.knowledge();
    for i in 0..N - 5 {
        let _: () = knowledge
            .set(format!("doc:{i}"), "secret-value")
            .await
            .unwrap();
    }
    for i in 0..4 {
        let _: Option<String> = knowledge.get(format!("doc:{i}")).await.unwrap();
    }
    // Through the alias: counted under its target, as stats() does.
    let _: Option<String> = db.knowledge_reader().get("doc:0").await.unwrap();
    let _: () = db.sessions().set("s", 1).await.unwrap();

    let after = scrape(handle);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        common::sum(&after, name, labels) - common::sum(&before, name, labels)
    };
    assert_eq!(delta("redis_db_commands", &KNOWLEDGE), N as f64);
    assert_eq!(
        delta("db_client_operation_duration_count", &KNOWLEDGE),
        N as f64
    );
    assert_eq!(db.stats().database("knowledge").unwrap().commands, N as u64);
    assert_eq!(
        delta(
            "redis_db_commands",
            &[("database", "sessions"), ("db", "6")]
        ),
        1.0
    );

    // The semantic-convention labels, one series per command name.
    let set = [
        ("database", "knowledge"),
        ("db", "1"),
        ("db_system_name", "redis"),
        ("db_namespace", "1"),
        ("db_operation_name", "SET"),
    ];
    assert_eq!(delta("db_client_operation_duration_count", &set), 20.0);
    let get = [("db_operation_name", "GET"), ("database", "knowledge")];
    assert_eq!(delta("db_client_operation_duration_count", &get), 5.0);
    assert!(delta("db_client_operation_duration_sum", &set) > 0.0);
    let buckets = common::find(&after, "db_client_operation_duration_bucket", &set);
    assert!(
        buckets
            .iter()
            .any(|b| b.labels["le"] == "+Inf" && b.value >= 20.0),
        "{buckets:?}"
    );
    // No argument ever becomes a label.
    assert!(after.iter().all(|s| s
        .labels
        .values()
        .all(|v| !v.contains("secret") && !v.contains("doc:"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_by_error_type_with_their_latency() {
    let (handle, _serial) = recorder().await;
    let server = RedisServer::start(&[]);
    let before = scrape(handle);
    let db = connect(&server).await;
    let mut knowledge = db.knowledge();
    let _: () = knowledge.set("a-string", "x").await.unwrap();
    let refused: Result<i64, _> = knowledge.lpush("a-string", "y").await;
    assert!(refused.is_err());

    let after = scrape(handle);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        common::sum(&after, name, labels) - common::sum(&before, name, labels)
    };
    let wrongtype = [
        ("database", "knowledge"),
        ("db", "1"),
        ("error_type", "WRONGTYPE"),
    ];
    assert_eq!(delta("redis_db_failures", &wrongtype), 1.0);
    let lpush = [("db_operation_name", "LPUSH"), ("error_type", "WRONGTYPE")];
    assert_eq!(delta("db_client_operation_duration_count", &lpush), 1.0);
    assert_eq!(delta("redis_db_commands", &KNOWLEDGE), 2.0);
    // The successful SET's series has no error.type.
    let set = common::find(
        &after,
        "db_client_operation_duration_count",
        &[("db_operation_name", "SET")],
    );
    assert!(set.iter().all(|s| !s.labels.contains_key("error_type")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_breaker_retries_and_connections_are_exported() {
    let (handle, _serial) = recorder().await;
    let mut server = RedisServer::start(&[]);
    let before = scrape(handle);
    let db = connect(&server).await;
    let _: () = db.main().set("k", 1).await.unwrap();
    // The sampler runs at connect and then once a second.
    let page = wait_for(handle, "the pool gauges", |page| {
        common::sum(page, "db_client_connection_max", &[("database", "main")]) > 0.0
    })
    .await;
    let main = [("database", "main"), ("db", "0")];
    let max = common::find(&page, "db_client_connection_max", &main);
    assert_eq!(max.len(), 1, "{max:?}");
    for state in ["idle", "used"] {
        let labels = [
            ("database", "main"),
            ("db", "0"),
            ("db_client_connection_state", state),
        ];
        assert_eq!(
            common::find(&page, "db_client_connection_count", &labels).len(),
            1,
            "state {state}"
        );
    }
    assert_eq!(
        common::find(&page, "db_client_connection_pending_requests", &main).len(),
        1
    );
    assert_eq!(common::sum(&page, "redis_db_circuit_open", &main), 0.0);

    // A dead server: retried calls, failures by type, then the breaker opens.
    server.kill();
    for _ in 0..4 {
        let failed: Result<(), _> = db.main().set("k", 2).await;
        assert!(failed.is_err());
    }
    let stats = db.stats();
    let main_stats = stats.database("main").unwrap();
    assert_eq!(main_stats.circuit_openings, 1, "{main_stats:?}");
    let page = wait_for(handle, "the open circuit", |page| {
        common::sum(page, "redis_db_circuit_open", &[("database", "main")]) == 1.0
    })
    .await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        common::sum(&page, name, labels) - common::sum(&before, name, labels)
    };
    assert_eq!(delta("redis_db_circuit_openings", &main), 1.0);
    assert_eq!(delta("redis_db_retries", &main), main_stats.retries as f64);
    assert!(main_stats.retries > 0);
    assert_eq!(delta("redis_db_failures", &main), 4.0);
    assert_eq!(
        delta(
            "redis_db_failures",
            &[("database", "main"), ("error_type", "circuit_open")]
        ),
        1.0
    );
    assert_eq!(
        delta("redis_db_connections_created", &main),
        main_stats.connections_created as f64
    );
    assert!(main_stats.connections_created > 0);
    assert_eq!(
        delta("redis_db_connections_closed", &main),
        main_stats.connections_closed as f64
    );
    assert!(!common::find(&page, "redis_db_readiness_waits", &main).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_during_loading_counts_a_readiness_wait() {
    let (handle, _serial) = recorder().await;
    let mut server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let before = scrape(handle);
    support::restart_into_loading(&mut server, 10_000, 10);
    let value: String = db.main().get("key:9999").await.unwrap();
    assert_eq!(value, "value:9999");
    let after = scrape(handle);
    let main = [("database", "main"), ("db", "0")];
    let waits = common::sum(&after, "redis_db_readiness_waits", &main)
        - common::sum(&before, "redis_db_readiness_waits", &main);
    assert!(waits >= 1.0, "readiness waits: {waits}");
}

async fn wait_for(
    handle: &PrometheusHandle,
    what: &str,
    condition: impl Fn(&[common::Sample]) -> bool,
) -> Vec<common::Sample> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = scrape(handle);
        if condition(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "no {what} within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
