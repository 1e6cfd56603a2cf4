//! Contract 5.4: `health()` pings every database now (healthy / degraded / failed), and a
//! background monitor keeps a state per database every `health_check_interval`.

mod support;

use std::time::{Duration, Instant};

use redis_db::HealthState;
use support::client::OnTestServer;
use support::{restart_into_loading, wait_for_async, RedisServer};

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

const TIMEOUT: Duration = Duration::from_millis(300);

async fn client(server: &RedisServer, monitor: Option<Duration>) -> DbClient {
    Db::builder()
        .on(server)
        .configure(move |c| {
            c.timeout = TIMEOUT;
            c.health_check_interval = monitor;
        })
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_server_is_healthy_everywhere() {
    let server = RedisServer::start(&[]);
    let db = client(&server, None).await;
    let report = db.health().await;
    assert!(report.is_healthy(), "{report:?}");
    for name in ["main", "jobs", "jobs_monitor", "archive"] {
        let database = report.database(name).unwrap();
        assert_eq!(database.state, HealthState::Healthy, "{database:?}");
        assert!(
            database.latency_ms.is_some_and(|ms| ms >= 0.0),
            "{database:?}"
        );
    }
    assert_eq!(
        db.stats().database("main").unwrap().health,
        None,
        "no background monitor configured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_failed_within_the_timeout() {
    let server = RedisServer::start(&[]);
    let db = client(&server, None).await;
    server.pause();
    let started = Instant::now();
    let report = db.health().await;
    let elapsed = started.elapsed();
    server.resume();
    for name in ["main", "jobs", "jobs_monitor", "archive"] {
        assert_eq!(
            report.database(name).unwrap().state,
            HealthState::Failed,
            "{name}: {report:?}"
        );
    }
    // Three distinct databases (the alias shares jobs'), each bounded by its timeout (archive: 2 s).
    let bound = TIMEOUT * 2 + Duration::from_secs(2) + Duration::from_millis(700);
    assert!(
        elapsed < bound,
        "health() must not hang on a stopped server: {elapsed:?}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["databases"]["main"]["state"], "failed", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loading_server_is_degraded() {
    let mut server = RedisServer::start(&[]);
    let db = client(&server, None).await;
    restart_into_loading(&mut server, 30_000, 10);
    let report = db.health().await;
    assert_eq!(
        server.info_field("persistence", "loading").as_deref(),
        Some("1"),
        "still loading after the check, so the check saw LOADING"
    );
    let main = report.database("main").unwrap();
    assert_eq!(main.state, HealthState::Degraded, "{main:?}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["databases"]["main"]["state"], "degraded", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_monitor_tracks_each_databases_state() {
    let server = RedisServer::start(&[]);
    let db = client(&server, Some(Duration::from_millis(100))).await;
    let state = |name: &str| db.stats().database(name).unwrap().health;

    wait_for_async(Duration::from_secs(5), "monitor: main healthy", || {
        state("main") == Some(HealthState::Healthy)
    })
    .await;
    assert_eq!(state("jobs_monitor"), Some(HealthState::Healthy));

    server.pause();
    wait_for_async(Duration::from_secs(10), "monitor: main failed", || {
        state("main") == Some(HealthState::Failed)
    })
    .await;
    server.resume();
    wait_for_async(
        Duration::from_secs(10),
        "monitor: main healthy again",
        || state("main") == Some(HealthState::Healthy),
    )
    .await;
    let json = serde_json::to_value(db.stats()).unwrap();
    assert_eq!(json["databases"]["main"]["health"], "healthy", "{json}");
}

/// A database that answers, but slower than half its timeout, is degraded rather than healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_is_degraded() {
    let server = RedisServer::start(&[]);
    let db = client(&server, None).await;
    // `main` is pinged first; the pause delays its reply past TIMEOUT / 2 but not past TIMEOUT.
    let mut raw = server.raw(0);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(220)
        .arg("ALL")
        .query(&mut raw)
        .unwrap();
    let report = db.health().await;
    let main = report.database("main").unwrap();
    assert_eq!(main.state, HealthState::Degraded, "{main:?}");
    assert!(
        main.detail.as_deref().is_some_and(|d| d.contains("slow")),
        "{main:?}"
    );
    assert!(!report.is_healthy());
}
