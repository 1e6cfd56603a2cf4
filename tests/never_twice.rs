//! Contract 5.2, second half: a command that may already have reached the server is re-sent only
//! when it is read-only. `EVAL` counts as a write. A read that timed out is retried.

mod support;

use std::time::{Duration, Instant};

use redis_db::Error;
use support::client::OnTestServer;
use support::{wait_for_async, RedisServer};

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

/// INCRs KEYS[1], then spins for ARGV[1] microseconds: the write is applied, and the server stays
/// silent (no BUSY before `busy-reply-threshold`, 5 s) until the spin ends.
const INCR_THEN_SPIN: &str = r#"
redis.call('INCR', KEYS[1])
local function now() local t = redis.call('TIME') return tonumber(t[1]) * 1000000 + tonumber(t[2]) end
local start = now()
while now() - start < tonumber(ARGV[1]) do end
return 1
"#;

async fn client(server: &RedisServer, timeout: Duration) -> DbClient {
    Db::builder()
        .on(server)
        .configure(move |c| {
            c.timeout = timeout;
            c.retry.attempts = 3;
            c.retry.delay = Duration::from_millis(50);
        })
        .connect()
        .await
        .unwrap()
}

/// Waits until the server answers again, then reads `key` after one more round trip, so that
/// anything queued before the first answer (a re-sent script, say) has run by then.
async fn settled_value(server: &RedisServer, key: &str) -> Option<i64> {
    wait_for_async(
        Duration::from_secs(10),
        "the server to answer again",
        || {
            redis::cmd("PING")
                .query::<String>(&mut server.raw(0))
                .is_ok()
        },
    )
    .await;
    let _: String = redis::cmd("PING").query(&mut server.raw(0)).unwrap();
    redis::cmd("GET")
        .arg(key)
        .query(&mut server.raw(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_wrote_and_then_timed_out_is_not_sent_again() {
    let server = RedisServer::start(&[]);
    let db = client(&server, Duration::from_millis(300)).await;
    let started = Instant::now();
    let result = db
        .main()
        .query::<i64>(
            redis::cmd("EVAL")
                .arg(INCR_THEN_SPIN)
                .arg(1)
                .arg("counter")
                .arg(900_000),
        )
        .await;
    let elapsed = started.elapsed();
    let error = result.expect_err("the script outlives the 300 ms timeout");
    assert!(
        matches!(error, Error::Timeout { attempts: 1, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("`main`"), "{error}");
    assert!(
        elapsed < Duration::from_millis(850),
        "failed at the timeout, not after the spin: {elapsed:?}"
    );

    assert_eq!(
        settled_value(&server, "counter").await,
        Some(1),
        "the script ran exactly once"
    );
    assert_eq!(
        server.command_calls("eval"),
        1,
        "EVAL reached the server once"
    );
    assert_eq!(db.stats().database("main").unwrap().retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_timed_out_is_retried() {
    let server = RedisServer::start(&[]);
    let db = client(&server, Duration::from_millis(300)).await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut server.raw(0))
        .unwrap();
    // Every client's commands (new connections' handshakes included) wait 700 ms: the first GET
    // times out at 300 ms, a retry gets its answer once the pause ends.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(700)
        .arg("ALL")
        .query(&mut server.raw(0))
        .unwrap();
    let started = Instant::now();
    let value: String = db
        .main()
        .query(redis::cmd("GET").arg("k"))
        .await
        .expect("the GET is retried");
    let elapsed = started.elapsed();
    assert_eq!(value, "v");
    assert!(
        elapsed >= Duration::from_millis(300),
        "the first attempt must have timed out: {elapsed:?}"
    );
    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert!(main.retries >= 1, "{main:?}");
    assert_eq!(main.failures, 0, "{main:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_a_stopped_server_fails_in_bounded_time_and_applies_at_most_once() {
    let server = RedisServer::start(&[]);
    let db = Db::builder()
        .on(&server)
        .configure(|c| {
            c.timeout = Duration::from_millis(300);
            c.connect_timeout = Duration::from_millis(300);
            c.retry.attempts = 3;
            c.retry.delay = Duration::from_millis(50);
            c.retry.max_delay = Duration::from_millis(100);
        })
        .connect()
        .await
        .unwrap();
    server.pause();
    let started = Instant::now();
    let result = db
        .main()
        .query::<i64>(redis::cmd("INCR").arg("counter"))
        .await;
    let elapsed = started.elapsed();
    server.resume();
    let error = result.expect_err("a stopped server answers nothing");
    // The INCR went out on the open connection, so it is never re-sent (a re-send would stall in
    // the kernel-completed handshake anyway, see TESTING-NOTES: the attempt count is the proof).
    assert!(
        matches!(error, Error::Timeout { attempts: 1, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("never re-sent"), "{error}");
    // Worst case allowed: every attempt times out in the handshake or the reply, plus backoff.
    let bound = Duration::from_millis(4 * 300 + 3 * 100 + 500);
    assert!(elapsed < bound, "no hang: {elapsed:?} (bound {bound:?})");

    let value = settled_value(&server, "counter").await.unwrap_or(0);
    assert!(value <= 1, "the INCR was applied {value} times");
}
