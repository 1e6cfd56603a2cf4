//! Structure, key and type checks: turns the YAML tree into a [`RawConfig`].
//!
//! Done by hand rather than with `#[serde(deny_unknown_fields)]` because serde stops at
//! the first error, and a user should see every problem of the file in one run.

use crate::error::Sink;
use crate::locate::KeyPath;
use crate::node::Node;
use crate::raw::{RawConfig, RawDatabase};
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
];
const READINESS_KEYS: &[&str] = &["max_wait", "poll_interval"];
const CIRCUIT_BREAKER_KEYS: &[&str] = &["failure_threshold", "reset_timeout"];
const KEEPALIVE_KEYS: &[&str] = &["idle", "interval", "count"];
/// Keys of topologies not implemented yet: rejected like any unknown key, with a note.
const TOP_KEYS_NOT_YET: &[&str] = &["sentinel", "cluster", "endpoints"];
const DATABASE_KEYS_NOT_YET: &[&str] = &["endpoint"];

/// Reads a parsed document; problems go to `sink`, and the fields they concern stay `None`.
pub(crate) fn read(root: &Node, mode: Mode, sink: &mut Sink<'_>) -> RawConfig {
    let mut raw = RawConfig::default();
    let top = KeyPath::root();
    let entries = match root {
        Node::Map(map) => section(map, &top, "the top level", TOP_KEYS, TOP_KEYS_NOT_YET, sink),
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
            "host" => raw.host = v.non_empty_string(sink),
            "port" => raw.port = v.port(sink),
            "url" => raw.url = v.non_empty_string(sink),
            "username" => raw.username = v.nullable_string(sink),
            "password" => raw.password = v.nullable_string(sink),
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
    if raw.url.is_some() && (raw.host.is_some() || raw.port.is_some()) {
        sink.push(
            sink.key(&top.key("url")),
            "`url` and `host`/`port` are both set; use either url or host/port",
            "remove `url`, or remove `host` and `port`",
        );
    }
    raw
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
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in map {
        let Node::Str(name) = key else {
            sink.push(
                sink.key(v.path),
                format!(
                    "database name `{}` is not a snake_case identifier",
                    key.key_text()
                ),
                "use lowercase ASCII letters, digits and single underscores, starting with a letter",
            );
            continue;
        };
        // Duplicates are kept (and reported by validation); `nth` tells their places apart.
        let nth = seen.iter().filter(|s| **s == name.as_str()).count();
        seen.push(name);
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
    for (key, p, n) in section(map, path, &what, DATABASE_KEYS, DATABASE_KEYS_NOT_YET, sink) {
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
    not_yet: &[&str],
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
            let help = if not_yet.contains(&key.as_str()) {
                format!("`{key}` is not supported yet; remove it")
            } else if let Some(close) = closest(key, valid) {
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
