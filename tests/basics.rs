//! The ordinary path: connect, commands and pipelines through handles, aliases, stats, health.

mod support;

use redis_db::redis::AsyncCommands;
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

async fn connect(server: &RedisServer) -> DbClient {
    Db::builder().on(server).connect().await.expect("connect")
}

#[tokio::test]
async fn commands_and_pipelines_reach_their_own_database() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let _: () = db.main().set("k", "in main").await.unwrap();
    let _: () = db.jobs().set("k", "in jobs").await.unwrap();
    let main: String = db.main().get("k").await.unwrap();
    let jobs: String = db.database(Db::Jobs).get("k").await.unwrap();
    assert_eq!((main.as_str(), jobs.as_str()), ("in main", "in jobs"));

    let mut raw3 = server.raw(3);
    let raw: String = redis::cmd("GET").arg("k").query(&mut raw3).unwrap();
    assert_eq!(raw, "in jobs", "jobs is db 3 on the server");

    let (a, b): (i64, i64) = redis::pipe()
        .incr("a", 1)
        .incr("b", 2)
        .query_async(&mut db.main())
        .await
        .unwrap();
    assert_eq!((a, b), (1, 2));
    let (x,): (i64,) = redis::pipe()
        .atomic()
        .incr("a", 10)
        .query_async(&mut db.main())
        .await
        .unwrap();
    assert_eq!(x, 11);
}

#[tokio::test]
async fn an_alias_shares_its_targets_data_pool_and_figures() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let _: () = db.jobs_monitor().set("shared", 1).await.unwrap();
    let v: i64 = db.jobs().get("shared").await.unwrap();
    assert_eq!(v, 1);
    let stats = db.stats();
    let jobs = stats.database("jobs").unwrap();
    let monitor = stats.database("jobs_monitor").unwrap();
    assert_eq!(jobs.commands, 2);
    assert_eq!(
        monitor.commands, 2,
        "the alias reports its target's shared figures"
    );
    assert_eq!(monitor.alias_of.as_deref(), Some("jobs"));
    assert_eq!(
        server.clients_on_db(3),
        1,
        "one shared connection for db 3, not one per name"
    );
}

#[tokio::test]
async fn stats_and_health_serialize_every_database() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    for i in 0..50 {
        let _: () = db.main().set(format!("k{i}"), i).await.unwrap();
    }
    let stats = serde_json::to_value(db.stats()).unwrap();
    for name in ["main", "jobs", "jobs_monitor", "archive"] {
        assert!(
            stats["databases"][name]["commands"].is_u64(),
            "{name} in {stats}"
        );
        assert!(
            stats["databases"][name]["failures"].is_u64(),
            "{name} in {stats}"
        );
    }
    assert_eq!(stats["databases"]["main"]["commands"], 50);
    assert!(
        stats["databases"]["main"]["latency"]["p99_us"]
            .as_u64()
            .unwrap()
            > 0
    );
    let health = serde_json::to_value(db.health().await).unwrap();
    for name in ["main", "jobs", "jobs_monitor", "archive"] {
        assert_eq!(health["databases"][name]["state"], "healthy", "{health}");
    }
}
