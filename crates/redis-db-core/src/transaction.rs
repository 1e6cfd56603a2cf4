//! Optimistic transactions (`WATCH` / `MULTI` / `EXEC`) on an exclusive pooled connection:
//! [`crate::Handle::transaction`], the SDK's counterpart of `redis::aio::transaction_async`
//! (which needs a `Clone` connection, and a shared `Handle` refuses `WATCH` by design).
//!
//! The rules:
//! - The connection comes from [`crate::Handle::connection`]: acquiring it passes the
//!   database's breaker, readiness wait and connection retries; every command on it has the
//!   database's timeout.
//! - Each run sends `WATCH <keys>`, then calls the body with the connection and a fresh
//!   pipeline that has `.atomic()` set. The body returns `Ok(Some(value))` when it is done,
//!   `Ok(None)` to run again: that is what `pipe.query_async::<Option<_>>(conn)` returns when
//!   `EXEC` answered nil because a watched key changed (nothing was applied).
//! - At most [`MAX_TRANSACTION_RUNS`] runs; then [`Error::Transaction`], naming the database and
//!   the keys.
//! - Only a nil `EXEC` (`Ok(None)`) is re-run. Any error is returned as is, never re-run: after a
//!   connection failure or a timeout the `EXEC` may have been applied. The connection is then
//!   discarded rather than returned to the pool, whatever state it was left in.
//!
//! The body returns its future boxed (`redis::RedisFuture`, i.e. `Box::pin(async move { .. })`).
//! An `AsyncFnMut` bound would let callers pass `async |conn, pipe| { .. }`, and compiles where
//! the transaction is awaited in place, but inside `tokio::spawn` rustc (tried on 1.95) rejects
//! it: "implementation of `AsyncFnMut` is not general enough" (the `Send` of a future holding
//! an async closure's borrowing call cannot be proven). A boxed `Send` future has no such gap.

use redis::{Pipeline, RedisError, RedisFuture, ToRedisArgs};

use crate::connection::Connection;
use crate::error::Error;

/// How many times [`crate::Handle::transaction`] runs its body at most (the first run and the
/// re-runs after a watched key changed) before giving up with [`Error::Transaction`]. Every
/// aborted run means another client's write to a watched key committed, so this bounds only
/// starvation under heavy contention, never correctness.
pub const MAX_TRANSACTION_RUNS: u32 = 32;

/// At most this many keys are shown in an error.
const KEYS_SHOWN: usize = 8;

/// Builds the `WATCH` and the keys' description at once, so that the returned future does not
/// borrow `keys` (a temporary `&[..]` in the call is fine).
///
/// `connect` is `Handle::connection` of the database `database` (db `db`), awaited only once
/// the keys are known to be usable.
pub(crate) fn run<'h, K, T, F, C>(
    database: &str,
    db: u32,
    connect: C,
    keys: &[K],
    body: F,
) -> impl std::future::Future<Output = Result<T, Error>> + 'h
where
    C: std::future::Future<Output = Result<Connection, Error>> + 'h,
    K: ToRedisArgs,
    F: for<'c> FnMut(&'c mut Connection, &'c mut Pipeline) -> RedisFuture<'c, Option<T>> + 'h,
    T: 'h,
{
    let mut watch = redis::cmd("WATCH");
    for key in keys {
        watch.arg(key);
    }
    let context = Context {
        database: database.to_owned(),
        db,
        keys: describe(keys),
    };
    watched(context, connect, (!keys.is_empty()).then_some(watch), body)
}

async fn watched<T, F, C>(
    context: Context,
    connect: C,
    watch: Option<redis::Cmd>,
    mut body: F,
) -> Result<T, Error>
where
    C: std::future::Future<Output = Result<Connection, Error>>,
    F: for<'c> FnMut(&'c mut Connection, &'c mut Pipeline) -> RedisFuture<'c, Option<T>>,
{
    let Some(watch) = watch else {
        return Err(context.failed(
            "at least one key to WATCH is needed (for MULTI/EXEC alone, use an `.atomic()` pipeline on the handle)".to_owned(),
            None,
        ));
    };
    let mut connection = connect.await?;
    for run in 1..=MAX_TRANSACTION_RUNS {
        if let Err(error) = watch.exec_async(&mut connection).await {
            connection.discard();
            let reason = if crate::readiness::is_refused(&error) {
                "the ACL user may not run WATCH; an optimistic transaction needs `+watch +multi +exec` (and `+unwatch`) besides the commands it runs".to_owned()
            } else {
                format!("WATCH failed on run {run}; nothing of this run was applied: {error}")
            };
            return Err(context.failed(reason, Some(error)));
        }
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        match body(&mut connection, &mut pipeline).await {
            // `EXEC` (if the body sent it) discarded the watches; if the body finished without
            // it, the pool's recycle check sends UNWATCH before the connection is reused.
            Ok(Some(value)) => return Ok(value),
            // A nil `EXEC` applied nothing and discarded the watches: run again.
            Ok(None) => {
                tracing::debug!(database = %context.database, run, "redis-db: a watched key changed; running the transaction again");
                tokio::task::yield_now().await;
            }
            Err(error) => {
                connection.discard();
                return Err(context.body_failure(run, error));
            }
        }
    }
    Err(context.failed(
        format!(
            "a watched key changed before every one of {MAX_TRANSACTION_RUNS} runs (EXEC returned nil each time; nothing was applied); giving up"
        ),
        None,
    ))
}

/// What an error names.
struct Context {
    database: String,
    db: u32,
    keys: String,
}

impl Context {
    fn failed(self, reason: String, source: Option<RedisError>) -> Error {
        Error::Transaction {
            database: self.database,
            db: self.db,
            keys: self.keys,
            reason,
            source,
        }
    }

    /// The error of a body that failed on run `run`.
    fn body_failure(self, run: u32, error: RedisError) -> Error {
        if error.is_io_error() {
            // A reset, a closed connection or a timeout: the EXEC may have been sent and applied.
            let reason = format!(
                "the connection failed or timed out on run {run}; the transaction may or may not have been applied, so it was not run again: {error}"
            );
            return self.failed(reason, Some(error));
        }
        // A server's answer (WRONGTYPE, EXECABORT, NOPERM naming the command, ...), or the
        // body's own error: the server's text and kind stay matchable.
        Error::Command {
            database: self.database,
            db: self.db,
            source: error,
        }
    }
}

/// `["a", "b"]`, at most `KEYS_SHOWN` keys.
fn describe<K: ToRedisArgs>(keys: &[K]) -> String {
    let mut shown: Vec<String> = keys
        .iter()
        .flat_map(ToRedisArgs::to_redis_args)
        .take(KEYS_SHOWN + 1)
        .map(|key| format!("{:?}", String::from_utf8_lossy(&key)))
        .collect();
    if shown.len() > KEYS_SHOWN {
        shown.truncate(KEYS_SHOWN);
        shown.push("...".to_owned());
    }
    format!("[{}]", shown.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_listed_and_capped() {
        assert_eq!(super::describe(&["a", "b"]), r#"["a", "b"]"#);
        let many: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let text = super::describe(&many);
        assert!(text.ends_with(r#""k7", ...]"#), "{text}");
    }
}
