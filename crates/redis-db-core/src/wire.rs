//! What goes over the wire for one call: the request (a command or a pipeline), its reply, and
//! the one function that sends it on any connection under its deadline. Everything above (the shared
//! lane, the pool, the policy loop) sends through here.

use std::future::Future;

use futures_util::future::{Either, FutureExt};

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, Value};

use crate::command::CommandTraits;
use crate::connector::Link;
use crate::deadline::{within, Deadline};
use crate::multiplex::into_values;
use crate::retry;

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

impl Reply {
    /// The reply of a command (a list of replies is a pipeline's: an error). Inlined: every
    /// call's reply passes here.
    #[inline]
    pub fn into_value(self) -> Result<Value, RedisError> {
        match self {
            Reply::Value(value) => Ok(value),
            Reply::Values(_) => Err(unexpected_shape()),
        }
    }

    /// The replies of a pipeline (a single reply is a command's: an error).
    #[inline]
    pub fn into_values(self) -> Result<Vec<Value>, RedisError> {
        match self {
            Reply::Values(values) => Ok(values),
            Reply::Value(_) => Err(unexpected_shape()),
        }
    }
}

fn unexpected_shape() -> RedisError {
    RedisError::from((redis::ErrorKind::Client, "unexpected reply shape"))
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

    /// Sends the request and waits for its reply until `deadline`. A server error reply is
    /// turned into `Err` here (redis-rs hands it over as a `Value`), so that the classifier sees
    /// `LOADING`, `TRYAGAIN`, `MASTERDOWN` and command errors alike.
    ///
    /// On the shared lane's own connection (every ordinary call over plain TCP) the
    /// connection keeps the deadline itself and the future is small and unboxed
    /// (`multiplex.rs`); on redis-rs's connections it is boxed under a tokio timer.
    pub fn send<'c>(
        &'c self,
        connection: &'c mut Link,
        deadline: Option<Deadline>,
    ) -> impl Future<Output = Result<Reply, RedisError>> + Send + 'c {
        match connection {
            Link::Shared(shared) => Either::Left(match self {
                Request::Command(cmd) => shared
                    .send_command(cmd, deadline)
                    .map(command_reply as fn(_) -> _),
                Request::Pipeline {
                    pipeline,
                    offset,
                    count,
                } => shared
                    .send_pipeline(pipeline, *offset, *count, deadline)
                    .map(
                        (|reply: Result<Value, RedisError>| pipeline_reply(reply.map(into_values)))
                            as fn(_) -> _,
                    ),
            }),
            connection => Either::Right(Box::pin(within(deadline, async move {
                match self {
                    Request::Command(cmd) => {
                        command_reply(connection.req_packed_command(cmd).await)
                    }
                    Request::Pipeline {
                        pipeline,
                        offset,
                        count,
                    } => pipeline_reply(
                        connection
                            .req_packed_commands(pipeline, *offset, *count)
                            .await,
                    ),
                }
            }))),
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
            match retry::refused_without_running(errors) {
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
            Err(retry::refused_without_running(errors).unwrap_or(error))
        }
        Err(error) => Err(error),
    }
}
