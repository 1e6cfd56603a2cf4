//! Structure, key and type checks: turns the YAML tree into a [`RawConfig`].
//!
//! Done by hand rather than with `#[serde(deny_unknown_fields)]` because serde stops at
//! the first error, and a user should see every problem of the file in one run.

use crate::error::Sink;
use crate::locate::KeyPath;
use crate::node::Node;
use crate::raw::{
    RawCluster, RawConfig, RawDatabase, RawEndpoint, RawNamedEndpoint, RawSentinel, RawTls,
};
use crate::value::Value;

/// Compiled file (`redis_databases` required) or runtime file (every key optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Base,
    Overlay,
}

pub(crate) const TOP_KEYS: &[&str] = &[
    "redis_databases",
    "host",
    "port",
    "url",
    "username",
    "password",
    "sentinel",
    "cluster",
    "tls",
    "endpoints",
    "timeout",
    "connect_timeout",
    "max_connections",
    "retry_attempts",
    "retry_delay",
    "retry_max_delay",
    "health_check_interval",
    "log_commands",
    "log_level",
    "max_databases",
    "idle_timeout",
    "readiness",
    "circuit_breaker",
    "keepalive",
];
pub(crate) const DATABASE_KEYS: &[&str] = &[
    "db",
    "description",
    "alias_of",
    "max_connections",
    "timeout_seconds",
    "endpoint",
];
/// The connection keys of an entry of `endpoints` (the top level has them too).
pub(crate) const ENDPOINT_KEYS: &[&str] = &[
    "url", "host", "port", "username", "password", "sentinel", "cluster", "tls",
];
pub(crate) const SENTINEL_KEYS: &[&str] =
    &["master_name", "nodes", "username", "password", "read_from"];
pub(crate) const CLUSTER_KEYS: &[&str] = &["nodes", "read_from", "numbered_databases"];
pub(crate) const TLS_KEYS: &[&str] = &["ca_file", "cert_file", "key_file", "insecure"];
const READINESS_KEYS: &[&str] = &["max_wait", "poll_interval"];
const CIRCUIT_BREAKER_KEYS: &[&str] = &["failure_threshold", "reset_timeout"];
const KEEPALIVE_KEYS: &[&str] = &["idle", "interval", "count"];

/// Reads a parsed document; problems go to `sink`, and the fields they concern stay `None`.
pub(crate) fn read(root: &Node, mode: Mode, sink: &mut Sink<'_>) -> RawConfig {
    let mut raw = RawConfig::default();
    let top = KeyPath::root();
    let entries = match root {
        Node::Map(map) => section(map, &top, "the top level", TOP_KEYS, sink),
        // An empty runtime file is a valid "change nothing".
        Node::Null if mode == Mode::Overlay => Vec::new(),
        other => {
            sink.push(
                None,
                format!(
                    "the file must be a YAML mapping with a `redis_databases` key, found {}",
                    other.describe()
                ),
                "start the file with `redis_databases:` followed by `name: { db: N }` entries",
            );
            return raw;
        }
    };
    for (key, path, value) in entries {
        let label = format!("`{key}`");
        let v = Value {
            label: &label,
            key,
            path: &path,
            node: value,
        };
        match key {
            "redis_databases" => raw.databases = databases(&v, &mut raw.broken_databases, sink),
            "url" | "host" | "port" | "username" | "password" | "sentinel" | "cluster" | "tls" => {
                endpoint_key(&v, "", mode, &mut raw.endpoint, sink)
            }
            "endpoints" => raw.endpoints = endpoints(&v, mode, &mut raw.broken_endpoints, sink),
            "timeout" => raw.timeout = v.duration(sink),
            "connect_timeout" => raw.connect_timeout = v.duration(sink),
            "max_connections" => raw.max_connections = v.positive(sink),
            "retry_attempts" => raw.retry_attempts = v.count(sink),
            "retry_delay" => raw.retry_delay = v.duration(sink),
            "retry_max_delay" => raw.retry_max_delay = v.duration(sink),
            "health_check_interval" => raw.health_check_interval = v.duration_or_off(sink),
            "log_commands" => raw.log_commands = v.boolean(sink),
            "log_level" => raw.log_level = v.log_level(sink),
            "max_databases" => raw.max_databases = v.positive(sink),
            "idle_timeout" => raw.idle_timeout = v.duration(sink),
            "readiness" => {
                for (k, p, n) in v.subsection(READINESS_KEYS, sink) {
                    let label = format!("`readiness.{k}`");
                    let v = Value {
                        label: &label,
                        key: k,
                        path: &p,
                        node: n,
                    };
                    match k {
                        "max_wait" => raw.readiness_max_wait = v.duration(sink),
                        _ => raw.readiness_poll_interval = v.duration(sink),
                    }
                }
            }
            "circuit_breaker" => {
                for (k, p, n) in v.subsection(CIRCUIT_BREAKER_KEYS, sink) {
                    let label = format!("`circuit_breaker.{k}`");
                    let v = Value {
                        label: &label,
                        key: k,
                        path: &p,
                        node: n,
                    };
                    match k {
                        "failure_threshold" => raw.failure_threshold = v.positive(sink),
                        _ => raw.reset_timeout = v.duration(sink),
                    }
                }
            }
            _ => {
                for (k, p, n) in v.subsection(KEEPALIVE_KEYS, sink) {
                    let label = format!("`keepalive.{k}`");
                    let v = Value {
                        label: &label,
                        key: k,
                        path: &p,
                        node: n,
                    };
                    match k {
                        "idle" => raw.keepalive_idle = v.duration(sink),
                        "interval" => raw.keepalive_interval = v.duration(sink),
                        _ => raw.keepalive_count = v.positive(sink),
                    }
                }
            }
        }
    }
    if mode == Mode::Base && raw.databases.is_none() && !has_key(root, "redis_databases") {
        sink.push(
            None,
            "missing required key `redis_databases`",
            "add a `redis_databases:` mapping of database names to `{ db: N }`",
        );
    }
    check_endpoint(&raw.endpoint, &top, None, mode, sink);
    raw
}

/// Reads one connection key (`url`, `host`, `port`, `username`, `password`, `sentinel`,
/// `cluster`, `tls`) of an endpoint. `suffix` completes labels: "" at the top level, else
/// " of endpoint `name`".
fn endpoint_key(
    v: &Value<'_>,
    suffix: &str,
    mode: Mode,
    raw: &mut RawEndpoint,
    sink: &mut Sink<'_>,
) {
    match v.key {
        "url" => raw.url = v.non_empty_string(sink),
        "host" => raw.host = v.non_empty_string(sink),
        "port" => raw.port = v.port(sink),
        "username" => raw.username = v.nullable_string(sink),
        "password" => raw.password = v.nullable_string(sink),
        "sentinel" => raw.sentinel = Some(sentinel(v, suffix, mode, sink)),
        "tls" => raw.tls = Some(tls(v, suffix, sink)),
        _ => raw.cluster = Some(cluster(v, suffix, mode, sink)),
    }
}

/// `tls: { ca_file, cert_file, key_file, insecure }`; paths stay as written (they are checked
/// against the disk at compile time and read when connecting).
fn tls(v: &Value<'_>, suffix: &str, sink: &mut Sink<'_>) -> RawTls {
    let mut out = RawTls::default();
    for (k, p, n) in v.subsection(TLS_KEYS, sink) {
        let label = format!("`tls.{k}`{suffix}");
        let v = Value {
            label: &label,
            key: k,
            path: &p,
            node: n,
        };
        let target = match k {
            "ca_file" => &mut out.ca_file,
            "cert_file" => &mut out.cert_file,
            "key_file" => &mut out.key_file,
            _ => {
                out.insecure = v.boolean(sink);
                continue;
            }
        };
        *target = v.non_empty_string(sink).map(std::path::PathBuf::from);
    }
    out
}

fn sentinel(v: &Value<'_>, suffix: &str, mode: Mode, sink: &mut Sink<'_>) -> RawSentinel {
    let mut out = RawSentinel::default();
    for (k, p, n) in v.subsection(SENTINEL_KEYS, sink) {
        let label = format!("`sentinel.{k}`{suffix}");
        let v = Value {
            label: &label,
            key: k,
            path: &p,
            node: n,
        };
        match k {
            "master_name" => out.master_name = v.non_empty_string(sink),
            "nodes" => out.nodes = v.nodes(sink, 26379),
            "username" => out.username = v.nullable_string(sink),
            "password" => out.password = v.nullable_string(sink),
            _ => out.read_from = v.read_from(sink),
        }
    }
    if mode == Mode::Base && matches!(v.node, Node::Map(_)) {
        if !has_key(v.node, "master_name") {
            sink.push(
                sink.key(v.path),
                format!("{} has no `master_name`", v.label),
                "add `master_name: mymaster` under `sentinel` (the name of the master the sentinels monitor)",
            );
        }
        if !has_key(v.node, "nodes") {
            sink.push(
                sink.key(v.path),
                format!("{} has no `nodes`", v.label),
                "add `nodes: [\"127.0.0.1:26379\"]` under `sentinel` (the sentinels' own addresses)",
            );
        }
    }
    out
}

fn cluster(v: &Value<'_>, suffix: &str, mode: Mode, sink: &mut Sink<'_>) -> RawCluster {
    let mut out = RawCluster::default();
    for (k, p, n) in v.subsection(CLUSTER_KEYS, sink) {
        let label = format!("`cluster.{k}`{suffix}");
        let v = Value {
            label: &label,
            key: k,
            path: &p,
            node: n,
        };
        match k {
            "nodes" => out.nodes = v.nodes(sink, 7000),
            "read_from" => out.read_from = v.read_from(sink),
            _ => out.numbered_databases = v.boolean(sink),
        }
    }
    if mode == Mode::Base && matches!(v.node, Node::Map(_)) && !has_key(v.node, "nodes") {
        sink.push(
            sink.key(v.path),
            format!("{} has no `nodes`", v.label),
            "add `nodes: [\"127.0.0.1:7000\"]` under `cluster` (one or more seed nodes of the cluster)",
        );
    }
    out
}

/// Rules on the keys of one endpoint: `url` or `host`/`port`, and exactly one kind of
/// deployment. `name` is `None` for the default endpoint (the top level).
fn check_endpoint(
    raw: &RawEndpoint,
    path: &KeyPath,
    name: Option<&str>,
    mode: Mode,
    sink: &mut Sink<'_>,
) {
    let who = match name {
        Some(name) => format!("endpoint `{name}`"),
        None => "the default endpoint".to_owned(),
    };
    if raw.url.is_some() && (raw.host.is_some() || raw.port.is_some()) {
        let message = match name {
            Some(name) => format!(
                "`url` and `host`/`port` of endpoint `{name}` are both set; use either url or host/port"
            ),
            None => "`url` and `host`/`port` are both set; use either url or host/port".to_owned(),
        };
        sink.push(
            sink.key(&path.key("url")),
            message,
            "remove `url`, or remove `host` and `port`",
        );
    }
    let topology: Vec<&str> = [
        raw.sentinel.as_ref().map(|_| "sentinel"),
        raw.cluster.as_ref().map(|_| "cluster"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let address: Vec<&str> = raw
        .kind_keys()
        .into_iter()
        .filter(|k| !topology.contains(k))
        .collect();
    let kinds = topology.len() + usize::from(!address.is_empty());
    if kinds > 1 {
        let named: Vec<String> = topology
            .iter()
            .chain(address.iter())
            .map(|k| format!("`{k}`"))
            .collect();
        let (last, rest) = named.split_last().expect("at least two keys");
        let listed = format!("{} and {last}", rest.join(", "));
        let help = match topology.as_slice() {
            [kind] => format!(
                "remove {} (a {kind} endpoint lists its nodes under `{kind}.nodes`), or remove `{kind}`",
                address.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ")
            ),
            _ => "keep one of them; a database on another deployment goes on its own entry under `endpoints:` (`endpoint:` under the database)".to_owned(),
        };
        sink.push(
            sink.key(&path.key(topology.last().expect("a topology key"))),
            format!(
                "{who} has both {listed}: an endpoint is exactly one of a standalone server (`url` or `host`/`port`), a `sentinel` master or a `cluster`"
            ),
            help,
        );
    }
    let no_address = topology.is_empty() && raw.url.is_none() && raw.host.is_none();
    if let (Some(name), Mode::Base, true) = (name, mode, no_address) {
        let message = if raw.port.is_some() {
            format!("endpoint `{name}` has `port` but no `host`")
        } else {
            format!("endpoint `{name}` states no address")
        };
        sink.push(
            sink.key(path),
            message,
            format!(
                "give `{name}` exactly one of `url: redis://host:port`, `host:` (with an optional `port:`), `sentinel:` or `cluster:`"
            ),
        );
    }
}

/// The entries of a mapping of names to sections, each with its name and occurrence index:
/// duplicates are kept (and reported by validation), `nth` tells their places apart. A key that
/// is not a string is reported here (`what` names the kind of entry) and skipped.
fn named_entries<'a>(
    map: &'a [(Node, Node)],
    what: &str,
    parent: &KeyPath,
    sink: &mut Sink<'_>,
) -> Vec<(&'a String, usize, &'a Node)> {
    let mut entries = Vec::with_capacity(map.len());
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in map {
        let Node::Str(name) = key else {
            sink.push(
                sink.key(parent),
                format!("{what} name `{}` is not a snake_case identifier", key.key_text()),
                "use lowercase ASCII letters, digits and single underscores, starting with a letter",
            );
            continue;
        };
        let nth = seen.iter().filter(|s| **s == name.as_str()).count();
        seen.push(name);
        entries.push((name, nth, value));
    }
    entries
}

/// `endpoints:`, a mapping of names to connection keys.
fn endpoints(
    v: &Value<'_>,
    mode: Mode,
    broken: &mut Vec<String>,
    sink: &mut Sink<'_>,
) -> Option<Vec<RawNamedEndpoint>> {
    let map: &[(Node, Node)] = match v.node {
        Node::Map(map) => map,
        Node::Null => &[],
        other => {
            sink.push(
                sink.value(v.path),
                format!(
                    "`endpoints` must be a mapping of endpoint names to connection settings, found {}",
                    other.describe()
                ),
                "write one `name:` per endpoint, each with `url:`, `host:`, `sentinel:` or `cluster:`",
            );
            return None;
        }
    };
    let mut out = Vec::new();
    for (name, nth, value) in named_entries(map, "endpoint", v.path, sink) {
        let path = KeyPath::endpoint(name, nth);
        let Node::Map(entries) = value else {
            sink.push(
                sink.value(&path),
                format!(
                    "endpoint `{name}` must be a mapping of connection settings, found {}",
                    value.describe()
                ),
                format!(
                    "write `{name}:` followed by an indented `url: redis://host:port` (or `host:`, `sentinel:`, `cluster:`)"
                ),
            );
            broken.push(name.clone());
            continue;
        };
        let what = format!("endpoint `{name}`");
        let suffix = format!(" of endpoint `{name}`");
        let mut endpoint = RawEndpoint::default();
        for (k, p, n) in section(entries, &path, &what, ENDPOINT_KEYS, sink) {
            let label = format!("`{k}`{suffix}");
            let v = Value {
                label: &label,
                key: k,
                path: &p,
                node: n,
            };
            endpoint_key(&v, &suffix, mode, &mut endpoint, sink);
        }
        check_endpoint(&endpoint, &path, Some(name), mode, sink);
        out.push(RawNamedEndpoint {
            name: name.clone(),
            nth,
            endpoint,
        });
    }
    Some(out)
}

fn has_key(root: &Node, key: &str) -> bool {
    matches!(root, Node::Map(m) if m.iter().any(|(k, _)| matches!(k, Node::Str(s) if s == key)))
}

fn databases(
    v: &Value<'_>,
    broken: &mut Vec<String>,
    sink: &mut Sink<'_>,
) -> Option<Vec<RawDatabase>> {
    let Node::Map(map) = v.node else {
        sink.push(
            sink.value(v.path),
            format!(
                "`redis_databases` must be a mapping of database names to settings, found {}",
                v.node.describe()
            ),
            "write one `name:` per database, each with at least `db: N`",
        );
        return None;
    };
    if map.is_empty() {
        sink.push(
            sink.key(v.path),
            "`redis_databases` has no databases",
            "add at least one database, e.g. `main: { db: 0 }`",
        );
    }
    let mut out = Vec::new();
    for (name, nth, value) in named_entries(map, "database", v.path, sink) {
        let path = KeyPath::database(name, nth);
        if let Some(db) = database(name, nth, &path, value, sink) {
            out.push(db);
        } else {
            broken.push(name.clone());
        }
    }
    Some(out)
}

fn database(
    name: &str,
    nth: usize,
    path: &KeyPath,
    node: &Node,
    sink: &mut Sink<'_>,
) -> Option<RawDatabase> {
    let Node::Map(map) = node else {
        sink.push(
            sink.value(path),
            format!(
                "database `{name}` must be a mapping with at least `db`, found {}",
                node.describe()
            ),
            format!("write `{name}:` followed by an indented `db: N`"),
        );
        return None;
    };
    let what = format!("database `{name}`");
    let mut db = RawDatabase {
        name: name.to_owned(),
        nth,
        ..RawDatabase::default()
    };
    let mut db_ok = true;
    for (key, p, n) in section(map, path, &what, DATABASE_KEYS, sink) {
        let label = format!("`{key}` of database `{name}`");
        let v = Value {
            label: &label,
            key,
            path: &p,
            node: n,
        };
        match key {
            "db" => {
                db.db = v.integer(sink, "0");
                db_ok = db.db.is_some();
            }
            "description" => {
                db.description = v.nullable_string(sink).map(Option::unwrap_or_default)
            }
            "alias_of" => db.alias_of = v.nullable_string(sink).flatten(),
            "max_connections" => db.max_connections = v.positive(sink),
            "endpoint" => db.endpoint = v.nullable_string(sink).flatten(),
            _ => db.timeout = v.duration(sink),
        }
    }
    if !has_key(node, "db") {
        sink.push(
            sink.key(path),
            format!("database `{name}` has no `db`"),
            format!("add `db: N` under `{name}` (its Redis database number)"),
        );
        return None;
    }
    // A wrong-typed `db` was reported already; without a number the entry is unusable.
    db_ok.then_some(db)
}

/// Checks the keys of one mapping: strings, known, not repeated. Returns the good entries.
pub(crate) fn section<'n>(
    map: &'n [(Node, Node)],
    path: &KeyPath,
    what: &str,
    valid: &[&str],
    sink: &mut Sink<'_>,
) -> Vec<(&'n str, KeyPath, &'n Node)> {
    let mut out: Vec<(&'n str, KeyPath, &'n Node)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in map {
        let Node::Str(key) = key else {
            sink.push(
                sink.key(path),
                format!(
                    "unknown key `{}` in {what} (valid keys: {})",
                    key.key_text(),
                    valid.join(", ")
                ),
                "keys are names like the ones listed",
            );
            continue;
        };
        let nth = seen.iter().filter(|s| **s == key.as_str()).count();
        seen.push(key);
        let here = path.nth(key, nth);
        if !valid.contains(&key.as_str()) {
            let help = if let Some(close) = closest(key, valid) {
                format!("did you mean `{close}`?")
            } else {
                format!("remove `{key}`")
            };
            sink.push(
                sink.key(&here),
                format!(
                    "unknown key `{key}` in {what} (valid keys: {})",
                    valid.join(", ")
                ),
                help,
            );
            continue;
        }
        if nth > 0 {
            sink.push(
                sink.key(&here),
                format!("key `{key}` appears more than once in {what}"),
                format!("keep one `{key}`"),
            );
            continue;
        }
        out.push((key, here, value));
    }
    out
}

/// The valid key nearest to a misspelt one, if it is close enough to be a typo.
fn closest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (edit_distance(key, v), *v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
