//! Keeping a Cluster endpoint's replica reads on replicas: re-reading the topology on a timer.
//!
//! redis-rs 1.8.1 re-reads a cluster's slot map only after `MOVED` or a connection error, never
//! on a timer, and keeps connections only to the nodes of that map. `CLUSTER SLOTS` leaves out
//! replicas whose replication offset is still 0 (redis PR 9287, valkey `src/cluster.c`), so a
//! connection opened right after a cluster was created can hold a map without replicas, and with
//! `read_from: replica` would then send every read to the masters for as long as it lives.
//! No redirect ever says so: a master answers the read.
//!
//! redis-rs has no public way to refresh a connection's map, so the refresh is a rebuild: every
//! `cluster.topology_refresh` (and soon after the connection saw a shard without replicas), the
//! replica lane asks a node for `CLUSTER SLOTS`, compares it with the map its connection holds
//! (as reported to its read-routing strategy), and when they differ opens a new connection and
//! swaps it in. Masters need no timer: a moved slot answers `MOVED`, which redis-rs follows with
//! a refresh, and a broken or demoted (`READONLY`) node replaces the connection (`retry.rs`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::RedisError;
use tokio::task::JoinHandle;

use crate::connector::Link;
use crate::database::Inner;
use crate::slot_map::{
    describe, has_replica_less_shard, parse_cluster_slots, SeenTopology, TopologyView,
};

/// The first quick re-check after a connection saw a shard without replicas; doubled after each
/// check that still finds one, up to `LAST_QUICK_CHECK` (or the refresh period if shorter).
const FIRST_QUICK_CHECK: Duration = Duration::from_millis(250);
/// A shard may really have no replica: one `CLUSTER SLOTS` this often costs nothing, and a
/// replica that comes up is used within this time.
const LAST_QUICK_CHECK: Duration = Duration::from_secs(5);

/// One watcher per Cluster target with replica reads.
pub(crate) fn start(inner: &Arc<Inner>) -> Vec<JoinHandle<()>> {
    inner
        .targets()
        .iter()
        .enumerate()
        .filter_map(|(index, target)| {
            let lane = target.replica_lane().filter(|_| target.is_cluster())?;
            let seen = lane.connector().seen_topology()?;
            let owner = inner
                .config()
                .databases
                .iter()
                .find(|d| d.name == target.name())?;
            let period = inner.config().topology_refresh_of(owner);
            Some(tokio::spawn(watch(
                Arc::downgrade(inner),
                index,
                period,
                seen,
            )))
        })
        .collect()
}

async fn watch(inner: Weak<Inner>, target: usize, period: Duration, seen: Arc<SeenTopology>) {
    let mut quick = FIRST_QUICK_CHECK.min(period);
    loop {
        let wait = if seen.view().as_deref().is_some_and(has_replica_less_shard) {
            let wait = quick;
            quick = (quick * 2).min(LAST_QUICK_CHECK).min(period);
            wait
        } else {
            quick = FIRST_QUICK_CHECK.min(period);
            period
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            // A new connection saw a shard without replicas: re-plan with the quick delay.
            () = seen.replica_less_reported(), if wait == period => continue,
        }
        let Some(inner) = inner.upgrade() else { return };
        let Some(target) = inner.targets().get(target) else {
            return;
        };
        let Some(lane) = target.replica_lane() else {
            return;
        };
        // An idle lane has no connection to refresh (the next one reads a fresh map), and a
        // check must not count as a use that keeps it open.
        let Some(live) = lane.peek() else { continue };
        let Link::Cluster(mut connection) = live.connection else {
            return;
        };
        let held = seen.view();
        match cluster_slots(&mut connection).await {
            Ok(current) if held.as_ref() != Some(&current) => {
                tracing::info!(
                    database = %target.name(),
                    held = %held.as_deref().map_or_else(|| "none".to_owned(), describe),
                    current = %describe(&current),
                    "redis-db: cluster topology changed; replacing the replica-read connection"
                );
                if let Err(error) = lane.replace().await {
                    tracing::warn!(database = %target.name(), %error, "redis-db: could not reconnect to the cluster; keeping the current connection");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(database = %target.name(), %error, "redis-db: CLUSTER SLOTS failed; the next check tries again");
            }
        }
    }
}

/// `CLUSTER SLOTS` of any node the connection holds.
async fn cluster_slots(
    connection: &mut redis::cluster_async::ClusterConnection,
) -> Result<TopologyView, RedisError> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    let reply = connection
        .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
        .await?;
    Ok(parse_cluster_slots(reply))
}
