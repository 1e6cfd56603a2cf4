//! `Handle`: one database of a client, usable wherever redis-rs takes an async connection.

use std::collections::HashMap;
use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Value};

use crate::connection::Connection;
use crate::database::{Database, Inner};
use crate::error::Error;
use crate::target::Target;
use crate::wire::Request;

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
        let mut debug = f.debug_struct("Handle");
        match self.inner.database(self.position) {
            Some((database, target)) => debug
                .field("database", &database.name())
                .field("db", &database.db())
                .field("address", &target.address()),
            None => debug.field("position", &self.position),
        };
        debug.finish()
    }
}

impl Handle {
    pub(crate) fn new(inner: Arc<Inner>, position: usize) -> Self {
        Self { inner, position }
    }

    /// The database and its target; the error of a handle made for a position past the last
    /// database (`Core::handle`).
    fn resolve(&self) -> Result<(&Database, &Target), Error> {
        self.inner
            .database(self.position)
            .ok_or_else(|| self.inner.no_database(self.position))
    }

    /// The database's YAML name (empty on a handle made for a position past the last database,
    /// whose every call fails).
    pub fn name(&self) -> &str {
        self.inner
            .database(self.position)
            .map_or("", |(database, _)| database.name())
    }

    /// The Redis database number (0 on a handle made for a position past the last database,
    /// whose every call fails).
    pub fn db(&self) -> u32 {
        self.inner
            .database(self.position)
            .map_or(0, |(database, _)| database.db())
    }

    /// Runs one command and converts the reply, with the SDK's [`Error`] (which names the
    /// database) instead of `redis::RedisError`.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let value = self.command(cmd).await?;
        T::from_redis_value(value).map_err(|e| self.command_error(e.into()))
    }

    /// Runs a pipeline (or a `.atomic()` transaction) and converts the replies, with the SDK's
    /// [`Error`] (circuit open, timeout, ...) rather than its `redis::RedisError` rendering.
    pub async fn query_pipeline<T: FromRedisValue>(&self, pipeline: &Pipeline) -> Result<T, Error> {
        let mut keeper = ErrorKeeper {
            handle: self,
            error: None,
        };
        match pipeline.query_async(&mut keeper).await {
            Ok(value) => Ok(value),
            Err(converted) => Err(keeper
                .error
                .take()
                .unwrap_or_else(|| self.command_error(converted))),
        }
    }

    /// An exclusive pooled connection already on this database, for WATCH/MULTI, blocking
    /// commands or long sequences. Acquiring it passes the breaker, readiness and
    /// connection retries; commands on it are timed out (blocking commands get their block time
    /// added) and counted, but not retried: the sequence is yours.
    pub async fn connection(&self) -> Result<Connection, Error> {
        let (database, target) = self.resolve()?;
        let config = self.inner.config();
        let checkout = target
            .guarded(
                database.key(),
                config,
                false,
                Some(config.connect_timeout),
                || target.checkout(),
            )
            .await?;
        Ok(Connection::new(self.inner.clone(), self.position, checkout))
    }

    /// An optimistic transaction, like `redis::aio::transaction_async` but on an exclusive
    /// pooled connection: `WATCH`es `keys`, then runs `body` with the connection and a fresh
    /// `.atomic()` pipeline. `Ok(None)` from the body (what `pipe.query_async::<Option<_>>` returns
    /// when `EXEC` answered nil because a watched key changed) runs it again, at most
    /// [`crate::MAX_TRANSACTION_RUNS`] times; an error is returned and never re-run (after a
    /// connection failure or timeout the `EXEC` may have been applied), and the connection is then
    /// discarded. The body returns its future boxed (`Box::pin(async move { .. })`), which keeps
    /// the transaction's future `Send` (usable in `tokio::spawn`); an `AsyncFnMut` bound cannot
    /// promise that on Rust 1.88.
    ///
    /// ```no_run
    /// # async fn example(handle: redis_db_core::Handle) -> Result<(), redis_db_core::Error> {
    /// use redis::AsyncCommands;
    /// let (balance,): (i64,) = handle
    ///     .transaction(&["balance"], |conn, pipe| {
    ///         Box::pin(async move {
    ///             let balance: i64 = conn.get("balance").await?;
    ///             pipe.set("balance", balance + 10).ignore().get("balance");
    ///             pipe.query_async(conn).await
    ///         })
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn transaction<'h, K, T, F>(
        &'h self,
        keys: &[K],
        body: F,
    ) -> impl std::future::Future<Output = Result<T, Error>> + 'h
    where
        K: redis::ToRedisArgs,
        F: for<'c> FnMut(&'c mut Connection, &'c mut Pipeline) -> redis::RedisFuture<'c, Option<T>>
            + 'h,
        T: 'h,
    {
        crate::transaction::run(self.name(), self.db(), self.connection(), keys, body)
    }

    /// A pub/sub subscriber on this database's endpoint (the current master on Sentinel),
    /// re-subscribed after every disconnection: see [`crate::Subscriber`].
    pub async fn subscriber(&self) -> Result<crate::Subscriber, Error> {
        let (database, target) = self.resolve()?;
        crate::subscriber::open(self.inner.config(), database, target).await
    }

    /// Keyspace notifications of this database only (`__keyspace@<db>__:<pattern>`); fails,
    /// naming `notify-keyspace-events`, when the server has them off: see
    /// [`crate::KeyspaceEvents`].
    pub async fn keyspace_events(&self, pattern: &str) -> Result<crate::KeyspaceEvents, Error> {
        let (database, target) = self.resolve()?;
        let setting = crate::keyspace::setting_command();
        let config = self.inner.config();
        let setting = self.query::<HashMap<String, String>>(&setting);
        crate::keyspace::open(config, database, target, pattern, setting).await
    }

    fn command_error(&self, source: RedisError) -> Error {
        Error::Command {
            database: self.name().to_owned(),
            db: self.db(),
            source,
        }
    }
}

impl Handle {
    async fn command(&self, cmd: &Cmd) -> Result<Value, Error> {
        let reply = self
            .inner
            .run(self.position, Request::Command(cmd), true)
            .await?;
        reply.into_value().map_err(|e| self.command_error(e))
    }

    async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> Result<Vec<Value>, Error> {
        let request = Request::Pipeline {
            pipeline,
            offset,
            count,
        };
        let reply = self.inner.run(self.position, request, true).await?;
        reply.into_values().map_err(|e| self.command_error(e))
    }
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        // Not through `command`: one async layer less on every call.
        Box::pin(async move {
            match self
                .inner
                .run(self.position, Request::Command(cmd), true)
                .await
            {
                Ok(reply) => reply
                    .into_value()
                    .map_err(|e| self.command_error(e).into_redis_error()),
                Err(error) => Err(error.into_redis_error()),
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
            self.pipeline(pipeline, offset, count)
                .await
                .map_err(Error::into_redis_error)
        })
    }

    fn get_db(&self) -> i64 {
        i64::from(self.db())
    }
}

/// Lets `Pipeline::query_async` drive the handle while keeping the SDK's own error: the
/// `ConnectionLike` road can only return it as a `redis::RedisError`.
struct ErrorKeeper<'a> {
    handle: &'a Handle,
    error: Option<Error>,
}

impl ConnectionLike for ErrorKeeper<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.handle.command(cmd).await;
            result.map_err(|error| self.keep(error))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.handle.pipeline(pipeline, offset, count).await;
            result.map_err(|error| self.keep(error))
        })
    }

    fn get_db(&self) -> i64 {
        i64::from(self.handle.db())
    }
}

impl ErrorKeeper<'_> {
    fn keep(&mut self, error: Error) -> RedisError {
        let converted = error.to_redis_error();
        self.error = Some(error);
        converted
    }
}
