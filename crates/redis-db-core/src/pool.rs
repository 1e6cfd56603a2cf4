//! The pool of exclusive connections (`Handle::connection()`, blocking commands): deadpool over
//! our own small manager, so that every topology's connections are built by the one
//! `Connector` with the same timeouts and TCP settings. (`deadpool-redis`'s managers cannot take
//! TCP settings for cluster or sentinel connections — deadpool issue 452 — and would be a
//! second way to open connections.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult, Timeouts};
use deadpool::Runtime;
use redis::aio::ConnectionLike;
use redis::{AsyncConnectionConfig, FromRedisValue, RedisError, ServerErrorKind, Value};
use redis_db_config::Config;

use crate::connector::{Connector, Link};
use crate::counters::Counters;
use crate::deadline::Deadline;
use crate::lock::lock;
use crate::role::is_master;
use crate::wire::{Reply, Request};

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
    /// The server refused this pool's user one of the recycle check's commands (`NOPERM`): a
    /// least-privilege ACL user. Remembered so that the check is sent without it from then on,
    /// and logged once.
    refused: Refused,
}

/// Which of the recycle check's commands the user may not run.
#[derive(Default)]
struct Refused {
    /// `UNWATCH` refused: the user cannot have run `WATCH` either (nothing to clear).
    unwatch: AtomicBool,
    /// `PING` refused: its `NOPERM` reply still proves the connection answers.
    ping: AtomicBool,
    /// `ROLE` refused (Sentinel endpoints): only the creation-time check of a failover remains.
    role: AtomicBool,
}

impl Refused {
    /// Records that `command` was refused; logs the first time only.
    fn note(flag: &AtomicBool, command: &str) {
        if !flag.swap(true, Ordering::Relaxed) {
            tracing::debug!(
                command,
                "redis-db: the ACL user may not run {command}; pooled connections are checked without it"
            );
        }
    }
}

/// Whether a reply is the server's `NOPERM` (the ACL user may not run the command).
pub(crate) fn is_no_perm(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoPerm))
}

impl LinkManager {
    /// Every connection created until now is retired when it next comes back to the pool.
    pub fn retire_existing(&self) {
        *lock(&self.stale_before) = Some(std::time::Instant::now());
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
        if self.refused.ping.load(Ordering::Relaxed) {
            return Ok(link);
        }
        match Request::Command(&redis::cmd("PING"))
            .send(&mut link, None)
            .await
        {
            Ok(_) => Ok(link),
            // A least-privilege user may not PING. The server checks ACLs before `LOADING`
            // (measured on Redis 7.0), so the refusal says it answers, not that it finished
            // loading: a `LOADING` then reaches the caller's first command on the connection.
            Err(e) if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoPerm) => {
                Refused::note(&self.refused.ping, "PING");
                Ok(link)
            }
            Err(e) => Err(e),
        }
    }

    async fn recycle(&self, link: &mut Link, metrics: &Metrics) -> RecycleResult<RedisError> {
        let stale_before = *lock(&self.stale_before);
        if stale_before.is_some_and(|retired| metrics.created < retired) {
            return Err(RecycleError::message("opened before a failover"));
        }
        // As deadpool-redis does: drop any WATCH a previous user left, and prove the connection
        // answers (a numbered PING, so a stale reply cannot pass). A least-privilege ACL user may
        // be refused any of these (`NOPERM`): a refused UNWATCH means the user cannot WATCH
        // either, so it is left out from then on; a refused PING or ROLE is still an answer of
        // this connection (the replies are matched to requests in order).
        let number = self.ping_number.fetch_add(1, Ordering::Relaxed).to_string();
        let unwatch = !self.refused.unwatch.load(Ordering::Relaxed);
        let role = self.require_master && !self.refused.role.load(Ordering::Relaxed);
        let mut check = redis::pipe();
        if unwatch {
            check.cmd("UNWATCH");
        }
        check.cmd("PING").arg(&number);
        if role {
            check.cmd("ROLE");
        }
        let count = usize::from(unwatch) + 1 + usize::from(role);
        let mut replies = link
            .req_packed_commands(&check, 0, count)
            .await?
            .into_iter();
        if unwatch {
            match replies.next() {
                Some(Value::Okay) => {}
                Some(ref reply) if is_no_perm(reply) => {
                    Refused::note(&self.refused.unwatch, "UNWATCH")
                }
                _ => return Err(RecycleError::message("UNWATCH was not answered OK")),
            }
        }
        match replies.next() {
            Some(ref reply) if is_no_perm(reply) => Refused::note(&self.refused.ping, "PING"),
            Some(reply) => {
                let echo = String::from_redis_value(reply);
                if !matches!(echo, Ok(ref echo) if *echo == number) {
                    return Err(RecycleError::message(
                        "PING answered with another connection's reply",
                    ));
                }
            }
            None => return Err(RecycleError::message("PING was not answered")),
        }
        if role {
            match replies.next() {
                Some(ref reply) if is_no_perm(reply) => Refused::note(&self.refused.role, "ROLE"),
                Some(ref reply) if is_master(reply) => {}
                _ => return Err(RecycleError::message("the node is no longer the master")),
            }
        }
        Ok(())
    }
}

/// Sends `request` on an exclusive connection under `timeout`: the one way every exclusive
/// connection (a blocking command's attempt, `Handle::connection()`) sends. A connection whose
/// failure leaves its state unknown (broken, or timed out with a reply possibly still to come,
/// or a demoted master: `retry::needs_new_connection`, the shared lane's rule) is taken out
/// and closed, never returned to the pool; after a server error reply (`WRONGTYPE`, ...) the
/// reply was read in full and the connection is as good as before, so it stays: a user's
/// `WATCH`/`MULTI` sequence goes on after a command error. `None`: discarded before.
pub(crate) async fn send_exclusive(
    connection: &mut Option<PooledLink>,
    request: &Request<'_>,
    timeout: Option<std::time::Duration>,
) -> Result<Reply, RedisError> {
    let Some(link) = connection.as_mut() else {
        return Err(RedisError::from((
            redis::ErrorKind::Io,
            "connection was discarded after a failure",
        )));
    };
    let deadline = Deadline::after(std::time::Instant::now(), timeout);
    let result = request.send(link, deadline).await;
    if result
        .as_ref()
        .is_err_and(crate::retry::needs_new_connection)
    {
        discard(connection);
    }
    result
}

/// Closes a checked-out connection instead of returning it to the pool.
pub(crate) fn discard(connection: &mut Option<PooledLink>) {
    if let Some(link) = connection.take() {
        drop(managed::Object::take(link));
    }
}

pub(crate) fn pool_error(error: managed::PoolError<RedisError>) -> RedisError {
    use managed::PoolError;
    match error {
        PoolError::Backend(e) => e,
        PoolError::Timeout(kind) => RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("pool {kind:?} timeout"),
        )),
        other => RedisError::from((redis::ErrorKind::Io, "pool", other.to_string())),
    }
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
        refused: Refused::default(),
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
