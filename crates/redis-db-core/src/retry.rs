//! Which failures may be retried, and how long to wait between attempts.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use redis_db_config::Retry;

/// Where a failure happened, which decides whether the command may have reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Getting a connection: nothing was sent yet.
    Connect,
    /// The command was written (or may have been): the server may have applied it.
    Command,
}

/// What to do about one failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The server said `LOADING`: wait for readiness, then send again (nothing was applied).
    WaitForLoading,
    /// The server refused without applying (`TRYAGAIN`, `MASTERDOWN`) or the command never left:
    /// retry any command.
    RetryAny,
    /// The connection failed after the command may have been sent: retry reads only.
    RetryIfReadOnly,
    /// Wrong credentials: never retried.
    Authentication,
    /// The server rejects the database number: never retried.
    DatabaseOutOfRange,
    /// The TLS handshake failed over a certificate (`tls::refusal`): never retried.
    TlsRefused,
    /// The server answered with a command error (`WRONGTYPE`, syntax...): never retried.
    CommandError,
}

/// The classifier table.
pub(crate) fn classify(error: &RedisError, stage: Stage) -> Verdict {
    match error.kind() {
        ErrorKind::Server(ServerErrorKind::BusyLoading) => Verdict::WaitForLoading,
        // Refused without running it: a master link down, a cluster slot moving or in
        // migration, a write that reached a replica demoted by a failover.
        ErrorKind::Server(
            ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::ReadOnly,
        ) => Verdict::RetryAny,
        ErrorKind::AuthenticationFailed => Verdict::Authentication,
        ErrorKind::Server(ServerErrorKind::NoPerm) if stage == Stage::Connect => {
            Verdict::Authentication
        }
        _ if is_auth_message(error) => Verdict::Authentication,
        _ if is_db_out_of_range(error) => Verdict::DatabaseOutOfRange,
        ErrorKind::InvalidClientConfig if crate::tls::refused(error).is_some() => {
            Verdict::TlsRefused
        }
        // Nothing was sent: no node connection to send it on.
        ErrorKind::ClusterConnectionNotFound => Verdict::RetryAny,
        ErrorKind::InvalidClientConfig | ErrorKind::EmptySentinelList => Verdict::CommandError,
        // Anything else while connecting (I/O, timeouts, sentinels mid-failover) sent nothing.
        _ if stage == Stage::Connect => Verdict::RetryAny,
        ErrorKind::Io | ErrorKind::Parse => Verdict::RetryIfReadOnly,
        _ => Verdict::CommandError,
    }
}

/// Whether the connection that produced `error` must be replaced: it broke, or (READONLY) it
/// points at a node that is no longer the master.
pub(crate) fn needs_new_connection(error: &RedisError) -> bool {
    error.is_io_error() || error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

/// When every reply of a pipeline is an error saying the server did not run the command
/// (`LOADING`, `TRYAGAIN`, `MASTERDOWN`, or `READONLY` from a master demoted by a failover),
/// the whole pipeline may be sent again: returns that error (READONLY also replaces the
/// connection: [`needs_new_connection`]). Any other mix is the commands' own business
/// (`None`: returned as replies): a demoted master did run the reads of a mixed pipeline.
pub(crate) fn refused_without_running(
    mut errors: impl Iterator<Item = Option<RedisError>>,
) -> Option<RedisError> {
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

fn is_auth_message(error: &RedisError) -> bool {
    let code = error.code().unwrap_or_default();
    code == "WRONGPASS" || code == "NOAUTH" || error.to_string().contains("WRONGPASS")
}

/// `SELECT` refused: a number beyond the server's `databases` (or Valkey's `cluster-databases`),
/// or any number but 0 on a cluster node without numbered databases (Redis 7). Retrying cannot help.
fn is_db_out_of_range(error: &RedisError) -> bool {
    let text = error.to_string();
    text.contains("DB index is out of range") || text.contains(crate::error::SELECT_IN_CLUSTER_MODE)
}

/// Exponential backoff with jitter: `delay`, about `2 x delay`, ... never above `max_delay`, at
/// most `attempts` delays. backon does the maths so that we keep our own attempt loop (which also has
/// to wait out `LOADING` and decide per attempt whether a write may be re-sent).
pub(crate) fn backoff(retry: &Retry) -> impl Iterator<Item = Duration> + Send {
    let max_delay = retry.max_delay;
    ExponentialBuilder::default()
        .with_min_delay(retry.delay)
        .with_max_delay(retry.max_delay)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(retry.attempts as usize)
        .build()
        // backon adds its jitter on top of the capped delay; the config promises a hard cap.
        .map(move |delay| delay.min(max_delay))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn io_error(kind: io::ErrorKind) -> RedisError {
        RedisError::from(io::Error::new(kind, "test"))
    }

    fn server_error(text: &str) -> RedisError {
        // Parse a real RESP error reply so the kind is what a server would produce.
        let reply = format!("-{text}\r\n");
        match redis::parse_redis_value(reply.as_bytes()) {
            Ok(redis::Value::ServerError(err)) => err.into(),
            other => panic!("not a server error: {other:?}"),
        }
    }

    #[test]
    fn classifier_table() {
        let cases: Vec<(RedisError, Stage, Verdict)> = vec![
            (
                server_error("LOADING Redis is loading the dataset in memory"),
                Stage::Command,
                Verdict::WaitForLoading,
            ),
            (
                server_error("TRYAGAIN retry"),
                Stage::Command,
                Verdict::RetryAny,
            ),
            (
                server_error("MASTERDOWN link down"),
                Stage::Command,
                Verdict::RetryAny,
            ),
            // A demoted master refused the write without running it: any command is re-sent,
            // on a new connection (`needs_new_connection`), which finds the new master.
            (
                server_error("READONLY You can't write against a read only replica."),
                Stage::Command,
                Verdict::RetryAny,
            ),
            (
                io_error(io::ErrorKind::ConnectionRefused),
                Stage::Connect,
                Verdict::RetryAny,
            ),
            (
                io_error(io::ErrorKind::TimedOut),
                Stage::Connect,
                Verdict::RetryAny,
            ),
            (
                io_error(io::ErrorKind::ConnectionReset),
                Stage::Command,
                Verdict::RetryIfReadOnly,
            ),
            (
                io_error(io::ErrorKind::TimedOut),
                Stage::Command,
                Verdict::RetryIfReadOnly,
            ),
            (
                server_error("WRONGPASS invalid username-password pair"),
                Stage::Connect,
                Verdict::Authentication,
            ),
            (
                server_error("NOAUTH Authentication required."),
                Stage::Command,
                Verdict::Authentication,
            ),
            (
                server_error("ERR DB index is out of range"),
                Stage::Connect,
                Verdict::DatabaseOutOfRange,
            ),
            (
                server_error("ERR SELECT is not allowed in cluster mode"),
                Stage::Connect,
                Verdict::DatabaseOutOfRange,
            ),
            (
                server_error("WRONGTYPE Operation against a key holding the wrong kind of value"),
                Stage::Command,
                Verdict::CommandError,
            ),
            (
                server_error("ERR syntax error"),
                Stage::Command,
                Verdict::CommandError,
            ),
            (
                server_error("NOSCRIPT No matching script"),
                Stage::Command,
                Verdict::CommandError,
            ),
        ];
        for (error, stage, expected) in cases {
            assert_eq!(classify(&error, stage), expected, "{error} at {stage:?}");
        }
    }

    #[test]
    fn broken_and_demoted_connections_are_replaced() {
        assert!(needs_new_connection(&io_error(
            io::ErrorKind::ConnectionReset
        )));
        assert!(needs_new_connection(&server_error(
            "READONLY You can't write against a read only replica."
        )));
        assert!(!needs_new_connection(&server_error(
            "WRONGTYPE Operation against a key"
        )));
    }

    #[test]
    fn backoff_grows_is_capped_and_stops_after_the_attempts() {
        let retry = Retry {
            attempts: 6,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let delays: Vec<Duration> = backoff(&retry).collect();
        assert_eq!(delays.len(), 6);
        assert!(
            delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(200),
            "{delays:?}"
        );
        assert!(
            delays.iter().all(|d| *d <= Duration::from_millis(500)),
            "{delays:?}"
        );
        assert_eq!(
            delays[5],
            Duration::from_millis(500),
            "grown to the cap: {delays:?}"
        );
    }

    #[test]
    fn zero_attempts_means_no_retry() {
        let retry = Retry {
            attempts: 0,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(backoff(&retry).count(), 0);
    }
}
