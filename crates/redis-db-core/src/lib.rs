#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
mod breaker;
mod builder;
mod call;
mod cluster;
mod coalesce;
mod command;
#[doc(hidden)]
pub mod command_table;
mod connector;
mod core;
mod database;
mod error;
mod failover;
mod handle;
mod health;
mod idle;
mod keyspace;
mod lane;
mod lock;
mod metrics;
mod pool;
mod readiness;
mod retry;
mod role;
mod shard;
mod spans;
mod stats;
mod subscriber;
mod target;
mod tls;
mod topology_refresh;
mod transaction;
mod wire;

pub use crate::builder::{Builder, DatabaseEnum};
pub use crate::core::Core;
pub use crate::error::Error;
pub use crate::handle::{Connection, Handle};
pub use crate::health::{DatabaseHealth, HealthReport, HealthState};
pub use crate::keyspace::{KeyspaceEvent, KeyspaceEvents};
pub use crate::stats::{
    CircuitState, DatabaseStats, LatencyStats, PoolStats, PubSubStats, Stats, Totals,
};
pub use crate::subscriber::{Message, Subscriber};
pub use crate::transaction::MAX_TRANSACTION_RUNS;
