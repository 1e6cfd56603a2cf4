//! Contract 5.1, readiness: while the server answers `LOADING`, `connect()` and every call wait
//! (up to `readiness.max_wait`), then fail with a still-loading error; waiting is not a breaker
//! failure. Every test opens a real LOADING window (see TESTING-NOTES).

mod support;

use std::time::{Duration, Instant};

use redis_db::redis::AsyncCommands;
use redis_db::{CircuitState, Error};
use support::client::OnTestServer;
use support::{restart_into_loading, RedisServer};

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

/// Keys and per-key delay of the LOADING window: about 3 s on this machine kind.
const KEYS: u32 = 30_000;
const DELAY_US: u32 = 10;

fn loading(server: &RedisServer) -> bool {
    server.info_field("persistence", "loading").as_deref() == Some("1")
}

fn dbsize(server: &RedisServer) -> u64 {
    redis::cmd("DBSIZE").query(&mut server.raw(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_returns_only_once_the_dataset_is_loaded() {
    let mut server = RedisServer::start(&[]);
    restart_into_loading(&mut server, KEYS, DELAY_US);
    assert!(
        loading(&server),
        "the LOADING window must be open when connect() starts"
    );

    let started = Instant::now();
    let db = Db::builder()
        .on(&server)
        .connect()
        .await
        .expect("connect waits out LOADING");
    let waited = started.elapsed();

    assert!(
        !loading(&server),
        "connect() returned after {waited:?} while the server was still loading"
    );
    assert_eq!(
        dbsize(&server),
        u64::from(KEYS),
        "the whole dataset is there once connect() returns"
    );
    let size: u64 = redis::cmd("DBSIZE")
        .query_async(&mut db.main())
        .await
        .unwrap();
    assert_eq!(size, u64::from(KEYS));
    let value: String = db.main().get("key:17").await.unwrap();
    assert_eq!(value, "value:17");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_made_during_loading_waits_and_succeeds() {
    let mut server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    restart_into_loading(&mut server, KEYS, DELAY_US);
    assert!(
        loading(&server),
        "the LOADING window must be open when the call starts"
    );

    let value: String = db
        .main()
        .get("key:29999")
        .await
        .expect("a call during LOADING waits, then succeeds");
    assert_eq!(value, "value:29999");
    assert!(
        !loading(&server),
        "the call returned while the server was still loading"
    );

    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert_eq!(main.failures, 0, "{main:?}");
    assert_eq!(main.circuit, CircuitState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_gives_up_with_still_loading_after_max_wait() {
    let mut server = RedisServer::start(&[]);
    restart_into_loading(&mut server, KEYS, DELAY_US);
    let started = Instant::now();
    let result = Db::builder()
        .on(&server)
        .configure(|c| c.readiness.max_wait = Duration::from_millis(400))
        .connect()
        .await;
    let elapsed = started.elapsed();
    assert!(
        loading(&server),
        "the window outlasted max_wait, so this test proves the give-up path"
    );
    let error = result.expect_err("connect must give up after readiness.max_wait");
    let text = error.to_string();
    assert!(matches!(error, Error::StillLoading { .. }), "{error:?}");
    assert!(text.contains("still loading"), "{text}");
    assert!(text.contains("`main`"), "names the database: {text}");
    assert!(
        elapsed >= Duration::from_millis(350),
        "gave up before max_wait: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "waited far beyond max_wait 400 ms: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_loading_never_opens_the_breaker() {
    let mut server = RedisServer::start(&[]);
    // Threshold 1: a single wait counted as a failure would open the circuit.
    let patient = Db::builder()
        .on(&server)
        .configure(|c| c.circuit_breaker.failure_threshold = 1)
        .connect()
        .await
        .unwrap();
    let impatient = Db::builder()
        .on(&server)
        .configure(|c| {
            c.circuit_breaker.failure_threshold = 1;
            c.readiness.max_wait = Duration::from_millis(200);
        })
        .connect()
        .await
        .unwrap();
    restart_into_loading(&mut server, KEYS, DELAY_US);

    // Two calls that run out of max_wait: the second must be StillLoading again, not CircuitOpen.
    for round in 0..2 {
        let error = impatient
            .main()
            .query::<Option<String>>(redis::cmd("GET").arg("key:1"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::StillLoading { .. }),
            "round {round}: {error:?}"
        );
    }
    assert!(loading(&server), "both calls gave up inside the window");
    let stats = impatient.stats();
    let main = stats.database("main").unwrap();
    assert_eq!(
        (main.circuit, main.circuit_openings),
        (CircuitState::Closed, 0),
        "{main:?}"
    );

    // A long wait through the whole window does not open it either.
    let value: String = patient.main().get("key:1").await.unwrap();
    assert_eq!(value, "value:1");
    let stats = patient.stats();
    let main = stats.database("main").unwrap();
    assert_eq!(
        (main.circuit, main.circuit_openings),
        (CircuitState::Closed, 0),
        "{main:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_made_during_loading_waits_and_succeeds() {
    let mut server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    restart_into_loading(&mut server, KEYS, DELAY_US);
    assert!(
        loading(&server),
        "the LOADING window must be open when the call starts"
    );
    let pipeline: (String, String) = redis::pipe()
        .get("key:1")
        .get("key:2")
        .query_async(&mut db.main())
        .await
        .expect("a pipeline during LOADING waits, then succeeds");
    assert!(
        !loading(&server),
        "the call returned while the server was still loading"
    );
    assert_eq!(pipeline, ("value:1".to_owned(), "value:2".to_owned()));
}

/// During LOADING, MULTI is accepted but every queued command gets LOADING and EXEC answers
/// EXECABORT: nothing ran, so the transaction must wait and be sent again, not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_made_during_loading_waits_and_succeeds() {
    let mut server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    restart_into_loading(&mut server, KEYS, DELAY_US);
    assert!(
        loading(&server),
        "the LOADING window must be open when the call starts"
    );
    let transaction: (i64, String) = redis::pipe()
        .atomic()
        .incr("counter", 1)
        .get("key:3")
        .query_async(&mut db.main())
        .await
        .expect("a transaction during LOADING waits, then succeeds");
    assert!(
        !loading(&server),
        "the call returned while the server was still loading"
    );
    assert_eq!(transaction, (1, "value:3".to_owned()));
    let counter: i64 = redis::cmd("GET")
        .arg("counter")
        .query(&mut server.raw(0))
        .unwrap();
    assert_eq!(counter, 1, "applied once");
}

/// An exclusive connection checked out during LOADING is handed over only once the server is
/// ready, so its first command does not fail with LOADING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_checked_out_during_loading_waits_until_ready() {
    let mut server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    restart_into_loading(&mut server, KEYS, DELAY_US);
    assert!(
        loading(&server),
        "the LOADING window must be open when the checkout starts"
    );
    let mut connection = db
        .main()
        .connection()
        .await
        .expect("checkout waits, then succeeds");
    let value: String = connection.get("key:7").await.expect("the server is ready");
    assert_eq!(value, "value:7");
}
