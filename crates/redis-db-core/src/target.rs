//! One distinct (endpoint, database number), what aliases share: its shared lane (and replica
//! lane), its pool of exclusive connections, breaker, readiness gate and counters; and one
//! attempt of a call on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool::managed;
use redis::{ErrorKind, RedisError, ServerErrorKind};
use redis_db_config::{Config, ReadFrom, Topology};

use crate::breaker::Breaker;
use crate::call::{self, Failure, Policies};
use crate::command::CommandTraits;
use crate::connector::{Connector, Role};
use crate::counters::Counters;
use crate::deadline::{within, Deadline};
use crate::error::Error;
use crate::lane::{Lane, LaneConnection};
use crate::metrics::Metrics;
use crate::pool::{self, Pool, PooledLink};
use crate::readiness::Readiness;
use crate::retry::{self, Stage};
use crate::wire::{Reply, Request};

pub(crate) struct Target {
    /// The name of the database that owns the number (not an alias).
    // `name`, `is_cluster` and `replica_lane` are read as fields by `topology_refresh.rs`;
    // everything else goes through the accessors.
    name: String,
    db: u32,
    /// `None` = the default endpoint.
    endpoint: Option<String>,
    /// The endpoint without credentials, for messages.
    address: String,
    lane: Lane,
    /// Opens the primary lane's and the pool's connections.
    primary: Arc<Connector>,
    /// A Redis Cluster endpoint (checked for slot coverage at connect).
    is_cluster: bool,
    /// Serves read-only commands when the endpoint says `read_from: replica`.
    replica_lane: Option<Lane>,
    pool: Pool,
    /// How long a checkout waits for a free pooled connection (`timeout`), for messages.
    pool_wait: Duration,
    breaker: Breaker,
    readiness: Readiness,
    counters: Arc<Counters>,
}

impl Target {
    pub fn new(config: &Config, owner: &redis_db_config::Database) -> Result<Target, Error> {
        let (connection, topology) = config.endpoint_of(owner);
        let address = topology.display_endpoint(connection);
        let invalid = |source: RedisError| Error::Unreachable {
            database: owner.name.clone(),
            db: owner.db,
            address: address.clone(),
            attempts: 0,
            source,
        };
        let counters = Arc::new(Counters::new().with_metrics(Metrics::new(&owner.name, owner.db)));
        let connection_config = pool::connection_config(config);
        let lane_for = |role: Role| -> Result<Lane, Error> {
            let connector =
                Connector::new(config, connection, topology, owner.db, role).map_err(invalid)?;
            Ok(Lane::new(
                Arc::new(connector),
                connection_config.clone(),
                config.connect_timeout,
                counters.clone(),
            ))
        };
        let primary = Arc::new(
            Connector::new(config, connection, topology, owner.db, Role::Primary)
                .map_err(invalid)?,
        );
        let replica_lane = match topology {
            Topology::Sentinel(s) if s.read_from == ReadFrom::Replica => {
                Some(lane_for(Role::Replica)?)
            }
            Topology::Cluster(c) if c.read_from == ReadFrom::Replica => {
                Some(lane_for(Role::Replica)?)
            }
            _ => None,
        };
        let max_size = owner.max_connections.unwrap_or(config.max_connections);
        let pool = pool::exclusive_pool(
            primary.clone(),
            matches!(topology, Topology::Sentinel(_)),
            connection_config.clone(),
            max_size,
            config,
            counters.clone(),
        )
        .map_err(invalid)?;
        Ok(Target {
            lane: Lane::new(
                primary.clone(),
                connection_config,
                config.connect_timeout,
                counters.clone(),
            ),
            replica_lane,
            pool,
            pool_wait: config.timeout,
            breaker: Breaker::new(config.circuit_breaker),
            readiness: Readiness::default(),
            counters,
            name: owner.name.clone(),
            db: owner.db,
            endpoint: owner.endpoint.clone(),
            is_cluster: matches!(topology, Topology::Cluster(_)),
            primary,
            address,
        })
    }

    /// The name of the database that owns the number (not an alias).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn db(&self) -> u32 {
        self.db
    }

    /// The endpoint's name (`None`: the default endpoint).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The endpoint without credentials, for messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The primary shared connection.
    pub fn lane(&self) -> &Lane {
        &self.lane
    }

    pub fn is_cluster(&self) -> bool {
        self.is_cluster
    }

    /// The shared connection of replica reads, when the endpoint reads from replicas.
    pub fn replica_lane(&self) -> Option<&Lane> {
        self.replica_lane.as_ref()
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The shared connection that carries a command: the replicas' for a read when the endpoint
    /// reads from replicas.
    pub fn lane_for(&self, traits: &CommandTraits) -> &Lane {
        match &self.replica_lane {
            Some(replicas) if traits.read_only => replicas,
            _ => &self.lane,
        }
    }

    /// The policy loop's view of this target, for the database named `database` (the owner
    /// or an alias), whose command timeout `probe_timeout` is.
    pub fn policies<'a>(
        &'a self,
        database: &'a str,
        db: u32,
        probe_timeout: Duration,
        config: &'a Config,
    ) -> Policies<'a> {
        Policies {
            database,
            db,
            address: &self.address,
            readiness: &self.readiness,
            counters: &self.counters,
            retry: &config.retry,
            waiting: config.readiness,
            probe_timeout,
        }
    }

    /// Breaker, readiness gate and the attempt loop around `attempt`: the policies every
    /// exclusive-connection checkout and subscription passes. `read_only` decides whether a
    /// failure after sending may be retried; `timeout` is one attempt's limit (for messages).
    pub async fn guarded<T, Attempt, Fut>(
        &self,
        (database, db, probe_timeout): (&str, u32, Duration),
        config: &Config,
        read_only: bool,
        timeout: Option<Duration>,
        attempt: Attempt,
    ) -> Result<T, Error>
    where
        Attempt: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let permit = call::admit(&self.breaker, database, db)?;
        let probe = || self.lane.ping();
        let policies = self.policies(database, db, probe_timeout, config);
        call::policy_loop(&policies, read_only, timeout, permit, None, probe, attempt).await
    }

    /// One attempt on the shared lane (opened first if needed), or on an exclusive connection
    /// for blocking commands (a blocked multiplexed connection would stall every other caller).
    pub async fn attempt(
        &self,
        request: &Request<'_>,
        traits: &CommandTraits,
        timeout: Option<Duration>,
    ) -> Result<Reply, Failure> {
        if traits.blocks_for.is_some() {
            return Box::pin(self.attempt_exclusive(request, timeout)).await;
        }
        let lane = self.lane_for(traits);
        let live = match lane.live() {
            Some(live) => live,
            None => Box::pin(lane.open())
                .await
                .map_err(|e| Failure::Redis(e, Stage::Connect))?,
        };
        send_shared(lane, live, request, timeout, Instant::now()).await
    }

    /// A blocking command's attempt, on an exclusive connection.
    async fn attempt_exclusive(
        &self,
        request: &Request<'_>,
        timeout: Option<Duration>,
    ) -> Result<Reply, Failure> {
        let mut connection = Some(self.checkout().await?);
        pool::send_exclusive(&mut connection, request, timeout)
            .await
            .map_err(|e| Failure::Redis(e, Stage::Command))
    }

    /// One exclusive connection from the pool. A full pool is final (no retry would free a
    /// connection sooner than the pool's own wait did); other failures happened before anything
    /// was sent.
    pub async fn checkout(&self) -> Result<PooledLink, Failure> {
        match self.pool.get().await {
            Ok(connection) => Ok(connection),
            Err(managed::PoolError::Timeout(managed::TimeoutType::Wait)) => {
                let status = self.pool.status();
                Err(Failure::Final(Error::PoolExhausted {
                    database: self.name.clone(),
                    db: self.db,
                    address: self.address.clone(),
                    max_size: status.max_size,
                    waited: self.pool_wait,
                }))
            }
            Err(error) => Err(Failure::Redis(pool::pool_error(error), Stage::Connect)),
        }
    }

    /// After a failover to `host:port`: new connections go there, and every connection to the
    /// old master is dropped, the shared ones at once, the pooled idle ones now and the
    /// checked-out ones when they come back (their recycle check asks `ROLE`).
    pub fn follow_new_master(&self, host: &str, port: u16) {
        self.primary.announce_master(host, port);
        self.lane.close();
        if let Some(replicas) = &self.replica_lane {
            replicas.close();
        }
        self.pool.manager().retire_existing();
        let removed = self.pool.retain(|_, _| false).removed.len();
        tracing::debug!(database = %self.name, pooled = removed, "redis-db: dropped connections to a replaced master");
    }
}

/// One attempt on a live shared connection. The deadline counts from `begun` (for a call's first
/// attempt the call's start, read once for the latency figure too).
pub(crate) async fn send_shared(
    lane: &Lane,
    mut live: LaneConnection,
    request: &Request<'_>,
    timeout: Option<Duration>,
    begun: Instant,
) -> Result<Reply, Failure> {
    let deadline = Deadline::after(begun, timeout);
    let outcome = request.send(&mut live.connection, deadline).await;
    // A cluster slot in migration: followed once, boxed (cold), within the same deadline.
    let outcome = match outcome {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::Ask) => {
            let follow = async {
                crate::cluster::follow_ask(&mut live.connection, request, &e)
                    .await
                    .unwrap_or_else(|| Err(e.clone()))
            };
            Box::pin(within(deadline, follow)).await
        }
        other => other,
    };
    outcome.map_err(|e| {
        if retry::needs_new_connection(&e) {
            lane.discard(live.generation);
        }
        Failure::Redis(e, Stage::Command)
    })
}
