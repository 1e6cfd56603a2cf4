//! The shared per-database connection that carries ordinary calls: one multiplexed connection
//! per (server, db), pipelining the calls of every clone, replaced when it breaks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use std::time::Duration;

use redis::{AsyncConnectionConfig, RedisError};

use crate::connector::{Connector, Link};
use crate::counters::Counters;
use crate::lock::lock;
use crate::wire::Request;

/// A connection plus the generation it belongs to, so that a caller that saw it fail replaces
/// that one and not a fresh one another caller already installed.
pub(crate) struct LaneConnection {
    pub connection: Link,
    pub generation: u64,
}

/// The lane's connection as the lane keeps it.
struct Current {
    connection: Link,
    generation: u64,
    /// Cleared the moment the connection's driver stops (the socket closed; see
    /// `connector::open_node`). Checked before every send, so that a connection the server
    /// already dropped is replaced before a write goes out on it: such a write provably never
    /// left, and may be sent on the new connection.
    alive: Arc<AtomicBool>,
}

pub(crate) struct Lane {
    connector: Arc<Connector>,
    config: AsyncConnectionConfig,
    /// Budget of one connect, sentinel discovery included.
    connect_timeout: Duration,
    current: Mutex<Option<Current>>,
    /// Serialises reconnection so that a burst of callers opens one connection, not hundreds.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// Set by every call, cleared by the idle reaper's tick: calls read no clock for it, and
    /// write only the first time after a tick.
    used: AtomicBool,
    /// Milliseconds since `epoch` when the reaper last saw the lane unused (reaper only).
    idle_since_ms: AtomicU64,
    epoch: Instant,
    counters: Arc<Counters>,
}

impl Lane {
    pub fn new(
        connector: Arc<Connector>,
        config: AsyncConnectionConfig,
        connect_timeout: Duration,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            connector,
            config,
            connect_timeout,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            used: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            counters,
        }
    }

    /// The live connection, opening one if there is none. A failure here means nothing was sent.
    pub async fn get(&self) -> Result<LaneConnection, RedisError> {
        match self.live() {
            Some(live) => Ok(live),
            // Boxed: the connect future is large, and inline it would be part of every call's.
            None => Box::pin(self.open()).await,
        }
    }

    /// The live connection if there is one, without waiting (the hot path); `None`: call
    /// [`Lane::open`].
    pub fn live(&self) -> Option<LaneConnection> {
        self.touch();
        self.peek_alive()
    }

    /// Opens a connection unless another caller just did. A failure here means nothing was sent.
    pub async fn open(&self) -> Result<LaneConnection, RedisError> {
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(live) = self.peek_alive() {
            return Ok(live);
        }
        let alive = Arc::new(AtomicBool::new(true));
        let connection = tokio::time::timeout(
            self.connect_timeout,
            self.connector.connect(&self.config, Some(alive.clone())),
        )
        .await
        .map_err(|_| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no connection within {:?} (connect_timeout)",
                    self.connect_timeout
                ),
            ))
        })??;
        self.counters.connection_created();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let live = LaneConnection {
            connection: connection.clone(),
            generation,
        };
        *lock(&self.current) = Some(Current {
            connection,
            generation,
            alive,
        });
        tracing::debug!(generation, "redis-db: opened shared connection");
        Ok(live)
    }

    /// The current connection if its driver has not seen it close; a dead one is dropped here.
    fn peek_alive(&self) -> Option<LaneConnection> {
        let mut current = lock(&self.current);
        match current.as_ref() {
            Some(live) if live.alive.load(Ordering::Acquire) => Some(LaneConnection {
                connection: live.connection.clone(),
                generation: live.generation,
            }),
            Some(dead) => {
                tracing::debug!(
                    generation = dead.generation,
                    "redis-db: shared connection closed by peer; replacing it"
                );
                *current = None;
                self.counters.connection_closed(1);
                None
            }
            None => None,
        }
    }

    /// One `PING` on the shared connection (opening it if needed), as readiness probes and health
    /// checks send it; a connection that breaks on it is dropped. A `LOADING` reply is an error.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut live = self.get().await?;
        let reply = Request::Command(&redis::cmd("PING"))
            .send(&mut live.connection, None)
            .await;
        if reply.as_ref().is_err_and(|e| e.is_io_error()) {
            self.discard(live.generation);
        }
        reply.map(drop)
    }

    /// The live connection without counting as a use: for background checks, which must not
    /// keep an idle lane open.
    pub fn peek(&self) -> Option<LaneConnection> {
        self.peek_alive()
    }

    /// What this lane's connections are opened with.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Opens a new connection in place of the current one (a cluster connection whose slot map
    /// is stale: `topology_refresh.rs`). Calls already sent finish on the old one; calls arriving
    /// meanwhile wait for the new one. If it cannot be opened, the old one stays.
    pub async fn replace(&self) -> Result<(), RedisError> {
        let old = lock(&self.current).take();
        match self.open().await {
            Ok(_) => {
                if old.is_some() {
                    self.counters.connection_closed(1);
                }
                Ok(())
            }
            Err(error) => {
                if let Some(old) = old {
                    lock(&self.current).get_or_insert(old);
                }
                Err(error)
            }
        }
    }

    /// Drops the connection of `generation` after it failed; the next call opens a new one.
    pub fn discard(&self, generation: u64) {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            *current = None;
            self.counters.connection_closed(1);
            tracing::debug!(generation, "redis-db: dropped broken shared connection");
        }
    }

    /// Called by the reaper on every tick: closes the connection once no call used it for
    /// `idle_ms` (measured in ticks, so up to one tick later). Returns whether it did.
    pub fn close_if_idle(&self, idle_ms: u64) -> bool {
        let now = self.now_ms();
        if self.used.swap(false, Ordering::Relaxed) {
            self.idle_since_ms.store(now, Ordering::Relaxed);
            return false;
        }
        let idle_for = now.saturating_sub(self.idle_since_ms.load(Ordering::Relaxed));
        idle_for >= idle_ms && self.close()
    }

    /// Closes the current connection (if any); the next call opens a new one. Returns whether
    /// there was one.
    pub fn close(&self) -> bool {
        let closed = lock(&self.current).take().is_some();
        if closed {
            self.counters.connection_closed(1);
        }
        closed
    }

    fn touch(&self) {
        // A store on every call from every worker would bounce the cache line between cores.
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
