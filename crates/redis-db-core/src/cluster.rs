//! What a Redis Cluster endpoint needs beyond redis-rs's own routing: following an `ASK`
//! redirect (redis-rs follows redirects only within its own retries, which are off: they would
//! re-send writes), and checking at connect that every hash slot is served.

use redis::{Cmd, FromRedisValue, RedisError, Value};

use crate::connector::Link;
use crate::error::Error;
use crate::wire::{Reply, Request};

/// A cluster slot in migration answers `ASK <slot> <node>`: the command was not run, and must
/// go to that node once, preceded by `ASKING` on the same connection. redis-rs only follows
/// redirects as part of its own retries, which are off (they would re-send writes). `None` when
/// the redirect cannot be followed here (not a cluster, a transaction, an unreadable target);
/// the caller's attempt loop then retries after the migration moved on.
pub(crate) async fn follow_ask(
    link: &mut Link,
    request: &Request<'_>,
    error: &RedisError,
) -> Option<Result<Reply, RedisError>> {
    use redis::cluster_routing::SingleNodeRoutingInfo;
    let Link::Cluster(cluster) = link else {
        return None;
    };
    let (node, _slot) = error.redirect_node()?;
    let (host, port) = node.rsplit_once(':')?;
    let route = SingleNodeRoutingInfo::ByAddress {
        host: host.trim_matches(|c| c == '[' || c == ']').to_owned(),
        port: port.parse().ok()?,
    };
    let mut asking = redis::pipe();
    asking.cmd("ASKING");
    let (count, single) = match request {
        Request::Command(cmd) => {
            asking.add_command((*cmd).clone());
            (1, true)
        }
        Request::Pipeline { pipeline, .. } if !pipeline.is_transaction() => {
            for cmd in pipeline.cmd_iter() {
                asking.add_command(cmd.clone());
            }
            (pipeline.cmd_iter().count(), false)
        }
        Request::Pipeline { .. } => return None,
    };
    tracing::debug!(node, "redis-db: following an ASK redirect");
    let values = match cluster.route_pipeline(asking, 1, count, route).await {
        Ok(values) => values,
        Err(e) => return Some(Err(e)),
    };
    Some(if single {
        match values.into_iter().next() {
            Some(Value::ServerError(e)) => Err(e.into()),
            Some(value) => Ok(Reply::Value(value)),
            None => Err(RedisError::from((
                redis::ErrorKind::Client,
                "empty reply to an ASK redirect",
            ))),
        }
    } else {
        Ok(Reply::Values(values))
    })
}
/// `CLUSTER INFO`, whose reply `check_coverage` reads.
pub(crate) fn info_command() -> Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("INFO");
    cmd
}

/// A cluster node answers PING even while slots are unserved; every keyed call would then
/// fail with CLUSTERDOWN. Better to say so at connect, naming the database and endpoint:
/// `info` is the reply to [`info_command`].
pub(crate) fn check_coverage(
    database: &str,
    db: u32,
    address: &str,
    info: Reply,
) -> Result<(), Error> {
    let info = match info {
        Reply::Value(value) => String::from_redis_value(value).unwrap_or_default(),
        Reply::Values(_) => String::new(),
    };
    let state = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("cluster_state:"))
        .unwrap_or("unknown");
    if state == "ok" {
        return Ok(());
    }
    Err(Error::ClusterNotReady {
        database: database.to_owned(),
        db,
        address: address.to_owned(),
        detail: format!("cluster_state:{state}"),
    })
}
