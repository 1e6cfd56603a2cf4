//! The file as written: every key optional, each value already type-checked.
//!
//! One shape serves both the compiled file (absent keys take defaults) and a runtime file
//! laid over a config (absent keys keep the config's value).

use std::path::PathBuf;
use std::time::Duration;

use crate::model::{LogLevel, NodeAddress, ReadFrom};

/// A whole file. `None` = the key is absent.
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    /// `redis_databases`, in file order, duplicates included.
    pub databases: Option<Vec<RawDatabase>>,
    /// Names of entries that were present but unusable (already reported), so that rules
    /// referring to them (e.g. `alias_of`) do not pile up follow-on errors.
    pub broken_databases: Vec<String>,
    /// The connection keys of the top level: the default endpoint.
    pub endpoint: RawEndpoint,
    /// `endpoints`, in file order, duplicates included.
    pub endpoints: Option<Vec<RawNamedEndpoint>>,
    /// Names of `endpoints` entries that were present but unusable (already reported).
    pub broken_endpoints: Vec<String>,
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_connections: Option<usize>,
    pub retry_attempts: Option<u32>,
    pub retry_delay: Option<Duration>,
    pub retry_max_delay: Option<Duration>,
    /// `Some(None)` = `0`, the monitor is disabled.
    pub health_check_interval: Option<Option<Duration>>,
    pub log_commands: Option<bool>,
    pub log_level: Option<LogLevel>,
    pub max_databases: Option<u32>,
    pub idle_timeout: Option<Duration>,
    pub readiness_max_wait: Option<Duration>,
    pub readiness_poll_interval: Option<Duration>,
    pub failure_threshold: Option<u32>,
    pub reset_timeout: Option<Duration>,
    pub keepalive_idle: Option<Duration>,
    pub keepalive_interval: Option<Duration>,
    pub keepalive_count: Option<u32>,
}

/// One entry of `redis_databases`.
#[derive(Debug, Default)]
pub(crate) struct RawDatabase {
    pub name: String,
    /// Which occurrence of `name` this is (0 unless the name is duplicated), for places.
    pub nth: usize,
    /// Any integer as written; range-checked against `max_databases` later.
    pub db: Option<i128>,
    pub description: Option<String>,
    pub alias_of: Option<String>,
    pub max_connections: Option<usize>,
    pub timeout: Option<Duration>,
    pub endpoint: Option<String>,
}

/// The connection keys of one endpoint (the top level, or an entry of `endpoints`).
#[derive(Debug, Default)]
pub(crate) struct RawEndpoint {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub url: Option<String>,
    /// `Some(None)` = written as `null`.
    pub username: Option<Option<String>>,
    /// `Some(None)` = written as `null`.
    pub password: Option<Option<String>>,
    /// `Some` whenever the key is present (even if its value was reported as unusable).
    pub sentinel: Option<RawSentinel>,
    /// `Some` whenever the key is present (even if its value was reported as unusable).
    pub cluster: Option<RawCluster>,
    /// `Some` whenever the key is present: any `tls` key turns TLS on.
    pub tls: Option<RawTls>,
}

impl RawEndpoint {
    /// The keys present that choose a kind of deployment, in a fixed order:
    /// `url`, `host`, `port` (standalone), `sentinel`, `cluster`.
    pub fn kind_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.url.is_some() {
            keys.push("url");
        }
        if self.host.is_some() {
            keys.push("host");
        }
        if self.port.is_some() {
            keys.push("port");
        }
        if self.sentinel.is_some() {
            keys.push("sentinel");
        }
        if self.cluster.is_some() {
            keys.push("cluster");
        }
        keys
    }
}

/// `sentinel:` as written.
#[derive(Debug, Default)]
pub(crate) struct RawSentinel {
    pub master_name: Option<String>,
    pub nodes: Option<Vec<NodeAddress>>,
    /// `Some(None)` = written as `null`.
    pub username: Option<Option<String>>,
    /// `Some(None)` = written as `null`.
    pub password: Option<Option<String>>,
    pub read_from: Option<ReadFrom>,
}

/// `cluster:` as written.
#[derive(Debug, Default)]
pub(crate) struct RawCluster {
    pub nodes: Option<Vec<NodeAddress>>,
    pub read_from: Option<ReadFrom>,
    pub numbered_databases: Option<bool>,
    pub topology_refresh: Option<Duration>,
}

/// `tls:` as written.
#[derive(Debug, Default)]
pub(crate) struct RawTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub insecure: Option<bool>,
}

impl RawTls {
    /// Makes every relative file path relative to `base` (a runtime file's paths are relative
    /// to the working directory).
    pub fn absolute(&mut self, base: &std::path::Path) {
        for path in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}

/// One entry of `endpoints`.
#[derive(Debug, Default)]
pub(crate) struct RawNamedEndpoint {
    pub name: String,
    /// Which occurrence of `name` this is (0 unless the name is duplicated), for places.
    pub nth: usize,
    pub endpoint: RawEndpoint,
}
