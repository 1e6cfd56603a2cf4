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
use redis::{AsyncConnectionConfig, RedisError};
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

    async fn recycle(&self, link: &mut Link, _: &Metrics) -> RecycleResult<RedisError> {
        // As deadpool-redis does: drop any WATCH a previous user left, and prove the connection
        // answers (a numbered PING, so a stale reply cannot pass).
        let number = self.ping_number.fetch_add(1, Ordering::Relaxed).to_string();
        let (echo,): (String,) = redis::pipe()
            .cmd("UNWATCH")
            .ignore()
            .cmd("PING")
            .arg(&number)
            .query_async(link)
            .await?;
        if echo == number {
            Ok(())
        } else {
            Err(RecycleError::message(
                "PING answered with another connection's reply",
            ))
        }
    }
}

pub(crate) fn exclusive_pool(
    connector: Arc<Connector>,
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
