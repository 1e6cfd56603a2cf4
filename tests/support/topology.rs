//! Sentinel and Cluster deployments made of real processes for the topology tests: a master
//! with two replicas and three sentinels, and a 3-master/3-replica Redis Cluster made with
//! `redis-cli --cluster create`. Everything is killed and cleaned up on drop; start-up is
//! bounded and fails with a message saying what did not come up.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, temp_dir, RedisServer};

/// How long a whole deployment may take to settle (replication links, sentinel discovery,
/// cluster gossip).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The master name the sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

/// A plain synchronous connection to `127.0.0.1:port`, database `db`, with short timeouts.
pub fn raw_at(port: u16, db: u32) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/{db}"))?;
    let connection = client.get_connection_with_timeout(Duration::from_millis(500))?;
    connection.set_read_timeout(Some(Duration::from_secs(2)))?;
    connection.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(connection)
}

/// One field of `INFO <section>` of the server at `port`, `None` when unreachable or absent.
pub fn info_field_at(port: u16, section: &str, field: &str) -> Option<String> {
    super::info::read(&mut raw_at(port, 0).ok()?, section, field)
}

/// One counter (`calls`, `rejected_calls`, ...) of `cmdstat_<command>` on the server at `port`,
/// 0 when unreachable or absent.
pub fn cmdstat_at(port: u16, command: &str, counter: &str) -> u64 {
    let stats = info_field_at(port, "commandstats", &format!("cmdstat_{command}"));
    super::info::cmdstat(stats.as_deref(), counter)
}

/// Polls `condition` every 50 ms until it holds or `within` passes, then panics naming `what`
/// and the last diagnostic `condition` returned.
pub fn settle(within: Duration, what: &str, mut condition: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + within;
    loop {
        match condition() {
            Ok(()) => return,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for: {what} (last seen: {last})"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `redis-server` on a port chosen by the caller (the harness's `RedisServer::start` picks its
/// own), with `--save "" --enable-debug-command yes` plus `extra`.
pub fn server_on(port: u16, extra: &[&str]) -> RedisServer {
    let mut server = RedisServer {
        child: None,
        port,
        dir: temp_dir(port),
        args: extra.iter().map(|s| s.to_string()).collect(),
    };
    server.spawn(&[]);
    server.wait_until_accepting();
    server
}

// ---------------------------------------------------------------------------------------------
// Sentinel

/// A `redis-server --sentinel` process with its own writable config file.
pub struct SentinelProcess {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl SentinelProcess {
    pub fn start(master_port: u16) -> SentinelProcess {
        let port = free_port();
        let dir = temp_dir(port);
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\n\
                 bind 127.0.0.1\n\
                 daemonize no\n\
                 dir {dir}\n\
                 logfile sentinel.log\n\
                 sentinel resolve-hostnames no\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                dir = dir.display()
            ),
        )
        .expect("write sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel");
        let mut sentinel = SentinelProcess {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = sentinel.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "sentinel exited at start ({status}); its log:\n{}",
                    sentinel.log()
                );
            }
            let pong = raw_at(port, 0).and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return sentinel;
            }
            assert!(
                Instant::now() < deadline,
                "sentinel on :{port} did not start within 10 s; its log:\n{}",
                sentinel.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sentinel.log")).unwrap_or_default()
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let mut raw = raw_at(self.port, 0)?;
        cmd.query(&mut raw)
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME mymaster` as a port.
    pub fn master_port(&self) -> Option<u16> {
        let addr: Option<(String, String)> = self
            .query(
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(MASTER_NAME),
            )
            .ok()?;
        addr.and_then(|(_, port)| port.parse().ok())
    }

    /// `(ip:port, flags)` of every replica this sentinel knows.
    fn replicas(&self) -> Vec<(String, String)> {
        let replicas: Vec<std::collections::HashMap<String, String>> = self
            .query(redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER_NAME))
            .unwrap_or_default();
        replicas
            .into_iter()
            .map(|r| {
                (
                    format!(
                        "{}:{}",
                        r.get("ip").cloned().unwrap_or_default(),
                        r.get("port").cloned().unwrap_or_default()
                    ),
                    r.get("flags").cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// How many other sentinels this one knows.
    fn known_sentinels(&self) -> usize {
        let sentinels: Vec<redis::Value> = self
            .query(redis::cmd("SENTINEL").arg("SENTINELS").arg(MASTER_NAME))
            .unwrap_or_default();
        sentinels.len()
    }
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A master, two replicas and three sentinels monitoring them as `mymaster` (quorum 2,
/// down-after 1 s, failover-timeout 5 s).
pub struct SentinelSet {
    /// The three data nodes; which one is the master changes with failovers (see `master_port`).
    pub nodes: Vec<RedisServer>,
    pub sentinels: Vec<SentinelProcess>,
}

impl SentinelSet {
    pub fn start() -> SentinelSet {
        let started = Instant::now();
        let master = RedisServer::start(&[]);
        let replica_of = master.port().to_string();
        let replicas: Vec<RedisServer> = (0..2)
            .map(|_| RedisServer::start(&["--replicaof", "127.0.0.1", &replica_of]))
            .collect();
        let mut nodes = vec![master];
        nodes.extend(replicas);
        let set = SentinelSet {
            sentinels: (0..3)
                .map(|_| SentinelProcess::start(nodes[0].port()))
                .collect(),
            nodes,
        };
        let master_port = set.nodes[0].port();
        settle(SETTLE_TIMEOUT, "master with 2 connected replicas", || {
            let connected = info_field_at(master_port, "replication", "connected_slaves");
            (connected.as_deref() == Some("2"))
                .then_some(())
                .ok_or(format!("connected_slaves={connected:?}"))
        });
        for replica in &set.nodes[1..] {
            settle(SETTLE_TIMEOUT, "replica link up", || {
                let link = info_field_at(replica.port(), "replication", "master_link_status");
                (link.as_deref() == Some("up"))
                    .then_some(())
                    .ok_or(format!(":{} master_link_status={link:?}", replica.port()))
            });
        }
        for sentinel in &set.sentinels {
            settle(
                SETTLE_TIMEOUT,
                "every sentinel knowing the master, both replicas and the 2 other sentinels",
                || {
                    let master = sentinel.master_port();
                    let replicas = sentinel.replicas();
                    let healthy = replicas
                        .iter()
                        .filter(|(_, flags)| flags == "slave")
                        .count();
                    let others = sentinel.known_sentinels();
                    (master == Some(master_port) && healthy == 2 && others == 2)
                        .then_some(())
                        .ok_or(format!(
                            "sentinel :{} master={master:?} replicas={replicas:?} sentinels={others}",
                            sentinel.port()
                        ))
                },
            );
        }
        eprintln!(
            "[topology] sentinel set up in {:?}: master :{}, replicas :{} :{}, sentinels :{} :{} :{}",
            started.elapsed(),
            set.nodes[0].port(),
            set.nodes[1].port(),
            set.nodes[2].port(),
            set.sentinels[0].port(),
            set.sentinels[1].port(),
            set.sentinels[2].port()
        );
        set
    }

    /// `["127.0.0.1:p1", ...]` of the sentinels, for `sentinel.nodes`.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        loopback_addresses(self.sentinels.iter().map(SentinelProcess::port))
    }

    /// The master's port according to a majority of reachable sentinels' current view (the
    /// first sentinel that answers).
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(SentinelProcess::master_port)
            .expect("a sentinel that answers GET-MASTER-ADDR-BY-NAME")
    }

    /// The data node listening on `port`.
    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no data node on :{port}"))
    }

    /// Ports of the data nodes that are running and are not `master`.
    pub fn replica_ports(&mut self, master: u16) -> Vec<u16> {
        self.nodes
            .iter_mut()
            .filter_map(|n| (n.port() != master && n.is_running()).then(|| n.port()))
            .collect()
    }

    /// `SENTINEL FAILOVER mymaster` on the first sentinel.
    pub fn failover(&self) {
        let ok: String = self.sentinels[0]
            .query(redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER_NAME))
            .expect("SENTINEL FAILOVER");
        assert_eq!(ok, "OK");
    }

    /// Waits until every sentinel names a master other than `old`, that node says it is a
    /// master, and (when `replicas` is given) it has that many connected replicas. Returns the
    /// new master's port.
    pub fn wait_for_new_master(&self, old: u16, within: Duration, replicas: Option<usize>) -> u16 {
        let mut new = 0;
        settle(within, "sentinels promoting a new master", || {
            let views: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(SentinelProcess::master_port)
                .collect();
            let Some(Some(first)) = views.first().copied() else {
                return Err(format!("views {views:?}"));
            };
            if first == old || views.iter().any(|v| *v != Some(first)) {
                return Err(format!("views {views:?}"));
            }
            let role = info_field_at(first, "replication", "role");
            if role.as_deref() != Some("master") {
                return Err(format!(":{first} role={role:?}"));
            }
            if let Some(wanted) = replicas {
                let connected = info_field_at(first, "replication", "connected_slaves");
                if connected != Some(wanted.to_string()) {
                    return Err(format!(":{first} connected_slaves={connected:?}"));
                }
            }
            new = first;
            Ok(())
        });
        new
    }

    /// Every sentinel's log, for failure messages.
    pub fn logs(&self) -> String {
        self.sentinels
            .iter()
            .map(|s| format!("--- sentinel :{} ---\n{}", s.port(), s.log()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster

/// A port whose cluster bus port (`port + 10000`) is free too.
fn cluster_port() -> u16 {
    for _ in 0..1000 {
        let port = free_port();
        if port >= 55_000 {
            continue;
        }
        let both = TcpListener::bind(("127.0.0.1", port))
            .and_then(|a| TcpListener::bind(("127.0.0.1", port + 10_000)).map(|b| (a, b)));
        if both.is_ok() {
            return port;
        }
    }
    panic!("no free port pair (p, p+10000) for a cluster node");
}

/// Cluster-enabled `redis-server`s (node timeout 2 s) on ports whose bus port is free.
pub fn cluster_nodes(count: usize) -> Vec<RedisServer> {
    (0..count)
        .map(|_| {
            server_on(
                cluster_port(),
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ],
            )
        })
        .collect()
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug)]
pub struct ClusterNodeInfo {
    pub id: String,
    pub port: u16,
    pub flags: String,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNodeInfo {
    pub fn is_master(&self) -> bool {
        self.flags.split(',').any(|f| f == "master")
    }
    pub fn is_failed(&self) -> bool {
        self.flags.split(',').any(|f| f == "fail" || f == "fail?")
    }
}

/// `CLUSTER NODES` as seen by the node on `port`.
pub fn cluster_nodes_at(port: u16) -> redis::RedisResult<Vec<ClusterNodeInfo>> {
    let mut raw = raw_at(port, 0)?;
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut raw)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            // <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
            let port = fields[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| {
                    let mut range = s.split('-');
                    let start: u16 = range.next()?.parse().ok()?;
                    let end: u16 = range.next().map_or(Some(start), |e| e.parse().ok())?;
                    Some((start, end))
                })
                .collect();
            ClusterNodeInfo {
                id: fields[0].to_owned(),
                port,
                flags: fields[2].to_owned(),
                master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                slots,
            }
        })
        .collect())
}

/// `CLUSTER KEYSLOT key` asked of the node on `port`.
pub fn key_slot(port: u16, key: &str) -> u16 {
    let mut raw = raw_at(port, 0).expect("raw connection");
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut raw)
        .expect("CLUSTER KEYSLOT")
}

/// Six cluster nodes joined by `redis-cli --cluster create ... --cluster-replicas 1`.
pub struct ClusterSet {
    pub nodes: Vec<RedisServer>,
}

impl ClusterSet {
    pub fn start() -> ClusterSet {
        let started = Instant::now();
        let set = ClusterSet {
            nodes: cluster_nodes(6),
        };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &set.nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let output = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        set.wait_until_healthy(SETTLE_TIMEOUT, 3);
        eprintln!(
            "[topology] cluster up in {:?}: {}",
            started.elapsed(),
            set.describe()
        );
        set
    }

    /// Waits until every running node says `cluster_state:ok`, sees the same `masters`
    /// masters covering every slot, each with a connected replica unless it has none.
    pub fn wait_until_healthy(&self, within: Duration, masters: usize) {
        settle(within, "cluster_state:ok on every node", || {
            for node in &self.nodes {
                let state = info_cluster(node.port(), "cluster_state");
                if state.as_deref() != Some("ok") {
                    return Err(format!(":{} cluster_state={state:?}", node.port()));
                }
                let known = info_cluster(node.port(), "cluster_known_nodes");
                if known.as_deref() != Some(&self.nodes.len().to_string()) {
                    return Err(format!(":{} cluster_known_nodes={known:?}", node.port()));
                }
                let sized = info_cluster(node.port(), "cluster_size");
                if sized != Some(masters.to_string()) {
                    return Err(format!(":{} cluster_size={sized:?}", node.port()));
                }
            }
            for node in &self.nodes {
                let role = info_field_at(node.port(), "replication", "role");
                if role.as_deref() == Some("slave") {
                    let link = info_field_at(node.port(), "replication", "master_link_status");
                    if link.as_deref() != Some("up") {
                        return Err(format!(":{} master_link_status={link:?}", node.port()));
                    }
                }
            }
            Ok(())
        });
    }

    /// The cluster's view from the first node that answers.
    pub fn view(&self) -> Vec<ClusterNodeInfo> {
        self.nodes
            .iter()
            .find_map(|n| cluster_nodes_at(n.port()).ok())
            .expect("a cluster node that answers CLUSTER NODES")
    }

    pub fn masters(&self) -> Vec<ClusterNodeInfo> {
        self.view()
            .into_iter()
            .filter(|n| n.is_master() && !n.is_failed())
            .collect()
    }

    pub fn replicas(&self) -> Vec<ClusterNodeInfo> {
        self.view()
            .into_iter()
            .filter(|n| !n.is_master() && !n.is_failed())
            .collect()
    }

    /// The node that serves `slot` now.
    pub fn owner_of(&self, slot: u16) -> ClusterNodeInfo {
        self.masters()
            .into_iter()
            .find(|n| n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no cluster node on :{port}"))
    }

    /// `"127.0.0.1:p"` of every node.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect()
    }

    pub fn describe(&self) -> String {
        self.view()
            .iter()
            .map(|n| {
                format!(
                    ":{} {} {:?}",
                    n.port,
                    if n.is_master() { "master" } else { "replica" },
                    n.slots
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn info_cluster(port: u16, field: &str) -> Option<String> {
    let mut raw = raw_at(port, 0).ok()?;
    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut raw).ok()?;
    info.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}

// ---------------------------------------------------------------------------------------------
// Write load with an acknowledgement ledger

/// One acknowledged write of the load.
#[derive(Clone, Debug)]
pub struct Ack {
    pub key: String,
    /// The unique value pushed (`"<task>:<seq>"`).
    pub value: String,
    pub started: Instant,
    pub acked: Instant,
    /// `WAIT` in the same pipeline confirmed the write on `confirm` replicas.
    pub confirmed: bool,
    /// Sent as a plain command on the shared connection (`false`: a pipeline with `WAIT` on an
    /// exclusive pooled connection).
    pub plain: bool,
}

#[derive(Debug, Default)]
pub struct LoadLog {
    pub acks: Vec<Ack>,
    pub failures: u64,
    pub errors: Vec<String>,
}

/// Tasks writing unique values through one handle until stopped: `plain` tasks send `RPUSH`
/// on the shared connection (an ack is the SDK's `Ok`), `confirming` tasks send the pipeline
/// `RPUSH; WAIT <confirm> 500` (one connection, so `WAIT` covers that very write).
pub struct WriteLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<LoadLog>>,
}

impl WriteLoad {
    pub fn start(
        handle: redis_db::Handle,
        plain: usize,
        confirming: usize,
        confirm: i64,
        key: fn(usize, u64) -> String,
    ) -> WriteLoad {
        use redis_db::redis::AsyncCommands;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..plain + confirming)
            .map(|task| {
                let stop = stop.clone();
                let mut handle = handle.clone();
                let is_plain = task < plain;
                tokio::spawn(async move {
                    let mut log = LoadLog::default();
                    let mut seq = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        seq += 1;
                        let key = key(task, seq);
                        let value = format!("{task}:{seq}");
                        let started = Instant::now();
                        let result = if is_plain {
                            handle.rpush::<_, _, i64>(&key, &value).await.map(|_| false)
                        } else {
                            redis::pipe()
                                .rpush(&key, &value)
                                .cmd("WAIT")
                                .arg(confirm)
                                .arg(500)
                                .query_async::<(i64, i64)>(&mut handle)
                                .await
                                .map(|(_, replicas)| replicas >= confirm)
                        };
                        match result {
                            Ok(confirmed) => log.acks.push(Ack {
                                key,
                                value,
                                started,
                                acked: Instant::now(),
                                confirmed,
                                plain: is_plain,
                            }),
                            Err(e) => {
                                log.failures += 1;
                                if log.errors.len() < 5 || log.failures % 50 == 0 {
                                    log.errors.push(format!("+{:?} {e}", started.elapsed()));
                                }
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                    log
                })
            })
            .collect();
        WriteLoad { stop, tasks }
    }

    pub async fn stop(self) -> LoadLog {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = LoadLog::default();
        for task in self.tasks {
            let log = task.await.expect("load task");
            all.acks.extend(log.acks);
            all.failures += log.failures;
            all.errors.extend(log.errors);
        }
        all.acks.sort_by_key(|a| a.acked);
        all
    }
}

impl LoadLog {
    /// The longest time after `event` during which no write that `counts` (e.g. a plain write
    /// still present after the failover) was acknowledged: from `event` to the first such ack,
    /// between two, or from the last one to `end` (when the load was stopped).
    pub fn outage_after(
        &self,
        event: Instant,
        end: Instant,
        counts: impl Fn(&Ack) -> bool,
    ) -> Duration {
        let mut last = event;
        let mut longest = Duration::ZERO;
        for ack in self.acks.iter().filter(|a| a.acked > event && counts(a)) {
            longest = longest.max(ack.acked - last);
            last = ack.acked;
        }
        longest.max(end.saturating_duration_since(last))
    }

    /// The distinct keys written.
    pub fn keys(&self) -> std::collections::BTreeSet<String> {
        self.acks.iter().map(|a| a.key.clone()).collect()
    }
}

/// `["127.0.0.1:p1", ...]`, as `sentinel.nodes` and `cluster.nodes` take them.
pub fn loopback_addresses(ports: impl Iterator<Item = u16>) -> Vec<String> {
    ports.map(|port| format!("127.0.0.1:{port}")).collect()
}
