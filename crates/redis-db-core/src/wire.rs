//! What goes over the wire for one call: the request (a command or a pipeline), its reply, the
//! one function that sends it on any connection, and its deadline. Everything above (the shared
//! lane, the pool, the policy loop) sends through here.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::future::{Either, FutureExt};

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, Value};

use crate::command::CommandTraits;
use crate::connector::Link;

/// What a call sends.
pub(crate) enum Request<'a> {
    Command(&'a Cmd),
    Pipeline {
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    },
}

/// What a call gets back.
pub(crate) enum Reply {
    Value(Value),
    Values(Vec<Value>),
}

impl Request<'_> {
    pub fn traits(&self) -> CommandTraits {
        match self {
            Request::Command(cmd) => CommandTraits::of_cmd(cmd),
            Request::Pipeline { pipeline, .. } => CommandTraits::of_pipeline(pipeline),
        }
    }

    /// The command's name for messages and logs: a pipeline is named by the first command that
    /// needs an exclusive connection, else `PIPELINE`.
    pub fn name(&self) -> String {
        match self {
            Request::Command(cmd) => CommandTraits::name_of(cmd),
            Request::Pipeline { pipeline, .. } => pipeline
                .cmd_iter()
                .find(|cmd| CommandTraits::of_cmd(cmd).needs_exclusive)
                .map_or_else(|| "PIPELINE".to_owned(), CommandTraits::name_of),
        }
    }

    /// Sends the request. A server error reply is turned into `Err` here (redis-rs hands it
    /// over as a `Value`), so that the classifier sees `LOADING`, `TRYAGAIN`, `MASTERDOWN` and
    /// command errors alike. Combinators over redis-rs's boxed future rather than an `async fn`:
    /// one state machine less on every call.
    pub fn send<'c>(
        &'c self,
        connection: &'c mut Link,
    ) -> impl Future<Output = Result<Reply, RedisError>> + 'c {
        match self {
            Request::Command(cmd) => {
                Either::Left(connection.req_packed_command(cmd).map(command_reply))
            }
            Request::Pipeline {
                pipeline,
                offset,
                count,
            } => Either::Right(
                connection
                    .req_packed_commands(pipeline, *offset, *count)
                    .map(pipeline_reply),
            ),
        }
    }
}

fn command_reply(reply: Result<Value, RedisError>) -> Result<Reply, RedisError> {
    match reply? {
        Value::ServerError(error) => Err(error.into()),
        value => Ok(Reply::Value(value)),
    }
}

fn pipeline_reply(replies: Result<Vec<Value>, RedisError>) -> Result<Reply, RedisError> {
    match replies {
        Ok(values) => {
            let errors = values.iter().map(|value| match value {
                Value::ServerError(error) => Some(RedisError::from(error.clone())),
                _ => None,
            });
            match refused_without_running(errors) {
                Some(error) => Err(error),
                None => Ok(Reply::Values(values)),
            }
        }
        // A transaction whose queued commands were all refused (e.g. LOADING) comes back as
        // EXECABORT: nothing in it ran.
        Err(error)
            if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort) =>
        {
            let queued = error.clone().into_server_errors().unwrap_or_default();
            let errors = queued
                .iter()
                .map(|(_, e)| Some(RedisError::from(e.clone())));
            Err(refused_without_running(errors).unwrap_or(error))
        }
        Err(error) => Err(error),
    }
}

/// When every reply of a pipeline is an error saying the server did not run the command
/// (`LOADING`, `TRYAGAIN`, `MASTERDOWN`, or `READONLY` from a master demoted by a failover),
/// the whole pipeline may be sent again: returns that error (READONLY also replaces the
/// connection: `retry::needs_new_connection`). Any other mix is the commands' own business
/// (`None`: returned as replies): a demoted master did run the reads of a mixed pipeline.
fn refused_without_running(
    mut errors: impl Iterator<Item = Option<RedisError>>,
) -> Option<RedisError> {
    use redis::{ErrorKind, ServerErrorKind};
    let not_run = |error: &RedisError| {
        matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
    };
    // Short-circuits on the first ordinary reply: a normal pipeline costs one look.
    let first = errors.next().flatten().filter(not_run)?;
    errors
        .all(|error| error.as_ref().is_some_and(not_run))
        .then_some(first)
}

/// Runs `future` under `timeout` (none: no deadline), failing with a timed-out I/O error.
pub(crate) async fn with_timeout<T>(
    timeout: Option<Duration>,
    future: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    match timeout.and_then(|limit| deadline(Instant::now(), limit)) {
        None => future.await,
        Some((at, limit)) => tokio::time::timeout_at(at, future)
            .await
            .unwrap_or_else(|_| Err(timed_out(limit))),
    }
}

/// `limit` after `since`; `None` when a block time is too long to add to a clock reading,
/// which means no deadline at all.
pub(crate) fn deadline(
    since: Instant,
    limit: Duration,
) -> Option<(tokio::time::Instant, Duration)> {
    Some((since.checked_add(limit)?.into(), limit))
}

pub(crate) fn timed_out(limit: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no reply within {limit:?}"),
    ))
}
