//! The one error type of the SDK.

use std::fmt;
use std::time::Duration;

use redis_db_config::ConfigErrors;

/// Everything that can go wrong. `Display` names the database concerned and the reason;
/// `Debug` reads the same, followed by the causes the message does not already show.
#[non_exhaustive]
#[derive(thiserror::Error)]
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

    /// The TLS handshake failed over a certificate: the server's is not signed by the CA in
    /// `tls.ca_file` (or does not name the host), or the server refused the client's (or its
    /// absence). Never retried: it fails the same way every time.
    #[error("database `{database}` (db {db}) at {address}: TLS handshake refused: {detail} (not retried: it fails the same way every time)")]
    Tls {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// The endpoint, without credentials.
        address: String,
        /// rustls's reason, then what to check (`tls.ca_file`, `tls.cert_file`, ...).
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

    /// The server rejected the database number (`SELECT` out of range, or refused in cluster
    /// mode). The hint names the setting to change: `databases` (standalone), `cluster-databases`
    /// (a cluster with numbered databases) or `numbered_databases` (a cluster without them).
    #[error("database `{database}`: db {db} {}", out_of_range(address, detail))]
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

    /// The server could not be reached, or the connection failed, after every allowed retry;
    /// with `attempts: 0`, the connection could not even be set up (e.g. a TLS file is missing).
    #[error("database `{database}` (db {db}) at {address}: {}: {source}", unreachable(*attempts))]
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
    #[error("database `{database}` (db {db}) at {address}: no reply within {timeout:?} after {attempts} attempt(s){}", not_resent_note(*.may_resend))]
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
        /// Whether the call could be re-sent: false for a write, which is never re-sent once
        /// it may have reached the server (the text then says so).
        may_resend: bool,
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
    /// In a pipeline, `command` is the first such command, and none of the pipeline's commands
    /// was sent.
    #[error("database `{database}` (db {db}): `{command}` changes connection state and cannot run on a shared handle, so nothing was sent (in a pipeline, none of its commands); use `handle.connection().await?` for an exclusive connection")]
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

    /// An optimistic transaction ([`crate::Handle::transaction`]) did not complete: a watched key
    /// kept changing through every allowed run, the connection failed or timed out (after which
    /// the transaction is never re-run: its `EXEC` may have been applied), or the user may not
    /// run `WATCH`/`MULTI`/`EXEC`.
    #[error("database `{database}` (db {db}): transaction watching {keys}: {reason}")]
    Transaction {
        /// The database.
        database: String,
        /// Its Redis number.
        db: u32,
        /// The watched keys, as written in the call (e.g. `["counter"]`).
        keys: String,
        /// What happened, and whether the transaction may have been applied.
        reason: String,
        /// The underlying error, when there is one.
        source: Option<redis::RedisError>,
    },
}

/// The server's reply to `SELECT` on a cluster node without numbered databases (Redis 7).
pub(crate) const SELECT_IN_CLUSTER_MODE: &str = "SELECT is not allowed in cluster mode";

/// How `connector::describe` names a cluster endpoint: `cluster host:port,...`.
fn is_cluster_address(address: &str) -> bool {
    address.starts_with("cluster ")
}

/// The rest of a `DatabaseOutOfRange` message, after "db N ".
fn out_of_range(address: &str, detail: &str) -> String {
    match (is_cluster_address(address), detail.contains(SELECT_IN_CLUSTER_MODE)) {
        (true, true) => format!(
            "is refused by the {address} ({detail}): its servers have only db 0 in cluster mode, so `numbered_databases: true` cannot work there; set `numbered_databases: false` and give each logical database `db: 0` on a cluster endpoint of its own, or use servers that serve numbered databases in cluster mode (Valkey 9+ with `cluster-databases`)"
        ),
        (true, false) => format!(
            "is out of range for the {address} ({detail}); raise `cluster-databases` on every node (Valkey 9+: `cluster-databases 16`; the default 1 serves db 0 only) or change `db`/`max_databases` in the YAML"
        ),
        (false, true) => format!(
            "is refused by the server at {address} ({detail}): it is a cluster node, which has only db 0; describe the endpoint as `cluster: {{ nodes: [...] }}` and use `db: 0`"
        ),
        (false, false) => format!(
            "is out of range for the server at {address} ({detail}); raise `databases` in redis.conf or change `db`/`max_databases` in the YAML"
        ),
    }
}

/// The end of a `Timeout`'s text: why a write was not tried again.
fn not_resent_note(may_resend: bool) -> &'static str {
    if may_resend {
        ""
    } else {
        " (a write is never re-sent once it may have reached the server)"
    }
}

/// "unreachable after N attempt(s)", or for 0 attempts why none was made.
fn unreachable(attempts: u32) -> String {
    if attempts == 0 {
        "the connection could not be set up".to_owned()
    } else {
        format!("unreachable after {attempts} attempt(s)")
    }
}

impl Error {
    /// The database this error concerns, when it concerns one.
    pub fn database(&self) -> Option<&str> {
        match self {
            Error::CircuitOpen { database, .. }
            | Error::StillLoading { database, .. }
            | Error::PoolExhausted { database, .. }
            | Error::Authentication { database, .. }
            | Error::Tls { database, .. }
            | Error::DatabaseOutOfRange { database, .. }
            | Error::ClusterNotReady { database, .. }
            | Error::Unreachable { database, .. }
            | Error::Timeout { database, .. }
            | Error::Command { database, .. }
            | Error::NeedsExclusiveConnection { database, .. }
            | Error::Transaction { database, .. } => Some(database),
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
            Error::Config(_) | Error::DatabaseOutOfRange { .. } | Error::Tls { .. } => {
                ErrorKind::InvalidClientConfig
            }
            Error::NeedsExclusiveConnection { .. } | Error::Blocking(_) => ErrorKind::Client,
            Error::Transaction {
                source: Some(source),
                ..
            } if source.is_io_error() => ErrorKind::Io,
            Error::Transaction { .. } => ErrorKind::Client,
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

/// `fn main() -> Result<(), Box<dyn Error>>` and `unwrap()` print `Debug`: as `anyhow` does,
/// it is the message, then under `Caused by:` each error of the `source()` chain whose text the
/// message does not already hold (most variants write their source into their message). No
/// field is dumped, so nothing reaches it that `Display` does not show.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.to_string();
        f.write_str(&message)?;
        let mut causes: Vec<String> = Vec::new();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            let text = cause.to_string();
            if !message.contains(&text) && !causes.iter().any(|c| c.contains(&text)) {
                causes.push(text);
            }
            next = cause.source();
        }
        if !causes.is_empty() {
            f.write_str("\n\nCaused by:")?;
        }
        let numbered = causes.len() > 1;
        for (i, cause) in causes.iter().enumerate() {
            let prefix = if numbered {
                format!("    {i}: ")
            } else {
                "    ".to_owned()
            };
            let indent = format!("\n{}", " ".repeat(prefix.len()));
            write!(f, "\n{prefix}{}", cause.replace('\n', &indent))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_db_config::{Cluster, ConnectionSettings, ReadFrom, TlsOptions, Topology};

    #[test]
    fn a_timeout_says_when_a_write_was_not_re_sent() {
        let timeout = |may_resend| Error::Timeout {
            database: "main".into(),
            db: 0,
            address: "redis://127.0.0.1:6379".into(),
            timeout: Duration::from_secs(1),
            attempts: 1,
            may_resend,
        };
        assert_eq!(
            timeout(false).to_string(),
            "database `main` (db 0) at redis://127.0.0.1:6379: no reply within 1s after 1 \
             attempt(s) (a write is never re-sent once it may have reached the server)"
        );
        assert_eq!(
            timeout(true).to_string(),
            "database `main` (db 0) at redis://127.0.0.1:6379: no reply within 1s after 1 attempt(s)"
        );
    }

    fn out_of_range_error(address: String, detail: &str) -> String {
        Error::DatabaseOutOfRange {
            database: "orders".to_owned(),
            db: 5,
            address,
            detail: detail.to_owned(),
        }
        .to_string()
    }

    fn cluster_address() -> String {
        let connection = ConnectionSettings {
            host: "localhost".to_owned(),
            port: 6379,
            username: None,
            password: None,
            tls: false,
            tls_options: TlsOptions::default(),
        };
        let topology = Topology::Cluster(Cluster {
            nodes: vec!["127.0.0.1:7000".parse().unwrap()],
            read_from: ReadFrom::Master,
            numbered_databases: true,
        });
        topology.display_endpoint(&connection)
    }

    #[test]
    fn out_of_range_hints_name_the_setting_of_the_topology() {
        let standalone = out_of_range_error(
            "redis://127.0.0.1:6379".to_owned(),
            "ERR DB index is out of range",
        );
        assert!(
            standalone.contains("raise `databases` in redis.conf"),
            "{standalone}"
        );
        assert!(!standalone.contains("cluster-databases"), "{standalone}");

        // A Valkey cluster without `cluster-databases`.
        let valkey = out_of_range_error(cluster_address(), "ERR DB index is out of range");
        assert!(
            valkey.starts_with(
                "database `orders`: db 5 is out of range for the cluster 127.0.0.1:7000"
            ),
            "{valkey}"
        );
        assert!(
            valkey.contains("raise `cluster-databases` on every node"),
            "{valkey}"
        );
        assert!(!valkey.contains("redis.conf"), "{valkey}");

        // A Redis 7 cluster with `numbered_databases: true`.
        let redis7 = out_of_range_error(
            cluster_address(),
            "ERR SELECT is not allowed in cluster mode",
        );
        assert!(
            redis7.contains("set `numbered_databases: false`"),
            "{redis7}"
        );
        assert!(
            redis7.contains("SELECT is not allowed in cluster mode"),
            "{redis7}"
        );

        // A cluster node described as a standalone server.
        let node = out_of_range_error(
            "redis://127.0.0.1:7000".to_owned(),
            "ERR SELECT is not allowed in cluster mode",
        );
        assert!(
            node.contains("describe the endpoint as `cluster:"),
            "{node}"
        );
    }

    #[test]
    fn zero_attempts_reads_as_a_setup_failure() {
        let error = Error::Unreachable {
            database: "main".to_owned(),
            db: 0,
            address: "rediss://127.0.0.1:6380".to_owned(),
            attempts: 0,
            source: redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "cannot read a TLS file",
            )),
        };
        let text = error.to_string();
        assert!(
            text.contains("the connection could not be set up: cannot read a TLS file"),
            "{text}"
        );
    }

    #[test]
    fn debug_reads_like_display_and_shows_no_secret() {
        const SECRET: &str = "s3cret-never-in-debug";
        let config =
            redis_db_config::parse_str("redis_databases:\n  main:\n    db: 0\n", "app.yaml")
                .unwrap();
        let errors = config
            .overlay_env(|name| match name {
                "REDIS_URL" => Some(format!("redis://:{SECRET}@cache:not-a-port")),
                "REDIS_PORT" => Some("70000".to_owned()),
                "REDIS_PASSWORD" => Some(SECRET.to_owned()),
                _ => None,
            })
            .unwrap_err();
        let error = Error::from(errors);
        let debug = format!("{error:?}");
        assert!(debug.starts_with(&error.to_string()), "{debug}");
        assert!(
            debug.contains("REDIS_URL is not a usable Redis URL"),
            "{debug}"
        );
        assert!(debug.contains("REDIS_PORT must be a TCP port"), "{debug}");
        for dump in ["Config(", "ConfigError", "location:", "Some("] {
            assert!(!debug.contains(dump), "`{dump}` in {debug}");
        }
        assert!(!debug.contains(SECRET), "{debug}");
        // The cause is already in the message: not repeated.
        assert!(!debug.contains("Caused by"), "{debug}");
    }

    #[test]
    fn debug_adds_the_causes_the_message_does_not_show() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer reset");
        let error = Error::Transaction {
            database: "orders".to_owned(),
            db: 3,
            keys: "[\"stock\"]".to_owned(),
            reason: "the connection failed; EXEC may have been applied".to_owned(),
            source: Some(redis::RedisError::from(reset)),
        };
        let debug = format!("{error:?}");
        assert_eq!(
            debug.split("\n\nCaused by:\n    ").collect::<Vec<_>>(),
            [error.to_string().as_str(), "peer reset"],
            "{debug}"
        );

        // A message that writes its source in: no `Caused by`, and no field dump.
        let error = Error::Command {
            database: "orders".to_owned(),
            db: 3,
            source: redis::RedisError::from((
                redis::ErrorKind::Client,
                "WRONGTYPE",
                "list".to_owned(),
            )),
        };
        let debug = format!("{error:?}");
        assert_eq!(debug, error.to_string());
        assert!(!debug.contains("Command {"), "{debug}");
    }
}
