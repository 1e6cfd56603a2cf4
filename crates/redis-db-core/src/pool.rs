//! The pool of exclusive connections (`Handle::connection()`, blocking commands): deadpool over
//! our own small manager, so that every topology's connections are built by the one
//! `Connector` with the same timeouts and TCP settings. (`deadpool-redis`'s managers cannot take
//! TCP settings for cluster or sentinel connections — deadpool issue 452 — and would be a
//! second way to open connections.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult, Timeouts};
use deadpool::Runtime;
use redis::{AsyncConnectionConfig, FromRedisValue, RedisError, Value};
use redis_db_config::Config;

use crate::connector::{Connector, Link};
use crate::core::Request;
use crate::stats::Counters;

pub(crate) type Pool = managed::Pool<LinkManager>;
pub(crate) type PooledLink = managed::Object<LinkManager>;

pub(crate) struct LinkManager {
    connector: Arc<Connector>,
    config: AsyncConnectionConfig,
    counters: Arc<Counters>,
    ping_number: AtomicUsize,
    /// Sentinel endpoints: a connection that comes back to the pool must still be on a master
    /// (a failover may have demoted it while it was checked out).
    require_master: bool,
    /// Connections created before this instant go to a replaced master: a manual failover
    /// leaves the old master answering ROLE `master` for seconds, so ROLE alone cannot tell.
    stale_before: std::sync::Mutex<Option<std::time::Instant>>,
}

impl LinkManager {
    /// Every connection created until now is retired when it next comes back to the pool.
    pub fn retire_existing(&self) {
        *self.stale_before.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::time::Instant::now());
    }
}

impl managed::Manager for LinkManager {
    type Type = Link;
    type Error = RedisError;

    async fn create(&self) -> Result<Link, RedisError> {
        let mut link = self.connector.connect(&self.config, None).await?;
        self.counters.pool_connection_created();
        // The handshake succeeds while a server is loading; a PING does not. Refusing the new
        // connection here sends its `LOADING` through the caller's readiness wait instead of
        // handing out a connection whose first command would fail.
        Request::Command(&redis::cmd("PING"))
            .send(&mut link)
            .await?;
        Ok(link)
    }

    async fn recycle(&self, link: &mut Link, metrics: &Metrics) -> RecycleResult<RedisError> {
        let stale_before = *self.stale_before.lock().unwrap_or_else(|p| p.into_inner());
        if stale_before.is_some_and(|retired| metrics.created < retired) {
            return Err(RecycleError::message("opened before a failover"));
        }
        // As deadpool-redis does: drop any WATCH a previous user left, and prove the connection
        // answers (a numbered PING, so a stale reply cannot pass).
        let number = self.ping_number.fetch_add(1, Ordering::Relaxed).to_string();
        let mut check = redis::pipe();
        check.cmd("UNWATCH").ignore().cmd("PING").arg(&number);
        if self.require_master {
            check.cmd("ROLE");
        }
        let replies: Vec<Value> = check.query_async(link).await?;
        let echo = replies.first().cloned().map(String::from_redis_value);
        if !matches!(echo, Some(Ok(ref echo)) if *echo == number) {
            return Err(RecycleError::message(
                "PING answered with another connection's reply",
            ));
        }
        if self.require_master && !replies.get(1).is_some_and(is_master) {
            return Err(RecycleError::message("the node is no longer the master"));
        }
        Ok(())
    }
}

/// `ROLE`'s first element is `master` on a master.
fn is_master(role: &Value) -> bool {
    let Value::Array(items) = role else {
        return false;
    };
    items
        .first()
        .cloned()
        .map(String::from_redis_value)
        .is_some_and(|role| role.is_ok_and(|role| role == "master"))
}

pub(crate) fn exclusive_pool(
    connector: Arc<Connector>,
    require_master: bool,
    connection_config: AsyncConnectionConfig,
    max_size: usize,
    config: &Config,
    counters: Arc<Counters>,
) -> Result<Pool, RedisError> {
    let manager = LinkManager {
        connector,
        config: connection_config,
        counters,
        ping_number: AtomicUsize::new(0),
        require_master,
        stale_before: std::sync::Mutex::new(None),
    };
    Pool::builder(manager)
        .max_size(max_size.max(1))
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(config.timeout),
            create: Some(config.connect_timeout + Duration::from_millis(100)),
            recycle: Some(config.timeout),
        })
        .build()
        .map_err(|e| {
            RedisError::from((redis::ErrorKind::InvalidClientConfig, "pool", e.to_string()))
        })
}

/// No response timeout on the connections: every call gets its own deadline (its database's
/// timeout plus the block time of blocking commands), which one per-connection setting cannot
/// express.
pub(crate) fn connection_config(config: &Config) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(None)
}
