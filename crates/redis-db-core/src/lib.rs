#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
mod breaker;
mod builder;
mod coalesce;
mod command;
#[doc(hidden)]
pub mod command_table;
mod connector;
mod core;
mod error;
mod failover;
mod handle;
mod health;
mod keyspace;
mod lane;
mod metrics;
mod pool;
mod readiness;
mod retry;
mod shard;
mod spans;
mod stats;
mod subscriber;
mod tls;
mod transaction;

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
