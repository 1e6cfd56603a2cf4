//! Pub/sub and keyspace notifications (CONTRACT section 8) on real servers: subscriptions are
//! desired state, re-issued after a restart, a `CLIENT KILL` or a Sentinel failover; keyspace
//! events are those of the database's own number; a consumer that stops reading stays under a
//! memory bound; dropping a subscriber closes its connection.

mod support;

use std::time::{Duration, Instant};

use redis_db::redis::AsyncCommands;
use redis_db::{Message, Subscriber};
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/pubsub.yaml")]
pub enum Db {}

mod on_sentinel {
    #[redis_db::databases(config = "tests/fixtures/sentinel.yaml")]
    pub enum SentinelDb {}
}

mod on_cluster {
    #[redis_db::databases(config = "tests/fixtures/cluster-only.yaml")]
    pub enum ClusterDb {}
}

/// Generous: a reconnect goes through the backoff (0.05 s .. 0.2 s here) and, after a restart,
/// waits for the server to accept connections.
const WITHIN: Duration = Duration::from_secs(20);

async fn connect(server: &RedisServer) -> DbClient {
    Db::builder().on(server).connect().await.expect("connect")
}

async fn next_within(sub: &mut Subscriber, within: Duration) -> Message {
    tokio::time::timeout(within, sub.recv())
        .await
        .unwrap_or_else(|_| panic!("no message within {within:?}"))
        .expect("the subscriber's stream ended")
}

/// [`publish_until_received_on`] through `main`.
async fn publish_until_received(db: &DbClient, sub: &mut Subscriber, channel: &str) -> Message {
    publish_until_received_on(&db.main(), sub, channel).await
}

/// Publishes on `channel` until the subscriber receives something on it: after a fault,
/// delivery after the re-subscription is the awaited event, and each publish before it is lost
/// (at-most-once).
async fn publish_until_received_on(
    handle: &redis_db::Handle,
    sub: &mut Subscriber,
    channel: &str,
) -> Message {
    let deadline = Instant::now() + WITHIN;
    let mut sent = 0u64;
    loop {
        assert!(
            Instant::now() < deadline,
            "no message on `{channel}` within {WITHIN:?} after {sent} publishes (reconnections {})",
            sub.reconnections()
        );
        sent += 1;
        let _ = handle
            .clone()
            .publish::<_, _, i64>(channel, format!("try {sent}"))
            .await;
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(200), sub.recv()).await
        {
            if message.channel() == channel {
                return message;
            }
        }
    }
}

fn client_list(port: u16, kind: Option<&str>) -> Vec<String> {
    let mut raw = support::topology::raw_at(port, 0).expect("raw connection");
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("harness")
        .query(&mut raw)
        .unwrap();
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("LIST");
    if let Some(kind) = kind {
        cmd.arg("TYPE").arg(kind);
    }
    let list: String = cmd.query(&mut raw).unwrap();
    list.lines()
        .filter(|line| !line.contains("name=harness"))
        .map(str::to_owned)
        .collect()
}

/// Pub/sub connections other than the sentinels' own (`__sentinel__:hello`).
fn pubsub_clients(port: u16) -> usize {
    client_list(port, Some("pubsub"))
        .iter()
        .filter(|line| !line.contains("name=sentinel-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_on_channels_and_patterns() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut sub = db.main().subscriber().await.expect("subscriber");
    sub.subscribe("jobs:done").await.unwrap();
    sub.psubscribe("jobs:*").await.unwrap();

    let receivers: i64 = db.main().publish("jobs:done", "42").await.unwrap();
    assert_eq!(receivers, 2, "one channel and one pattern subscription");
    let mut got = [
        next_within(&mut sub, WITHIN).await,
        next_within(&mut sub, WITHIN).await,
    ];
    got.sort_by_key(|m| m.pattern().is_some());
    assert_eq!((got[0].channel(), got[0].pattern()), ("jobs:done", None));
    assert_eq!(
        (got[1].channel(), got[1].pattern()),
        ("jobs:done", Some("jobs:*"))
    );
    assert_eq!(got[0].payload::<String>().unwrap(), "42");
    assert_eq!(got[1].payload::<i64>().unwrap(), 42);

    // A pattern-only channel reaches the pattern alone.
    let _: i64 = db.main().publish("jobs:failed", "7").await.unwrap();
    let only = next_within(&mut sub, WITHIN).await;
    assert_eq!(
        (only.channel(), only.pattern()),
        ("jobs:failed", Some("jobs:*"))
    );

    let stats = db.stats();
    let main = &stats.database("main").unwrap().pubsub;
    assert_eq!(main.subscriptions, 2, "{main:?}");
    assert_eq!(main.messages_received, 3, "{main:?}");
    assert_eq!((main.messages_dropped, main.reconnections), (0, 0));

    sub.unsubscribe("jobs:done").await.unwrap();
    let receivers: i64 = db.main().publish("jobs:done", "x").await.unwrap();
    assert_eq!(receivers, 1, "only the pattern is left");
    assert_eq!(db.stats().database("main").unwrap().pubsub.subscriptions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gets_every_subscription_back() {
    let mut server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut sub = db.main().subscriber().await.expect("subscriber");
    sub.subscribe("orders").await.unwrap();
    sub.psubscribe("audit:*").await.unwrap();
    let _: i64 = db.main().publish("orders", "before").await.unwrap();
    assert_eq!(
        next_within(&mut sub, WITHIN)
            .await
            .payload::<String>()
            .unwrap(),
        "before"
    );
    assert_eq!(sub.reconnections(), 0);

    tokio::task::block_in_place(|| server.restart());

    let message = publish_until_received(&db, &mut sub, "orders").await;
    assert!(message.payload::<String>().unwrap().starts_with("try "));
    let audit = publish_until_received(&db, &mut sub, "audit:login").await;
    assert_eq!(
        audit.pattern(),
        Some("audit:*"),
        "the pattern came back too"
    );
    assert!(sub.reconnections() >= 1, "a restart is a re-establishment");
    let stats = db.stats();
    let main = &stats.database("main").unwrap().pubsub;
    assert!(main.reconnections >= 1, "{main:?}");
    assert_eq!(main.subscriptions, 2, "{main:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_type_pubsub_is_healed() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut sub = db.main().subscriber().await.expect("subscriber");
    sub.subscribe("events").await.unwrap();
    assert_eq!(pubsub_clients(server.port()), 1);

    let mut raw = server.raw(0);
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut raw)
        .unwrap();
    assert_eq!(killed, 1);

    publish_until_received(&db, &mut sub, "events").await;
    assert_eq!(sub.reconnections(), 1);
    assert_eq!(
        pubsub_clients(server.port()),
        1,
        "one connection again, not two"
    );
    // The shared lane was never killed: ordinary calls saw nothing.
    assert_eq!(db.stats().database("main").unwrap().failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_events_are_those_of_the_databases_own_number() {
    let server = RedisServer::start(&["--notify-keyspace-events", "KEA"]);
    let db = connect(&server).await;
    let mut events = db
        .sessions()
        .keyspace_events("session:*")
        .await
        .expect("keyspace events");

    // The same keys in db 1 first: the server notifies in order on one connection, so an event
    // of db 1 reaching this stream would come before db 6's.
    let _: () = db.other().set("session:42", "in db 1").await.unwrap();
    let _: () = db.other().hset("session:43", "f", "v").await.unwrap();
    let _: i64 = db.other().del("session:42").await.unwrap();
    let _: i64 = db
        .sessions()
        .hset("session:42", "user", "ann")
        .await
        .unwrap();
    let _: bool = db.sessions().pexpire("session:42", 50).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(WITHIN, events.recv())
            .await
            .expect("an event")
            .expect("stream open");
        seen.push((event.key().to_owned(), event.event().to_owned()));
    }
    let seen: Vec<(&str, &str)> = seen.iter().map(|(k, e)| (k.as_str(), e.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("session:42", "hset"),
            ("session:42", "expire"),
            ("session:42", "expired")
        ]
    );
    assert_eq!(events.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_off_is_an_error_naming_the_database_and_setting() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let error = db
        .sessions()
        .keyspace_events("session:*")
        .await
        .expect_err("notify-keyspace-events is empty");
    let text = error.to_string();
    for needle in ["`sessions`", "db 6", "notify-keyspace-events", "KEA"] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    assert_eq!(error.database(), Some("sessions"));
    assert_eq!(
        pubsub_clients(server.port()),
        0,
        "nothing was left subscribed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_stays_under_the_buffer_bound() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut sub = db.main().subscriber().await.expect("subscriber");
    sub.subscribe("flood").await.unwrap();
    let payload = "p".repeat(200);
    const FLOOD: u64 = 5000;
    for chunk in 0..FLOOD / 500 {
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.publish("flood", format!("{} {payload}", chunk * 500 + i))
                .ignore();
        }
        let _: () = pipe.query_async(&mut db.main()).await.unwrap();
    }
    support::wait_for_async(
        WITHIN,
        "every published message read off the socket",
        || sub.received() == FLOOD,
    )
    .await;

    let bound = Subscriber::BUFFER_MESSAGES;
    assert_eq!(sub.buffered(), bound, "the buffer holds its bound, no more");
    assert_eq!(sub.dropped(), FLOOD - bound as u64, "the rest were counted");
    let stats = db.stats();
    let main = &stats.database("main").unwrap().pubsub;
    assert_eq!(main.messages_dropped, FLOOD - bound as u64, "{main:?}");
    assert_eq!(main.messages_received, FLOOD, "{main:?}");
    // The socket kept being read: the server holds nothing for this client either.
    let line = client_list(server.port(), Some("pubsub")).pop().unwrap();
    assert!(
        line.contains(" omem=0 "),
        "server-side output buffer: {line}"
    );

    // The oldest were kept, in order; after draining, new messages flow again.
    let first = next_within(&mut sub, WITHIN).await;
    assert!(first.payload::<String>().unwrap().starts_with("0 "));
    for _ in 1..bound {
        next_within(&mut sub, WITHIN).await;
    }
    assert_eq!(sub.buffered(), 0);
    let _: i64 = db.main().publish("flood", "fresh").await.unwrap();
    assert_eq!(
        next_within(&mut sub, WITHIN)
            .await
            .payload::<String>()
            .unwrap(),
        "fresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_subscriber_closes_its_connection() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let _: () = db.main().set("warm", 1).await.unwrap();
    let before = client_list(server.port(), None).len();

    let mut sub = db.main().subscriber().await.expect("subscriber");
    sub.subscribe("a").await.unwrap();
    let events = db.sessions().keyspace_events("*").await;
    // Notifications are off here: the error must not leave a connection behind either.
    assert!(events.is_err());
    let idle = db.main().subscriber().await.expect("a second subscriber");
    assert_eq!(pubsub_clients(server.port()), 1);
    assert_eq!(client_list(server.port(), None).len(), before + 2);

    drop(sub);
    drop(idle);
    support::wait_for_async(WITHIN, "the subscribers' connections closed", || {
        client_list(server.port(), None).len() == before
    })
    .await;
    assert_eq!(pubsub_clients(server.port()), 0);
    assert_eq!(db.stats().database("main").unwrap().pubsub.subscriptions, 0);
}

#[test]
fn the_blocking_client_iterates_messages() {
    let server = RedisServer::start(&[]);
    let db = Db::builder()
        .on(&server)
        .connect_blocking()
        .expect("connect_blocking");
    let mut sub = db.main().subscriber().expect("blocking subscriber");
    sub.subscribe("tasks").unwrap();
    let receivers: i64 = redis::Commands::publish(&mut db.main(), "tasks", "one").unwrap();
    assert_eq!(receivers, 1);
    let first = sub.next_timeout(WITHIN).expect("a message");
    assert_eq!(first.payload::<String>().unwrap(), "one");
    let _: i64 = redis::Commands::publish(&mut db.main(), "tasks", "two").unwrap();
    let second = sub.next().expect("the iterator yields");
    assert_eq!(
        (second.channel(), second.payload::<String>().unwrap()),
        ("tasks", "two".to_owned())
    );
    drop(sub);
    RedisServer::wait_for(
        WITHIN,
        "the blocking subscriber's connection closed",
        || pubsub_clients(server.port()) == 0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_follows_a_sentinel_failover_to_the_new_master() {
    use on_sentinel::SentinelDb;
    use redis_db::config::{Sentinel, Topology};
    use support::topology::{SentinelSet, MASTER_NAME};

    let set = tokio::task::block_in_place(SentinelSet::start);
    let nodes = set
        .sentinel_addresses()
        .iter()
        .map(|a| a.parse().expect("host:port"))
        .collect();
    let topology = Topology::Sentinel(Sentinel {
        master_name: MASTER_NAME.to_owned(),
        nodes,
        username: None,
        password: None,
        read_from: redis_db::config::ReadFrom::Master,
    });
    let db = SentinelDb::builder()
        .ignore_environment()
        .configure(move |c| {
            c.topology = topology;
            c.retry.attempts = 5;
        })
        .connect()
        .await
        .expect("connect through the sentinels");
    let mut sub = db.main().subscriber().await.expect("subscriber");
    sub.subscribe("failover").await.unwrap();
    let old = set.master_port();
    assert_eq!(pubsub_clients(old), 1);

    tokio::task::block_in_place(|| set.failover());
    let new = tokio::task::block_in_place(|| set.wait_for_new_master(old, WITHIN, None));

    // A replica receives its master's publishes through replication, so delivery alone would
    // not show the move: the subscriber's connection must be on the new master.
    support::wait_for_async(WITHIN, "the subscriber on the new master", || {
        pubsub_clients(new) == 1 && pubsub_clients(old) == 0
    })
    .await;
    let deadline = Instant::now() + WITHIN;
    loop {
        assert!(Instant::now() < deadline, "no message after the failover");
        let _ = db.main().publish::<_, _, i64>("failover", "after").await;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.recv()).await {
            assert_eq!(m.channel(), "failover");
            break;
        }
    }
    assert!(sub.reconnections() >= 1);
}

/// The faults of `tests/chaos.rs` (docs/RELIABILITY.md), one at a time, through the same
/// fault-injecting proxy: after each ends, a message published is received without any action
/// by the test. The fault durations are the faults themselves, not waits for an outcome.
#[test]
fn subscriptions_survive_the_chaos_faults() {
    use support::proxy::Proxy;

    let mut server = RedisServer::start(&[]);
    // The proxy runs a runtime of its own: started and dropped outside the test's runtime
    // (declared first, so dropped after it).
    let proxy = Proxy::start(server.port());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(chaos_faults(&mut server, &proxy));
}

async fn chaos_faults(server: &mut RedisServer, proxy: &support::proxy::Proxy) {
    use support::proxy::Mode;

    let db = Db::builder()
        .url(proxy.url())
        .ignore_environment()
        // As tests/fixtures/chaos.yaml: the health interval also paces the subscriber's check.
        .configure(|c| c.health_check_interval = Some(Duration::from_secs(1)))
        .connect()
        .await
        .expect("connect through the proxy");
    let mut sub = db.main().subscriber().await.expect("subscriber");
    sub.subscribe("chaos").await.unwrap();
    sub.psubscribe("chaos:*").await.unwrap();
    publish_until_received(&db, &mut sub, "chaos").await;

    let faults = [
        "Kill9Restart",
        "StopCont",
        "ClientKill",
        "DebugSleep",
        "MaxClients",
        "ProxyReset",
        "ProxyBlackHole",
        "ProxyDelay",
    ];
    let mut recoveries = Vec::new();
    for fault in faults {
        tokio::task::block_in_place(|| match fault {
            "Kill9Restart" => {
                server.kill();
                std::thread::sleep(Duration::from_millis(800));
                server.restart();
            }
            "StopCont" => {
                server.pause();
                std::thread::sleep(Duration::from_secs(3));
                server.resume();
            }
            "ClientKill" => {
                let mut raw = server.raw(0);
                for kind in ["normal", "pubsub"] {
                    let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("TYPE")
                        .arg(kind)
                        .query(&mut raw);
                }
            }
            "DebugSleep" => {
                let _: redis::RedisResult<()> = redis::cmd("DEBUG")
                    .arg("SLEEP")
                    .arg("1.5")
                    .query(&mut server.raw(0));
            }
            "MaxClients" => {
                let mut raw = server.raw(0);
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxclients")
                    .arg(1)
                    .query(&mut raw)
                    .unwrap();
                let _: i64 = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("TYPE")
                    .arg("pubsub")
                    .query(&mut raw)
                    .unwrap();
                std::thread::sleep(Duration::from_secs(1));
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxclients")
                    .arg(10_000)
                    .query(&mut raw)
                    .unwrap();
            }
            "ProxyReset" => {
                proxy.set_mode(Mode::Refuse);
                proxy.reset_all();
                std::thread::sleep(Duration::from_millis(500));
                proxy.set_mode(Mode::Pass);
            }
            "ProxyBlackHole" => {
                proxy.set_mode(Mode::BlackHole);
                std::thread::sleep(Duration::from_secs(4));
                proxy.set_mode(Mode::Pass);
            }
            "ProxyDelay" => {
                proxy.set_mode(Mode::Delay(Duration::from_millis(400)));
                std::thread::sleep(Duration::from_secs(2));
                proxy.set_mode(Mode::Pass);
            }
            _ => unreachable!(),
        });
        let ended = Instant::now();
        let before = recoveries.last().map_or(0, |r: &(&str, Duration, u64)| r.2);
        let channel = format!("chaos:{}", fault.to_lowercase());
        let message = publish_until_received(&db, &mut sub, &channel).await;
        assert_eq!(message.pattern(), Some("chaos:*"), "after {fault}");
        publish_until_received(&db, &mut sub, "chaos").await;
        recoveries.push((fault, ended.elapsed(), sub.reconnections()));
        // These close the subscriber's socket: only a re-established connection can deliver.
        if ["Kill9Restart", "ClientKill", "MaxClients", "ProxyReset"].contains(&fault) {
            assert!(sub.reconnections() > before, "{fault}: {recoveries:?}");
        }
    }
    eprintln!("[pubsub] recovery after each fault (fault, time to first message, reconnections so far): {recoveries:?}");
    assert_eq!(
        pubsub_clients(server.port()),
        1,
        "one connection, not one per fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_subscriber_takes_channels_patterns_and_sharded_channels() {
    use on_cluster::ClusterDb;
    use redis_db::config::{Cluster, ReadFrom, Topology};
    use support::topology::ClusterSet;

    let mut cluster = tokio::task::block_in_place(ClusterSet::start);
    let topology = Topology::Cluster(Cluster {
        nodes: cluster
            .addresses()
            .iter()
            .map(|a| a.parse().expect("host:port"))
            .collect(),
        read_from: ReadFrom::Master,
        numbered_databases: false,
    });
    let db = ClusterDb::builder()
        .ignore_environment()
        .configure(move |c| {
            c.topology = topology;
            // The publisher's breaker opens during the failover: let it probe again soon.
            c.circuit_breaker.reset_timeout = Duration::from_millis(500);
        })
        .connect()
        .await
        .expect("connect to the cluster");
    let mut sub = db.main().subscriber().await.expect("subscriber");
    sub.subscribe("news").await.unwrap();
    sub.psubscribe("news:*").await.unwrap();
    sub.ssubscribe("orders{7}").await.unwrap();

    let _: i64 = db.main().publish("news", "plain").await.unwrap();
    let plain = next_within(&mut sub, WITHIN).await;
    assert_eq!((plain.channel(), plain.pattern()), ("news", None));
    let _: i64 = db.main().publish("news:eu", "pattern").await.unwrap();
    let pattern = next_within(&mut sub, WITHIN).await;
    assert_eq!(pattern.pattern(), Some("news:*"));
    let mut spublish = redis::cmd("SPUBLISH");
    spublish.arg("orders{7}").arg("sharded");
    let receivers: i64 = db.main().query(&spublish).await.unwrap();
    assert_eq!(
        receivers, 1,
        "SPUBLISH went to the slot's owner, where we are subscribed"
    );
    let sharded = next_within(&mut sub, WITHIN).await;
    assert_eq!(
        (sharded.channel(), sharded.payload::<String>().unwrap()),
        ("orders{7}", "sharded".to_owned())
    );

    // The slot's master dies and its replica takes over: the sharded channel follows.
    let slot = support::topology::key_slot(cluster.nodes[0].port(), "orders{7}");
    let owner = cluster.owner_of(slot).port;
    tokio::task::block_in_place(|| cluster.node(owner).kill());
    // Node timeout 2 s, then the election: delivery on the new owner is the awaited event.
    let deadline = Instant::now() + WITHIN * 2;
    loop {
        assert!(
            Instant::now() < deadline,
            "no sharded message after the failover (reconnections {})",
            sub.reconnections()
        );
        let _ = db.main().query::<i64>(&spublish).await;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.recv()).await {
            if m.channel() == "orders{7}" {
                break;
            }
        }
    }
    // The plain channel is still held as well.
    publish_until_received_on(&db.main(), &mut sub, "news").await;

    let error = db
        .main()
        .keyspace_events("*")
        .await
        .expect_err("keyspace events are per node on a cluster");
    assert!(error.to_string().contains("Cluster"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssubscribe_needs_a_cluster_endpoint() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut sub = db.main().subscriber().await.expect("subscriber");
    let error = sub.ssubscribe("orders").await.expect_err("standalone");
    assert!(error.to_string().contains("Cluster endpoint"), "{error}");
    assert_eq!(db.stats().database("main").unwrap().pubsub.subscriptions, 0);
}
