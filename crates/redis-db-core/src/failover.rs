//! Following a Sentinel failover at once. Sentinels promote a replica (`+promoted-slave`) and
//! announce the new master on `+switch-master` only once the other replicas are reconfigured,
//! seconds later; until the old master is demoted it still accepts writes, which are lost when
//! it resyncs. Subscribing to both and moving every connection to the promoted node the moment
//! it is promoted keeps that window as short as a client can make it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::{Client, RedisError};
use redis_db_config::{ConnectionSettings, NodeAddress, Sentinel, Topology};
use tokio::task::JoinHandle;

use crate::connector;
use crate::database::Inner;

const PROMOTED: &str = "+promoted-slave";
const SWITCHED: &str = "+switch-master";

/// Pause before trying the sentinels again when none accepted the subscription.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// One follower per Sentinel-managed endpoint in use.
pub(crate) fn start(inner: &Arc<Inner>) -> Vec<JoinHandle<()>> {
    let config = inner.config();
    sentinel_endpoints(inner)
        .into_iter()
        .map(|(connection, sentinel, targets)| {
            let sentinels = sentinel
                .nodes
                .iter()
                .filter_map(|node| {
                    match connector::sentinel_client(config, &connection, &sentinel, node) {
                        Ok(client) => Some((node.clone(), client)),
                        Err(error) => {
                            tracing::warn!(sentinel = %node, %error, "redis-db: cannot follow failovers through this sentinel");
                            None
                        }
                    }
                })
                .collect();
            tokio::spawn(follow(
                Arc::downgrade(inner),
                sentinel.master_name,
                sentinels,
                targets,
                config.connect_timeout,
            ))
        })
        .collect()
}

/// Each Sentinel-managed endpoint in use (its connection keys and sentinels), with the targets
/// on it.
fn sentinel_endpoints(inner: &Inner) -> Vec<(ConnectionSettings, Sentinel, Vec<usize>)> {
    let config = inner.config();
    let mut endpoints: Vec<(Option<&str>, ConnectionSettings, Sentinel, Vec<usize>)> = Vec::new();
    for (index, target) in inner.targets().iter().enumerate() {
        let Some(owner) = config.databases.iter().find(|d| d.name == target.name()) else {
            continue;
        };
        let (connection, Topology::Sentinel(sentinel)) = config.endpoint_of(owner) else {
            continue;
        };
        match endpoints
            .iter_mut()
            .find(|(name, ..)| *name == target.endpoint())
        {
            Some((.., targets)) => targets.push(index),
            None => endpoints.push((
                target.endpoint(),
                connection.clone(),
                sentinel.clone(),
                vec![index],
            )),
        }
    }
    endpoints
        .into_iter()
        .map(|(_, connection, sentinel, targets)| (connection, sentinel, targets))
        .collect()
}

/// Runs until the client is dropped (the task is aborted then; the `Weak` also ends it).
async fn follow(
    inner: Weak<Inner>,
    master_name: String,
    sentinels: Vec<(NodeAddress, Client)>,
    targets: Vec<usize>,
    connect_timeout: Duration,
) {
    loop {
        for (node, client) in &sentinels {
            let mut messages = match subscribe(client, connect_timeout).await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::debug!(sentinel = %node, %error, "redis-db: cannot subscribe to sentinel");
                    continue;
                }
            };
            while let Some(message) = messages.next().await {
                let payload: String = message.get_payload().unwrap_or_default();
                let announced = match message.get_channel_name() {
                    PROMOTED => promoted_replica(&payload, &master_name),
                    _ => new_master(&payload, &master_name),
                };
                let Some((host, port)) = announced else {
                    continue;
                };
                let Some(inner) = inner.upgrade() else { return };
                tracing::warn!(master = %master_name, switch = %payload, "redis-db: sentinel failover; reconnecting to the new master");
                for &target in &targets {
                    if let Some(target) = inner.targets().get(target) {
                        target.follow_new_master(host, port);
                    }
                }
            }
            tracing::debug!(sentinel = %node, "redis-db: sentinel subscription ended; trying the next sentinel");
        }
        if inner.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

/// The promoted replica of a `+promoted-slave` payload about `master_name`:
/// `"slave <name> <ip> <port> @ <master-name> <master-ip> <master-port>"`.
fn promoted_replica<'a>(payload: &'a str, master_name: &str) -> Option<(&'a str, u16)> {
    let fields: Vec<&str> = payload.split(' ').collect();
    match fields.as_slice() {
        ["slave", _name, host, port, "@", master, ..] if *master == master_name => {
            Some((host, port.parse().ok()?))
        }
        _ => None,
    }
}

/// The new master of a `+switch-master` payload about `master_name`:
/// `"<master-name> <old-ip> <old-port> <new-ip> <new-port>"`.
fn new_master<'a>(payload: &'a str, master_name: &str) -> Option<(&'a str, u16)> {
    let mut fields = payload.split(' ');
    if fields.next()? != master_name {
        return None;
    }
    let (_old_host, _old_port) = (fields.next()?, fields.next()?);
    Some((fields.next()?, fields.next()?.parse().ok()?))
}

async fn subscribe(
    client: &Client,
    connect_timeout: Duration,
) -> Result<redis::aio::PubSubStream, RedisError> {
    let subscribing = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&[PROMOTED, SWITCHED]).await?;
        Ok(pubsub.into_on_message())
    };
    tokio::time::timeout(connect_timeout, subscribing)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::{new_master, promoted_replica};

    #[test]
    fn reads_the_promoted_replica_of_our_master_only() {
        let payload = "slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379";
        assert_eq!(
            promoted_replica(payload, "mymaster"),
            Some(("127.0.0.1", 6380))
        );
        assert_eq!(promoted_replica(payload, "other"), None);
        assert_eq!(
            promoted_replica("master mymaster 127.0.0.1 6379", "mymaster"),
            None
        );
    }

    #[test]
    fn reads_the_new_master_of_our_master_only() {
        let payload = "mymaster 127.0.0.1 6379 127.0.0.1 6380";
        assert_eq!(new_master(payload, "mymaster"), Some(("127.0.0.1", 6380)));
        assert_eq!(new_master(payload, "other"), None);
        assert_eq!(new_master("mymaster 127.0.0.1 6379", "mymaster"), None);
        assert_eq!(new_master("mymaster a 1 b notaport", "mymaster"), None);
    }
}
