//! The SDK on a Sentinel-managed master (CONTRACT section 6): a master, two replicas and three
//! sentinels, all real processes spawned by the harness.
//!
//! What "acknowledged" may honestly promise: replication is asynchronous, and a failover
//! (forced with `SENTINEL FAILOVER`, or after a crash) promotes a replica that may not have
//! received the last writes the old master acknowledged. So the ledger has two kinds of writes:
//! plain `RPUSH` on the shared connection (the SDK's `Ok` only), and the pipeline
//! `RPUSH; WAIT 2 500` on one connection, confirmed when `WAIT` says both replicas have it.
//! A confirmed write is on every replica, whichever is promoted, and must survive; so must every
//! write sent after the failover (served by the new master, which nothing replaces). Plain acks
//! from just before the failover may be lost by Redis itself; the tests count and print them.
//! Every value is unique and the lists are tallied per value, so a write applied twice (a
//! re-send across the failover) fails the run instead of hiding in a set.

mod support;

use std::time::{Duration, Instant};

use redis_db::config::{NodeAddress, ReadFrom, Sentinel, Topology};
use redis_db::redis::AsyncCommands;
use support::client::OnTestServer;
use support::ledger::{tally_lists, Tally};
use support::topology::{raw_at, LoadLog, SentinelProcess, SentinelSet, WriteLoad, MASTER_NAME};
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/sentinel.yaml")]
pub enum Db {}

fn nodes(addresses: &[String]) -> Vec<NodeAddress> {
    addresses
        .iter()
        .map(|a| a.parse().expect("host:port"))
        .collect()
}

fn sentinel_topology(addresses: &[String], master_name: &str, read_from: ReadFrom) -> Topology {
    Topology::Sentinel(Sentinel {
        master_name: master_name.to_owned(),
        nodes: nodes(addresses),
        username: None,
        password: None,
        read_from,
    })
}

async fn connect(set: &SentinelSet, read_from: ReadFrom) -> DbClient {
    let topology = sentinel_topology(&set.sentinel_addresses(), MASTER_NAME, read_from);
    Db::builder()
        .ignore_environment()
        .configure(move |c| {
            c.topology = topology;
            // Enough retries to ride out a failover step; short enough to keep the load moving.
            c.retry.attempts = 5;
        })
        .connect()
        .await
        .expect("connect through the sentinels")
}

/// The failover follower's subscription to a sentinel is a socket like any other: it has the
/// configured keepalive (it was once opened without the endpoint's TCP settings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sentinel_subscription_has_keepalive() {
    let set = SentinelSet::start();
    let topology = sentinel_topology(&set.sentinel_addresses(), MASTER_NAME, ReadFrom::Master);
    let _db = Db::builder()
        .ignore_environment()
        .configure(move |c| {
            c.topology = topology;
            c.keepalive.idle = Duration::from_secs(45);
        })
        .connect()
        .await
        .expect("connect through the sentinels");
    let on_sentinels = || -> Vec<Option<u64>> {
        set.sentinels
            .iter()
            .flat_map(|s| support::keepalive_timers(s.port()))
            .collect()
    };
    // The follower subscribes in the background, right after connect.
    let deadline = Instant::now() + Duration::from_secs(20);
    while on_sentinels().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no socket to any sentinel 20 s after connect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let timers = on_sentinels();
    for timer in &timers {
        let secs =
            timer.unwrap_or_else(|| panic!("a sentinel socket without keepalive: {timers:?}"));
        assert!(
            (30..=45).contains(&secs),
            "keepalive idle 45 s expected, OS default is ~7200 s: {timers:?}"
        );
    }
}

/// Writers of the load: plain `RPUSH`, and `RPUSH; WAIT 2 500` pipelines.
const PLAIN_WRITERS: usize = 2;
const CONFIRMING_WRITERS: usize = 2;

fn ledger_key(task: usize, _seq: u64) -> String {
    format!("ledger:{task}")
}

/// How often each value is held in the ledger lists on the node at `port`, db 0: every list
/// any writer may have pushed to, acknowledged or not.
fn ledger_on(port: u16) -> Tally {
    let mut raw = raw_at(port, 0).expect("raw connection to the new master");
    tally_lists(
        &mut raw,
        (0..PLAIN_WRITERS + CONFIRMING_WRITERS).map(|task| ledger_key(task, 0)),
    )
}

/// Checks the ledger on the new master after a failover at `event`, whose new master was
/// announced at `announced`, and returns the report lines.
fn check_ledger(
    log: &LoadLog,
    present: &Tally,
    new_master: u16,
    event: Instant,
    announced: Instant,
) -> String {
    let duplicates = present.duplicates();
    assert!(
        duplicates.is_empty(),
        "writes applied more than once on the new master :{new_master}: {:?}",
        &duplicates[..duplicates.len().min(10)]
    );
    let confirmed: Vec<_> = log.acks.iter().filter(|a| a.confirmed).collect();
    let lost_confirmed: Vec<_> = confirmed
        .iter()
        .filter(|a| !present.contains(&a.value))
        .map(|a| &a.value)
        .collect();
    assert!(
        lost_confirmed.is_empty(),
        "writes confirmed by WAIT 2 are missing on the new master :{new_master}: {lost_confirmed:?}"
    );
    let after: Vec<_> = log.acks.iter().filter(|a| a.started > announced).collect();
    let lost_after: Vec<_> = after
        .iter()
        .filter(|a| !present.contains(&a.value))
        .map(|a| &a.value)
        .collect();
    assert!(
        lost_after.is_empty(),
        "writes acknowledged by the new master :{new_master} are missing: {lost_after:?}"
    );
    assert!(
        !after.is_empty(),
        "no write acknowledged after the failover"
    );
    let plain_before: Vec<_> = log
        .acks
        .iter()
        .filter(|a| !a.confirmed && a.started <= announced)
        .collect();
    let lost_plain = plain_before
        .iter()
        .filter(|a| !present.contains(&a.value))
        .count();
    let near_event = log
        .acks
        .iter()
        .filter(|a| a.acked > event && a.started <= announced)
        .count();
    format!(
        "{} acks ({} confirmed by WAIT 2, {} after the new master), {} failed calls, {} values \
         held, none twice; \
         unconfirmed acks from before the new master lost by the failover: {lost_plain} of {}; \
         acks between the event and the announcement: {near_event}",
        log.acks.len(),
        confirmed.len(),
        after.len(),
        log.failures,
        present.len(),
        plain_before.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_database_is_reachable_through_the_sentinels_and_lands_on_the_master() {
    let set = SentinelSet::start();
    let db = connect(&set, ReadFrom::Master).await;
    let master = set.master_port();
    for (database, number) in [(Db::Main, 0), (Db::Orders, 2), (Db::Archive, 5)] {
        let _: () = db
            .database(database)
            .set("where", format!("{database} in db {number}"))
            .await
            .unwrap();
        let mut raw = raw_at(master, number).unwrap();
        let on_master: String = redis::cmd("GET").arg("where").query(&mut raw).unwrap();
        assert_eq!(on_master, format!("{database} in db {number}"));
    }
    let via_alias: String = db.orders_view().get("where").await.unwrap();
    assert_eq!(via_alias, "orders in db 2", "the alias shares db 2");
    let (a, b): (i64, i64) = redis::pipe()
        .incr("n", 1)
        .incr("n", 2)
        .query_async(&mut db.archive())
        .await
        .unwrap();
    assert_eq!((a, b), (1, 3));
    // Nothing leaked into other numbers, and the replicas got the same placement.
    let mut raw1 = raw_at(master, 1).unwrap();
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut raw1).unwrap();
    assert_eq!(dbsize, 0);
    for replica in [set.nodes[1].port(), set.nodes[2].port()] {
        RedisServer::wait_for(Duration::from_secs(5), "replicated to db 5", || {
            let mut raw = raw_at(replica, 5).unwrap();
            redis::cmd("GET")
                .arg("n")
                .query::<Option<i64>>(&mut raw)
                .unwrap()
                == Some(3)
        });
    }
    let health = serde_json::to_value(db.health().await).unwrap();
    for name in ["main", "orders", "orders_view", "archive"] {
        assert_eq!(health["databases"][name]["state"], "healthy", "{health}");
    }
}

/// Runs the ledger load around `disrupt`, which returns (event instant, new master port, time
/// the new master was announced), checks that no confirmed write and no write sent after the
/// announcement is lost, and returns the longest time after the event without a *durable*
/// acknowledged write (one still present on the new master afterwards), plain and pipelined.
async fn failover_under_load(
    name: &str,
    set: &mut SentinelSet,
    disrupt: impl FnOnce(&mut SentinelSet) -> (Instant, u16, Instant),
) -> (Duration, Duration) {
    let db = connect(set, ReadFrom::Master).await;
    let load = WriteLoad::start(db.main(), PLAIN_WRITERS, CONFIRMING_WRITERS, 2, ledger_key);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (event, new_master, announced) = disrupt(set);
    // Keep writing a while on the new master.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let end = Instant::now();
    let log = load.stop().await;
    let present = ledger_on(new_master);
    let report = check_ledger(&log, &present, new_master, event, announced);
    let durable = |plain: bool| {
        log.outage_after(event, end, |a| {
            a.plain == plain && present.contains(&a.value)
        })
    };
    let (plain, pipelined) = (durable(true), durable(false));
    let any_ack = log.outage_after(event, end, |_| true);
    eprintln!(
        "[{name}] new master announced {:?} after the event; longest time without a durable \
         ack: plain {plain:?}, pipelined {pipelined:?} (without any ack: {any_ack:?}); \
         {report}; first errors: {:?}",
        announced - event,
        &log.errors[..log.errors.len().min(6)]
    );
    (plain, pipelined)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_write_load_loses_no_confirmed_write() {
    let mut set = SentinelSet::start();
    let (plain, pipelined) = failover_under_load("SENTINEL FAILOVER", &mut set, |set| {
        let old = set.master_port();
        let event = Instant::now();
        set.failover();
        // The old master comes back as a replica of the new one: 2 replicas again.
        let new = set.wait_for_new_master(old, Duration::from_secs(20), Some(2));
        (event, new, Instant::now())
    })
    .await;
    // Measured here: under 0.4 s plain, about 1 s pipelined (WAIT 2 waits for the second
    // replica to resync): the SDK moves to the promoted replica on `+promoted-slave`.
    let bound = Duration::from_secs(5);
    assert!(
        plain < bound && pipelined < bound,
        "durable writes did not resume within {bound:?}: plain {plain:?}, pipelined {pipelined:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sentinel_failover_durable_writes_resume_within_3_seconds() {
    let mut set = SentinelSet::start();
    let (plain, pipelined) = failover_under_load("SENTINEL FAILOVER, tight", &mut set, |set| {
        let old = set.master_port();
        let event = Instant::now();
        set.failover();
        let new = set.wait_for_new_master(old, Duration::from_secs(20), Some(2));
        (event, new, Instant::now())
    })
    .await;
    let bound = Duration::from_secs(3);
    assert!(
        plain < bound && pipelined < bound,
        "durable writes did not resume within {bound:?}: plain {plain:?}, pipelined {pipelined:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_under_write_load_is_replaced_and_loses_no_confirmed_write() {
    let mut set = SentinelSet::start();
    let (plain, pipelined) = failover_under_load("SIGKILL master", &mut set, |set| {
        let old = set.master_port();
        let event = Instant::now();
        set.node(old).kill();
        let new = set.wait_for_new_master(old, Duration::from_secs(20), Some(1));
        (event, new, Instant::now())
    })
    .await;
    // Measured here: about 3 s (down-after 1 s, election, promotion, reconnect).
    let bound = Duration::from_secs(10);
    assert!(
        plain < bound && pipelined < bound,
        "durable writes did not resume within {bound:?}: plain {plain:?}, pipelined {pipelined:?}"
    );
}

fn reset_stats(port: u16) {
    let mut raw = raw_at(port, 0).unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut raw)
        .unwrap();
}

fn calls(port: u16, command: &str) -> u64 {
    support::topology::cmdstat_at(port, command, "calls")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_from_replica_serves_reads_from_replicas_and_writes_from_the_master() {
    let mut set = SentinelSet::start();
    let db = connect(&set, ReadFrom::Replica).await;
    let master = set.master_port();
    let replicas = set.replica_ports(master);
    for port in std::iter::once(master).chain(replicas.iter().copied()) {
        reset_stats(port);
    }
    let _: () = db.orders().set("item", "on the master").await.unwrap();
    for &replica in &replicas {
        RedisServer::wait_for(Duration::from_secs(5), "replicated", || {
            let mut raw = raw_at(replica, 2).unwrap();
            redis::cmd("EXISTS")
                .arg("item")
                .query::<i64>(&mut raw)
                .unwrap()
                == 1
        });
    }
    for _ in 0..40 {
        let v: String = db.orders().get("item").await.unwrap();
        assert_eq!(v, "on the master");
    }
    let _: i64 = db.orders().incr("counter", 1).await.unwrap();
    let replica_gets: u64 = replicas.iter().map(|&p| calls(p, "get")).sum();
    assert_eq!(calls(master, "get"), 0, "no read reached the master");
    assert!(replica_gets >= 40, "replicas served {replica_gets} GETs");
    assert_eq!(calls(master, "set"), 1, "the write went to the master");
    // redis-rs sends `incr(key, n)` as INCRBY.
    assert_eq!(calls(master, "incrby"), 1, "the write went to the master");
}

async fn connect_error(topology: Topology) -> (String, Duration) {
    let started = Instant::now();
    let error = Db::builder()
        .ignore_environment()
        .configure(move |c| c.topology = topology)
        .connect()
        .await
        .expect_err("connect must fail");
    (error.to_string(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_sentinels_fail_connect_naming_the_database_and_endpoint() {
    let addresses = vec![
        format!("127.0.0.1:{}", support::unused_port()),
        format!("127.0.0.1:{}", support::unused_port()),
    ];
    let (text, took) =
        connect_error(sentinel_topology(&addresses, MASTER_NAME, ReadFrom::Master)).await;
    eprintln!("[unreachable sentinels] {took:?}: {text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(text.contains("`main`"), "{text}");
    assert!(text.contains("sentinel"), "{text}");
    assert!(text.contains(MASTER_NAME), "{text}");
    assert!(text.contains(&addresses[0]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_name_fails_connect_naming_the_database_and_endpoint() {
    let master = RedisServer::start(&[]);
    let sentinel = SentinelProcess::start(master.port());
    let addresses = vec![format!("127.0.0.1:{}", sentinel.port())];
    let (text, took) = connect_error(sentinel_topology(
        &addresses,
        "nosuchmaster",
        ReadFrom::Master,
    ))
    .await;
    eprintln!("[wrong master name] {took:?}: {text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(text.contains("`main`"), "{text}");
    assert!(text.contains("sentinel"), "{text}");
    assert!(text.contains("nosuchmaster"), "{text}");
    assert!(text.contains(&addresses[0]), "{text}");
}

/// A pipeline whose every command a demoted master refused with `READONLY` was not run: it is
/// re-sent on a new connection (as `LOADING`/`TRYAGAIN`/`MASTERDOWN` are), not handed back as
/// replies. The endpoint points at a replica, the state of a master just demoted by a failover;
/// once it is promoted (`REPLICAOF NO ONE`), the retried pipelines run there, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_refused_with_readonly_is_retried_on_a_new_connection() {
    let master = RedisServer::start(&[]);
    let demoted = RedisServer::start(&["--replicaof", "127.0.0.1", &master.port().to_string()]);
    let db = Db::builder()
        .on(&demoted)
        .configure(|c| {
            c.topology = Topology::Standalone;
            // About 15 s of retries: ample time to see the refusals and promote the node.
            c.retry.attempts = 40;
            c.retry.delay = Duration::from_millis(100);
            c.retry.max_delay = Duration::from_millis(400);
        })
        .connect()
        .await
        .expect("connect to the replica");
    let main_stats = || db.stats().database("main").cloned().expect("main's stats");
    let before = main_stats();

    let plain = tokio::spawn({
        let mut main = db.main();
        async move {
            redis::pipe()
                .rpush("ro:list", "plain")
                .incr("ro:n", 1)
                .query_async::<(i64, i64)>(&mut main)
                .await
        }
    });
    let atomic = tokio::spawn({
        let mut main = db.main();
        async move {
            redis::pipe()
                .atomic()
                .rpush("ro:list", "atomic")
                .incr("ro:n", 10)
                .query_async::<(i64, i64)>(&mut main)
                .await
        }
    });
    // Both refused and being retried: not returned to the caller.
    let deadline = Instant::now() + Duration::from_secs(10);
    while main_stats().retries < before.retries + 4 {
        assert!(
            !plain.is_finished() && !atomic.is_finished(),
            "a READONLY pipeline was handed back instead of retried"
        );
        assert!(Instant::now() < deadline, "no retry seen within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut raw = demoted.raw(0);
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut raw)
        .unwrap();

    let plain = plain
        .await
        .unwrap()
        .expect("the plain pipeline, once promoted");
    let atomic = atomic
        .await
        .unwrap()
        .expect("the atomic pipeline, once promoted");
    let mut replies = [plain, atomic];
    replies.sort();
    let n: i64 = redis::cmd("GET").arg("ro:n").query(&mut raw).unwrap();
    let list: Vec<String> = redis::cmd("LRANGE")
        .arg("ro:list")
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(n, 11, "each pipeline applied exactly once ({replies:?})");
    assert_eq!(list.len(), 2, "{list:?}");
    let after = main_stats();
    assert!(
        after.connections_created > before.connections_created,
        "the refusing connection was replaced: created {} -> {}",
        before.connections_created,
        after.connections_created
    );
}
