//! A Cluster's slot map as two sides see it: the map the replica-read connection holds (as
//! redis-rs reports it to the connection's read-routing strategy, `ReplicaReads`) and the map
//! a `CLUSTER SLOTS` reply gives; `topology_refresh.rs` compares the two.

use std::sync::{Arc, Mutex};

use redis::cluster::NodeAddress;
use redis::cluster_read_routing::{
    ClusterTopology, ReadCandidates, ReadRoutingStrategy, ReadRoutingStrategyFactory,
};
use redis::Value;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// One shard as a connection or a `CLUSTER SLOTS` reply sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ShardView {
    /// Inclusive, sorted, adjacent ranges merged.
    slots: Vec<(u16, u16)>,
    primary: String,
    /// Sorted.
    replicas: Vec<String>,
}

/// A whole map, shards sorted by their first slot.
pub(crate) type TopologyView = Vec<ShardView>;

/// The slot map held by the newest connection of one replica connector, as redis-rs reported it
/// to the connection's read-routing strategy (on creation and on every refresh).
#[derive(Default)]
pub(crate) struct SeenTopology {
    state: Mutex<Seen>,
    /// Woken when the newest connection reports a shard without replicas.
    replica_less: Notify,
}

#[derive(Default)]
struct Seen {
    /// Identifies the newest connection's strategy: older connections' reports are ignored.
    newest: u64,
    view: Option<TopologyView>,
}

impl SeenTopology {
    pub fn view(&self) -> Option<TopologyView> {
        self.lock().view.clone()
    }

    /// Resolves when the newest connection reports a shard without replicas.
    pub fn replica_less_reported(&self) -> Notified<'_> {
        self.replica_less.notified()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, strategy: u64, view: TopologyView) {
        let mut seen = self.lock();
        if seen.newest != strategy {
            return;
        }
        tracing::debug!(map = %describe(&view), "redis-db: cluster slot map of the replica-read connection");
        let replica_less = has_replica_less_shard(&view);
        seen.view = Some(view);
        drop(seen);
        if replica_less {
            self.replica_less.notify_one();
        }
    }
}

/// The read routing of a replica lane: a random replica of the slot's shard (redis-rs falls
/// back to the master when the shard has none), recording every map the connection holds.
pub(crate) struct ReplicaReads(pub Arc<SeenTopology>);

impl ReadRoutingStrategyFactory for ReplicaReads {
    fn create_strategy(&self) -> Box<dyn ReadRoutingStrategy> {
        let id = {
            let mut seen = self.0.lock();
            seen.newest += 1;
            seen.view = None;
            seen.newest
        };
        Box::new(RecordingRandomReplica {
            id,
            seen: self.0.clone(),
        })
    }
}

struct RecordingRandomReplica {
    id: u64,
    seen: Arc<SeenTopology>,
}

impl ReadRoutingStrategy for RecordingRandomReplica {
    fn on_topology_changed(&self, topology: ClusterTopology) {
        let view = topology
            .shards()
            .map(|shard| {
                shard_view(
                    shard.slot_ranges().to_vec(),
                    shard.primary().to_string(),
                    shard
                        .replicas()
                        .iter()
                        .map(NodeAddress::to_string)
                        .collect(),
                )
            })
            .collect();
        self.seen.record(self.id, sorted(view));
    }

    fn route_read<'a>(&self, candidates: &ReadCandidates<'a>) -> &'a NodeAddress {
        match candidates {
            ReadCandidates::AnyNode(c) => c.replicas().choose_random(),
            ReadCandidates::ReplicasOnly(c) => c.replicas().choose_random(),
        }
    }
}

/// A `CLUSTER SLOTS` reply (`[[start, end, [host, port, id..], replicas...], ...]`) grouped
/// into shards by master, as redis-rs groups its map. Entries it would skip are skipped.
pub(crate) fn parse_cluster_slots(reply: Value) -> TopologyView {
    let node = |value: &Value| -> Option<String> {
        let Value::Array(fields) = value else {
            return None;
        };
        let host = match fields.first()? {
            Value::BulkString(host) => String::from_utf8_lossy(host).into_owned(),
            Value::SimpleString(host) => host.clone(),
            _ => return None,
        };
        let Value::Int(port) = fields.get(1)? else {
            return None;
        };
        (host != "?").then(|| format!("{host}:{port}"))
    };
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    let mut shards: Vec<ShardView> = Vec::new();
    for entry in &entries {
        let Value::Array(fields) = entry else {
            continue;
        };
        let (Some(Value::Int(start)), Some(Value::Int(end))) = (fields.first(), fields.get(1))
        else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u16::try_from(*start), u16::try_from(*end)) else {
            continue;
        };
        let mut nodes = fields.iter().skip(2).filter_map(node);
        let Some(primary) = nodes.next() else {
            continue;
        };
        match shards.iter_mut().find(|s| s.primary == primary) {
            Some(shard) => shard.slots.push((start, end)),
            None => shards.push(ShardView {
                slots: vec![(start, end)],
                primary,
                replicas: nodes.collect(),
            }),
        }
    }
    sorted(
        shards
            .into_iter()
            .map(|s| shard_view(s.slots, s.primary, s.replicas))
            .collect(),
    )
}

fn shard_view(mut slots: Vec<(u16, u16)>, primary: String, mut replicas: Vec<String>) -> ShardView {
    slots.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(slots.len());
    for (start, end) in slots {
        match merged.last_mut() {
            Some(last) if u32::from(last.1) + 1 >= u32::from(start) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    replicas.sort_unstable();
    ShardView {
        slots: merged,
        primary,
        replicas,
    }
}

fn sorted(mut view: TopologyView) -> TopologyView {
    view.sort_unstable();
    view
}

pub(crate) fn has_replica_less_shard(view: &[ShardView]) -> bool {
    view.iter().any(|shard| shard.replicas.is_empty())
}

/// `0-5460 127.0.0.1:7000 [127.0.0.1:7004]; ...` for logs.
pub(crate) fn describe(view: &[ShardView]) -> String {
    view.iter()
        .map(|shard| {
            let slots: Vec<String> = shard
                .slots
                .iter()
                .map(|(start, end)| format!("{start}-{end}"))
                .collect();
            format!(
                "{} {} [{}]",
                slots.join(","),
                shard.primary,
                shard.replicas.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"0123abcd".to_vec()),
        ])
    }

    fn range(start: i64, end: i64, nodes: Vec<Value>) -> Value {
        let mut fields = vec![Value::Int(start), Value::Int(end)];
        fields.extend(nodes);
        Value::Array(fields)
    }

    #[test]
    fn cluster_slots_are_grouped_by_master_with_ranges_merged() {
        let reply = Value::Array(vec![
            range(5461, 10922, vec![node("127.0.0.1", 7001)]),
            range(
                0,
                100,
                vec![node("127.0.0.1", 7000), node("127.0.0.1", 7004)],
            ),
            range(
                101,
                5460,
                vec![node("127.0.0.1", 7000), node("127.0.0.1", 7004)],
            ),
            range(10923, 16383, vec![node("?", 7002), node("127.0.0.1", 7002)]),
        ]);
        let view = parse_cluster_slots(reply);
        assert_eq!(
            describe(&view),
            "0-5460 127.0.0.1:7000 [127.0.0.1:7004]; 5461-10922 127.0.0.1:7001 []; \
             10923-16383 127.0.0.1:7002 []"
        );
        assert!(has_replica_less_shard(&view));
    }

    #[test]
    fn the_map_a_connection_holds_compares_equal_to_the_same_reply() {
        let seen = Arc::new(SeenTopology::default());
        let strategy = ReplicaReads(seen.clone()).create_strategy();
        let primary = NodeAddress::new("127.0.0.1", 7000);
        let replica = NodeAddress::new("127.0.0.1", 7004);
        strategy.on_topology_changed(ClusterTopology::from_shards(vec![
            redis::cluster_read_routing::Shard::new(
                vec![(0, 100), (101, 16383)],
                primary,
                vec![replica],
            ),
        ]));
        let reply = Value::Array(vec![range(
            0,
            16383,
            vec![node("127.0.0.1", 7000), node("127.0.0.1", 7004)],
        )]);
        assert_eq!(seen.view(), Some(parse_cluster_slots(reply)));
    }

    #[test]
    fn only_the_newest_connection_reports() {
        let seen = Arc::new(SeenTopology::default());
        let factory = ReplicaReads(seen.clone());
        let old = factory.create_strategy();
        let new = factory.create_strategy();
        let shard = |port| {
            ClusterTopology::from_shards(vec![redis::cluster_read_routing::Shard::new(
                vec![(0, 16383)],
                NodeAddress::new("h", port),
                Vec::new(),
            )])
        };
        new.on_topology_changed(shard(1));
        old.on_topology_changed(shard(2));
        assert_eq!(seen.view().unwrap()[0].primary, "h:1");
    }
}
