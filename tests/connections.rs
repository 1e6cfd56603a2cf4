//! Contract 5.5 (connections) and the per-database settings: keepalive on every socket, idle
//! connections closed in the background and transparently reopened, per-database pool size and
//! command timeout.

mod support;

use std::time::{Duration, Instant};

use redis_db::redis::AsyncCommands;
use redis_db::Error;
use support::client::OnTestServer;
use support::{keepalive_timers, wait_for_async, RedisServer};

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_settings_are_on_every_socket() {
    let server = RedisServer::start(&[]);
    let db = Db::builder()
        .on(&server)
        .configure(|c| c.keepalive.idle = Duration::from_secs(45))
        .connect()
        .await
        .unwrap();
    let _: () = db.main().set("k", 1).await.unwrap();
    // An exclusive pooled connection too, held while we look.
    let mut exclusive = db.jobs().connection().await.unwrap();
    let _: () = exclusive.set("k", 2).await.unwrap();

    let timers = keepalive_timers(server.port());
    // Shared connections of main, jobs (= jobs_monitor) and archive, plus the pooled one.
    assert!(
        timers.len() >= 4,
        "expected the SDK's 4 sockets, ss shows: {timers:?}"
    );
    for timer in &timers {
        let secs = timer.unwrap_or_else(|| panic!("a socket without keepalive: {timers:?}"));
        assert!(
            (30..=45).contains(&secs),
            "keepalive idle 45 s expected, OS default is ~7200 s: {timers:?}"
        );
    }
    drop(exclusive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_reopened_on_demand() {
    let server = RedisServer::start(&[]);
    let db = Db::builder()
        .on(&server)
        .configure(|c| c.idle_timeout = Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let _: () = db.main().set("k", "v").await.unwrap();
    {
        let mut pooled = db.main().connection().await.unwrap();
        let _: String = pooled.get("k").await.unwrap();
    }
    assert_eq!(
        server.clients_on_db(0),
        2,
        "the shared connection and one pooled connection"
    );

    wait_for_async(
        Duration::from_secs(5),
        "idle connections on db 0 closed",
        || server.clients_on_db(0) == 0,
    )
    .await;
    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert!(main.connections_closed >= 2, "{main:?}");
    assert_eq!(main.pool.size, 0, "{main:?}");

    let value: String = db
        .main()
        .get("k")
        .await
        .expect("the next call reconnects transparently");
    assert_eq!(value, "v");
    assert_eq!(db.stats().database("main").unwrap().failures, 0);
    assert_eq!(server.clients_on_db(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_database_pool_sizes_are_honoured() {
    let server = RedisServer::start(&[]);
    let db = Db::builder()
        .on(&server)
        .config_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/pool_sizes.yaml"
        ))
        .configure(|c| c.timeout = Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let stats = db.stats();
    assert_eq!(
        stats.database("main").unwrap().pool.max_size,
        2,
        "per-database max_connections"
    );
    assert_eq!(
        stats.database("jobs").unwrap().pool.max_size,
        4,
        "top-level max_connections"
    );
    assert_eq!(stats.database("archive").unwrap().pool.max_size, 4);

    let first = db.main().connection().await.unwrap();
    let second = db.main().connection().await.unwrap();
    let in_use = db.stats().database("main").unwrap().pool;
    assert_eq!((in_use.size, in_use.in_use), (2, 2), "{in_use:?}");

    let started = Instant::now();
    let error = db.main().connection().await.unwrap_err();
    assert!(
        matches!(error, Error::PoolExhausted { max_size: 2, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("`main`"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited about the timeout: {:?}",
        started.elapsed()
    );

    drop(first);
    let _third = db
        .main()
        .connection()
        .await
        .expect("a connection was given back");
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_database_timeouts_are_honoured() {
    let server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    let sleep = || {
        let mut cmd = redis::cmd("DEBUG");
        cmd.arg("SLEEP").arg(1.5);
        cmd
    };

    // archive: timeout_seconds 2.
    let started = Instant::now();
    let _: () = db
        .archive()
        .query(&sleep())
        .await
        .expect("1.5 s is within archive's 2 s timeout");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "the server really slept"
    );

    // main: the top-level timeout of 1 s.
    let started = Instant::now();
    let error = db.main().query::<()>(&sleep()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, Error::Timeout { timeout, .. } if timeout == Duration::from_secs(1)),
        "{error:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1450),
        "cut off at main's 1 s: {elapsed:?}"
    );
}
