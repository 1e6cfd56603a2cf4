//! The composition: `Core`, what a generated client holds, connects the databases
//! (`database.rs`) and starts their background tasks; `Inner::run` is the one road every call
//! travels: exclusive-state check, breaker, a first attempt on the shared lane (`target.rs`),
//! the policy loop after a failure (`call.rs`), then the figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_db_config::{Config, LogLevel};

use crate::breaker::log_transition;
use crate::call::{self, Failure};
use crate::command::CommandTraits;
use crate::database::{Database, Inner};
use crate::error::Error;
use crate::handle::Handle;
use crate::health::{self, HealthReport, LastReport};
use crate::stats::Stats;
use crate::target::{send_shared, Target};
use crate::wire::{Reply, Request};

/// The connected runtime shared by every clone of a generated client. Cheap to clone.
#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
    /// Written by the background health monitor only.
    last_health: Arc<LastReport>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field(
                "endpoints",
                &self
                    .inner
                    .targets()
                    .iter()
                    .map(Target::address)
                    .collect::<Vec<_>>(),
            )
            .field(
                "databases",
                &self
                    .inner
                    .databases()
                    .iter()
                    .map(|d| (d.name(), d.db()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Core {
    /// Builds the pools and waits until every database answers (waiting out `LOADING`).
    pub async fn connect(config: Config) -> Result<Core, Error> {
        let inner = Arc::new(Inner::new(config)?);
        for (index, target) in inner.targets().iter().enumerate() {
            let Some((position, database)) = inner.first_on(index) else {
                continue;
            };
            let ping = Request::Command(&redis::cmd("PING"));
            match inner.run(position, ping, false).await {
                // A NOPERM answer is an answer: the server is up (ACLs are checked before
                // LOADING, so readiness is then learnt from the calls' own commands).
                Err(e) if crate::readiness::refused_at_connect(&e) => {
                    target.readiness().note_ping_refused()
                }
                other => {
                    other?;
                }
            }
            if target.is_cluster() {
                let info = crate::cluster::info_command();
                let reply = inner.run(position, Request::Command(&info), false).await?;
                crate::cluster::check_coverage(
                    database.name(),
                    database.db(),
                    target.address(),
                    reply,
                )?;
            }
        }
        let last_health = Arc::new(LastReport::default());
        start_background_tasks(&inner, &last_health);
        tracing::info!(
            databases = inner.databases().len(),
            pools = inner.targets().len(),
            "redis-db: connected"
        );
        Ok(Core { inner, last_health })
    }

    /// The handle of the database at `position` in file order (the generated enum's
    /// discriminant). An out-of-range position (impossible through the generated API) gives a
    /// handle whose every call fails with an error naming the position, never another database.
    pub fn handle(&self, position: usize) -> Handle {
        Handle::new(self.inner.clone(), position)
    }

    /// The handle of a database by its YAML name.
    pub fn handle_by_name(&self, name: &str) -> Option<Handle> {
        let position = self
            .inner
            .databases()
            .iter()
            .position(|d| d.name() == name)?;
        Some(Handle::new(self.inner.clone(), position))
    }

    /// A snapshot of every database's figures.
    pub fn stats(&self) -> Stats {
        crate::stats::snapshot(&self.inner, self.last_health.get().as_ref())
    }

    /// Pings every database now.
    pub async fn health(&self) -> HealthReport {
        health::check(&self.inner).await
    }

    /// The resolved configuration this core runs on.
    pub fn config(&self) -> &Config {
        self.inner.config()
    }
}

/// The health monitor, the idle reaper, the metrics sampler, the cluster topology watchers and
/// the sentinel followers; each holds only a `Weak`, and `Inner`'s drop aborts them.
fn start_background_tasks(inner: &Arc<Inner>, last_health: &Arc<LastReport>) {
    let mut tasks = Vec::new();
    if let Some(interval) = inner.config().health_check_interval {
        tasks.push(tokio::spawn(health::monitor(
            Arc::downgrade(inner),
            interval,
            last_health.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::idle::reap(
        Arc::downgrade(inner),
        inner.config().idle_timeout,
    )));
    tasks.extend(crate::stats::metrics_sampler(inner));
    tasks.extend(crate::topology_refresh::start(inner));
    tasks.extend(crate::failover::start(inner));
    inner.set_tasks(tasks);
}

impl Inner {
    /// The one road of every call: exclusive-state check, breaker, readiness, attempts, record.
    pub async fn run(
        &self,
        position: usize,
        request: Request<'_>,
        record: bool,
    ) -> Result<Reply, Error> {
        let Some((database, target)) = self.database(position) else {
            return Err(self.no_database(position));
        };
        let traits = request.traits();
        let started = Instant::now();
        let span = crate::spans::start(record, database, target, &request);
        let result = if traits.needs_exclusive {
            Err(Error::NeedsExclusiveConnection {
                database: database.name().to_owned(),
                db: database.db(),
                command: request.name(),
            })
        } else {
            self.call(database, target, &request, &traits, started)
                .await
        };
        if record {
            let elapsed = started.elapsed();
            let error = result.as_ref().err().map(ToString::to_string);
            target.counters().record_call(elapsed, error.as_deref());
            target.counters().metrics.call(&request, elapsed, &result);
            crate::spans::finish(span, &result);
            if self.config().log_commands {
                log_command(
                    self.config().log_level,
                    database.name(),
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
        database: &Database,
        target: &Target,
        request: &Request<'_>,
        traits: &CommandTraits,
        started: Instant,
    ) -> Result<Reply, Error> {
        let timeout = traits.deadline(database.timeout());
        let permit = call::admit(target.breaker(), database.name(), database.db())?;
        let mut first = None;
        if traits.blocks_for.is_none() && !target.readiness().is_loading() {
            let lane = target.lane_for(traits);
            if let Some(live) = lane.live() {
                match send_shared(lane, live, request, timeout, started).await {
                    Ok(reply) => {
                        log_transition(database.name(), permit.succeeded());
                        return Ok(reply);
                    }
                    Err(failure) => first = Some(failure),
                }
            }
        }
        Box::pin(self.retry_call(database, target, request, traits, timeout, permit, first)).await
    }

    /// The policy loop of a call whose first attempt failed or could not be made on the fast
    /// path.
    #[allow(clippy::too_many_arguments)]
    async fn retry_call(
        &self,
        database: &Database,
        target: &Target,
        request: &Request<'_>,
        traits: &CommandTraits,
        timeout: Option<Duration>,
        permit: crate::breaker::Permit<'_>,
        first: Option<Failure>,
    ) -> Result<Reply, Error> {
        let policies = target.policies(
            database.name(),
            database.db(),
            database.timeout(),
            self.config(),
        );
        let probe = || target.lane().ping();
        let attempt = || target.attempt(request, traits, timeout);
        call::policy_loop(
            &policies,
            traits.read_only,
            timeout,
            permit,
            first,
            probe,
            attempt,
        )
        .await
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

    /// A position no database has (impossible through the generated API) is an error naming
    /// it, never a silent call on database 0. No server: the call fails before connecting.
    #[tokio::test]
    async fn a_handle_at_a_position_without_database_fails_naming_it() {
        let yaml = "redis_databases:\n  main:\n    db: 0\n  jobs:\n    db: 3\n";
        let config = redis_db_config::parse_str(yaml, "positions.yaml").unwrap();
        let core = Core {
            inner: Arc::new(Inner::new(config).unwrap()),
            last_health: Arc::default(),
        };
        let error = core
            .handle(7)
            .query::<Option<String>>(redis::cmd("GET").arg("k"))
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("no database at position 7"), "{text}");
        assert!(text.contains("main, jobs"), "{text}");
    }
}
