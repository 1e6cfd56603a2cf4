//! Pub/sub on a database's endpoint that survives reconnects.
//!
//! A [`Subscriber`] is a handle on a background task that owns one RESP3 connection. The set of
//! channels and patterns asked for is desired state: when the connection breaks (server restart,
//! `CLIENT KILL`, network reset, a Sentinel failover), the task reconnects with the database's
//! backoff, TCP settings, TLS and credentials and re-issues every subscription. Messages are
//! handed over through a bounded buffer (see [`Subscriber::BUFFER_MESSAGES`]): a consumer that stops reading
//! loses the newest messages, counted, instead of growing the process without limit.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::Stream;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, ErrorKind, FromRedisValue, PushInfo, PushKind, RedisError, Value,
};
use redis_db_config::{Config, Retry, Topology};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::call::Failure;
use crate::connector::{Connector, Link, Role};
use crate::counters::Counters;
use crate::database::Database;
use crate::error::Error;
use crate::retry::{self, Stage};
use crate::target::Target;

/// How often a subscriber on a Sentinel-managed endpoint asks its node for `ROLE`: a master
/// demoted by a failover keeps its subscribers' connections open but no longer receives the
/// application's publishes.
const SENTINEL_ROLE_CHECK: Duration = Duration::from_secs(1);

/// How often an idle subscriber connection is checked with `PING` when the health monitor is
/// off (`health_check_interval: 0`): TCP keepalive alone takes minutes to notice a dead peer.
const FALLBACK_PING: Duration = Duration::from_secs(30);

/// Lowest pause between reconnect attempts once the configured backoff is used up: a
/// subscriber keeps trying for as long as it lives, but never in a busy loop.
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// One message received on a subscribed channel or pattern.
#[derive(Clone)]
pub struct Message {
    channel: String,
    pattern: Option<String>,
    payload: Value,
    database: Arc<str>,
    db: u32,
    /// What the message counts against the buffer's byte budget.
    size: usize,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The payload is the application's data: its size, not its content.
        f.debug_struct("Message")
            .field("database", &self.database)
            .field("channel", &self.channel)
            .field("pattern", &self.pattern)
            .field("size", &self.size)
            .finish()
    }
}

impl Message {
    /// The channel the message was published on (lossy UTF-8 for binary names).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The pattern that matched, for a message received through `psubscribe`.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_deref()
    }

    /// The payload converted to `T` (`String`, `Vec<u8>`, numbers, ...).
    pub fn payload<T: FromRedisValue>(&self) -> Result<T, Error> {
        T::from_redis_value(self.payload.clone()).map_err(|e| Error::Command {
            database: self.database.to_string(),
            db: self.db,
            source: e.into(),
        })
    }

    /// Reads a `message`, `pmessage` or `smessage` push; anything else is not a message.
    fn from_push(push: PushInfo, database: &Arc<str>, db: u32) -> Option<Message> {
        let mut data = push.data.into_iter();
        let pattern = match push.kind {
            PushKind::Message | PushKind::SMessage => None,
            PushKind::PMessage => Some(text(data.next()?)?),
            _ => return None,
        };
        let channel = text(data.next()?)?;
        let payload = data.next()?;
        let size = channel.len()
            + pattern.as_ref().map_or(0, String::len)
            + match &payload {
                Value::BulkString(bytes) => bytes.len(),
                Value::SimpleString(s) => s.len(),
                _ => 16,
            };
        Some(Message {
            channel,
            pattern,
            payload,
            database: database.clone(),
            db,
            size,
        })
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// Figures shared between a subscriber, its task and its connections' push callbacks.
#[derive(Default)]
struct Shared {
    reconnections: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    queued_bytes: AtomicUsize,
}

/// The receiving end of the bounded buffer, with its byte accounting.
struct Inbox {
    messages: mpsc::Receiver<Message>,
    shared: Arc<Shared>,
}

impl Inbox {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let polled = self.messages.poll_recv(cx);
        if let Poll::Ready(Some(message)) = &polled {
            self.shared
                .queued_bytes
                .fetch_sub(message.size, Ordering::AcqRel);
        }
        polled
    }
}

/// What the push callback of one connection needs: where messages go and how to say the
/// connection closed.
#[derive(Clone)]
struct Sink {
    messages: mpsc::Sender<Message>,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    database: Arc<str>,
    db: u32,
    max_bytes: usize,
}

impl Sink {
    /// Never blocks: it runs on the connection's driver, which must keep reading the socket.
    fn deliver(&self, message: Message) {
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        self.counters.pubsub().message_received();
        let size = message.size;
        let before = self.shared.queued_bytes.fetch_add(size, Ordering::AcqRel);
        let over_budget = before > 0 && before.saturating_add(size) > self.max_bytes;
        if over_budget || self.messages.try_send(message).is_err() {
            self.shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.pubsub().message_dropped();
        }
    }

    /// The push callback of one connection; `alive` is cleared (and the task woken) when the
    /// connection's driver reports it closed.
    fn callback(
        &self,
        alive: Arc<AtomicBool>,
        wake: Arc<Notify>,
    ) -> impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static {
        let sink = self.clone();
        move |push: PushInfo| {
            if push.kind == PushKind::Disconnection {
                alive.store(false, Ordering::Release);
                wake.notify_one();
            } else if let Some(message) = Message::from_push(push, &sink.database, sink.db) {
                sink.deliver(message);
            }
            Ok(())
        }
    }
}

/// What a subscription call asks of the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
    SSubscribe,
    SUnsubscribe,
}

impl Op {
    fn adds(self) -> bool {
        matches!(self, Op::Subscribe | Op::PSubscribe | Op::SSubscribe)
    }
}

struct Control {
    op: Op,
    name: String,
    done: oneshot::Sender<Result<(), Error>>,
}

/// The channels, patterns and sharded channels to hold, kept in the database's
/// `subscriptions` figure while they are held.
struct Desired {
    channels: BTreeSet<String>,
    patterns: BTreeSet<String>,
    shards: BTreeSet<String>,
    counters: Arc<Counters>,
}

impl Desired {
    fn new(counters: Arc<Counters>) -> Self {
        Self {
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            shards: BTreeSet::new(),
            counters,
        }
    }

    fn record(&mut self, op: Op, name: &str) {
        let set = match op {
            Op::Subscribe | Op::Unsubscribe => &mut self.channels,
            Op::PSubscribe | Op::PUnsubscribe => &mut self.patterns,
            Op::SSubscribe | Op::SUnsubscribe => &mut self.shards,
        };
        let changed = if op.adds() {
            set.insert(name.to_owned())
        } else {
            set.remove(name)
        };
        if changed {
            self.counters.pubsub().subscriptions_changed(op.adds());
        }
    }

    fn len(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shards.len()
    }
}

impl Drop for Desired {
    fn drop(&mut self) {
        for _ in 0..self.len() {
            self.counters.pubsub().subscriptions_changed(false);
        }
    }
}

/// A pub/sub connection of either kind.
enum PubSubLink {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// The task's current connection.
struct Live {
    link: PubSubLink,
    /// Cleared by the push callback when the driver reports the socket closed.
    alive: Arc<AtomicBool>,
}

/// How the task opens (and re-opens) its connection: the database's own connector and
/// settings, so that every road (standalone, Sentinel master, Cluster) and TLS, credentials and
/// TCP keepalive are the ones its other connections use.
struct Opener {
    connector: Connector,
    connection_config: AsyncConnectionConfig,
    connect_timeout: Duration,
    timeout: Duration,
    retry: Retry,
    sentinel: bool,
    check_every: Duration,
    sink: Sink,
    wake: Arc<Notify>,
    database: Arc<str>,
    address: String,
}

impl Opener {
    async fn open(&self) -> Result<Live, RedisError> {
        let alive = Arc::new(AtomicBool::new(true));
        let callback = self.sink.callback(alive.clone(), self.wake.clone());
        let opening = async {
            let link = match &self.connector {
                Connector::Cluster(client) => {
                    let config = redis::cluster::ClusterConfig::new()
                        .set_connection_timeout(self.connect_timeout)
                        .set_response_timeout(self.timeout)
                        .set_push_sender(callback);
                    PubSubLink::Cluster(client.get_async_connection_with_config(config).await?)
                }
                connector => {
                    let config = self.connection_config.clone().set_push_sender(callback);
                    match connector.connect(&config, None).await? {
                        Link::Node(connection) => PubSubLink::Node(connection),
                        Link::Cluster(connection) => PubSubLink::Cluster(connection),
                        // Only the shared lane asks for one (`connect(.., Some(alive))`).
                        Link::Shared(_) => {
                            return Err(RedisError::from((
                                redis::ErrorKind::Client,
                                "a subscription needs a connection of its own",
                            )))
                        }
                    }
                }
            };
            Ok::<_, RedisError>(link)
        };
        let mut link = tokio::time::timeout(self.connect_timeout, opening)
            .await
            .map_err(|_| timed_out("connect_timeout", self.connect_timeout))??;
        // Right after a failover a sentinel may still name the old master: its subscribers
        // would never see the application's publishes.
        if self.sentinel && !self.is_master(&mut link).await? {
            return Err(RedisError::from((
                ErrorKind::Io,
                "the node the sentinels named is not the master (failover in progress)",
            )));
        }
        Ok(Live { link, alive })
    }

    async fn is_master(&self, link: &mut PubSubLink) -> Result<bool, RedisError> {
        let PubSubLink::Node(connection) = link else {
            return Ok(true);
        };
        let cmd = redis::cmd("ROLE");
        let role = tokio::time::timeout(self.timeout, cmd.query_async::<Vec<Value>>(connection))
            .await
            .map_err(|_| timed_out("timeout", self.timeout))??;
        Ok(role
            .into_iter()
            .next()
            .and_then(text)
            .is_some_and(|role| role == "master"))
    }

    /// One subscription command on `live`, within the database's timeout.
    async fn send(&self, live: &mut Live, op: Op, names: &[&str]) -> Result<(), RedisError> {
        let sent = async {
            match &mut live.link {
                PubSubLink::Node(c) => match op {
                    Op::Subscribe => c.subscribe(names).await,
                    Op::Unsubscribe => c.unsubscribe(names).await,
                    Op::PSubscribe => c.psubscribe(names).await,
                    Op::PUnsubscribe => c.punsubscribe(names).await,
                    Op::SSubscribe | Op::SUnsubscribe => Err(not_cluster()),
                },
                PubSubLink::Cluster(c) => match op {
                    Op::Subscribe => c.subscribe(names).await,
                    Op::Unsubscribe => c.unsubscribe(names).await,
                    Op::PSubscribe => c.psubscribe(names).await,
                    Op::PUnsubscribe => c.punsubscribe(names).await,
                    Op::SSubscribe => c.ssubscribe(names).await,
                    Op::SUnsubscribe => c.sunsubscribe(names).await,
                },
            }
        };
        tokio::time::timeout(self.timeout, sent)
            .await
            .map_err(|_| timed_out("timeout", self.timeout))?
    }

    /// Re-issues every desired subscription on a fresh connection.
    async fn resubscribe(&self, live: &mut Live, desired: &Desired) -> Result<(), RedisError> {
        let groups = [
            (Op::Subscribe, &desired.channels),
            (Op::PSubscribe, &desired.patterns),
            (Op::SSubscribe, &desired.shards),
        ];
        for (op, names) in groups {
            if names.is_empty() {
                continue;
            }
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            self.send(live, op, &names).await?;
        }
        Ok(())
    }

    /// `PING` (or, on a Sentinel endpoint, `ROLE`): whether the connection still serves.
    async fn check(&self, live: &mut Live) -> bool {
        if self.sentinel {
            return self.is_master(&mut live.link).await.unwrap_or(false);
        }
        let ping = async {
            match &mut live.link {
                PubSubLink::Node(c) => redis::cmd("PING").query_async::<Value>(c).await,
                PubSubLink::Cluster(c) => redis::cmd("PING").query_async::<Value>(c).await,
            }
        };
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_)))
    }

    fn error(&self, db: u32, source: RedisError) -> Error {
        if source.is_io_error() || source.is_timeout() {
            Error::Unreachable {
                database: self.database.to_string(),
                db,
                address: self.address.clone(),
                attempts: 1,
                source,
            }
        } else {
            Error::Command {
                database: self.database.to_string(),
                db,
                source,
            }
        }
    }
}

fn not_cluster() -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "sharded pub/sub (SSUBSCRIBE) needs a Cluster endpoint",
    ))
}

fn timed_out(setting: &str, limit: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no reply within {limit:?} ({setting})"),
    ))
}

/// A pub/sub subscription set on one database's endpoint, re-established after every
/// disconnection. A [`Stream`] of [`Message`]s (also readable with [`Subscriber::recv`]).
///
/// - Delivery is at-most-once: messages published while the connection is down are lost;
///   [`Subscriber::reconnections`] says how often that may have happened.
/// - The buffer is bounded ([`Subscriber::BUFFER_MESSAGES`] messages,
///   [`Subscriber::BUFFER_BYTES`] bytes): when
///   the consumer falls behind, new messages are dropped and counted ([`Subscriber::dropped`]).
/// - Dropping it stops its task and closes its connection.
/// - The stream ends only if the subscriber's task stopped, which it does not while the
///   subscriber lives.
pub struct Subscriber {
    control: mpsc::Sender<Control>,
    inbox: Inbox,
    task: JoinHandle<()>,
    database: Arc<str>,
    db: u32,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("database", &self.database)
            .field("db", &self.db)
            .field("reconnections", &self.reconnections())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Subscriber {
    /// Messages a subscriber buffers for a consumer that has not read them yet. Beyond this
    /// (or beyond [`Subscriber::BUFFER_BYTES`]) the newest message is dropped and counted in
    /// [`Subscriber::dropped`] and the database's stats: pub/sub is at-most-once anyway, and a
    /// slow consumer must not make the process grow without limit.
    pub const BUFFER_MESSAGES: usize = 1024;

    /// Bytes of channel names and payloads a subscriber buffers at most (one message is always
    /// accepted into an empty buffer, whatever its size).
    pub const BUFFER_BYTES: usize = 64 * 1024 * 1024;

    /// Subscribes to a channel. Held from now on, across reconnects.
    pub async fn subscribe(&mut self, channel: &str) -> Result<(), Error> {
        self.ask(Op::Subscribe, channel).await
    }

    /// Stops receiving a channel.
    pub async fn unsubscribe(&mut self, channel: &str) -> Result<(), Error> {
        self.ask(Op::Unsubscribe, channel).await
    }

    /// Subscribes to a glob-style pattern (`jobs:*`). Held from now on, across reconnects.
    pub async fn psubscribe(&mut self, pattern: &str) -> Result<(), Error> {
        self.ask(Op::PSubscribe, pattern).await
    }

    /// Stops receiving a pattern.
    pub async fn punsubscribe(&mut self, pattern: &str) -> Result<(), Error> {
        self.ask(Op::PUnsubscribe, pattern).await
    }

    /// Subscribes to a sharded channel (Cluster endpoints only; redis-rs's cluster connection
    /// follows the channel's slot when it moves).
    pub async fn ssubscribe(&mut self, channel: &str) -> Result<(), Error> {
        self.ask(Op::SSubscribe, channel).await
    }

    /// Stops receiving a sharded channel.
    pub async fn sunsubscribe(&mut self, channel: &str) -> Result<(), Error> {
        self.ask(Op::SUnsubscribe, channel).await
    }

    /// The next message; `None` only if the subscriber's task stopped. The same as
    /// `StreamExt::next`, for code without `futures`.
    pub async fn recv(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| self.inbox.poll_recv(cx)).await
    }

    /// How many times the connection was re-established after it broke (0 while the first one
    /// holds). Each one may have lost the messages published while it was down.
    pub fn reconnections(&self) -> u64 {
        self.inbox.shared.reconnections.load(Ordering::Relaxed)
    }

    /// Messages received from the server (delivered or dropped).
    pub fn received(&self) -> u64 {
        self.inbox.shared.received.load(Ordering::Relaxed)
    }

    /// Messages dropped because the buffer was full (the consumer fell behind).
    pub fn dropped(&self) -> u64 {
        self.inbox.shared.dropped.load(Ordering::Relaxed)
    }

    /// Messages waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.inbox.messages.len()
    }

    /// The database's YAML name.
    pub fn database(&self) -> &str {
        &self.database
    }

    async fn ask(&mut self, op: Op, name: &str) -> Result<(), Error> {
        let (done, answer) = oneshot::channel();
        let request = Control {
            op,
            name: name.to_owned(),
            done,
        };
        if self.control.send(request).await.is_err() {
            return Err(self.stopped());
        }
        answer.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    fn stopped(&self) -> Error {
        Error::Command {
            database: self.database.to_string(),
            db: self.db,
            source: RedisError::from((ErrorKind::Client, "the subscriber's task stopped")),
        }
    }
}

impl Stream for Subscriber {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.inbox.poll_recv(cx)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Dropping the task's future drops its connection, which closes the socket.
        self.task.abort();
    }
}

/// Opens a subscriber on the database at `position`: the first connection is made here,
/// through the database's breaker, readiness gate and retries, so that an unreachable server is
/// an error now rather than a stream that never yields.
pub(crate) async fn open(
    config: &Config,
    slot: &Database,
    target: &Target,
) -> Result<Subscriber, Error> {
    let owner = config
        .databases
        .iter()
        .find(|d| d.name == target.name())
        .ok_or_else(|| Error::Command {
            database: slot.name().to_owned(),
            db: slot.db(),
            source: RedisError::from((ErrorKind::Client, "database missing from the config")),
        })?;
    let (connection, topology) = config.endpoint_of(owner);
    let database: Arc<str> = Arc::from(slot.name());
    let invalid = |source: RedisError| Error::Unreachable {
        database: slot.name().to_owned(),
        db: slot.db(),
        address: target.address().to_owned(),
        attempts: 0,
        source,
    };
    // Its own connector, built like the database's: a pub/sub connection is never shared.
    let connector =
        Connector::new(config, connection, topology, owner.db, Role::Primary).map_err(invalid)?;
    let (messages, receiver) = mpsc::channel(Subscriber::BUFFER_MESSAGES);
    let shared = Arc::new(Shared::default());
    let sentinel = matches!(topology, Topology::Sentinel(_));
    let check_every = match config.health_check_interval {
        Some(interval) if sentinel => interval.min(SENTINEL_ROLE_CHECK),
        None if sentinel => SENTINEL_ROLE_CHECK,
        Some(interval) => interval,
        None => FALLBACK_PING,
    };
    let opener = Opener {
        connector,
        connection_config: crate::pool::connection_config(config),
        connect_timeout: config.connect_timeout,
        timeout: slot.timeout(),
        retry: config.retry,
        sentinel,
        check_every,
        sink: Sink {
            messages,
            shared: shared.clone(),
            counters: target.counters().clone(),
            database: database.clone(),
            db: slot.db(),
            max_bytes: Subscriber::BUFFER_BYTES,
        },
        wake: Arc::new(Notify::new()),
        database: database.clone(),
        address: target.address().to_owned(),
    };
    let live = target
        .guarded(
            slot.key(),
            config,
            true,
            Some(config.connect_timeout),
            || async {
                opener
                    .open()
                    .await
                    .map_err(|e| Failure::Redis(e, Stage::Connect))
            },
        )
        .await?;
    let (control, requests) = mpsc::channel(16);
    let desired = Desired::new(target.counters().clone());
    let task = tokio::spawn(run(opener, desired, live, requests, slot.db()));
    Ok(Subscriber {
        control,
        inbox: Inbox {
            messages: receiver,
            shared,
        },
        task,
        database,
        db: slot.db(),
    })
}

/// The task: serves subscription calls, watches the connection, re-establishes it. Ends when
/// the subscriber is dropped (its control channel closes, or the task is aborted).
async fn run(
    opener: Opener,
    mut desired: Desired,
    first: Live,
    mut requests: mpsc::Receiver<Control>,
    db: u32,
) {
    let mut live = Some(first);
    let mut checks = tokio::time::interval(opener.check_every);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    checks.reset();
    loop {
        let Some(current) = live.as_mut().filter(|l| l.alive.load(Ordering::Acquire)) else {
            if live.take().is_some() {
                tracing::warn!(database = %opener.database, "redis-db: pub/sub connection lost; re-subscribing");
            }
            match reconnect(&opener, &mut desired, &mut requests, db).await {
                Some(fresh) => {
                    opener
                        .sink
                        .shared
                        .reconnections
                        .fetch_add(1, Ordering::Relaxed);
                    opener.sink.counters.pubsub().reconnected();
                    tracing::info!(database = %opener.database, subscriptions = desired.len(), "redis-db: pub/sub connection re-established");
                    live = Some(fresh);
                    checks.reset();
                }
                None => return,
            }
            continue;
        };
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { return };
                apply(&opener, current, &mut desired, request, db).await;
            }
            _ = opener.wake.notified() => {}
            _ = checks.tick() => {
                if !opener.check(current).await {
                    tracing::debug!(database = %opener.database, "redis-db: pub/sub connection failed its check");
                    current.alive.store(false, Ordering::Release);
                }
            }
        }
    }
}

/// Applies one subscription call on the live connection. A connection that fails on it is
/// marked dead (the loop re-establishes it); the call itself succeeds then, since the
/// subscription is recorded and will be issued on the new connection.
async fn apply(opener: &Opener, live: &mut Live, desired: &mut Desired, request: Control, db: u32) {
    let Control { op, name, done } = request;
    if !op.adds() {
        // Recorded first: even if the command fails, a reconnect will not re-subscribe it.
        desired.record(op, &name);
    }
    let answer = match opener.send(live, op, &[name.as_str()]).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
            live.alive.store(false, Ordering::Release);
            Ok(())
        }
        Err(e) => Err(opener.error(db, e)),
    };
    if op.adds() && answer.is_ok() {
        desired.record(op, &name);
    }
    let _ = done.send(answer);
}

/// Reconnects with the database's backoff until it works (then re-issues every subscription)
/// or the subscriber is dropped (`None`). Subscription calls made meanwhile are recorded and
/// answered at once: they are issued on the new connection.
async fn reconnect(
    opener: &Opener,
    desired: &mut Desired,
    requests: &mut mpsc::Receiver<Control>,
    db: u32,
) -> Option<Live> {
    let floor = opener.retry.max_delay.max(MIN_RECONNECT_DELAY);
    let mut delays = retry::backoff(&opener.retry).chain(std::iter::repeat(floor));
    let mut pending: Vec<Control> = Vec::new();
    loop {
        let result = {
            let attempt = async {
                let mut live = opener.open().await?;
                opener.resubscribe(&mut live, desired).await?;
                Ok::<_, RedisError>(live)
            };
            tokio::pin!(attempt);
            loop {
                tokio::select! {
                    result = &mut attempt => break result,
                    request = requests.recv() => match request {
                        Some(request) => pending.push(request),
                        None => return None,
                    },
                }
            }
        };
        match result {
            Ok(mut live) => {
                for request in pending.drain(..) {
                    apply(opener, &mut live, desired, request, db).await;
                }
                return Some(live);
            }
            Err(error) => {
                tracing::debug!(database = %opener.database, %error, "redis-db: pub/sub reconnect failed");
                for request in pending.drain(..) {
                    record_only(desired, request);
                }
            }
        }
        let pause = tokio::time::sleep(delays.next().unwrap_or(floor));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                request = requests.recv() => match request {
                    Some(request) => record_only(desired, request),
                    None => return None,
                },
            }
        }
    }
}

fn record_only(desired: &mut Desired, request: Control) {
    desired.record(request.op, &request.name);
    let _ = request.done.send(Ok(()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn sink(capacity: usize, max_bytes: usize) -> (Sink, Inbox, Arc<Counters>) {
        let (messages, receiver) = mpsc::channel(capacity);
        let shared = Arc::new(Shared::default());
        let counters = Arc::new(Counters::new());
        let sink = Sink {
            messages,
            shared: shared.clone(),
            counters: counters.clone(),
            database: Arc::from("main"),
            db: 0,
            max_bytes,
        };
        (
            sink,
            Inbox {
                messages: receiver,
                shared,
            },
            counters,
        )
    }

    fn push(kind: PushKind, parts: &[&str]) -> PushInfo {
        PushInfo {
            kind,
            data: parts
                .iter()
                .map(|p| Value::BulkString(p.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn subscribers_are_unpin_send_streams() {
        fn stream<S: Stream + Unpin + Send>() {}
        stream::<Subscriber>();
        stream::<crate::KeyspaceEvents>();
    }

    #[test]
    fn reads_message_and_pmessage_pushes() {
        let db: Arc<str> = Arc::from("main");
        let m = Message::from_push(push(PushKind::Message, &["jobs:done", "42"]), &db, 0).unwrap();
        assert_eq!((m.channel(), m.pattern()), ("jobs:done", None));
        assert_eq!(m.payload::<i64>().unwrap(), 42);
        let p = Message::from_push(
            push(PushKind::PMessage, &["jobs:*", "jobs:done", "x"]),
            &db,
            0,
        )
        .unwrap();
        assert_eq!((p.channel(), p.pattern()), ("jobs:done", Some("jobs:*")));
        assert_eq!(p.payload::<String>().unwrap(), "x");
        let error = p.payload::<i64>().unwrap_err().to_string();
        assert!(error.contains("database `main`"), "{error}");
        assert!(Message::from_push(push(PushKind::Subscribe, &["a", "1"]), &db, 0).is_none());
        assert!(Message::from_push(push(PushKind::PMessage, &["a"]), &db, 0).is_none());
    }

    #[tokio::test]
    async fn a_full_buffer_drops_and_counts_the_newest() {
        let (sink, mut inbox, counters) = sink(4, usize::MAX);
        let db: Arc<str> = Arc::from("main");
        for i in 0..10 {
            let n = i.to_string();
            sink.deliver(Message::from_push(push(PushKind::Message, &["c", &n]), &db, 0).unwrap());
        }
        assert_eq!(inbox.shared.dropped.load(Ordering::Relaxed), 6);
        assert_eq!(inbox.shared.received.load(Ordering::Relaxed), 10);
        let pubsub = counters.pubsub().snapshot();
        assert_eq!((pubsub.messages_received, pubsub.messages_dropped), (10, 6));
        // Through the Stream impl: the oldest four were kept, in order.
        let mut stream = futures_util::stream::poll_fn(move |cx| inbox.poll_recv(cx));
        for i in 0..4 {
            let m = stream.next().await.unwrap();
            assert_eq!(m.payload::<i64>().unwrap(), i);
        }
    }

    #[tokio::test]
    async fn the_byte_budget_bounds_the_buffer() {
        let (sink, mut inbox, _) = sink(1000, 100);
        let db: Arc<str> = Arc::from("main");
        let big = "x".repeat(60);
        for _ in 0..5 {
            sink.deliver(
                Message::from_push(push(PushKind::Message, &["c", &big]), &db, 0).unwrap(),
            );
        }
        // The first always fits into an empty buffer; a second would pass 100 bytes.
        assert_eq!(inbox.shared.dropped.load(Ordering::Relaxed), 4);
        let m = inbox.messages.recv().await.unwrap();
        inbox
            .shared
            .queued_bytes
            .fetch_sub(m.size, Ordering::AcqRel);
        assert_eq!(inbox.shared.queued_bytes.load(Ordering::Relaxed), 0);
    }
}
