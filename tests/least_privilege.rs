//! Issue 12: a least-privilege ACL user (`~app:* +get +set`, as production deployments give
//! applications) gets readiness, health and pooled connections that work with only the commands
//! the application itself runs. Measured on Redis 7.0.15: the server checks ACLs before
//! `LOADING`, so `NOPERM` to PING says "up and answering", not "finished loading".

mod support;

use std::time::{Duration, Instant};

use redis_db::redis::AsyncCommands;
use redis_db::{Error, HealthState};
use support::{info, restart_into_loading, RedisServer};

#[redis_db::databases(config = "tests/fixtures/least_privilege.yaml")]
pub enum Db {}

/// The application's user, also given on the server's command line so that it survives the
/// restarts into a LOADING window.
const APP_USER: &[&str] = &["--user", "app", "on", ">pw", "~app:*", "+get", "+set"];

fn server_with(extra: &[&str]) -> RedisServer {
    let args: Vec<&str> = APP_USER.iter().chain(extra).copied().collect();
    RedisServer::start(&args)
}

fn acl(server: &RedisServer, rules: &[&str]) {
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg(rules)
        .query(&mut server.raw(0))
        .unwrap();
}

async fn connect_as_app(server: &RedisServer) -> Result<DbClient, Error> {
    Db::builder()
        .url(server.url())
        .username("app")
        .password("pw")
        .ignore_environment()
        .connect()
        .await
}

/// `connect()` still sends a PING of its own (`Core::connect`, core.rs): until it accepts a
/// `NOPERM`, the tests below connect while the user may PING and take the permission away
/// right after, which leaves exactly the least-privilege user for everything they test.
async fn connected_then_restricted(server: &RedisServer, rules: &[&str]) -> DbClient {
    acl(server, &["+ping"]);
    let db = connect_as_app(server).await.expect("connect as app");
    acl(server, &["-ping"]);
    acl(server, rules);
    db
}

/// `INFO` fields read on one connection kept open, so reading does not count as a connection.
struct Inspector(redis::Connection);

impl Inspector {
    fn new(server: &RedisServer) -> Inspector {
        Inspector(server.raw(0))
    }

    fn field(&mut self, section: &str, field: &str) -> Option<String> {
        let text = info::query(&mut self.0, section).unwrap();
        info::field(&text, field)
    }

    fn connections_received(&mut self) -> u64 {
        self.field("stats", "total_connections_received")
            .unwrap_or_default()
            .parse()
            .unwrap()
    }

    /// `rejected_calls` of one command in `INFO commandstats` (refused before running, e.g.
    /// `LOADING`).
    fn rejected_calls(&mut self, command: &str) -> u64 {
        let stats = self.field("commandstats", &format!("cmdstat_{command}"));
        info::cmdstat(stats.as_deref(), "rejected_calls")
    }
}

#[tokio::test]
async fn connect_succeeds_for_a_user_who_may_not_ping() {
    let server = server_with(&[]);
    let db = connect_as_app(&server)
        .await
        .expect("a NOPERM to the connect-time PING proves the server answers");
    let _: () = db.app().set("app:k", "v").await.unwrap();
    let v: String = db.app().get("app:k").await.unwrap();
    assert_eq!(v, "v");
}

#[tokio::test]
async fn commands_run_and_refusals_name_the_permission() {
    let server = server_with(&[]);
    let db = connected_then_restricted(&server, &[]).await;
    let mut app = db.app();
    let _: () = app.set("app:k", "v").await.unwrap();
    let v: String = app.get("app:k").await.unwrap();
    assert_eq!(v, "v");

    // Exclusive connections too: created and recycled without PING or UNWATCH.
    for _ in 0..3 {
        let mut conn = app.connection().await.expect("checkout without +ping");
        let v: String = conn.get("app:k").await.unwrap();
        assert_eq!(v, "v");
    }

    // What the user may not do fails at once, with the server's reason naming it.
    let error = app
        .query::<i64>(redis::cmd("DEL").arg("app:k"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Command { .. }), "{error:?}");
    assert!(
        // Redis says "no permissions to run the 'del' command", Valkey "No permissions ...".
        text.to_lowercase().contains("no permissions") && text.contains("'del'"),
        "{text}"
    );
    let error = app.get::<_, Option<String>>("other").await.unwrap_err();
    assert!(
        error.to_string().to_lowercase().contains("no permissions"),
        "{error}"
    );
}

/// The numbers: five checkouts opened six connections. Sequential checkouts must reuse
/// one pooled connection, for a user without PING and UNWATCH and for one with PING only.
#[tokio::test]
async fn pooled_connections_are_reused_without_unwatch() {
    for (user, rules) in [("+get +set", &[][..]), ("+get +set +ping", &["+ping"][..])] {
        let server = server_with(&[]);
        let db = connected_then_restricted(&server, rules).await;
        let app = db.app();
        let mut inspector = Inspector::new(&server);
        let before = inspector.connections_received();
        for i in 0..5 {
            let mut conn = app.connection().await.expect("checkout");
            let _: () = conn.set("app:n", i).await.unwrap();
        }
        let opened = inspector.connections_received() - before;
        assert_eq!(
            opened, 1,
            "user {user}: 5 checkouts opened {opened} connections"
        );
        let stats = db.stats();
        let pool = &stats.database("app").unwrap().pool;
        assert_eq!(pool.size, 1, "user {user}: {pool:?}");

        // Two at a time: two connections, reused from then on.
        let before = inspector.connections_received();
        for _ in 0..5 {
            let (mut a, mut b) = (
                app.connection().await.unwrap(),
                app.connection().await.unwrap(),
            );
            let _: Option<String> = a.get("app:n").await.unwrap();
            let _: Option<String> = b.get("app:n").await.unwrap();
        }
        let opened = inspector.connections_received() - before;
        assert!(
            opened <= 1,
            "user {user}: the second connection only, got {opened}"
        );
    }
}

#[tokio::test]
async fn health_counts_a_refused_ping_as_an_answer() {
    let server = server_with(&[]);
    let db = connected_then_restricted(&server, &[]).await;
    let report = db.health().await;
    let app = report.database("app").unwrap();
    assert_eq!(app.state, HealthState::Healthy, "{app:?}");
    assert!(app.latency_ms.is_some(), "{app:?}");
    assert!(report.is_healthy());

    // A server that is down is still failed, of course.
    drop(server);
    let report = db.health().await;
    assert_eq!(report.database("app").unwrap().state, HealthState::Failed);
}

/// During a real LOADING window the PING probe gets NOPERM (ACLs first), so the calls' own
/// commands are the probe: the call waits the window out, sending again once per
/// `poll_interval` (0.05 s), not in a busy loop; health never calls it unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_out_loading_paced_by_the_poll_interval() {
    let mut server = server_with(&[]);
    let db = connected_then_restricted(&server, &[]).await;
    let _: () = db.app().set("app:k", "kept").await.unwrap();
    restart_into_loading(&mut server, 30_000, 10);
    let mut inspector = Inspector::new(&server);
    assert_eq!(
        inspector.field("persistence", "loading").as_deref(),
        Some("1")
    );

    let started = Instant::now();
    let mut app = db.app();
    let call = tokio::spawn(async move { app.get::<_, Option<String>>("app:k").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = db.health().await;
    let state = during.database("app").unwrap().state;
    assert_ne!(state, HealthState::Failed, "{during:?}");

    let v = call.await.unwrap().expect("the call waits out LOADING");
    let waited = started.elapsed();
    assert_eq!(
        inspector.field("persistence", "loading").as_deref(),
        Some("0")
    );
    assert_eq!(v.as_deref(), Some("kept"), "saved before the restart");
    let rejected = inspector.rejected_calls("get");
    // One GET per poll interval at most, plus slack for the first attempts.
    let bound = waited.as_millis() as u64 / 50 + 10;
    assert!(
        rejected >= 1 && rejected <= bound,
        "{rejected} GETs refused with LOADING in {waited:?} (at most {bound})"
    );
}

/// The transaction helper for a user without WATCH names the permission it needs.
#[tokio::test]
async fn a_transaction_without_watch_permission_names_it() {
    let server = server_with(&[]);
    let db = connected_then_restricted(&server, &[]).await;
    let result: Result<(), Error> = db
        .app()
        .transaction(&["app:k"], |conn, pipe| {
            Box::pin(async move {
                pipe.set("app:k", 1).ignore();
                pipe.query_async(conn).await
            })
        })
        .await;
    let error = result.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Transaction { .. }), "{error:?}");
    assert!(
        text.contains("may not run WATCH") && text.contains("+watch +multi +exec"),
        "{text}"
    );
    assert!(
        text.contains("`app`") && text.contains("\"app:k\""),
        "{text}"
    );
    assert!(!text.contains("pw"), "no password in errors: {text}");
}
