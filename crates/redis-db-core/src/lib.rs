#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
mod breaker;
mod builder;
mod coalesce;
mod command;
mod connector;
mod core;
mod error;
mod failover;
mod handle;
mod health;
mod lane;
mod pool;
mod readiness;
mod retry;
mod stats;

pub use crate::builder::{Builder, DatabaseEnum};
pub use crate::core::Core;
pub use crate::error::Error;
pub use crate::handle::{Connection, Handle};
pub use crate::health::{DatabaseHealth, HealthReport, HealthState};
pub use crate::stats::{CircuitState, DatabaseStats, LatencyStats, PoolStats, Stats, Totals};
