//! The shared core behind every generated client: one target (lane, pool, breaker, readiness,
//! counters) per distinct database number, and the one road every call travels.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use deadpool::managed;
use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, ServerErrorKind, Value};
use redis_db_config::{Config, LogLevel, ReadFrom, Topology};
use tokio::task::JoinHandle;

use crate::breaker::{Breaker, Permit, Transition};
use crate::command::CommandTraits;
use crate::connector::{self, Connector, Link, Role};
use crate::error::Error;
use crate::failover;
use crate::handle::Handle;
use crate::health::{self, HealthReport};
use crate::lane::{Lane, LaneConnection};
use crate::metrics::Metrics;
use crate::pool::{self, Pool, PooledLink};
use crate::readiness::Readiness;
use crate::retry::{self, Stage, Verdict};
use crate::stats::{Counters, DatabaseStats, PoolStats, Stats, Totals};

/// One distinct (endpoint, database number): what aliases share.
pub(crate) struct Target {
    /// The name of the database that owns the number (not an alias).
    pub name: String,
    pub db: u32,
    /// `None` = the default endpoint.
    pub endpoint: Option<String>,
    /// The endpoint without credentials, for messages.
    pub address: String,
    pub lane: Lane,
    /// Opens the primary lane's and the pool's connections.
    primary: Arc<Connector>,
    /// A Redis Cluster endpoint (checked for slot coverage at connect).
    pub is_cluster: bool,
    /// Serves read-only commands when the endpoint says `read_from: replica`.
    pub replica_lane: Option<Lane>,
    pub pool: Pool,
    pub breaker: Breaker,
    pub readiness: Readiness,
    pub counters: Arc<Counters>,
}

/// One logical database, in file order.
pub(crate) struct Slot {
    pub name: String,
    pub db: u32,
    pub alias_of: Option<String>,
    pub target: usize,
    pub timeout: Duration,
}

pub(crate) struct Inner {
    pub config: Config,
    pub slots: Vec<Slot>,
    pub targets: Vec<Target>,
    started: Instant,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The background monitor's last verdict per database, shown in `stats()`.
    last_health: Mutex<Option<HealthReport>>,
}

/// What a call sends.
pub(crate) enum Request<'a> {
    Command(&'a Cmd),
    Pipeline {
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    },
}

/// Why one attempt failed.
pub(crate) enum Failure {
    /// A Redis-level failure, for the classifier.
    Redis(RedisError, Stage),
    /// Already the caller's answer: no retry, and nothing learned about the server's health.
    Final(Error),
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
    /// command errors alike.
    pub async fn send(&self, connection: &mut Link) -> Result<Reply, RedisError> {
        match self {
            Request::Command(cmd) => match connection.req_packed_command(cmd).await? {
                Value::ServerError(error) => Err(error.into()),
                value => Ok(Reply::Value(value)),
            },
            Request::Pipeline {
                pipeline,
                offset,
                count,
            } => match connection
                .req_packed_commands(pipeline, *offset, *count)
                .await
            {
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
                // A transaction whose queued commands were all refused (e.g. LOADING) comes
                // back as EXECABORT: nothing in it ran.
                Err(error)
                    if error.kind()
                        == redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort) =>
                {
                    let queued = error.clone().into_server_errors().unwrap_or_default();
                    let errors = queued
                        .iter()
                        .map(|(_, e)| Some(RedisError::from(e.clone())));
                    Err(refused_without_running(errors).unwrap_or(error))
                }
                Err(error) => Err(error),
            },
        }
    }
}

/// A cluster slot in migration answers `ASK <slot> <node>`: the command was not run, and must
/// go to that node once, preceded by `ASKING` on the same connection. redis-rs only follows
/// redirects as part of its own retries, which are off (they would re-send writes). `None` when
/// the redirect cannot be followed here (not a cluster, a transaction, an unreadable target);
/// the caller's attempt loop then retries after the migration moved on.
async fn follow_ask(
    link: &mut Link,
    request: &Request<'_>,
    error: &RedisError,
) -> Option<Result<Reply, RedisError>> {
    use redis::cluster_routing::SingleNodeRoutingInfo;
    let Link::Cluster(cluster) = link else {
        return None;
    };
    let (node, _slot) = error.redirect_node()?;
    let (host, port) = node.rsplit_once(':')?;
    let route = SingleNodeRoutingInfo::ByAddress {
        host: host.trim_matches(|c| c == '[' || c == ']').to_owned(),
        port: port.parse().ok()?,
    };
    let mut asking = redis::pipe();
    asking.cmd("ASKING");
    let (count, single) = match request {
        Request::Command(cmd) => {
            asking.add_command((*cmd).clone());
            (1, true)
        }
        Request::Pipeline { pipeline, .. } if !pipeline.is_transaction() => {
            for cmd in pipeline.cmd_iter() {
                asking.add_command(cmd.clone());
            }
            (pipeline.cmd_iter().count(), false)
        }
        Request::Pipeline { .. } => return None,
    };
    tracing::debug!(node, "redis-db: following an ASK redirect");
    let values = match cluster.route_pipeline(asking, 1, count, route).await {
        Ok(values) => values,
        Err(e) => return Some(Err(e)),
    };
    Some(if single {
        match values.into_iter().next() {
            Some(Value::ServerError(e)) => Err(e.into()),
            Some(value) => Ok(Reply::Value(value)),
            None => Err(RedisError::from((
                redis::ErrorKind::Client,
                "empty reply to an ASK redirect",
            ))),
        }
    } else {
        Ok(Reply::Values(values))
    })
}

/// When every reply of a pipeline is an error saying the server did not run the command
/// (`LOADING`, `TRYAGAIN`, `MASTERDOWN`), the whole pipeline may be sent again: returns that
/// error. Any other mix is the commands' own business (`None`: returned as replies).
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
            )
        )
    };
    // Short-circuits on the first ordinary reply: a normal pipeline costs one look.
    let first = errors.next().flatten().filter(not_run)?;
    errors
        .all(|error| error.as_ref().is_some_and(not_run))
        .then_some(first)
}

/// The connected runtime shared by every clone of a generated client. Cheap to clone.
#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field(
                "endpoints",
                &self
                    .inner
                    .targets
                    .iter()
                    .map(|t| &t.address)
                    .collect::<Vec<_>>(),
            )
            .field(
                "databases",
                &self
                    .inner
                    .slots
                    .iter()
                    .map(|s| (&s.name, s.db))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Core {
    /// Builds the pools and waits until every database answers (waiting out `LOADING`).
    pub async fn connect(config: Config) -> Result<Core, Error> {
        let inner = Arc::new(Inner::new(config)?);
        for target in 0..inner.targets.len() {
            let position = inner
                .slots
                .iter()
                .position(|s| s.target == target)
                .unwrap_or(0);
            let ping = Request::Command(&redis::cmd("PING"));
            match inner.run(position, ping, false).await {
                // A NOPERM answer is an answer: the server is up (ACLs are checked before
                // LOADING, so readiness is then learnt from the calls' own commands).
                Err(e) if crate::readiness::refused_at_connect(&e) => {
                    inner.targets[target].readiness.note_ping_refused()
                }
                other => {
                    other?;
                }
            }
            if inner.targets[target].is_cluster {
                inner.check_cluster_coverage(position).await?;
            }
        }
        Inner::start_background_tasks(&inner);
        tracing::info!(
            databases = inner.slots.len(),
            pools = inner.targets.len(),
            "redis-db: connected"
        );
        Ok(Core { inner })
    }

    /// The handle of the database at `position` in file order (the generated enum's discriminant).
    /// An out-of-range position (impossible through the generated API) yields the first database.
    pub fn handle(&self, position: usize) -> Handle {
        let position = if position < self.inner.slots.len() {
            position
        } else {
            0
        };
        Handle::new(self.inner.clone(), position)
    }

    /// The handle of a database by its YAML name.
    pub fn handle_by_name(&self, name: &str) -> Option<Handle> {
        let position = self.inner.slots.iter().position(|s| s.name == name)?;
        Some(Handle::new(self.inner.clone(), position))
    }

    /// A snapshot of every database's figures.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Pings every database now.
    pub async fn health(&self) -> HealthReport {
        health::check(&self.inner).await
    }

    /// The resolved configuration this core runs on.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
}

impl Inner {
    fn new(config: Config) -> Result<Inner, Error> {
        let mut targets: Vec<Target> = Vec::new();
        let mut slots = Vec::with_capacity(config.databases.len());
        for database in &config.databases {
            let owner = database.target(&config.databases);
            let target = match targets
                .iter()
                .position(|t| t.db == owner.db && t.endpoint == owner.endpoint)
            {
                Some(index) => index,
                None => {
                    targets.push(Target::new(&config, owner)?);
                    targets.len() - 1
                }
            };
            slots.push(Slot {
                name: database.name.clone(),
                db: database.db,
                alias_of: database.alias_of.clone(),
                target,
                timeout: database.timeout.unwrap_or(config.timeout),
            });
        }
        Ok(Inner {
            config,
            slots,
            targets,
            started: Instant::now(),
            tasks: Mutex::new(Vec::new()),
            last_health: Mutex::new(None),
        })
    }

    fn start_background_tasks(inner: &Arc<Inner>) {
        let mut tasks = Vec::new();
        if let Some(interval) = inner.config.health_check_interval {
            tasks.push(tokio::spawn(health::monitor(
                Arc::downgrade(inner),
                interval,
            )));
        }
        tasks.push(tokio::spawn(reap_idle(
            Arc::downgrade(inner),
            inner.config.idle_timeout,
        )));
        tasks.extend(crate::metrics::sampler(inner));
        for (sentinel, targets) in inner.sentinel_endpoints() {
            tasks.push(tokio::spawn(failover::follow(
                Arc::downgrade(inner),
                sentinel,
                targets,
                inner.config.connect_timeout,
            )));
        }
        *inner.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
    }

    pub fn slot(&self, position: usize) -> (&Slot, &Target) {
        let slot = &self.slots[position.min(self.slots.len() - 1)];
        (slot, &self.targets[slot.target])
    }

    /// Each Sentinel-managed endpoint in use, with the targets on it.
    fn sentinel_endpoints(&self) -> Vec<(redis_db_config::Sentinel, Vec<usize>)> {
        let mut endpoints: Vec<(Option<String>, redis_db_config::Sentinel, Vec<usize>)> =
            Vec::new();
        for (index, target) in self.targets.iter().enumerate() {
            let Some(owner) = self.config.databases.iter().find(|d| d.name == target.name) else {
                continue;
            };
            let Topology::Sentinel(sentinel) = self.config.endpoint_of(owner).1 else {
                continue;
            };
            match endpoints
                .iter_mut()
                .find(|(name, ..)| *name == target.endpoint)
            {
                Some((.., targets)) => targets.push(index),
                None => endpoints.push((target.endpoint.clone(), sentinel.clone(), vec![index])),
            }
        }
        endpoints
            .into_iter()
            .map(|(_, sentinel, targets)| (sentinel, targets))
            .collect()
    }

    /// A cluster node answers PING even while slots are unserved; every keyed call would then
    /// fail with CLUSTERDOWN. Better to say so at connect, naming the database and endpoint.
    async fn check_cluster_coverage(&self, position: usize) -> Result<(), Error> {
        let (slot, target) = self.slot(position);
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("INFO");
        let info = match self.run(position, Request::Command(&cmd), false).await? {
            Reply::Value(value) => String::from_redis_value(value).unwrap_or_default(),
            Reply::Values(_) => String::new(),
        };
        let state = info
            .lines()
            .find_map(|line| line.trim().strip_prefix("cluster_state:"))
            .unwrap_or("unknown");
        if state == "ok" {
            return Ok(());
        }
        Err(Error::ClusterNotReady {
            database: slot.name.clone(),
            db: slot.db,
            address: target.address.clone(),
            detail: format!("cluster_state:{state}"),
        })
    }

    /// The one road of every call: exclusive-state check, breaker, readiness, attempts, record.
    pub async fn run(
        &self,
        position: usize,
        request: Request<'_>,
        record: bool,
    ) -> Result<Reply, Error> {
        let (slot, target) = self.slot(position);
        let traits = request.traits();
        let started = Instant::now();
        let span = crate::spans::start(record, slot, target, &request);
        let result = if traits.needs_exclusive {
            Err(Error::NeedsExclusiveConnection {
                database: slot.name.clone(),
                db: slot.db,
                command: request.name(),
            })
        } else {
            self.call(slot, target, &request, &traits, started).await
        };
        if record {
            let elapsed = started.elapsed();
            let error = result.as_ref().err().map(ToString::to_string);
            target.counters.record_call(elapsed, error.as_deref());
            target.counters.metrics.call(&request, elapsed, &result);
            crate::spans::finish(span, &result);
            if self.config.log_commands {
                log_command(
                    self.config.log_level,
                    &slot.name,
                    &request.name(),
                    elapsed,
                    error.as_deref(),
                );
            }
        }
        result
    }

    /// A call's attempts under the policies. Almost every call finds the server not loading
    /// and the shared connection open: its first attempt is made here, and the policy loop
    /// (boxed, so that its state is not part of every call's future) takes over only after a
    /// failure, or when one of those conditions does not hold.
    async fn call(
        &self,
        slot: &Slot,
        target: &Target,
        request: &Request<'_>,
        traits: &CommandTraits,
        started: Instant,
    ) -> Result<Reply, Error> {
        let timeout = traits.deadline(slot.timeout);
        let permit = self.admit(slot)?;
        let mut first = None;
        if traits.blocks_for.is_none() && !target.readiness.is_loading() {
            let lane = target.lane_for(traits);
            if let Some(live) = lane.live() {
                match send_shared(lane, live, request, timeout, started).await {
                    Ok(reply) => {
                        log_transition(&slot.name, permit.succeeded());
                        return Ok(reply);
                    }
                    Err(failure) => first = Some(failure),
                }
            }
        }
        let attempt = || self.attempt(target, request, traits, timeout);
        Box::pin(self.policy_loop(slot, traits.read_only, timeout, permit, first, attempt)).await
    }

    /// The circuit breaker's admission of one call (or checkout).
    fn admit(&self, slot: &Slot) -> Result<Permit<'_>, Error> {
        let target = &self.targets[slot.target];
        let (permit, transition) =
            target
                .breaker
                .try_acquire(Instant::now)
                .map_err(|rejected| Error::CircuitOpen {
                    database: slot.name.clone(),
                    db: slot.db,
                    failures: rejected.failures,
                    retry_in: rejected.retry_in,
                })?;
        log_transition(&slot.name, transition);
        Ok(permit)
    }

    /// Breaker, readiness gate and the attempt loop around `attempt`: the policies every
    /// exclusive-connection checkout passes. `read_only` decides whether a failure after sending
    /// may be retried; `timeout` is one attempt's limit (for messages).
    pub async fn guarded<T, Attempt, Fut>(
        &self,
        slot: &Slot,
        read_only: bool,
        timeout: Option<Duration>,
        attempt: Attempt,
    ) -> Result<T, Error>
    where
        Attempt: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let permit = self.admit(slot)?;
        self.policy_loop(slot, read_only, timeout, permit, None, attempt)
            .await
    }

    /// The readiness gate and the attempt loop under an admitted `permit`, which it settles.
    /// `first`: the failure of an attempt already made (the first of the call).
    async fn policy_loop<T, Attempt, Fut>(
        &self,
        slot: &Slot,
        read_only: bool,
        timeout: Option<Duration>,
        permit: Permit<'_>,
        first: Option<Failure>,
        mut attempt: Attempt,
    ) -> Result<T, Error>
    where
        Attempt: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let target = &self.targets[slot.target];
        let readiness = self.config.readiness;
        let mut loading_deadline: Option<Instant> = None;
        // Built on the first retry only (and boxed, to keep the future small): a call that
        // succeeds pays nothing for it.
        let mut backoff: Option<Box<dyn Iterator<Item = Duration> + Send>> = None;
        let mut attempts = u32::from(first.is_some());
        let mut pending = first;
        loop {
            let failure = match pending.take() {
                Some(failure) => failure,
                None => {
                    if target.readiness.is_loading() {
                        let deadline = *loading_deadline
                            .get_or_insert_with(|| Instant::now() + readiness.max_wait);
                        // Cold paths (this wait, the retry sleep, reconnects, exclusive
                        // checkouts) are boxed: inline, their futures made every call's future
                        // 11 KB to allocate and move (docs/PERFORMANCE.md).
                        target.counters.metrics.readiness_wait();
                        let wait = target.readiness.wait(
                            &target.lane,
                            readiness.poll_interval,
                            slot.timeout,
                            deadline,
                        );
                        if Box::pin(wait).await.is_err() {
                            permit.neutral();
                            return Err(self.still_loading(slot, readiness.max_wait));
                        }
                    }
                    attempts += 1;
                    match attempt().await {
                        Ok(reply) => {
                            log_transition(&slot.name, permit.succeeded());
                            return Ok(reply);
                        }
                        Err(failure) => failure,
                    }
                }
            };
            let (error, stage) = match failure {
                Failure::Redis(error, stage) => (error, stage),
                Failure::Final(error) => {
                    permit.neutral();
                    return Err(error);
                }
            };
            let verdict = retry::classify(&error, stage);
            match verdict {
                Verdict::WaitForLoading => {
                    // LOADING means the server did not run the command: waiting is not a retry.
                    attempts -= 1;
                    target.readiness.mark_loading();
                    if loading_deadline.is_some_and(|d| Instant::now() >= d) {
                        permit.neutral();
                        return Err(self.still_loading(slot, readiness.max_wait));
                    }
                }
                Verdict::CommandError => {
                    log_transition(&slot.name, permit.succeeded());
                    return Err(Error::Command {
                        database: slot.name.clone(),
                        db: slot.db,
                        source: error,
                    });
                }
                Verdict::Authentication => {
                    permit.neutral();
                    return Err(Error::Authentication {
                        database: slot.name.clone(),
                        db: slot.db,
                        address: self.targets[slot.target].address.clone(),
                        detail: error.to_string(),
                    });
                }
                Verdict::DatabaseOutOfRange => {
                    permit.neutral();
                    return Err(Error::DatabaseOutOfRange {
                        database: slot.name.clone(),
                        db: slot.db,
                        address: self.targets[slot.target].address.clone(),
                        detail: error.to_string(),
                    });
                }
                Verdict::RetryAny | Verdict::RetryIfReadOnly => {
                    let may_resend = verdict == Verdict::RetryAny || read_only;
                    if may_resend {
                        let delays = backoff
                            .get_or_insert_with(|| Box::new(retry::backoff(&self.config.retry)));
                        if let Some(delay) = delays.next() {
                            target.counters.record_retry();
                            tracing::debug!(database = %slot.name, attempt = attempts, ?delay, error = %error, "redis-db: retrying");
                            Box::pin(tokio::time::sleep(delay)).await;
                            continue;
                        }
                    }
                    log_transition(&slot.name, permit.failed(Instant::now()));
                    return Err(self.connection_failure(slot, error, attempts, timeout, may_resend));
                }
            }
        }
    }

    /// One attempt on the shared lane (opened first if needed), or on an exclusive connection
    /// for blocking commands (a blocked multiplexed connection would stall every other caller).
    async fn attempt(
        &self,
        target: &Target,
        request: &Request<'_>,
        traits: &CommandTraits,
        timeout: Option<Duration>,
    ) -> Result<Reply, Failure> {
        if traits.blocks_for.is_some() {
            return Box::pin(self.attempt_exclusive(target, request, timeout)).await;
        }
        let lane = target.lane_for(traits);
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
        target: &Target,
        request: &Request<'_>,
        timeout: Option<Duration>,
    ) -> Result<Reply, Failure> {
        let mut connection = self.checkout(target).await?;
        match with_timeout(timeout, request.send(&mut connection)).await {
            Ok(reply) => Ok(reply),
            Err(e) => {
                // Possibly still blocked server-side or broken: never hand it out again.
                drop(managed::Object::take(connection));
                Err(Failure::Redis(e, Stage::Command))
            }
        }
    }

    /// One exclusive connection from the target's pool. A full pool is final (no retry would
    /// free a slot sooner than the pool's own wait did); other failures happened before anything
    /// was sent.
    pub async fn checkout(&self, target: &Target) -> Result<PooledLink, Failure> {
        match target.pool.get().await {
            Ok(connection) => Ok(connection),
            Err(managed::PoolError::Timeout(managed::TimeoutType::Wait)) => {
                let status = target.pool.status();
                Err(Failure::Final(Error::PoolExhausted {
                    database: target.name.clone(),
                    db: target.db,
                    address: target.address.clone(),
                    max_size: status.max_size,
                    waited: self.config.timeout,
                }))
            }
            Err(error) => Err(Failure::Redis(pool_error(error), Stage::Connect)),
        }
    }

    fn still_loading(&self, slot: &Slot, waited: Duration) -> Error {
        Error::StillLoading {
            database: slot.name.clone(),
            db: slot.db,
            address: self.targets[slot.target].address.clone(),
            waited,
        }
    }

    fn connection_failure(
        &self,
        slot: &Slot,
        error: RedisError,
        attempts: u32,
        timeout: Option<Duration>,
        may_resend: bool,
    ) -> Error {
        match timeout {
            Some(timeout) if error.is_timeout() => Error::Timeout {
                database: slot.name.clone(),
                db: slot.db,
                address: self.targets[slot.target].address.clone(),
                timeout,
                attempts,
                resend: if may_resend {
                    ""
                } else {
                    " (a write is never re-sent once it may have reached the server)"
                },
            },
            _ => Error::Unreachable {
                database: slot.name.clone(),
                db: slot.db,
                address: self.targets[slot.target].address.clone(),
                attempts,
                source: error,
            },
        }
    }

    pub fn record_health(&self, report: &HealthReport) {
        *self.last_health.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
    }

    fn stats(&self) -> Stats {
        let last_health = self
            .last_health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut totals = Totals::default();
        let per_target: Vec<DatabaseStats> = self
            .targets
            .iter()
            .map(|target| {
                let mut stats = DatabaseStats::default();
                target.counters.snapshot_into(&mut stats);
                let status = target.pool.status();
                target
                    .counters
                    .snapshot_connections(&mut stats, status.size);
                stats.pool = PoolStats {
                    max_size: status.max_size,
                    size: status.size,
                    idle: status.available,
                    in_use: status.size.saturating_sub(status.available),
                    waiting: status.waiting,
                };
                stats.circuit = target.breaker.state();
                stats.circuit_openings = target.breaker.openings();
                totals.commands += stats.commands;
                totals.failures += stats.failures;
                totals.retries += stats.retries;
                totals.connections_created += stats.connections_created;
                totals.connections_closed += stats.connections_closed;
                stats
            })
            .collect();
        let databases = self
            .slots
            .iter()
            .map(|slot| DatabaseStats {
                name: slot.name.clone(),
                db: slot.db,
                alias_of: slot.alias_of.clone(),
                health: last_health
                    .as_ref()
                    .and_then(|h| h.database(&slot.name))
                    .map(|h| h.state),
                ..per_target[slot.target].clone()
            })
            .collect();
        Stats {
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            totals,
            databases,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Background tasks hold only a Weak; stop them now rather than at their next tick.
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Target {
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

    /// The shared connection that carries a command: the replicas' for a read when the endpoint
    /// reads from replicas.
    fn lane_for(&self, traits: &CommandTraits) -> &Lane {
        match &self.replica_lane {
            Some(replicas) if traits.read_only => replicas,
            _ => &self.lane,
        }
    }

    fn new(config: &Config, owner: &redis_db_config::Database) -> Result<Target, Error> {
        let (connection, topology) = config.endpoint_of(owner);
        let address = connector::describe(connection, topology);
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
}

/// One attempt on a live shared connection. The deadline counts from `begun` (for a call's first
/// attempt the call's start, read once for the latency figure too).
async fn send_shared(
    lane: &Lane,
    mut live: LaneConnection,
    request: &Request<'_>,
    timeout: Option<Duration>,
    begun: Instant,
) -> Result<Reply, Failure> {
    let sent = async {
        match request.send(&mut live.connection).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::Ask) => {
                Box::pin(follow_ask(&mut live.connection, request, &e))
                    .await
                    .unwrap_or(Err(e))
            }
            other => other,
        }
    };
    let outcome = match timeout.and_then(|limit| deadline(begun, limit)) {
        Some((at, limit)) => tokio::time::timeout_at(at, sent)
            .await
            .unwrap_or_else(|_| Err(timed_out(limit))),
        None => sent.await,
    };
    outcome.map_err(|e| {
        if retry::needs_new_connection(&e) {
            lane.discard(live.generation);
        }
        Failure::Redis(e, Stage::Command)
    })
}

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
fn deadline(since: Instant, limit: Duration) -> Option<(tokio::time::Instant, Duration)> {
    Some((since.checked_add(limit)?.into(), limit))
}

fn timed_out(limit: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no reply within {limit:?}"),
    ))
}

pub(crate) fn pool_error(error: managed::PoolError<RedisError>) -> RedisError {
    use managed::PoolError;
    match error {
        PoolError::Backend(e) => e,
        PoolError::Timeout(kind) => RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("pool {kind:?} timeout"),
        )),
        other => RedisError::from((redis::ErrorKind::Io, "pool", other.to_string())),
    }
}

fn log_transition(database: &str, transition: Option<Transition>) {
    match transition {
        None => {}
        Some(Transition::Opened { failures }) => {
            tracing::warn!(database, failures, "redis-db: circuit opened")
        }
        Some(Transition::HalfOpened) => {
            tracing::info!(database, "redis-db: circuit half-open, probing")
        }
        Some(Transition::Closed) => tracing::info!(database, "redis-db: circuit closed"),
    }
}

fn log_command(
    level: LogLevel,
    database: &str,
    command: &str,
    elapsed: Duration,
    error: Option<&str>,
) {
    let micros = elapsed.as_micros() as u64;
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(
                $level,
                database,
                command,
                micros,
                error,
                "redis-db: command"
            )
        };
    }
    match level {
        LogLevel::Trace => event!(tracing::Level::TRACE),
        LogLevel::Debug => event!(tracing::Level::DEBUG),
        LogLevel::Info => event!(tracing::Level::INFO),
        LogLevel::Warn => event!(tracing::Level::WARN),
        LogLevel::Error => event!(tracing::Level::ERROR),
    }
}

async fn reap_idle(inner: Weak<Inner>, idle_timeout: Duration) {
    let tick = (idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let idle_ms = idle_timeout.as_millis() as u64;
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = inner.upgrade() else { return };
        for target in &inner.targets {
            let removed = target
                .pool
                .retain(|_, metrics| metrics.last_used() < idle_timeout)
                .removed
                .len();
            let lane_closed = target.lane.close_if_idle(idle_ms);
            if removed > 0 || lane_closed {
                tracing::debug!(database = %target.name, pooled = removed, shared = lane_closed, "redis-db: closed idle connections");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call boxes its future once (`ConnectionLike` returns a boxed future). Above about
    /// 1 KB glibc serves it from its slow path instead of the thread cache, which cost a quarter
    /// of the throughput at 256 tasks (docs/PERFORMANCE.md): cold paths stay boxed.
    #[test]
    fn a_calls_boxed_future_stays_small() {
        let yaml = "redis_databases:\n  main:\n    db: 0\n";
        let config = redis_db_config::parse_str(yaml, "size.yaml").unwrap();
        let mut handle = crate::Handle::new(Arc::new(Inner::new(config).unwrap()), 0);
        let cmd = redis::cmd("GET");
        let future = redis::aio::ConnectionLike::req_packed_command(&mut handle, &cmd);
        let size = std::mem::size_of_val(&*future);
        assert!(size <= 1024, "a call's future grew to {size} bytes");
    }
}
