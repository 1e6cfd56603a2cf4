//! A call's deadline: its limit counted from its start, running a future under it, and the
//! error when it passes. The shared lane's own connection keeps deadlines in its queue of
//! requests (`multiplex.rs`); every other road runs its future under a tokio timer.

use std::future::Future;
use std::time::{Duration, Instant};

use redis::RedisError;

/// When a call's wait ends, and its limit (for the message).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    pub at: tokio::time::Instant,
    pub limit: Duration,
}

impl Deadline {
    /// `limit` after `since`; `None` without a limit, or when a block time is too long to add
    /// to a clock reading, which means no deadline at all.
    pub fn after(since: Instant, limit: Option<Duration>) -> Option<Deadline> {
        let limit = limit?;
        Some(Deadline {
            at: since.checked_add(limit)?.into(),
            limit,
        })
    }

    /// The error of a call whose deadline passed: a timed-out I/O error, as redis-rs's.
    pub fn passed(&self) -> RedisError {
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no reply within {:?}", self.limit),
        ))
    }
}

/// Runs `future` until `deadline` (none: no deadline), failing with [`Deadline::passed`].
pub(crate) async fn within<T>(
    deadline: Option<Deadline>,
    future: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    match deadline {
        None => future.await,
        Some(deadline) => tokio::time::timeout_at(deadline.at, future)
            .await
            .unwrap_or_else(|_| Err(deadline.passed())),
    }
}

/// Runs `future` under `timeout` from now (none: no deadline).
pub(crate) async fn with_timeout<T>(
    timeout: Option<Duration>,
    future: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    within(Deadline::after(Instant::now(), timeout), future).await
}
