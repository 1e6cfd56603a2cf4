#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use redis_db_core::MAX_TRANSACTION_RUNS;
pub use redis_db_core::{
    blocking, Builder, CircuitState, Connection, DatabaseHealth, DatabaseStats, Error, Handle,
    HealthReport, HealthState, Stats,
};
pub use redis_db_core::{KeyspaceEvent, KeyspaceEvents, Message, PubSubStats, Subscriber};
pub use redis_db_core::{LatencyStats, PoolStats, Totals};
/// Generates the database enum and its clients from a `redis-databases.yaml` at compile time.
///
/// ```ignore
/// #[redis_db::databases(config = "config/redis-databases.yaml")]
/// pub enum RedisDatabase {}
/// ```
pub use redis_db_macros::databases;

/// The configuration model, parser and validation rules (`redis-db-config`).
pub use redis_db_config as config;

/// The `redis` crate this SDK is built on: `use redis_db::redis::AsyncCommands;`.
pub use redis;

/// Paths the generated code refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use redis_db_core::blocking::BlockingCore;
    pub use redis_db_core::{Core, DatabaseEnum};
}
