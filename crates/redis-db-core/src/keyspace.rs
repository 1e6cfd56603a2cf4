//! Keyspace notifications of one numbered database: a [`Subscriber`] on
//! `__keyspace@<db>__:<pattern>` with the database's own number, read as (key, event) pairs.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::Stream;
use redis::{ErrorKind, RedisError};
use redis_db_config::Config;

use crate::database::Database;
use crate::error::Error;
use crate::subscriber::{self, Message, Subscriber};
use crate::target::Target;

/// The event classes of `notify-keyspace-events` (besides `K`/`E`); `A` is most of them.
const EVENT_CLASSES: &str = "Ag$lshzxetmdn";

/// One keyspace notification: `key` was touched by `event` (`set`, `expired`, `del`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyspaceEvent {
    key: String,
    event: String,
}

impl KeyspaceEvent {
    /// The key, without the `__keyspace@<db>__:` prefix.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The event's name as the server sends it (`set`, `expired`, `hset`, ...).
    pub fn event(&self) -> &str {
        &self.event
    }
}

/// Keyspace notifications of one database only, re-subscribed after every disconnection like
/// any [`Subscriber`] (same at-most-once delivery and bounded buffer). A [`Stream`] of
/// [`KeyspaceEvent`]s (also readable with [`KeyspaceEvents::recv`]).
#[derive(Debug)]
pub struct KeyspaceEvents {
    subscriber: Subscriber,
    prefix: String,
}

impl KeyspaceEvents {
    /// The next event; `None` only if the subscriber's task stopped.
    pub async fn recv(&mut self) -> Option<KeyspaceEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// How many times the subscription was re-established (events may have been missed).
    pub fn reconnections(&self) -> u64 {
        self.subscriber.reconnections()
    }

    /// Events dropped because the consumer fell behind.
    pub fn dropped(&self) -> u64 {
        self.subscriber.dropped()
    }

    /// The underlying subscriber (for its figures).
    pub fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    fn event(&self, message: Message) -> Option<KeyspaceEvent> {
        let key = message.channel().strip_prefix(&self.prefix)?.to_owned();
        let event = message.payload::<String>().ok()?;
        Some(KeyspaceEvent { key, event })
    }
}

impl Stream for KeyspaceEvents {
    type Item = KeyspaceEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<KeyspaceEvent>> {
        loop {
            match Pin::new(&mut self.subscriber).poll_next(cx) {
                Poll::Ready(Some(message)) => {
                    if let Some(event) = self.event(message) {
                        return Poll::Ready(Some(event));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Checks the server's setting, then subscribes to this database's keyspace channel.
///
/// `setting` is the database's reply to [`setting_command`], awaited only where it matters.
pub(crate) async fn open(
    config: &Config,
    database: &Database,
    target: &Target,
    pattern: &str,
    setting: impl std::future::Future<Output = Result<HashMap<String, String>, Error>>,
) -> Result<KeyspaceEvents, Error> {
    if target.is_cluster() {
        // Each cluster node notifies only about its own keys: one subscription would silently
        // see a fraction of the events.
        return Err(refused(
            database,
            "keyspace events are not carried on Cluster endpoints",
            "each node notifies only about its own keys; subscribe on every node with the \
             `redis` crate, or put the database on a standalone or Sentinel endpoint"
                .to_owned(),
        ));
    }
    check_setting(database, target.address(), setting).await?;
    let prefix = format!("__keyspace@{}__:", database.db());
    let mut subscriber = subscriber::open(config, database, target).await?;
    subscriber.psubscribe(&format!("{prefix}{pattern}")).await?;
    Ok(KeyspaceEvents { subscriber, prefix })
}

/// `CONFIG GET notify-keyspace-events` must show the `K` class and some event class. A server
/// that refuses `CONFIG` (managed services, renamed commands, ACL) is given the benefit of the
/// doubt: the stream is opened and simply yields nothing if notifications are off.
async fn check_setting(
    database: &Database,
    address: &str,
    setting: impl std::future::Future<Output = Result<HashMap<String, String>, Error>>,
) -> Result<(), Error> {
    let value = match setting.await {
        Ok(reply) => reply
            .get("notify-keyspace-events")
            .cloned()
            .unwrap_or_default(),
        Err(Error::Command { source, .. }) => {
            tracing::debug!(database = %database.name(), error = %source, "redis-db: CONFIG GET refused; cannot check notify-keyspace-events");
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    if notifies_keyspace(&value) {
        return Ok(());
    }
    Err(refused(
        database,
        "keyspace notifications are off",
        format!(
            "the server at {address} has notify-keyspace-events \"{value}\", which sends no \
             keyspace events for database `{}` (db {}); set notify-keyspace-events to KEA \
             (or at least K plus the event classes you need): `CONFIG SET notify-keyspace-events KEA` \
             or `notify-keyspace-events KEA` in redis.conf",
            database.name(),
            database.db()
        ),
    ))
}

fn notifies_keyspace(value: &str) -> bool {
    value.contains('K') && value.chars().any(|c| EVENT_CLASSES.contains(c))
}

/// `CONFIG GET notify-keyspace-events`, whose reply [`open`] checks.
pub(crate) fn setting_command() -> redis::Cmd {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("notify-keyspace-events");
    cmd
}

fn refused(database: &Database, what: &'static str, detail: String) -> Error {
    Error::Command {
        database: database.name().to_owned(),
        db: database.db(),
        source: RedisError::from((ErrorKind::Client, what, detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::notifies_keyspace;

    #[test]
    fn needs_the_keyspace_class_and_an_event_class() {
        assert!(notifies_keyspace("AKE"));
        assert!(notifies_keyspace("Kx"));
        assert!(!notifies_keyspace(""));
        assert!(!notifies_keyspace("K"));
        assert!(!notifies_keyspace("Ex"));
    }
}
