//! The blocking client: the same core driven from plain threads, in the style of
//! `reqwest::blocking`. No second implementation of any policy: every call is the async call,
//! run to completion on a small runtime the blocking core owns.

use std::sync::Arc;

use redis::{Cmd, Pipeline, RedisError, RedisResult, Value};
use redis_db_config::Config;

use crate::core::Core;
use crate::error::Error;
use crate::health::HealthReport;
use crate::stats::Stats;

/// The runtime-owning core behind a generated blocking client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlockingCore {
    core: Core,
    runtime: Arc<Runtime>,
}

/// Shuts its runtime down without waiting, so dropping the last blocking client never blocks
/// and never panics, even on a thread that is inside another runtime.
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn get(&self) -> &tokio::runtime::Runtime {
        // Only `Drop` takes the runtime out, and nothing can use `self` after that.
        self.0.as_ref().expect("runtime present until drop")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl BlockingCore {
    /// An error when the calling thread is inside an async runtime, where blocking on a
    /// future would stall (or, on a current-thread runtime, deadlock) that runtime.
    pub fn refuse_inside_runtime() -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Blocking(
                "called from inside an async runtime; use the async client (`connect().await`) there, \
                 or call the blocking client from a plain thread (e.g. `tokio::task::spawn_blocking`)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Starts the runtime and connects the core on it.
    pub fn connect(config: Config) -> Result<BlockingCore, Error> {
        Self::refuse_inside_runtime()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-db-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::Blocking(format!("cannot start its runtime: {e}")))?;
        let core = runtime.block_on(Core::connect(config))?;
        Ok(BlockingCore {
            core,
            runtime: Arc::new(Runtime(Some(runtime))),
        })
    }

    /// The blocking handle of the database at `position` in file order.
    pub fn handle(&self, position: usize) -> Handle {
        Handle {
            async_handle: self.core.handle(position),
            runtime: self.runtime.clone(),
        }
    }

    /// A snapshot of every database's figures.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// Pings every database now.
    pub fn health(&self) -> HealthReport {
        self.runtime.get().block_on(self.core.health())
    }
}

/// One database of a blocking client. Implements [`redis::ConnectionLike`], so every
/// [`redis::Commands`] method and [`redis::Pipeline::query`] work on it.
#[derive(Clone, Debug)]
pub struct Handle {
    async_handle: crate::Handle,
    runtime: Arc<Runtime>,
}

impl Handle {
    /// The database's YAML name.
    pub fn name(&self) -> &str {
        self.async_handle.name()
    }

    /// The Redis database number.
    pub fn db(&self) -> u32 {
        self.async_handle.db()
    }

    fn block_on<T>(
        &self,
        future: impl std::future::Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        if let Err(e) = BlockingCore::refuse_inside_runtime() {
            return Err(e.into_redis_error());
        }
        self.runtime.get().block_on(future)
    }
}

impl Handle {
    /// A pub/sub subscriber on this database's endpoint, read as a blocking [`Iterator`]; the
    /// same subscriber as the async client's (re-subscribed after every disconnection, bounded
    /// buffer), its task running on the blocking client's runtime.
    pub fn subscriber(&self) -> Result<Subscriber, Error> {
        BlockingCore::refuse_inside_runtime()?;
        let handle = self.async_handle.clone();
        let inner = self
            .runtime
            .get()
            .block_on(async move { handle.subscriber().await })?;
        Ok(Subscriber {
            inner,
            runtime: self.runtime.clone(),
        })
    }

    /// Keyspace notifications of this database only, as a blocking [`Iterator`] (see
    /// [`crate::Handle::keyspace_events`]).
    pub fn keyspace_events(&self, pattern: &str) -> Result<KeyspaceEvents, Error> {
        BlockingCore::refuse_inside_runtime()?;
        let handle = self.async_handle.clone();
        let inner = self
            .runtime
            .get()
            .block_on(async move { handle.keyspace_events(pattern).await })?;
        Ok(KeyspaceEvents {
            inner,
            runtime: self.runtime.clone(),
        })
    }
}

/// The blocking form of [`crate::Subscriber`]: an [`Iterator`] of [`crate::Message`]s whose
/// `next()` waits for the next message. Dropping it stops its task and closes its connection.
///
/// Called on a thread inside an async runtime, `next()` returns `None` and the subscription
/// calls fail (blocking there would stall that runtime).
#[derive(Debug)]
pub struct Subscriber {
    // Declared first: dropped (task stopped) before the runtime it runs on.
    inner: crate::Subscriber,
    runtime: Arc<Runtime>,
}

impl Subscriber {
    /// Subscribes to a channel, held across reconnects.
    pub fn subscribe(&mut self, channel: &str) -> Result<(), Error> {
        self.wait(|s| Box::pin(s.subscribe(channel)))
    }

    /// Stops receiving a channel.
    pub fn unsubscribe(&mut self, channel: &str) -> Result<(), Error> {
        self.wait(|s| Box::pin(s.unsubscribe(channel)))
    }

    /// Subscribes to a pattern, held across reconnects.
    pub fn psubscribe(&mut self, pattern: &str) -> Result<(), Error> {
        self.wait(|s| Box::pin(s.psubscribe(pattern)))
    }

    /// Stops receiving a pattern.
    pub fn punsubscribe(&mut self, pattern: &str) -> Result<(), Error> {
        self.wait(|s| Box::pin(s.punsubscribe(pattern)))
    }

    /// Subscribes to a sharded channel (Cluster endpoints).
    pub fn ssubscribe(&mut self, channel: &str) -> Result<(), Error> {
        self.wait(|s| Box::pin(s.ssubscribe(channel)))
    }

    /// Stops receiving a sharded channel.
    pub fn sunsubscribe(&mut self, channel: &str) -> Result<(), Error> {
        self.wait(|s| Box::pin(s.sunsubscribe(channel)))
    }

    /// The next message, or `None` when none arrived within `timeout`.
    pub fn next_timeout(&mut self, timeout: std::time::Duration) -> Option<crate::Message> {
        receive(&self.runtime, self.inner.recv(), Some(timeout))
    }

    /// See [`crate::Subscriber::reconnections`].
    pub fn reconnections(&self) -> u64 {
        self.inner.reconnections()
    }

    /// See [`crate::Subscriber::dropped`].
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    /// See [`crate::Subscriber::received`].
    pub fn received(&self) -> u64 {
        self.inner.received()
    }

    fn wait<'a>(
        &'a mut self,
        call: impl FnOnce(
            &'a mut crate::Subscriber,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), Error>> + 'a>,
        >,
    ) -> Result<(), Error> {
        BlockingCore::refuse_inside_runtime()?;
        self.runtime.get().block_on(call(&mut self.inner))
    }
}

impl Iterator for Subscriber {
    type Item = crate::Message;

    fn next(&mut self) -> Option<crate::Message> {
        receive(&self.runtime, self.inner.recv(), None)
    }
}

/// The blocking form of [`crate::KeyspaceEvents`]: an [`Iterator`] of
/// [`crate::KeyspaceEvent`]s of one database.
#[derive(Debug)]
pub struct KeyspaceEvents {
    inner: crate::KeyspaceEvents,
    runtime: Arc<Runtime>,
}

impl KeyspaceEvents {
    /// The next event, or `None` when none arrived within `timeout`.
    pub fn next_timeout(&mut self, timeout: std::time::Duration) -> Option<crate::KeyspaceEvent> {
        receive(&self.runtime, self.inner.recv(), Some(timeout))
    }

    /// See [`crate::KeyspaceEvents::reconnections`].
    pub fn reconnections(&self) -> u64 {
        self.inner.reconnections()
    }
}

impl Iterator for KeyspaceEvents {
    type Item = crate::KeyspaceEvent;

    fn next(&mut self) -> Option<crate::KeyspaceEvent> {
        receive(&self.runtime, self.inner.recv(), None)
    }
}

/// The next item of a subscription, waited for on the client's runtime: `None` when the stream
/// ended, `timeout` passed, or the caller is inside an async runtime (where blocking would
/// deadlock it).
fn receive<T>(
    runtime: &Runtime,
    next: impl std::future::Future<Output = Option<T>>,
    timeout: Option<std::time::Duration>,
) -> Option<T> {
    BlockingCore::refuse_inside_runtime().ok()?;
    match timeout {
        None => runtime.get().block_on(next),
        Some(limit) => runtime
            .get()
            // Inside the runtime: a timer can only be made within one.
            .block_on(async move { tokio::time::timeout(limit, next).await })
            .ok()
            .flatten(),
    }
}

impl redis::ConnectionLike for Handle {
    fn req_packed_command(&mut self, packed: &[u8]) -> RedisResult<Value> {
        let cmd = unpack_commands(packed)?.pop().unwrap_or_default();
        self.req_command(&cmd)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let mut handle = self.async_handle.clone();
        self.block_on(async move {
            redis::aio::ConnectionLike::req_packed_command(&mut handle, cmd).await
        })
    }

    fn req_packed_commands(
        &mut self,
        packed: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        // redis-rs hands a pipeline over packed; rebuild it so the policies can see each command.
        // An `.atomic()` one arrives wrapped in MULTI ... EXEC: rebuilt atomic, it packs the same
        // bytes and `offset`/`count` keep their meaning (the replies after the queued ones).
        let mut commands = unpack_commands(packed)?;
        let mut pipeline = Pipeline::new();
        if is_transaction(&commands) {
            commands.pop();
            commands.remove(0);
            pipeline.atomic();
        }
        for cmd in commands {
            pipeline.add_command(cmd);
        }
        let mut handle = self.async_handle.clone();
        self.block_on(async move {
            redis::aio::ConnectionLike::req_packed_commands(&mut handle, &pipeline, offset, count)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        i64::from(self.db())
    }

    fn check_connection(&mut self) -> bool {
        redis::ConnectionLike::req_command(self, &redis::cmd("PING")).is_ok()
    }

    fn is_open(&self) -> bool {
        true
    }
}

/// Whether unpacked commands are a transaction as `Pipeline::atomic` packs it.
fn is_transaction(commands: &[Cmd]) -> bool {
    let named = |cmd: Option<&Cmd>, name: &[u8]| {
        cmd.and_then(|cmd| cmd.args_iter().next())
            .is_some_and(|arg| matches!(arg, redis::Arg::Simple(a) if a.eq_ignore_ascii_case(name)))
    };
    commands.len() >= 2 && named(commands.first(), b"MULTI") && named(commands.last(), b"EXEC")
}

/// Parses RESP arrays of bulk strings (what redis-rs packs) back into commands.
fn unpack_commands(mut packed: &[u8]) -> RedisResult<Vec<Cmd>> {
    let malformed = || RedisError::from((redis::ErrorKind::Client, "malformed packed command"));
    let mut commands = Vec::new();
    while !packed.is_empty() {
        let (count, rest) = read_prefixed(packed, b'*').ok_or_else(malformed)?;
        packed = rest;
        let mut cmd = Cmd::new();
        for _ in 0..count {
            let (len, rest) = read_prefixed(packed, b'$').ok_or_else(malformed)?;
            let arg = rest.get(..len).ok_or_else(malformed)?;
            cmd.arg(arg);
            packed = rest.get(len + 2..).ok_or_else(malformed)?;
        }
        commands.push(cmd);
    }
    Ok(commands)
}

/// Reads `<marker><decimal>\r\n`, returning the number and the rest.
fn read_prefixed(input: &[u8], marker: u8) -> Option<(usize, &[u8])> {
    let rest = input.strip_prefix(&[marker])?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    let number = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    Some((number, &rest[end + 2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_what_redis_rs_packs() {
        let mut pipeline = redis::pipe();
        pipeline.set("k", "v\r\nwith crlf").get("k").cmd("PING");
        let packed = pipeline.get_packed_pipeline();
        let commands = unpack_commands(&packed).unwrap();
        assert_eq!(commands.len(), 3);
        let repacked: Vec<u8> = commands
            .iter()
            .flat_map(|c| c.get_packed_command())
            .collect();
        assert_eq!(repacked, packed);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for input in [
            &b"*2\r\n$3\r\nGET\r\n"[..],
            b"*x\r\n",
            b"$3\r\nabc",
            b"*1\r\n$99\r\nab\r\n",
            b"*1",
        ] {
            assert!(unpack_commands(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn refuses_inside_a_runtime() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let error = runtime
            .block_on(async { BlockingCore::refuse_inside_runtime() })
            .unwrap_err();
        assert!(
            error.to_string().contains("inside an async runtime"),
            "{error}"
        );
        assert!(BlockingCore::refuse_inside_runtime().is_ok());
    }
}
