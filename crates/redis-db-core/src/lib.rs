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
mod connection;
mod connector;
mod core;
mod counters;
mod database;
mod deadline;
mod error;
mod failover;
mod handle;
mod health;
mod idle;
mod keyspace;
mod lane;
#[cfg(test)]
mod layering;
mod lock;
mod metrics;
mod multiplex;
mod pool;
mod readiness;
mod resp;
mod retry;
mod role;
mod shard;
mod slot_map;
mod spans;
mod stats;
mod subscriber;
mod target;
mod tls;
mod topology_refresh;
mod transaction;
mod wire;

pub use crate::breaker::CircuitState;
pub use crate::builder::{Builder, DatabaseEnum};
pub use crate::connection::Connection;
pub use crate::core::Core;
pub use crate::counters::{LatencyStats, PubSubStats};
pub use crate::error::Error;
pub use crate::handle::Handle;
pub use crate::health::{DatabaseHealth, HealthReport, HealthState};
pub use crate::keyspace::{KeyspaceEvent, KeyspaceEvents};
pub use crate::stats::{DatabaseStats, PoolStats, Stats, Totals};
pub use crate::subscriber::{Message, Subscriber};
pub use crate::transaction::MAX_TRANSACTION_RUNS;
