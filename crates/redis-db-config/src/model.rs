//! The resolved, validated configuration: what the macro generates from and the runtime runs on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A validated `redis-databases.yaml`, with every default filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The logical databases, in file order (the order of the generated enum's variants).
    pub databases: Vec<Database>,
    /// The default endpoint's address and credentials (for `sentinel`/`cluster`, the
    /// credentials of the data nodes; host/port are then unused).
    pub connection: ConnectionSettings,
    /// The default endpoint's topology: standalone (`host`/`port`/`url`), `sentinel` or `cluster`.
    pub topology: Topology,
    /// Further named endpoints (`endpoints:`), in file order; databases pick one with `endpoint:`.
    pub endpoints: Vec<NamedEndpoint>,
    /// `cluster.topology_refresh` of the default endpoint: how often the client re-reads a
    /// Cluster's slot map (unused by other topologies). Kept beside [`Cluster`] rather than in
    /// it so that code building a `Cluster` by its fields keeps compiling.
    pub topology_refresh: Duration,
    /// Command (response) timeout.
    pub timeout: Duration,
    /// Timeout for establishing a connection.
    pub connect_timeout: Duration,
    /// Pool size per database (overridable per database).
    pub max_connections: usize,
    /// Retry policy for connection-level failures.
    pub retry: Retry,
    /// Interval of the background health monitor; `None` disables it (`health_check_interval: 0`).
    pub health_check_interval: Option<Duration>,
    /// Emit one tracing event per command.
    pub log_commands: bool,
    /// Level of the per-command events.
    pub log_level: LogLevel,
    /// The server's `databases` setting: every `db` must lie in `0..max_databases`.
    pub max_databases: u32,
    /// Pooled connections idle longer than this are closed in the background.
    pub idle_timeout: Duration,
    /// How long to wait out a server that answers `LOADING`.
    pub readiness: Readiness,
    /// Circuit breaker settings, one breaker per database (aliases share).
    pub circuit_breaker: CircuitBreaker,
    /// TCP keepalive applied to every connection.
    pub keepalive: Keepalive,
}

/// One logical database of `redis_databases`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database {
    /// The YAML name (snake_case).
    pub name: String,
    /// The Redis database number.
    pub db: u32,
    /// Free text; empty when the YAML has none.
    pub description: String,
    /// The database whose number (and pool, breaker, figures) this one shares.
    pub alias_of: Option<String>,
    /// Per-database pool size; `None` uses the top-level `max_connections`.
    pub max_connections: Option<usize>,
    /// Per-database command timeout (`timeout_seconds`); `None` uses the top-level `timeout`.
    pub timeout: Option<Duration>,
    /// The named endpoint this database lives on; `None` = the default endpoint.
    pub endpoint: Option<String>,
}

impl Database {
    /// Position in file order of the database whose pool this one uses (itself unless an alias).
    pub fn target<'a>(&'a self, all: &'a [Database]) -> &'a Database {
        match &self.alias_of {
            Some(target) => all.iter().find(|d| &d.name == target).unwrap_or(self),
            None => self,
        }
    }
}

/// How an endpoint is deployed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Topology {
    /// One server at `ConnectionSettings::host`/`port`.
    #[default]
    Standalone,
    /// The master (or replicas) that these sentinels name.
    Sentinel(Sentinel),
    /// A Redis Cluster reached through these seed nodes.
    Cluster(Cluster),
}

impl Topology {
    /// How messages name the endpoint of these settings, without credentials: the server's
    /// `redis://host:port` when standalone, else the sentinels or cluster seed nodes.
    pub fn display_endpoint(&self, connection: &ConnectionSettings) -> String {
        let list = |nodes: &[NodeAddress]| {
            nodes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Topology::Standalone => connection.display_address(),
            Topology::Sentinel(s) => {
                format!("sentinel master `{}` via {}", s.master_name, list(&s.nodes))
            }
            Topology::Cluster(c) => format!("cluster {}", list(&c.nodes)),
        }
    }

    /// `standalone`, `sentinel` or `cluster`: the YAML key that selects this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Topology::Standalone => "standalone",
            Topology::Sentinel(_) => "sentinel",
            Topology::Cluster(_) => "cluster",
        }
    }

    /// The kind in words, for messages: "a standalone server", "a Sentinel-managed master",
    /// "a Redis Cluster".
    pub fn describe(&self) -> &'static str {
        match self {
            Topology::Standalone => "a standalone server",
            Topology::Sentinel(_) => "a Sentinel-managed master",
            Topology::Cluster(_) => "a Redis Cluster",
        }
    }
}

/// `sentinel:` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sentinel {
    /// The monitored master's name.
    pub master_name: String,
    /// Sentinel addresses (`host:port`).
    pub nodes: Vec<NodeAddress>,
    /// ACL user of the sentinels themselves.
    pub username: Option<String>,
    /// Password of the sentinels themselves; redacted in `Debug`.
    pub password: Option<Secret>,
    /// Where read-only commands go.
    pub read_from: ReadFrom,
}

/// `cluster:` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// Seed nodes (`host:port`).
    pub nodes: Vec<NodeAddress>,
    /// Where read-only commands go.
    pub read_from: ReadFrom,
    /// The servers support numbered databases in cluster mode (Valkey 9+); otherwise every
    /// database on a cluster endpoint must be `db: 0`.
    pub numbered_databases: bool,
}

/// A `host:port` of a sentinel or cluster node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// `read_from:` of a sentinel or cluster endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// Everything goes to the master.
    #[default]
    Master,
    /// Read-only commands are served by replicas; everything else by the master.
    Replica,
}

impl ReadFrom {
    /// The YAML spelling: `master` or `replica`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFrom::Master => "master",
            ReadFrom::Replica => "replica",
        }
    }
}

impl std::str::FromStr for ReadFrom {
    type Err = String;

    /// Case-insensitive `master` or `replica`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "master" => Ok(ReadFrom::Master),
            "replica" => Ok(ReadFrom::Replica),
            _ => Err(format!(
                "unknown read_from `{s}` (expected master or replica)"
            )),
        }
    }
}

impl fmt::Display for ReadFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `endpoints:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedEndpoint {
    /// The key under `endpoints:`.
    pub name: String,
    /// Address (standalone) and data-node credentials.
    pub connection: ConnectionSettings,
    /// How it is deployed.
    pub topology: Topology,
    /// `cluster.topology_refresh` of this endpoint (see [`Config::topology_refresh`]).
    pub topology_refresh: Duration,
}

impl Config {
    /// The address/credentials and topology of the endpoint `database` lives on.
    pub fn endpoint_of(&self, database: &Database) -> (&ConnectionSettings, &Topology) {
        match database
            .endpoint
            .as_ref()
            .and_then(|name| self.endpoints.iter().find(|e| &e.name == name))
        {
            Some(endpoint) => (&endpoint.connection, &endpoint.topology),
            None => (&self.connection, &self.topology),
        }
    }

    /// `cluster.topology_refresh` of the endpoint `database` lives on.
    pub fn topology_refresh_of(&self, database: &Database) -> Duration {
        database
            .endpoint
            .as_ref()
            .and_then(|name| self.endpoint(name))
            .map_or(self.topology_refresh, |e| e.topology_refresh)
    }

    /// The named endpoint `name` (an entry of `endpoints:`).
    pub fn endpoint(&self, name: &str) -> Option<&NamedEndpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// How messages and logs name the endpoint `database` lives on: `default` or its name.
    pub fn endpoint_name_of<'a>(&self, database: &'a Database) -> &'a str {
        database.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT)
    }
}

impl Config {
    /// Makes the relative `tls` file paths of every endpoint relative to `base` (the compiled
    /// YAML's directory: the generated code calls this, so that the file the build checked is
    /// the file the client reads).
    pub fn resolve_tls_paths(&mut self, base: &Path) {
        self.connection.tls_options.resolve_relative_to(base);
        for endpoint in &mut self.endpoints {
            endpoint.connection.tls_options.resolve_relative_to(base);
        }
    }

    /// Whether any endpoint names a `tls` file by a relative path.
    pub fn has_relative_tls_paths(&self) -> bool {
        std::iter::once(&self.connection)
            .chain(self.endpoints.iter().map(|e| &e.connection))
            .any(|c| c.tls_options.files().any(|(_, p)| p.is_relative()))
    }
}

/// How messages and logs name the default endpoint (the top-level connection keys).
pub const DEFAULT_ENDPOINT: &str = "default";

/// The connection keys of an endpoint (`host`/`port`/`url`, credentials, `tls:`): its address
/// and credentials. Not to be confused with `redis_db::Connection`, an exclusive pooled
/// connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// ACL user name.
    pub username: Option<String>,
    /// Password; redacted in `Debug`.
    pub password: Option<Secret>,
    /// Connect with TLS: a `rediss://` URL or any `tls:` key turns it on.
    pub tls: bool,
    /// The `tls:` keys (private CA, client certificate, `insecure`); used only when `tls` is on.
    pub tls_options: TlsOptions,
}

/// `tls:` of an endpoint. Paths as written: relative ones are resolved against the working
/// directory when the client reads them, except those of the compiled YAML, which the
/// generated code resolves against the YAML's directory first ([`Config::resolve_tls_paths`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA (or CAs) that signed the server's certificate; replaces the
    /// built-in web roots for this endpoint.
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate (chain), for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key, for mutual TLS; needs `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Skip every check of the server's certificate (tests only: anyone in the middle can read
    /// the traffic).
    pub insecure: bool,
}

impl TlsOptions {
    /// The file keys that are set, with their YAML names: `ca_file`, `cert_file`, `key_file`.
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ]
        .into_iter()
        .filter_map(|(key, path)| path.as_deref().map(|p| (key, p)))
    }

    fn files_mut(&mut self) -> [&mut Option<PathBuf>; 3] {
        [&mut self.ca_file, &mut self.cert_file, &mut self.key_file]
    }

    /// Makes every relative file path relative to `base` instead.
    pub fn resolve_relative_to(&mut self, base: &Path) {
        for path in self.files_mut().into_iter().flatten() {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}

impl ConnectionSettings {
    /// `redis://host:port` (or `rediss://`), without credentials: safe to show in errors and logs.
    pub fn display_address(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// A password. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself: call only where it is handed to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Retry policy: `attempts` retries after the first failure, exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first failure; 0 = no retries.
    pub attempts: u32,
    /// First backoff delay.
    pub delay: Duration,
    /// Cap of the backoff delay.
    pub max_delay: Duration,
}

/// `readiness:` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// How long to wait while the server is loading.
    pub max_wait: Duration,
    /// How often to probe while waiting.
    pub poll_interval: Duration,
}

/// `circuit_breaker:` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitBreaker {
    /// Consecutive connection-level failures that open the circuit.
    pub failure_threshold: u32,
    /// Open time before one half-open probe is let through.
    pub reset_timeout: Duration,
}

/// `keepalive:` settings (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Interval between probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub count: u32,
}

/// `log_level:` of per-command events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// TRACE
    Trace,
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// WARN (also accepts WARNING)
    Warn,
    /// ERROR
    Error,
}

impl LogLevel {
    /// The canonical upper-case spelling (`WARNING` is read as `WARN`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    /// Case-insensitive TRACE, DEBUG, INFO, WARN, WARNING or ERROR.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "TRACE" => Ok(LogLevel::Trace),
            "DEBUG" => Ok(LogLevel::Debug),
            "INFO" => Ok(LogLevel::Info),
            "WARN" | "WARNING" => Ok(LogLevel::Warn),
            "ERROR" => Ok(LogLevel::Error),
            _ => Err(format!(
                "unknown log level `{s}` (expected TRACE, DEBUG, INFO, WARN, WARNING or ERROR)"
            )),
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
