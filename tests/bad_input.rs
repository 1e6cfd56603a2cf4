//! Contract 5.2 (never retried: authentication, rejected database number, command errors), 5.8
//! (secrets) and section 2 (errors name the database; `connection()` for connection state).
//! Every failure here must be fast and clear.

mod support;

use std::time::{Duration, Instant};

use redis_db::redis::AsyncCommands;
use redis_db::Error;
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

/// A retry loop would take at least 3 x 0.5 s: anything under a second was not retried.
fn slow_retries(c: &mut redis_db::config::Config) {
    c.retry.attempts = 3;
    c.retry.delay = Duration::from_millis(500);
    c.retry.max_delay = Duration::from_millis(500);
}

const PASSWORD: &str = "correct-horse-battery";
const WRONG: &str = "wrong-Pa55word-xyzzy";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_at_once_and_is_never_shown() {
    let server = RedisServer::start(&["--requirepass", PASSWORD]);
    let started = Instant::now();
    let error = Db::builder()
        .url(format!("redis://:{WRONG}@127.0.0.1:{}", server.port()))
        .ignore_environment()
        .configure(slow_retries)
        .connect()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    assert!(
        elapsed < Duration::from_secs(1),
        "authentication is never retried: {elapsed:?}"
    );
    let (display, debug) = (error.to_string(), format!("{error:?}"));
    assert!(
        display.contains("`main`") && display.contains("authentication"),
        "{display}"
    );
    for shown in [&display, &debug] {
        assert!(!shown.contains(WRONG), "the password leaked: {shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
    }

    // The builder's own password setter: same verdict, same discretion.
    let error = Db::builder()
        .url(server.url())
        .password(WRONG)
        .ignore_environment()
        .configure(slow_retries)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains(WRONG), "{error:?}");

    // And the right one works.
    let db = Db::builder()
        .url(server.url())
        .password(PASSWORD)
        .ignore_environment()
        .connect()
        .await
        .unwrap();
    let _: () = db.main().set("k", 1).await.unwrap();
    assert!(!format!("{:?}", db.stats()).contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_for_a_protected_server_is_an_authentication_error() {
    let server = RedisServer::start(&["--requirepass", PASSWORD]);
    let started = Instant::now();
    let error = Db::builder()
        .on(&server)
        .configure(slow_retries)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("`main`"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_number_the_server_rejects_names_the_database() {
    let server = RedisServer::start(&["--databases", "4"]);
    let started = Instant::now();
    let error = Db::builder()
        .on(&server)
        .configure(slow_retries)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::DatabaseOutOfRange { db: 6, .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "never retried: {:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(
        text.contains("`archive`") && text.contains("db 6"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_after_the_retries_in_bounded_time() {
    let port = support::unused_port();
    let started = Instant::now();
    let error = Db::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .ignore_environment()
        .configure(|c| {
            c.retry.attempts = 2;
            c.retry.delay = Duration::from_millis(100);
            c.retry.max_delay = Duration::from_millis(200);
        })
        .connect()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, Error::Unreachable { attempts: 3, .. }),
        "first try plus 2 retries: {error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("`main`") && text.contains(&port.to_string()),
        "{text}"
    );
    assert!(
        elapsed >= Duration::from_millis(200),
        "the backoff ran: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_error_surfaces_at_once_and_stays_matchable() {
    let server = RedisServer::start(&[]);
    let db = Db::builder()
        .on(&server)
        .configure(slow_retries)
        .connect()
        .await
        .unwrap();
    let _: () = db.main().rpush("list", "x").await.unwrap();

    // Through AsyncCommands: the server's own error, kind and code unchanged.
    let raw_error = redis::cmd("GET")
        .arg("list")
        .query::<String>(&mut server.raw(0))
        .unwrap_err();
    let started = Instant::now();
    let error = db.main().get::<_, String>("list").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "not retried: {:?}",
        started.elapsed()
    );
    assert_eq!(error.code(), Some("WRONGTYPE"), "{error:?}");
    assert_eq!(error.kind(), raw_error.kind(), "{error:?} vs {raw_error:?}");

    // Through Handle::query: the SDK error names the database and keeps the server's error.
    let error = db
        .main()
        .query::<String>(redis::cmd("GET").arg("list"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`main`"), "{error}");
    match &error {
        Error::Command { source, .. } => assert_eq!(source.code(), Some("WRONGTYPE"), "{error:?}"),
        other => panic!("expected Error::Command, got {other:?}"),
    }
    // Whatever type the caller asked for: the server's error comes first.
    let error = db
        .main()
        .query::<Option<String>>(redis::cmd("GET").arg("list"))
        .await
        .unwrap_err();
    match &error {
        Error::Command { source, .. } => assert_eq!(source.code(), Some("WRONGTYPE"), "{error:?}"),
        other => panic!("expected Error::Command, got {other:?}"),
    }

    // A syntax error, too.
    let error = db
        .main()
        .query::<()>(redis::cmd("SET").arg("k"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Command { .. }), "{error:?}");

    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert_eq!(main.retries, 0, "{main:?}");
    assert_eq!(
        main.circuit,
        redis_db::CircuitState::Closed,
        "command errors are no breaker failures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_through_a_handle_is_refused_and_points_to_connection() {
    let server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    let _: () = db.main().set("where", "db0").await.unwrap();

    let error = redis::cmd("SELECT")
        .arg(3)
        .query_async::<()>(&mut db.main())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("connection()"), "{error}");
    let error = db
        .main()
        .query::<()>(redis::cmd("SELECT").arg(3))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::NeedsExclusiveConnection { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("`main`") && error.to_string().contains("connection()"),
        "{error}"
    );

    // The shared connection was not switched.
    let value: String = db.main().get("where").await.unwrap();
    assert_eq!(value, "db0");
    assert_eq!(
        server.clients_on_db(3),
        1,
        "only jobs' own shared connection is on db 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_gives_an_exclusive_connection_for_watch_multi_exec() {
    let server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    let mut connection = db.jobs().connection().await.unwrap();
    let _: () = connection.set("balance", 10).await.unwrap();
    let on_db3: i64 = redis::cmd("GET")
        .arg("balance")
        .query(&mut server.raw(3))
        .unwrap();
    assert_eq!(on_db3, 10, "the exclusive connection is on jobs' database");

    // Someone else changes the watched key: EXEC aborts.
    let _: () = redis::cmd("WATCH")
        .arg("balance")
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("balance")
        .arg(99)
        .query(&mut server.raw(3))
        .unwrap();
    let aborted: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr("balance", 1)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(aborted, None, "EXEC must abort after a concurrent change");

    // Nobody interferes: EXEC applies.
    let _: () = redis::cmd("WATCH")
        .arg("balance")
        .query_async(&mut connection)
        .await
        .unwrap();
    let current: i64 = connection.get("balance").await.unwrap();
    let applied: Option<(i64,)> = redis::pipe()
        .atomic()
        .set("balance", current + 1)
        .ignore()
        .get("balance")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(applied, Some((100,)));
}
