//! Contract 5.7: blocking commands get their own block time added to the response timeout, so a
//! timeout shorter than the block does not cut them off; on handles and on `connection()`.

mod support;

use std::time::{Duration, Instant};

use redis_db::redis::AsyncCommands;
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

async fn client(server: &RedisServer) -> DbClient {
    Db::builder()
        .on(server)
        .configure(|c| c.timeout = Duration::from_millis(500))
        .connect()
        .await
        .unwrap()
}

fn assert_blocked_for_the_full_time(elapsed: Duration) {
    assert!(
        elapsed >= Duration::from_millis(1400),
        "returned before its 1.5 s block: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blpop_longer_than_the_timeout_returns_nil_through_a_handle() {
    let server = RedisServer::start(&[]);
    let db = client(&server).await;
    let started = Instant::now();
    let popped: Option<(String, String)> = db
        .main()
        .blpop("empty", 1.5)
        .await
        .expect("no timeout error");
    assert_blocked_for_the_full_time(started.elapsed());
    assert_eq!(popped, None);
    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert_eq!((main.failures, main.retries), (0, 0), "{main:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blpop_returns_what_is_pushed_while_it_blocks() {
    let server = RedisServer::start(&[]);
    let db = client(&server).await;
    let handle = db.jobs();
    let waiter = tokio::spawn(async move {
        let mut handle = handle;
        handle
            .blpop::<_, Option<(String, String)>>("queue", 3.0)
            .await
    });
    support::wait_for_async(Duration::from_secs(5), "BLPOP blocked", || {
        server.info_field("clients", "blocked_clients").as_deref() == Some("1")
    })
    .await;
    // A shared-lane call is not held up by the blocked BLPOP (it has its own connection).
    let started = Instant::now();
    let _: () = db.jobs().rpush("queue", "job-1").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    let popped = waiter.await.unwrap().unwrap();
    assert_eq!(popped, Some(("queue".to_owned(), "job-1".to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xread_block_longer_than_the_timeout_on_an_exclusive_connection() {
    let server = RedisServer::start(&[]);
    let db = client(&server).await;
    let mut connection = db.main().connection().await.unwrap();
    let started = Instant::now();
    let reply: redis::Value = redis::cmd("XREAD")
        .arg("BLOCK")
        .arg(1500)
        .arg("STREAMS")
        .arg("stream")
        .arg("$")
        .query_async(&mut connection)
        .await
        .expect("no timeout error");
    assert_blocked_for_the_full_time(started.elapsed());
    assert_eq!(reply, redis::Value::Nil);

    let started = Instant::now();
    let popped: Option<(String, String)> = connection
        .blpop("empty", 1.5)
        .await
        .expect("no timeout error");
    assert_blocked_for_the_full_time(started.elapsed());
    assert_eq!(popped, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_blocking_command_still_gets_the_plain_timeout() {
    // The control: the 500 ms timeout is real, so the tests above prove the block time was added.
    let server = RedisServer::start(&[]);
    let db = client(&server).await;
    let started = Instant::now();
    let error = db
        .main()
        .query::<()>(redis::cmd("DEBUG").arg("SLEEP").arg(1.5))
        .await
        .unwrap_err();
    assert!(
        matches!(error, redis_db::Error::Timeout { .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
}
