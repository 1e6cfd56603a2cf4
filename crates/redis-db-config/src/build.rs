//! Applies a [`RawConfig`] to a [`Config`]: onto the defaults for the compiled file, onto
//! an existing config for a runtime file.

use std::time::Duration;

use crate::error::Sink;
use crate::locate::KeyPath;
use crate::model::{
    CircuitBreaker, Cluster, Config, ConnectionSettings, Database, Keepalive, LogLevel,
    NamedEndpoint, ReadFrom, Readiness, Retry, Secret, Sentinel, TlsOptions, Topology,
};
use crate::raw::{RawConfig, RawEndpoint};

/// The address of a standalone endpoint that states none: `localhost:6379`, no credentials.
fn default_connection() -> ConnectionSettings {
    ConnectionSettings {
        host: "localhost".to_owned(),
        port: 6379,
        username: None,
        password: None,
        tls: false,
        tls_options: TlsOptions::default(),
    }
}

/// `cluster.topology_refresh` when not given: the period other cluster clients use.
pub(crate) const DEFAULT_TOPOLOGY_REFRESH: Duration = Duration::from_secs(60);

/// The documented defaults (CONTRACT section 3, matching the seed application), no databases.
pub(crate) fn defaults() -> Config {
    Config {
        databases: Vec::new(),
        connection: default_connection(),
        topology: Topology::Standalone,
        endpoints: Vec::new(),
        topology_refresh: DEFAULT_TOPOLOGY_REFRESH,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        max_connections: 20,
        retry: Retry {
            attempts: 3,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        },
        health_check_interval: Some(Duration::from_secs(30)),
        log_commands: false,
        log_level: LogLevel::Info,
        max_databases: 16,
        idle_timeout: Duration::from_secs(300),
        readiness: Readiness {
            max_wait: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
        },
        circuit_breaker: CircuitBreaker {
            failure_threshold: 5,
            reset_timeout: Duration::from_secs(60),
        },
        keepalive: Keepalive {
            idle: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            count: 5,
        },
    }
}

/// Every setting except `redis_databases`, field by field: absent keys keep `cfg`'s value.
pub(crate) fn apply_settings(cfg: &mut Config, raw: &RawConfig, sink: &mut Sink<'_>) {
    fn set<T: Copy>(target: &mut T, value: Option<T>) {
        if let Some(v) = value {
            *target = v;
        }
    }
    apply_endpoint(
        &mut cfg.connection,
        &mut cfg.topology,
        &mut cfg.topology_refresh,
        &raw.endpoint,
        &KeyPath::root(),
        "",
        sink,
    );
    set(&mut cfg.timeout, raw.timeout);
    set(&mut cfg.connect_timeout, raw.connect_timeout);
    set(&mut cfg.max_connections, raw.max_connections);
    set(&mut cfg.retry.attempts, raw.retry_attempts);
    set(&mut cfg.retry.delay, raw.retry_delay);
    set(&mut cfg.retry.max_delay, raw.retry_max_delay);
    set(&mut cfg.health_check_interval, raw.health_check_interval);
    set(&mut cfg.log_commands, raw.log_commands);
    set(&mut cfg.log_level, raw.log_level);
    set(&mut cfg.max_databases, raw.max_databases);
    set(&mut cfg.idle_timeout, raw.idle_timeout);
    set(&mut cfg.readiness.max_wait, raw.readiness_max_wait);
    set(
        &mut cfg.readiness.poll_interval,
        raw.readiness_poll_interval,
    );
    set(
        &mut cfg.circuit_breaker.failure_threshold,
        raw.failure_threshold,
    );
    set(&mut cfg.circuit_breaker.reset_timeout, raw.reset_timeout);
    set(&mut cfg.keepalive.idle, raw.keepalive_idle);
    set(&mut cfg.keepalive.interval, raw.keepalive_interval);
    set(&mut cfg.keepalive.count, raw.keepalive_count);
}

/// The connection keys of one endpoint over its current settings, field by field. A
/// `sentinel`/`cluster` section refines the endpoint's current one of that kind (or an
/// empty one: required keys were checked while reading). `suffix` completes labels.
pub(crate) fn apply_endpoint(
    connection: &mut ConnectionSettings,
    topology: &mut Topology,
    topology_refresh: &mut Duration,
    raw: &RawEndpoint,
    path: &KeyPath,
    suffix: &str,
    sink: &mut Sink<'_>,
) {
    // The URL first: it sets the whole address, then explicit keys refine it.
    if let Some(url) = &raw.url {
        if let Err(e) = connection.apply_url(url) {
            sink.push(
                sink.value(&path.key("url")),
                format!("`url`{suffix} is not a usable Redis URL: {e}"),
                "write `url: redis://[user:password@]host:port` (rediss:// for TLS)",
            );
        }
    }
    if let Some(host) = &raw.host {
        connection.host.clone_from(host);
    }
    if let Some(port) = raw.port {
        connection.port = port;
    }
    if let Some(username) = &raw.username {
        connection.username.clone_from(username);
    }
    if let Some(password) = &raw.password {
        connection.password = password.clone().map(Secret::new);
    }
    if let Some(tls) = &raw.tls {
        // Any `tls:` key turns TLS on, whatever the URL's scheme.
        connection.tls = true;
        let options = &mut connection.tls_options;
        for (target, value) in [
            (&mut options.ca_file, &tls.ca_file),
            (&mut options.cert_file, &tls.cert_file),
            (&mut options.key_file, &tls.key_file),
        ] {
            if let Some(path) = value {
                *target = Some(path.clone());
            }
        }
        if let Some(insecure) = tls.insecure {
            options.insecure = insecure;
        }
    }
    if let Some(rs) = &raw.sentinel {
        let mut sentinel = match topology {
            Topology::Sentinel(s) => s.clone(),
            _ => Sentinel {
                master_name: String::new(),
                nodes: Vec::new(),
                username: None,
                password: None,
                read_from: ReadFrom::Master,
            },
        };
        if let Some(name) = &rs.master_name {
            sentinel.master_name.clone_from(name);
        }
        if let Some(nodes) = &rs.nodes {
            sentinel.nodes.clone_from(nodes);
        }
        if let Some(username) = &rs.username {
            sentinel.username.clone_from(username);
        }
        if let Some(password) = &rs.password {
            sentinel.password = password.clone().map(Secret::new);
        }
        if let Some(read_from) = rs.read_from {
            sentinel.read_from = read_from;
        }
        *topology = Topology::Sentinel(sentinel);
    }
    if let Some(rc) = &raw.cluster {
        let mut cluster = match topology {
            Topology::Cluster(c) => c.clone(),
            _ => Cluster {
                nodes: Vec::new(),
                read_from: ReadFrom::Master,
                numbered_databases: false,
            },
        };
        if let Some(nodes) = &rc.nodes {
            cluster.nodes.clone_from(nodes);
        }
        if let Some(read_from) = rc.read_from {
            cluster.read_from = read_from;
        }
        if let Some(numbered) = rc.numbered_databases {
            cluster.numbered_databases = numbered;
        }
        if let Some(period) = rc.topology_refresh {
            *topology_refresh = period;
        }
        *topology = Topology::Cluster(cluster);
    }
}

/// The named endpoints of the compiled file, in file order, duplicates included (reported
/// by validation).
pub(crate) fn endpoints(raw: &RawConfig, sink: &mut Sink<'_>) -> Vec<NamedEndpoint> {
    let mut out = Vec::new();
    for entry in raw.endpoints.iter().flatten() {
        let mut endpoint = NamedEndpoint {
            name: entry.name.clone(),
            connection: default_connection(),
            topology: Topology::Standalone,
            topology_refresh: DEFAULT_TOPOLOGY_REFRESH,
        };
        apply_endpoint(
            &mut endpoint.connection,
            &mut endpoint.topology,
            &mut endpoint.topology_refresh,
            &entry.endpoint,
            &KeyPath::endpoint(&entry.name, entry.nth),
            &format!(" of endpoint `{}`", entry.name),
            sink,
        );
        out.push(endpoint);
    }
    out
}

/// The databases of the compiled file. An entry whose number cannot be a Redis database
/// number at all is reported and left out; its name goes to `broken`.
pub(crate) fn databases(
    raw: &RawConfig,
    max_databases: u32,
    broken: &mut Vec<String>,
    sink: &mut Sink<'_>,
) -> Vec<Database> {
    let mut out = Vec::new();
    for entry in raw.databases.iter().flatten() {
        let Some(db) = entry.db else { continue };
        let Ok(number) = u32::try_from(db) else {
            crate::validate::db_out_of_range(sink, &entry.name, entry.nth, db, max_databases);
            broken.push(entry.name.clone());
            continue;
        };
        out.push(Database {
            name: entry.name.clone(),
            db: number,
            description: entry.description.clone().unwrap_or_default(),
            alias_of: entry.alias_of.clone(),
            max_connections: entry.max_connections,
            timeout: entry.timeout,
            endpoint: entry.endpoint.clone(),
        });
    }
    out
}
