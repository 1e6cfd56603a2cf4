//! The blocking client: same core, same guarantees, from plain threads.

mod support;

use std::time::{Duration, Instant};

use redis_db::redis::{self, Commands};
use support::client::OnTestServer;
use support::{restart_into_loading, RedisServer};

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

fn connect(server: &RedisServer) -> DbBlockingClient {
    Db::builder()
        .on(server)
        .connect_blocking()
        .expect("connect_blocking")
}

/// Writes `key` once, then keeps the server busy for `spin_ms`: the reply comes after that.
const INCR_THEN_SPIN: &str = r"
redis.call('INCR', KEYS[1])
local t0 = redis.call('TIME')
repeat
  local t = redis.call('TIME')
until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > tonumber(ARGV[1]) * 1000
return 1";

#[test]
fn commands_pipelines_and_stats_from_plain_threads() {
    let server = RedisServer::start(&[]);
    let db = connect(&server);
    let _: () = db.main().set("k", "v").unwrap();
    let v: String = db.database(Db::Main).get("k").unwrap();
    assert_eq!(v, "v");

    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut jobs = db.jobs();
            std::thread::spawn(move || jobs.incr::<_, _, i64>("n", 1).unwrap())
        })
        .collect();
    for thread in threads {
        assert!(thread.join().unwrap() >= 1);
    }
    let (n, exists): (i64, bool) = redis::pipe()
        .get("n")
        .exists("n")
        .query(&mut db.jobs_monitor())
        .unwrap();
    assert_eq!((n, exists), (4, true));

    let stats = db.stats();
    assert_eq!(stats.database("main").unwrap().commands, 2);
    assert_eq!(
        stats.database("jobs").unwrap().commands,
        5,
        "4 INCR + 1 pipeline, shared with the alias"
    );
    assert!(stats.database("jobs").unwrap().latency.p99_us > 0);
    assert!(db.health().is_healthy());
}

/// `.atomic()` reaches the blocking handle wrapped in MULTI/EXEC: it must run as one
/// transaction, not be refused as a MULTI on a shared handle.
#[test]
fn an_atomic_pipeline_runs_as_a_transaction() {
    let server = RedisServer::start(&[]);
    let db = connect(&server);
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("tx:a", 1)
        .incr("tx:b", 2)
        .query(&mut db.main())
        .expect("an atomic pipeline on the blocking client");
    assert_eq!((a, b), (1, 2));
    let mut control = server.raw(0);
    let calls = server.info_field("commandstats", "cmdstat_exec");
    assert!(
        calls.is_some_and(|stats| stats.starts_with("calls=1,")),
        "one EXEC reached the server"
    );
    let (a, b): (i64, i64) = redis::pipe()
        .get("tx:a")
        .get("tx:b")
        .query(&mut control)
        .unwrap();
    assert_eq!((a, b), (1, 2));
}

#[test]
fn refuses_inside_an_async_runtime_instead_of_deadlocking() {
    let server = RedisServer::start(&[]);
    for runtime in [
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    ] {
        let url = server.url();
        let error = runtime
            .block_on(async move {
                Db::builder()
                    .url(url)
                    .ignore_environment()
                    .connect_blocking()
            })
            .expect_err("connect_blocking inside a runtime must fail");
        assert!(
            error.to_string().contains("inside an async runtime"),
            "{error}"
        );
    }
    // A blocking handle used inside a runtime gets an error too, not a panic.
    let db = connect(&server);
    let mut main = db.main();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result: redis::RedisResult<Option<String>> = runtime.block_on(async move { main.get("k") });
    assert!(result
        .unwrap_err()
        .to_string()
        .contains("inside an async runtime"));
}

#[test]
fn connect_waits_out_a_loading_server() {
    let mut server = RedisServer::start(&[]);
    restart_into_loading(&mut server, 30_000, 10);
    let db = connect(&server);
    let keys: u64 = redis::cmd("DBSIZE").query(&mut db.main()).unwrap();
    assert_eq!(
        keys, 30_000,
        "connect returned before the dataset was loaded"
    );
}

#[test]
fn the_breaker_opens_and_fails_fast() {
    let mut server = RedisServer::start(&[]);
    let db = connect(&server);
    server.kill();
    for _ in 0..3 {
        let error = db.main().get::<_, Option<String>>("k").unwrap_err();
        assert!(
            !error.to_string().contains("circuit open"),
            "opened too early: {error}"
        );
    }
    let started = Instant::now();
    let error = db.main().get::<_, Option<String>>("k").unwrap_err();
    assert!(error.to_string().contains("circuit open"), "{error}");
    assert!(error.to_string().contains("`main`"), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "open circuit must fail at once"
    );
}

#[test]
fn a_timed_out_write_is_never_sent_twice() {
    let server = RedisServer::start(&[]);
    let db = connect(&server);
    let started = Instant::now();
    let result: redis::RedisResult<i64> = redis::cmd("EVAL")
        .arg(INCR_THEN_SPIN)
        .arg(1)
        .arg("ledger")
        .arg(1500)
        .query(&mut db.main());
    let error = result.unwrap_err();
    assert!(error.to_string().contains("no reply within"), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "the write was retried: {:?}",
        started.elapsed()
    );

    // The script may still be spinning: a server past its busy-reply threshold (Valkey's is
    // lower) answers BUSY until it ends.
    let mut raw = server.raw(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let applied: i64 = loop {
        match redis::cmd("GET").arg("ledger").query(&mut raw) {
            Err(e) if e.code() == Some("BUSY") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(applied, 1, "the write was applied more than once");
    assert_eq!(db.stats().database("main").unwrap().retries, 0);
}
