//! `Connection`: an exclusive pooled connection of one database (`Handle::connection`), for
//! `WATCH`/`MULTI`, blocking commands and long sequences.

use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use crate::database::{Database, Inner};
use crate::pool::{self, PooledLink};
use crate::target::Target;
use crate::wire::{Reply, Request};

/// An exclusive connection from the database's pool, returned to the pool on drop (or discarded
/// when it failed, so a broken connection is never handed out again).
pub struct Connection {
    inner: Arc<Inner>,
    position: usize,
    connection: Option<PooledLink>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("database", &self.handle_name())
            .field("db", &self.db())
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(inner: Arc<Inner>, position: usize, checkout: PooledLink) -> Self {
        Connection {
            inner,
            position,
            connection: Some(checkout),
        }
    }

    /// Drops the pooled connection instead of returning it to the pool: after a failure its
    /// state (a WATCH, an open MULTI, a pending reply) is unknown.
    pub(crate) fn discard(&mut self) {
        pool::discard(&mut self.connection);
    }

    /// A connection exists only for a handle whose position names a database.
    fn database(&self) -> Option<(&Database, &Target)> {
        self.inner.database(self.position)
    }

    fn handle_name(&self) -> &str {
        self.database().map_or("", |(database, _)| database.name())
    }

    fn db(&self) -> u32 {
        self.database().map_or(0, |(database, _)| database.db())
    }

    async fn run(&mut self, request: Request<'_>) -> Result<Reply, RedisError> {
        let Some((database, target)) = self.inner.database(self.position) else {
            return Err(self.inner.no_database(self.position).into_redis_error());
        };
        let timeout = request.traits().deadline(database.timeout());
        let started = Instant::now();
        let result = pool::send_exclusive(&mut self.connection, &request, timeout).await;
        target.counters().record_call(
            started.elapsed(),
            result
                .as_ref()
                .err()
                .map(|e| format!("database `{}`: {e}", database.name()))
                .as_deref(),
        );
        result
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.run(Request::Command(cmd)).await?.into_value() })
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
            self.run(request).await?.into_values()
        })
    }

    fn get_db(&self) -> i64 {
        i64::from(self.db())
    }
}
