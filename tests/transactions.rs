//! Issue 12, "drop-in for redis-rs code": the optimistic transaction helper
//! (`Handle::transaction`), raw replies to a server error, and the error of a pipeline refused
//! for a connection-state command.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis_db::redis::aio::ConnectionLike;
use redis_db::redis::{AsyncCommands, Value};
use redis_db::Error;
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/least_privilege.yaml")]
pub enum Db {}

/// `redis_db_core::MAX_TRANSACTION_RUNS`.
const MAX_RUNS: u32 = 32;

async fn connect(server: &RedisServer) -> DbClient {
    Db::builder().on(server).connect().await.expect("connect")
}

fn get(server: &RedisServer, key: &str) -> Option<i64> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut server.raw(0))
        .unwrap()
}

/// The redis-rs example: read, compute, write under WATCH. Two tasks, 1000 increments each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_increments_are_never_lost() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let reruns = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let app = db.app();
            let reruns = reruns.clone();
            tokio::spawn(async move {
                for _ in 0..1000 {
                    let mut runs = 0;
                    let (_now,): (i64,) = app
                        .transaction(&["counter"], |conn, pipe| {
                            runs += 1;
                            Box::pin(async move {
                                let value: Option<i64> = conn.get("counter").await?;
                                pipe.set("counter", value.unwrap_or(0) + 1)
                                    .ignore()
                                    .get("counter");
                                pipe.query_async(conn).await
                            })
                        })
                        .await
                        .expect("transaction");
                    reruns.fetch_add(runs - 1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(get(&server, "counter"), Some(2000));
    eprintln!(
        "re-runs after a watched key changed: {}",
        reruns.load(Ordering::Relaxed)
    );
    // Every run used a pooled connection: at most one per task.
    let pool = db.stats().database("app").unwrap().pool;
    assert!(pool.size <= 2, "{pool:?}");
}

#[tokio::test]
async fn re_runs_are_bounded_and_the_error_names_database_and_keys() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let app = db.app();
    let other = db.app();
    let mut runs = 0u32;
    let result: Result<(), Error> = app
        .transaction(&["hot", "cold"], |conn, pipe| {
            runs += 1;
            let (mut other, run) = (other.clone(), runs);
            Box::pin(async move {
                // Another client writes a watched key before every EXEC.
                let _: () = other.set("hot", run).await?;
                pipe.incr("cold", 1).ignore();
                pipe.query_async(conn).await
            })
        })
        .await;
    let error = result.unwrap_err();
    assert_eq!(runs, MAX_RUNS);
    let text = error.to_string();
    assert!(matches!(error, Error::Transaction { .. }), "{error:?}");
    assert!(
        text.starts_with("database `app` (db 0): transaction watching [\"hot\", \"cold\"]"),
        "{text}"
    );
    assert!(
        text.contains("32 runs") && text.contains("nothing was applied"),
        "{text}"
    );
    assert_eq!(get(&server, "cold"), None, "no EXEC was applied");
}

/// `CLIENT PAUSE WRITE` holds the transaction's commands at the server; `CLIENT KILL` then
/// breaks the connection before a reply. The helper returns the failure and never re-runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_transaction_is_not_re_run() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let _: () = db.app().set("balance", 100).await.unwrap();
    let mut runs = 0u32;
    let port = server.port();
    let result: Result<(i64,), Error> = db
        .app()
        .transaction(&["balance"], |conn, pipe| {
            runs += 1;
            Box::pin(async move {
                let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(conn).await?;
                let balance: i64 = conn.get("balance").await?;
                let mut admin = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let _: () = redis::cmd("CLIENT")
                    .arg("PAUSE")
                    .arg(5000)
                    .arg("WRITE")
                    .query_async(&mut admin)
                    .await
                    .unwrap();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _: () = redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("ID")
                        .arg(id)
                        .query_async(&mut admin)
                        .await
                        .unwrap();
                    let _: () = redis::cmd("CLIENT")
                        .arg("UNPAUSE")
                        .query_async(&mut admin)
                        .await
                        .unwrap();
                });
                pipe.set("balance", balance - 30).ignore().get("balance");
                pipe.query_async(conn).await
            })
        })
        .await;
    let error = result.unwrap_err();
    assert_eq!(runs, 1, "never re-run after a connection failure");
    let text = error.to_string();
    assert!(matches!(error, Error::Transaction { .. }), "{error:?}");
    assert!(text.contains("was not run again"), "{text}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&server, "balance"), Some(100), "killed before EXEC ran");

    // The broken connection was discarded: the next transaction gets a working one.
    let (after,): (i64,) = db
        .app()
        .transaction(&["balance"], |conn, pipe| {
            Box::pin(async move {
                let balance: i64 = conn.get("balance").await?;
                pipe.set("balance", balance - 30).ignore().get("balance");
                pipe.query_async(conn).await
            })
        })
        .await
        .unwrap();
    assert_eq!(after, 70);
}

/// The EXEC is applied but its reply comes after the database's timeout (1 s): the helper must
/// report it, not run the transaction again (which would apply it twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_applied_but_timed_out_is_not_applied_twice() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let slow = "redis.call('INCR', KEYS[1]) \
        local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] \
        repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 1500000 \
        return 1";
    let mut runs = 0u32;
    let result: Result<Vec<i64>, Error> = db
        .app()
        .transaction(&["applied"], |conn, pipe| {
            runs += 1;
            Box::pin(async move {
                pipe.cmd("EVAL").arg(slow).arg(1).arg("applied");
                pipe.query_async(conn).await
            })
        })
        .await;
    let error = result.unwrap_err();
    assert_eq!(runs, 1);
    assert!(
        error
            .to_string()
            .contains("may or may not have been applied"),
        "{error}"
    );
    // Wait for the script to finish, then: applied exactly once.
    RedisServer::wait_for(Duration::from_secs(5), "the script to finish", || {
        redis::cmd("PING")
            .query::<String>(&mut server.raw(0))
            .is_ok()
    });
    assert_eq!(get(&server, "applied"), Some(1));
}

/// Decision: a raw `req_packed_command` answered with an error is `Err` on a handle and on an
/// exclusive connection (redis-rs gives `Ok(Value::ServerError)`): the SDK must see the error
/// to classify it (LOADING, TRYAGAIN, ... are waited out or retried). The server's code and
/// kind stay matchable; typed calls behave as on redis-rs.
#[tokio::test]
async fn a_raw_error_reply_is_an_err_with_the_servers_code() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let _: () = db.app().set("s", "a string").await.unwrap();
    let mut hset = redis::cmd("HSET");
    hset.arg("s").arg("f").arg("v");

    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let on_redis_rs = raw.req_packed_command(&hset).await;
    assert!(
        matches!(on_redis_rs, Ok(Value::ServerError(ref e)) if e.code() == "WRONGTYPE"),
        "{on_redis_rs:?}"
    );

    let mut handle = db.app();
    let error = handle.req_packed_command(&hset).await.unwrap_err();
    assert_eq!(error.code(), Some("WRONGTYPE"));
    let mut conn = db.app().connection().await.unwrap();
    let error = conn.req_packed_command(&hset).await.unwrap_err();
    assert_eq!(error.code(), Some("WRONGTYPE"));

    // Typed calls: the same `Err` on both.
    let typed_raw = raw.hset::<_, _, _, i64>("s", "f", "v").await.unwrap_err();
    let typed_sdk = db
        .app()
        .hset::<_, _, _, i64>("s", "f", "v")
        .await
        .unwrap_err();
    assert_eq!(typed_raw.kind(), typed_sdk.kind());
}

#[tokio::test]
async fn a_pipeline_refused_for_client_tracking_names_it_and_sent_nothing() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut pipe = redis::pipe();
    pipe.set("tracked", "v")
        .ignore()
        .cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .ignore()
        .get("tracked");
    let error = db
        .app()
        .query_pipeline::<(Option<String>,)>(&pipe)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(&error, Error::NeedsExclusiveConnection { command, .. } if command == "CLIENT TRACKING"),
        "{error:?}"
    );
    assert!(text.contains("`CLIENT TRACKING`"), "{text}");
    assert!(
        text.contains("nothing was sent") && text.contains("none of its commands"),
        "{text}"
    );
    // Through `query_async` (the `ConnectionLike` road) the text survives.
    let via_redis = pipe
        .query_async::<(Option<String>,)>(&mut db.app())
        .await
        .unwrap_err();
    assert!(
        via_redis.to_string().contains("nothing was sent"),
        "{via_redis}"
    );
    assert_eq!(
        get(&server, "tracked"),
        None,
        "the SET in the pipeline never ran"
    );
    let set_stats = server.info_field("commandstats", "cmdstat_set");
    assert!(set_stats.is_none(), "no SET reached the server");
}
