//! The one error type of the SDK.

use std::time::Duration;

use redis_db_config::ConfigErrors;

/// Everything that can go wrong. `Display` names the database concerned and the reason.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (compiled YAML, runtime file or environment) is invalid.
    #[error("invalid redis-db configuration:\n{0}")]
    Config(#[from] ConfigErrors),

    /// The circuit breaker of the database is open: calls fail at once.
    #[error("database `{database}` (db {db}): circuit open after {failures} consecutive connection failures; next probe allowed in {retry_in:?}")]
    CircuitOpen {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// Consecutive failures that opened it.
        failures: u32,
        /// Time until a half-open probe is let through.
        retry_in: Duration,
    },

    /// The server still answered `LOADING` when `readiness.max_wait` ran out.
    #[error("database `{database}` (db {db}) at {address}: server still loading its dataset after waiting {waited:?} (readiness.max_wait)")]
    StillLoading {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// Server address, without credentials.
        address: String,
        /// How long we waited.
        waited: Duration,
    },

    /// No pooled connection became free within the timeout.
    #[error("database `{database}` (db {db}) at {address}: connection pool exhausted ({max_size} connections in use) after waiting {waited:?}")]
    PoolExhausted {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// Server address, without credentials.
        address: String,
        /// Pool size.
        max_size: usize,
        /// How long we waited.
        waited: Duration,
    },

    /// The server rejected the credentials.
    #[error("database `{database}` (db {db}) at {address}: authentication failed ({detail}); check username/password, REDIS_USERNAME/REDIS_PASSWORD or the URL")]
    Authentication {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// Server address, without credentials.
        address: String,
        /// The server's reason (never the password).
        detail: String,
    },

    /// A cluster endpoint answers, but does not serve every hash slot (`cluster_state:fail`).
    #[error("database `{database}` (db {db}) at {address}: the cluster does not serve every hash slot ({detail}); fix its slot coverage (`redis-cli --cluster check`)")]
    ClusterNotReady {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// The endpoint, without credentials.
        address: String,
        /// What the cluster reported.
        detail: String,
    },

    /// The server rejected the database number (`SELECT` out of range).
    #[error("database `{database}`: db {db} is out of range for the server at {address} ({detail}); raise `databases` in redis.conf or change `db`/`max_databases` in the YAML")]
    DatabaseOutOfRange {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// Server address, without credentials.
        address: String,
        /// The server's reason.
        detail: String,
    },

    /// The server could not be reached, or the connection failed, after every allowed retry.
    #[error("database `{database}` (db {db}) at {address}: unreachable after {attempts} attempt(s): {source}")]
    Unreachable {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// Server address, without credentials.
        address: String,
        /// Attempts made.
        attempts: u32,
        /// The last connection-level error.
        source: redis::RedisError,
    },

    /// No reply arrived within the command timeout (and a retry was not allowed or did not help).
    #[error("database `{database}` (db {db}) at {address}: no reply within {timeout:?} after {attempts} attempt(s){resend}")]
    Timeout {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// Server address, without credentials.
        address: String,
        /// The timeout of one attempt.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
        /// Why the call was not re-sent, if it was a write.
        resend: &'static str,
    },

    /// The server answered the command with an error (`WRONGTYPE`, syntax, ...). Never retried.
    #[error("database `{database}` (db {db}): {source}")]
    Command {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// The server's error, unchanged.
        source: redis::RedisError,
    },

    /// The command cannot run on a shared connection (`SELECT`, `WATCH`, `SUBSCRIBE`, ...).
    #[error("database `{database}` (db {db}): `{command}` changes connection state and cannot run on a shared handle; use `handle.connection().await?` for an exclusive connection")]
    NeedsExclusiveConnection {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// The command name.
        command: String,
    },

    /// The blocking client was used inside an async runtime, or its runtime could not start.
    #[error("blocking client: {0}")]
    Blocking(String),
}

impl Error {
    /// The database this error concerns, when it concerns one.
    pub fn database(&self) -> Option<&str> {
        match self {
            Error::CircuitOpen { database, .. }
            | Error::StillLoading { database, .. }
            | Error::PoolExhausted { database, .. }
            | Error::Authentication { database, .. }
            | Error::DatabaseOutOfRange { database, .. }
            | Error::ClusterNotReady { database, .. }
            | Error::Unreachable { database, .. }
            | Error::Timeout { database, .. }
            | Error::Command { database, .. }
            | Error::NeedsExclusiveConnection { database, .. } => Some(database),
            Error::Config(_) | Error::Blocking(_) => None,
        }
    }

    /// Turns the error into a `redis::RedisError` for the `ConnectionLike` path: a server's
    /// command error travels unchanged (its kind and code stay matchable); every other error keeps
    /// this error's full text as the detail.
    pub fn into_redis_error(self) -> redis::RedisError {
        self.to_redis_error()
    }

    /// [`Error::into_redis_error`] without consuming the error.
    pub fn to_redis_error(&self) -> redis::RedisError {
        use redis::ErrorKind;
        let kind = match self {
            Error::Command { source, .. } => return source.clone(),
            Error::Authentication { .. } => ErrorKind::AuthenticationFailed,
            Error::Config(_) | Error::DatabaseOutOfRange { .. } => ErrorKind::InvalidClientConfig,
            Error::NeedsExclusiveConnection { .. } | Error::Blocking(_) => ErrorKind::Client,
            Error::CircuitOpen { .. }
            | Error::StillLoading { .. }
            | Error::PoolExhausted { .. }
            | Error::ClusterNotReady { .. }
            | Error::Unreachable { .. }
            | Error::Timeout { .. } => ErrorKind::Io,
        };
        redis::RedisError::from((kind, "redis-db", self.to_string()))
    }
}
