//! `Handle`: one database of a client, usable wherever redis-rs takes an async connection.

use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Value};

use crate::core::{pool_error, with_timeout, Inner, Reply, Request};
use crate::error::Error;
use crate::pool::PooledLink;
use crate::retry::{self, Stage, Verdict};
use deadpool::managed::{self, PoolError, TimeoutType};

/// One database of a client. Cheap to clone. Implements [`redis::aio::ConnectionLike`], so every
/// [`redis::AsyncCommands`] method and [`redis::Pipeline::query_async`] work on it; each call
/// passes the database's circuit breaker, readiness gate and retry policy and is counted in
/// `stats()`.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
    position: usize,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (slot, _) = self.inner.slot(self.position);
        f.debug_struct("Handle")
            .field("database", &slot.name)
            .field("db", &slot.db)
            .field("address", &self.inner.slot(self.position).1.address)
            .finish()
    }
}

impl Handle {
    pub(crate) fn new(inner: Arc<Inner>, position: usize) -> Self {
        Self { inner, position }
    }

    /// The database's YAML name.
    pub fn name(&self) -> &str {
        &self.inner.slot(self.position).0.name
    }

    /// The Redis database number.
    pub fn db(&self) -> u32 {
        self.inner.slot(self.position).0.db
    }

    /// Runs one command and converts the reply, with the SDK's [`Error`] (which names the
    /// database) instead of `redis::RedisError`.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let reply = self
            .inner
            .run(self.position, Request::Command(cmd), true)
            .await?;
        let Reply::Value(value) = reply else {
            return Err(self.unexpected_reply());
        };
        T::from_redis_value(value).map_err(|e| self.command_error(e.into()))
    }

    /// Runs a pipeline (or a `.atomic()` transaction) and converts the replies.
    pub async fn query_pipeline<T: FromRedisValue>(&self, pipeline: &Pipeline) -> Result<T, Error> {
        let mut handle = self.clone();
        pipeline
            .query_async(&mut handle)
            .await
            .map_err(|e| self.command_error(e))
    }

    /// An exclusive pooled connection already on this database, for WATCH/MULTI, blocking
    /// commands, pub/sub or long sequences. Acquiring it passes the breaker, readiness and
    /// connection retries; commands on it are timed out (blocking commands get their block time
    /// added) and counted, but not retried: the sequence is yours.
    pub async fn connection(&self) -> Result<Connection, Error> {
        let (slot, target) = self.inner.slot(self.position);
        let mut backoff = retry::backoff(&self.inner.config.retry);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match target.pool.get().await {
                Ok(connection) => {
                    return Ok(Connection {
                        inner: self.inner.clone(),
                        position: self.position,
                        connection: Some(connection),
                    })
                }
                Err(PoolError::Timeout(TimeoutType::Wait)) => {
                    return Err(Error::PoolExhausted {
                        database: slot.name.clone(),
                        db: slot.db,
                        address: target.address.clone(),
                        max_size: target.pool.status().max_size,
                        waited: self.inner.config.timeout,
                    })
                }
                Err(e) => pool_error(e),
            };
            match retry::classify(&error, Stage::Connect) {
                Verdict::RetryAny | Verdict::WaitForLoading => {
                    if let Some(delay) = backoff.next() {
                        target.counters.record_retry();
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(Error::Unreachable {
                        database: slot.name.clone(),
                        db: slot.db,
                        address: target.address.clone(),
                        attempts,
                        source: error,
                    });
                }
                _ => return Err(self.command_error(error)),
            }
        }
    }

    fn command_error(&self, source: RedisError) -> Error {
        let (slot, _) = self.inner.slot(self.position);
        Error::Command {
            database: slot.name.clone(),
            db: slot.db,
            source,
        }
    }

    fn unexpected_reply(&self) -> Error {
        self.command_error(RedisError::from((
            redis::ErrorKind::Client,
            "unexpected reply shape",
        )))
    }
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match self
                .inner
                .run(self.position, Request::Command(cmd), true)
                .await
            {
                Ok(Reply::Value(value)) => Ok(value),
                Ok(Reply::Values(_)) => Err(self.unexpected_reply().into_redis_error()),
                Err(e) => Err(e.into_redis_error()),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let request = Request::Pipeline {
                pipeline,
                offset,
                count,
            };
            match self.inner.run(self.position, request, true).await {
                Ok(Reply::Values(values)) => Ok(values),
                Ok(Reply::Value(_)) => Err(self.unexpected_reply().into_redis_error()),
                Err(e) => Err(e.into_redis_error()),
            }
        })
    }

    fn get_db(&self) -> i64 {
        i64::from(self.db())
    }
}

/// An exclusive connection from the database's pool, returned to the pool on drop (or discarded
/// when it failed, so a broken connection is never handed out again).
pub struct Connection {
    inner: Arc<Inner>,
    position: usize,
    connection: Option<PooledLink>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (slot, _) = self.inner.slot(self.position);
        f.debug_struct("Connection")
            .field("database", &slot.name)
            .field("db", &slot.db)
            .finish()
    }
}

impl Connection {
    async fn run(&mut self, request: Request<'_>) -> Result<Reply, RedisError> {
        let (slot, target) = self.inner.slot(self.position);
        let timeout = request.traits().deadline(slot.timeout);
        let started = Instant::now();
        let Some(connection) = self.connection.as_mut() else {
            return Err(RedisError::from((
                redis::ErrorKind::Io,
                "connection was discarded after a failure",
            )));
        };
        let result = with_timeout(timeout, request.send(&mut **connection)).await;
        let error = result.as_ref().err();
        if error.is_some_and(|e| e.is_io_error()) {
            // Broken or timed out mid-reply: the connection's state is unknown, so drop it.
            if let Some(broken) = self.connection.take() {
                drop(managed::Object::take(broken));
            }
        }
        target.counters.record_call(
            started.elapsed(),
            error
                .map(|e| format!("database `{}`: {e}", slot.name))
                .as_deref(),
        );
        result
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match self.run(Request::Command(cmd)).await? {
                Reply::Value(value) => Ok(value),
                Reply::Values(_) => Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "unexpected reply shape",
                ))),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match self
                .run(Request::Pipeline {
                    pipeline,
                    offset,
                    count,
                })
                .await?
            {
                Reply::Values(values) => Ok(values),
                Reply::Value(_) => Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "unexpected reply shape",
                ))),
            }
        })
    }

    fn get_db(&self) -> i64 {
        i64::from(self.inner.slot(self.position).0.db)
    }
}
