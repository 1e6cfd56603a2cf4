//! What every clone of a client shares: the resolved configuration, the logical databases in
//! file order (a name, which an alias shares with its target's number) and the targets they run
//! on, and the background tasks.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_db_config::{Config, ConfigError};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::lock::lock;
use crate::target::Target;

/// One logical database (a YAML name), in file order. Not a hash slot: cluster code says
/// "slot" for those.
pub(crate) struct Database {
    name: String,
    db: u32,
    alias_of: Option<String>,
    /// Index into `Inner::targets`.
    target: usize,
    timeout: Duration,
}

impl Database {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn db(&self) -> u32 {
        self.db
    }

    pub fn alias_of(&self) -> Option<&str> {
        self.alias_of.as_deref()
    }

    pub fn target(&self) -> usize {
        self.target
    }

    /// One attempt's response timeout (blocking commands get their block time added).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Name, number and timeout, as `Target::guarded` takes them.
    pub fn key(&self) -> (&str, u32, Duration) {
        (&self.name, self.db, self.timeout)
    }
}

pub(crate) struct Inner {
    // `config` and `targets` are read as fields by `topology_refresh.rs`; everything else goes
    // through the accessors.
    config: Config,
    databases: Vec<Database>,
    targets: Vec<Target>,
    started: Instant,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    /// One target per distinct (endpoint, db); aliases point at their owner's.
    pub fn new(config: Config) -> Result<Inner, Error> {
        let mut targets: Vec<Target> = Vec::new();
        let mut databases = Vec::with_capacity(config.databases.len());
        for database in &config.databases {
            let owner = database.target(&config.databases);
            let target = match targets
                .iter()
                .position(|t| t.db() == owner.db && t.endpoint() == owner.endpoint.as_deref())
            {
                Some(index) => index,
                None => {
                    targets.push(Target::new(&config, owner)?);
                    targets.len() - 1
                }
            };
            databases.push(Database {
                name: database.name.clone(),
                db: database.db,
                alias_of: database.alias_of.clone(),
                target,
                timeout: database.timeout.unwrap_or(config.timeout),
            });
        }
        Ok(Inner {
            config,
            databases,
            targets,
            started: Instant::now(),
            tasks: Mutex::new(Vec::new()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The databases in file order.
    pub fn databases(&self) -> &[Database] {
        &self.databases
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The database at `position` in file order and its target; `None` past the end.
    #[inline]
    pub fn database(&self, position: usize) -> Option<(&Database, &Target)> {
        let database = self.databases.get(position)?;
        Some((database, &self.targets[database.target]))
    }

    /// The first database on target `index` (the owner of its number).
    pub fn first_on(&self, index: usize) -> Option<(usize, &Database)> {
        self.databases
            .iter()
            .enumerate()
            .find(|(_, d)| d.target == index)
    }

    /// The error of a handle made for a position past the last database.
    #[cold]
    pub fn no_database(&self, position: usize) -> Error {
        let names: Vec<&str> = self.databases().iter().map(Database::name).collect();
        Error::Config(
            ConfigError::new(
                "client",
                format!(
                    "no database at position {position}: the client has {} ({})",
                    names.len(),
                    names.join(", ")
                ),
            )
            .into(),
        )
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn set_tasks(&self, tasks: Vec<JoinHandle<()>>) {
        *lock(&self.tasks) = tasks;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Background tasks hold only a Weak; stop them now rather than at their next tick.
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}
