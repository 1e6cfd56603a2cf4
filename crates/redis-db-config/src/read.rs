//! Structure, key and type checks: turns the YAML tree into a [`RawConfig`]. Each mapping has
//! one table of its keys and their readers (`TOP`, `ENDPOINT`, `DATABASE`, ...).
//!
//! Done by hand rather than with `#[serde(deny_unknown_fields)]` because serde stops at
//! the first error, and a user should see every problem of the file in one run.

use crate::error::Sink;
use crate::locate::KeyPath;
use crate::node::Node;
use crate::raw::{
    RawCluster, RawConfig, RawDatabase, RawEndpoint, RawNamedEndpoint, RawSentinel, RawTls,
};
use crate::validate;
use crate::value::Value;

/// Compiled file (`redis_databases` required) or runtime file (every key optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Base,
    Overlay,
}

/// One key of a mapping and how its value is stored.
///
/// A mapping's table is both its list of valid keys, in the order messages list them, and
/// how each key is read: a key cannot be valid without being read, nor read without being
/// valid.
struct Field<T: 'static> {
    key: &'static str,
    read: fn(&Value<'_>, &Scope<'_>, &mut T, &mut Sink<'_>),
}

/// What a reader knows besides the value.
struct Scope<'a> {
    mode: Mode,
    /// How labels end: "" at the top level, " of endpoint `name`", " of database `name`".
    suffix: &'a str,
}

const fn field<T>(
    key: &'static str,
    read: fn(&Value<'_>, &Scope<'_>, &mut T, &mut Sink<'_>),
) -> Field<T> {
    Field { key, read }
}

const TOP: &[Field<RawConfig>] = &[
    field("redis_databases", |v, scope, raw, sink| {
        raw.databases = databases(v, scope.mode, &mut raw.broken_databases, sink)
    }),
    field("host", at_default_endpoint),
    field("port", at_default_endpoint),
    field("url", at_default_endpoint),
    field("username", at_default_endpoint),
    field("password", at_default_endpoint),
    field("sentinel", at_default_endpoint),
    field("cluster", at_default_endpoint),
    field("tls", at_default_endpoint),
    field("endpoints", |v, scope, raw, sink| {
        raw.endpoints = endpoints(v, scope.mode, &mut raw.broken_endpoints, sink)
    }),
    field("timeout", |v, _, raw, sink| raw.timeout = v.duration(sink)),
    field("connect_timeout", |v, _, raw, sink| {
        raw.connect_timeout = v.duration(sink)
    }),
    field("max_connections", |v, _, raw, sink| {
        raw.max_connections = v.positive(sink)
    }),
    field("retry_attempts", |v, _, raw, sink| {
        raw.retry_attempts = v.count(sink)
    }),
    field("retry_delay", |v, _, raw, sink| {
        raw.retry_delay = v.duration(sink)
    }),
    field("retry_max_delay", |v, _, raw, sink| {
        raw.retry_max_delay = v.duration(sink)
    }),
    field("health_check_interval", |v, _, raw, sink| {
        raw.health_check_interval = v.duration_or_off(sink)
    }),
    field("log_commands", |v, _, raw, sink| {
        raw.log_commands = v.boolean(sink)
    }),
    field("log_level", |v, _, raw, sink| {
        raw.log_level = v.log_level(sink)
    }),
    field("max_databases", |v, _, raw, sink| {
        raw.max_databases = v.positive(sink)
    }),
    field("idle_timeout", |v, _, raw, sink| {
        raw.idle_timeout = v.duration(sink)
    }),
    field("readiness", |v, scope, raw, sink| {
        nested(v, READINESS, scope, raw, sink)
    }),
    field("circuit_breaker", |v, scope, raw, sink| {
        nested(v, CIRCUIT_BREAKER, scope, raw, sink)
    }),
    field("keepalive", |v, scope, raw, sink| {
        nested(v, KEEPALIVE, scope, raw, sink)
    }),
];

const READINESS: &[Field<RawConfig>] = &[
    field("max_wait", |v, _, raw, sink| {
        raw.readiness_max_wait = v.duration(sink)
    }),
    field("poll_interval", |v, _, raw, sink| {
        raw.readiness_poll_interval = v.duration(sink)
    }),
];

const CIRCUIT_BREAKER: &[Field<RawConfig>] = &[
    field("failure_threshold", |v, _, raw, sink| {
        raw.failure_threshold = v.positive(sink)
    }),
    field("reset_timeout", |v, _, raw, sink| {
        raw.reset_timeout = v.duration(sink)
    }),
];

const KEEPALIVE: &[Field<RawConfig>] = &[
    field("idle", |v, _, raw, sink| {
        raw.keepalive_idle = v.duration(sink)
    }),
    field("interval", |v, _, raw, sink| {
        raw.keepalive_interval = v.duration(sink)
    }),
    field("count", |v, _, raw, sink| {
        raw.keepalive_count = v.positive(sink)
    }),
];

/// The connection keys of an endpoint: an entry of `endpoints`, or the top level.
const ENDPOINT: &[Field<RawEndpoint>] = &[
    field("url", |v, _, raw, sink| raw.url = v.non_empty_string(sink)),
    field("host", |v, _, raw, sink| {
        raw.host = v.non_empty_string(sink)
    }),
    field("port", |v, _, raw, sink| raw.port = v.port(sink)),
    field("username", |v, _, raw, sink| {
        raw.username = v.nullable_string(sink)
    }),
    field("password", |v, _, raw, sink| {
        raw.password = v.nullable_string(sink)
    }),
    field("sentinel", |v, scope, raw, sink| {
        raw.sentinel = Some(sentinel(v, scope, sink))
    }),
    field("cluster", |v, scope, raw, sink| {
        raw.cluster = Some(cluster(v, scope, sink))
    }),
    field("tls", |v, scope, raw, sink| {
        let mut tls = RawTls::default();
        nested(v, TLS, scope, &mut tls, sink);
        raw.tls = Some(tls);
    }),
];

const SENTINEL: &[Field<RawSentinel>] = &[
    field("master_name", |v, _, raw, sink| {
        raw.master_name = v.non_empty_string(sink)
    }),
    field("nodes", |v, _, raw, sink| raw.nodes = v.nodes(sink, 26379)),
    field("username", |v, _, raw, sink| {
        raw.username = v.nullable_string(sink)
    }),
    field("password", |v, _, raw, sink| {
        raw.password = v.nullable_string(sink)
    }),
    field("read_from", |v, _, raw, sink| {
        raw.read_from = v.read_from(sink)
    }),
];

const CLUSTER: &[Field<RawCluster>] = &[
    field("nodes", |v, _, raw, sink| raw.nodes = v.nodes(sink, 7000)),
    field("read_from", |v, _, raw, sink| {
        raw.read_from = v.read_from(sink)
    }),
    field("numbered_databases", |v, _, raw, sink| {
        raw.numbered_databases = v.boolean(sink)
    }),
    field("topology_refresh", |v, _, raw, sink| {
        raw.topology_refresh = v.duration(sink)
    }),
];

/// `tls: { ca_file, cert_file, key_file, insecure }`; paths stay as written (they are checked
/// against the disk at compile time and read when connecting).
const TLS: &[Field<RawTls>] = &[
    field("ca_file", |v, _, raw, sink| raw.ca_file = file(v, sink)),
    field("cert_file", |v, _, raw, sink| raw.cert_file = file(v, sink)),
    field("key_file", |v, _, raw, sink| raw.key_file = file(v, sink)),
    field("insecure", |v, _, raw, sink| raw.insecure = v.boolean(sink)),
];

const DATABASE: &[Field<RawDatabase>] = &[
    field("db", |v, _, raw, sink| raw.db = v.integer(sink, "0")),
    field("description", |v, _, raw, sink| {
        raw.description = v.nullable_string(sink).map(Option::unwrap_or_default)
    }),
    field("alias_of", |v, _, raw, sink| {
        raw.alias_of = v.nullable_string(sink).flatten()
    }),
    field("max_connections", |v, _, raw, sink| {
        raw.max_connections = v.positive(sink)
    }),
    field("timeout_seconds", |v, _, raw, sink| {
        raw.timeout = v.duration(sink)
    }),
    field("endpoint", |v, _, raw, sink| {
        raw.endpoint = v.nullable_string(sink).flatten()
    }),
];

fn file(v: &Value<'_>, sink: &mut Sink<'_>) -> Option<std::path::PathBuf> {
    v.non_empty_string(sink).map(std::path::PathBuf::from)
}

/// The keys of a table, for `section` and its messages.
fn keys<T>(table: &[Field<T>]) -> Vec<&'static str> {
    table.iter().map(|f| f.key).collect()
}

/// Reads the entries `section` let through (known keys only) with their table. Each label is
/// "`{prefix}{key}`" and the scope's suffix, e.g. "`tls.ca_file` of endpoint `vectors`".
fn read_entries<T>(
    entries: Vec<(&str, KeyPath, &Node)>,
    table: &[Field<T>],
    prefix: &str,
    scope: &Scope<'_>,
    out: &mut T,
    sink: &mut Sink<'_>,
) {
    for (key, path, node) in entries {
        let label = format!("`{prefix}{key}`{}", scope.suffix);
        let v = Value {
            label: &label,
            key,
            path: &path,
            node,
        };
        read_key(table, &v, scope, out, sink);
    }
}

/// Hands `v` to its key's reader in `table`.
fn read_key<T>(
    table: &[Field<T>],
    v: &Value<'_>,
    scope: &Scope<'_>,
    out: &mut T,
    sink: &mut Sink<'_>,
) {
    if let Some(field) = table.iter().find(|f| f.key == v.key) {
        (field.read)(v, scope, out, sink);
    }
}

/// A key whose value is a mapping with keys of its own (`readiness`, `tls`, `sentinel`, ...),
/// labelled under it: "`readiness.max_wait`".
fn nested<T>(
    v: &Value<'_>,
    table: &[Field<T>],
    scope: &Scope<'_>,
    out: &mut T,
    sink: &mut Sink<'_>,
) {
    let entries = v.subsection(&keys(table), sink);
    read_entries(entries, table, &format!("{}.", v.key), scope, out, sink);
}

/// A connection key written at the top level: the default endpoint's.
fn at_default_endpoint(v: &Value<'_>, scope: &Scope<'_>, raw: &mut RawConfig, sink: &mut Sink<'_>) {
    read_key(ENDPOINT, v, scope, &mut raw.endpoint, sink);
}

/// Reads a parsed document; problems go to `sink`, and the fields they concern stay `None`.
pub(crate) fn read(root: &Node, mode: Mode, sink: &mut Sink<'_>) -> RawConfig {
    let mut raw = RawConfig::default();
    let top = KeyPath::root();
    let entries = match root {
        Node::Map(map) => section(map, &top, "the top level", &keys(TOP), sink),
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
    let scope = Scope { mode, suffix: "" };
    read_entries(entries, TOP, "", &scope, &mut raw, sink);
    if mode == Mode::Base && raw.databases.is_none() && !has_key(root, "redis_databases") {
        sink.push(
            None,
            "missing required key `redis_databases`",
            "add a `redis_databases:` mapping of database names to `{ db: N }`",
        );
    }
    validate::endpoint_keys(&raw.endpoint, &top, None, mode == Mode::Base, sink);
    raw
}

fn sentinel(v: &Value<'_>, scope: &Scope<'_>, sink: &mut Sink<'_>) -> RawSentinel {
    let mut out = RawSentinel::default();
    nested(v, SENTINEL, scope, &mut out, sink);
    if scope.mode == Mode::Base && matches!(v.node, Node::Map(_)) {
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

fn cluster(v: &Value<'_>, scope: &Scope<'_>, sink: &mut Sink<'_>) -> RawCluster {
    let mut out = RawCluster::default();
    nested(v, CLUSTER, scope, &mut out, sink);
    if scope.mode == Mode::Base && matches!(v.node, Node::Map(_)) && !has_key(v.node, "nodes") {
        sink.push(
            sink.key(v.path),
            format!("{} has no `nodes`", v.label),
            "add `nodes: [\"127.0.0.1:7000\"]` under `cluster` (one or more seed nodes of the cluster)",
        );
    }
    out
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
        let scope = Scope {
            mode,
            suffix: &suffix,
        };
        let mut endpoint = RawEndpoint::default();
        let known = section(entries, &path, &what, &keys(ENDPOINT), sink);
        read_entries(known, ENDPOINT, "", &scope, &mut endpoint, sink);
        validate::endpoint_keys(&endpoint, &path, Some(name), mode == Mode::Base, sink);
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
    mode: Mode,
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
        if let Some(db) = database(name, nth, &path, value, mode, sink) {
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
    mode: Mode,
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
    let suffix = format!(" of database `{name}`");
    let scope = Scope {
        mode,
        suffix: &suffix,
    };
    let known = section(map, path, &what, &keys(DATABASE), sink);
    read_entries(known, DATABASE, "", &scope, &mut db, sink);
    if !has_key(node, "db") {
        sink.push(
            sink.key(path),
            format!("database `{name}` has no `db`"),
            format!("add `db: N` under `{name}` (its Redis database number)"),
        );
        return None;
    }
    // A wrong-typed `db` was reported already; without a number the entry is unusable.
    db.db.is_some().then_some(db)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_table_names_a_key_twice() {
        let tables = [
            keys(TOP),
            keys(READINESS),
            keys(CIRCUIT_BREAKER),
            keys(KEEPALIVE),
            keys(ENDPOINT),
            keys(SENTINEL),
            keys(CLUSTER),
            keys(TLS),
            keys(DATABASE),
        ];
        for table in tables {
            for (i, key) in table.iter().enumerate() {
                assert!(!table[..i].contains(key), "`{key}` twice in {table:?}");
            }
        }
    }

    #[test]
    fn the_top_level_takes_every_connection_key() {
        // The top-level rows of these keys hand over to ENDPOINT, which must have them.
        for key in keys(ENDPOINT) {
            assert!(keys(TOP).contains(&key), "`{key}`");
        }
    }
}
