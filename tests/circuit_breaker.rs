//! Contract 5.3: one circuit breaker per database (an alias shares its target's);
//! `failure_threshold` consecutive connection-level failures open it; while open, calls fail at
//! once naming the database; after `reset_timeout` one probe goes through and its success closes
//! it; health pings observe the breaker but never close it.

mod support;

use std::time::{Duration, Instant};

use redis_db::{CircuitState, Error, HealthState};
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

const THRESHOLD: u32 = 3;

/// Threshold 3; one retry per call (so calls fail fast against a dead port); a connect timeout of
/// 1 s that a call which really tried to connect could not beat.
async fn client(server: &RedisServer, reset: Duration) -> DbClient {
    Db::builder()
        .on(server)
        .configure(move |c| {
            c.circuit_breaker.failure_threshold = THRESHOLD;
            c.circuit_breaker.reset_timeout = reset;
            c.retry.attempts = 1;
            c.retry.delay = Duration::from_millis(20);
            c.connect_timeout = Duration::from_secs(1);
        })
        .connect()
        .await
        .unwrap()
}

async fn get(handle: redis_db::Handle) -> Result<Option<String>, Error> {
    handle.query(redis::cmd("GET").arg("k")).await
}

async fn open_the_circuit(db: &DbClient, handle: fn(&DbClient) -> redis_db::Handle) {
    for call in 1..=THRESHOLD {
        let error = get(handle(db)).await.unwrap_err();
        assert!(
            matches!(error, Error::Unreachable { .. }),
            "call {call} reaches for the server: {error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_after_the_threshold_fails_fast_and_a_successful_probe_closes_it() {
    let mut server = RedisServer::start(&[]);
    let reset = Duration::from_millis(1500);
    let db = client(&server, reset).await;
    server.kill();
    open_the_circuit(&db, DbClient::main).await;
    let opened = Instant::now();

    let started = Instant::now();
    let error = get(db.main()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, Error::CircuitOpen { .. }), "{error:?}");
    assert!(
        elapsed < Duration::from_millis(50),
        "an open circuit fails at once: {elapsed:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("`main`") && text.contains("circuit open"),
        "{text}"
    );
    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert_eq!(
        (main.circuit, main.circuit_openings),
        (CircuitState::Open, 1),
        "{main:?}"
    );

    // The server is back, but the circuit stays open until reset_timeout has passed.
    server.restart();
    if opened.elapsed() < reset - Duration::from_millis(500) {
        let error = get(db.main()).await.unwrap_err();
        assert!(
            matches!(error, Error::CircuitOpen { .. }),
            "still open before reset_timeout: {error:?}"
        );
    }
    tokio::time::sleep(reset.saturating_sub(opened.elapsed())).await;

    assert_eq!(get(db.main()).await.expect("the probe succeeds"), None);
    let _: () = db
        .main()
        .query(redis::cmd("SET").arg("k").arg("after"))
        .await
        .expect("closed again");
    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert_eq!(
        (main.circuit, main.circuit_openings),
        (CircuitState::Closed, 1),
        "{main:?}"
    );
    let json = serde_json::to_value(db.stats()).unwrap();
    assert_eq!(json["databases"]["main"]["circuit"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_probe_opens_it_again_for_a_full_reset_timeout() {
    let mut server = RedisServer::start(&[]);
    let reset = Duration::from_millis(300);
    let db = client(&server, reset).await;
    server.kill();
    open_the_circuit(&db, DbClient::main).await;
    tokio::time::sleep(reset).await;

    let error = get(db.main()).await.unwrap_err();
    assert!(
        matches!(error, Error::Unreachable { .. }),
        "the probe tries the server: {error:?}"
    );
    let error = get(db.main()).await.unwrap_err();
    assert!(
        matches!(error, Error::CircuitOpen { .. }),
        "the failed probe re-opened it: {error:?}"
    );
    let main = db.stats().database("main").unwrap().clone();
    assert_eq!(
        (main.circuit, main.circuit_openings),
        (CircuitState::Open, 2),
        "{main:?}"
    );

    server.restart();
    tokio::time::sleep(reset).await;
    assert_eq!(get(db.main()).await.expect("the next probe succeeds"), None);
    assert_eq!(
        db.stats().database("main").unwrap().circuit,
        CircuitState::Closed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_shares_its_targets_breaker_and_other_databases_keep_theirs() {
    let mut server = RedisServer::start(&[]);
    let db = client(&server, Duration::from_secs(30)).await;
    server.kill();
    open_the_circuit(&db, DbClient::jobs).await;

    let error = get(db.jobs_monitor()).await.unwrap_err();
    assert!(
        matches!(error, Error::CircuitOpen { .. }),
        "the alias is behind the same open breaker: {error:?}"
    );
    assert!(
        error.to_string().contains("`jobs_monitor`"),
        "names the database called: {error}"
    );

    let error = get(db.main()).await.unwrap_err();
    assert!(
        matches!(error, Error::Unreachable { .. }),
        "main has its own closed breaker: {error:?}"
    );

    let stats = db.stats();
    assert_eq!(stats.database("jobs").unwrap().circuit, CircuitState::Open);
    assert_eq!(
        stats.database("jobs_monitor").unwrap().circuit,
        CircuitState::Open
    );
    assert_eq!(stats.database("jobs_monitor").unwrap().circuit_openings, 1);
    assert_eq!(
        stats.database("main").unwrap().circuit,
        CircuitState::Closed
    );
    assert_eq!(
        stats.database("archive").unwrap().circuit,
        CircuitState::Closed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_while_open_is_not_healthy_and_leaves_the_breaker_open() {
    let mut server = RedisServer::start(&[]);
    let db = client(&server, Duration::from_secs(30)).await;
    server.kill();
    open_the_circuit(&db, DbClient::main).await;

    let report = db.health().await;
    let main = report.database("main").unwrap();
    assert_eq!(main.state, HealthState::Failed, "server down: {main:?}");
    assert_eq!(main.circuit, CircuitState::Open);

    // Even a successful ping of a server that is back must not close the circuit.
    server.restart();
    let report = db.health().await;
    let main = report.database("main").unwrap();
    assert_ne!(main.state, HealthState::Healthy, "{main:?}");
    assert!(!report.is_healthy());
    assert_eq!(
        report.database("jobs").unwrap().state,
        HealthState::Healthy,
        "jobs' breaker is closed"
    );
    assert_eq!(
        db.stats().database("main").unwrap().circuit,
        CircuitState::Open,
        "health did not close it"
    );
    let error = get(db.main()).await.unwrap_err();
    assert!(matches!(error, Error::CircuitOpen { .. }), "{error:?}");
}

/// Pipelines and exclusive-connection checkouts pass the same breaker, and report it as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_and_checkouts_fail_fast_with_circuit_open_too() {
    let mut server = RedisServer::start(&[]);
    let db = client(&server, Duration::from_secs(60)).await;
    server.kill();
    open_the_circuit(&db, DbClient::main).await;

    let started = Instant::now();
    let mut pipeline = redis::pipe();
    pipeline.get("a").get("b");
    let error = db
        .main()
        .query_pipeline::<(Option<String>, Option<String>)>(&pipeline)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::CircuitOpen { .. }), "{error:?}");

    let error = db.main().connection().await.unwrap_err();
    assert!(matches!(error, Error::CircuitOpen { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "an open circuit fails at once: {:?}",
        started.elapsed()
    );
}
