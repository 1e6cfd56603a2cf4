//! Rules that relate values to each other: names, duplicates, numbers, aliases, endpoints.
//!
//! They run on the resolved [`Config`] so that they can run again after every layer
//! (runtime file, environment): a layer may change `max_databases`, for example. The one
//! exception, [`endpoint_keys`], needs to know which keys a file gave, so it runs on each
//! file's endpoints as read.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Sink;
use crate::locate::KeyPath;
use crate::model::{Config, ConnectionSettings, Database, Topology, DEFAULT_ENDPOINT};
use crate::names;
use crate::raw::RawEndpoint;

/// Checks `cfg`; problems go to `sink`. `broken` (databases) and `broken_endpoints` name
/// entries that were reported and dropped earlier, so that references to them do not raise
/// follow-on errors.
pub(crate) fn validate(
    cfg: &Config,
    broken: &[String],
    broken_endpoints: &[String],
    sink: &mut Sink<'_>,
) {
    endpoint_names(cfg, sink);
    tls_rules(cfg, sink);
    let dbs = &cfg.databases;
    // Occurrence index of each entry's name, to place duplicates at their own line.
    let mut nth_of = Vec::with_capacity(dbs.len());
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, db) in dbs.iter().enumerate() {
        nth_of.push(dbs[..i].iter().filter(|d| d.name == db.name).count());
        first_of.entry(db.name.as_str()).or_insert(i);
    }
    let place = |sink: &Sink<'_>, i: usize| sink.key(&KeyPath::database(&dbs[i].name, nth_of[i]));

    let mut variants: HashMap<String, &str> = HashMap::new();
    for (i, db) in dbs.iter().enumerate() {
        if nth_of[i] > 0 {
            let first = sink.key(&KeyPath::database(&db.name, 0));
            let first = first.map_or(String::new(), |at| format!(" (first at line {})", at.line));
            sink.push(
                place(sink, i),
                format!("duplicate database name `{}`{first}", db.name),
                "each name may appear once; rename or remove one of them",
            );
            continue;
        }
        if let Some((message, help)) = names::check(&db.name) {
            sink.push(place(sink, i), message, help);
            continue;
        }
        let variant = names::variant_name(&db.name);
        match variants.get(&variant) {
            Some(other) => sink.push(
                place(sink, i),
                format!(
                    "databases `{other}` and `{}` both map to the enum variant `{variant}`",
                    db.name
                ),
                format!(
                    "rename `{}` so that its UpperCamelCase form differs",
                    db.name
                ),
            ),
            None => {
                variants.insert(variant, &db.name);
            }
        }
    }

    for (i, db) in dbs.iter().enumerate() {
        if db.db >= cfg.max_databases {
            db_out_of_range(sink, &db.name, nth_of[i], db.db.into(), cfg.max_databases);
        }
    }

    for (i, db) in dbs.iter().enumerate() {
        let Some(target_name) = &db.alias_of else {
            continue;
        };
        let at = sink.value(&KeyPath::database(&db.name, nth_of[i]).key("alias_of"));
        let line = format!("`alias_of: {target_name}` of database `{}`", db.name);
        if target_name == &db.name {
            sink.push(
                at,
                format!("{line} makes it an alias of itself"),
                "remove `alias_of`",
            );
            continue;
        }
        let Some(&t) = first_of.get(target_name.as_str()) else {
            if !broken.contains(target_name) {
                let valid: Vec<&str> = dbs.iter().map(|d| d.name.as_str()).collect();
                sink.push(
                    at,
                    format!("{line} names an unknown database"),
                    format!("alias_of must name one of: {}", valid.join(", ")),
                );
            }
            continue;
        };
        let target = &dbs[t];
        if let Some(next) = &target.alias_of {
            sink.push(
                at,
                format!("{line} names `{target_name}`, which is itself an alias (of `{next}`)"),
                format!("aliases cannot chain: write `alias_of: {next}`"),
            );
        } else if target.db != db.db {
            sink.push(
                at,
                format!(
                    "{line}: `{}` has db {} but `{target_name}` has db {}",
                    db.name, db.db, target.db
                ),
                format!(
                    "an alias shares its target's number: set `db: {}` under `{}`",
                    target.db, db.name
                ),
            );
        } else if target.endpoint != db.endpoint {
            let fix = match &target.endpoint {
                Some(e) => format!("set `endpoint: {e}` under `{}`", db.name),
                None => format!("remove `endpoint` under `{}`", db.name),
            };
            sink.push(
                at,
                format!(
                    "{line}: `{}` is on {} but `{target_name}` is on {}",
                    db.name,
                    endpoint_words(db),
                    endpoint_words(target)
                ),
                format!("an alias lives on its target's endpoint: {fix}"),
            );
        }
    }

    for (i, db) in dbs.iter().enumerate() {
        let Some(name) = &db.endpoint else { continue };
        if cfg.endpoint(name).is_some() || broken_endpoints.contains(name) {
            continue;
        }
        let defined: Vec<&str> = cfg.endpoints.iter().map(|e| e.name.as_str()).collect();
        let help = if defined.is_empty() {
            format!(
                "no endpoints are defined: add `endpoints:` with an entry `{name}:` (e.g. `url: redis://host:6379`), or remove `endpoint` to use the default endpoint"
            )
        } else {
            format!(
                "endpoint must name one of: {} (defined under `endpoints:`); remove it to use the default endpoint",
                defined.join(", ")
            )
        };
        sink.push(
            sink.value(&KeyPath::database(&db.name, nth_of[i]).key("endpoint")),
            format!(
                "`endpoint: {name}` of database `{}` names an unknown endpoint",
                db.name
            ),
            help,
        );
    }

    // A Redis Cluster has only db 0 (unless its servers support numbered databases).
    for (i, db) in dbs.iter().enumerate() {
        if db.db == 0 || db.alias_of.is_some() || nth_of[i] > 0 {
            continue;
        }
        let Some(Topology::Cluster(cluster)) = topology_of(cfg, db) else {
            continue;
        };
        if cluster.numbered_databases {
            continue;
        }
        let under = match &db.endpoint {
            Some(e) => format!("`endpoints.{e}.cluster`"),
            None => "`cluster`".to_owned(),
        };
        sink.push(
            sink.value(&KeyPath::database(&db.name, nth_of[i]).key("db")),
            format!(
                "database `{}` has db {}, but it is on {}, a Redis Cluster, which has only db 0",
                db.name,
                db.db,
                endpoint_words(db)
            ),
            format!(
                "give each logical database its own cluster endpoint (an entry under `endpoints:`, then `endpoint: <name>` and `db: 0` under `{}`), or set `numbered_databases: true` under {under} if the servers support numbered databases in cluster mode (Valkey 9+)",
                db.name
            ),
        );
    }

    // Two names on one number of one endpoint must be declared: an accidental clash would
    // mix two components' keys in one Redis database.
    let mut owner_of: HashMap<(Option<&str>, u32), usize> = HashMap::new();
    for (i, db) in dbs.iter().enumerate() {
        if db.alias_of.is_some() || nth_of[i] > 0 {
            continue;
        }
        match owner_of.get(&(db.endpoint.as_deref(), db.db)) {
            Some(&o) => {
                let owner = &dbs[o].name;
                let on = match &db.endpoint {
                    Some(e) => format!(" on endpoint `{e}`"),
                    None => String::new(),
                };
                let help = match topology_of(cfg, db) {
                    Some(Topology::Cluster(c)) if !c.numbered_databases => format!(
                        "add `alias_of: {owner}` under `{}` if they are meant to share db {} of the cluster on {}, else put `{}` on its own cluster endpoint (an entry under `endpoints:`, then `endpoint: <name>` under `{}`)",
                        db.name, db.db, endpoint_words(db), db.name, db.name
                    ),
                    _ => format!(
                        "add `alias_of: {owner}` under `{}` if they are meant to share db {}{on}, else give `{}` a free number",
                        db.name, db.db, db.name
                    ),
                };
                sink.push(
                    sink.value(&KeyPath::database(&db.name, nth_of[i]).key("db")),
                    format!(
                        "databases `{owner}` and `{}` both use db {}{on}; declare the intended one as an alias: `alias_of: {owner}` under `{}`",
                        db.name, db.db, db.name
                    ),
                    help,
                );
            }
            None => {
                owner_of.insert((db.endpoint.as_deref(), db.db), i);
            }
        }
    }

    if cfg.retry.max_delay < cfg.retry.delay {
        sink.push(
            sink.value(&KeyPath::root().key("retry_max_delay")),
            format!(
                "`retry_max_delay` ({}s) is shorter than `retry_delay` ({}s)",
                cfg.retry.max_delay.as_secs_f64(),
                cfg.retry.delay.as_secs_f64()
            ),
            "make `retry_max_delay` at least `retry_delay`",
        );
    }
}

/// Rules on the keys of one endpoint as written (which keys were given, not what they
/// resolve to): `url` or `host`/`port`, and exactly one kind of deployment. `name` is `None`
/// for the default endpoint (the top level); `require_address` is false for a runtime file,
/// which may leave an endpoint's address as it was.
pub(crate) fn endpoint_keys(
    raw: &RawEndpoint,
    path: &KeyPath,
    name: Option<&str>,
    require_address: bool,
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
    if let (Some(name), true, true) = (name, require_address, no_address) {
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

/// `db` outside `0..max_databases`; placed at the number, else at `max_databases`.
pub(crate) fn db_out_of_range(sink: &mut Sink<'_>, name: &str, nth: usize, db: i128, max: u32) {
    let at = sink
        .locator
        .and_then(|l| {
            let db_path = KeyPath::database(name, nth).key("db");
            // Only an exact hit counts here: the fallback chain would land on `redis_databases`.
            l.value(&db_path).filter(|_| l.has(&db_path))
        })
        .or_else(|| sink.value(&KeyPath::root().key("max_databases")));
    sink.push(
        at,
        format!("database `{name}` has db {db}, outside 0..{max} (max_databases: {max})"),
        format!(
            "use a number from 0 to {} for `{name}`, or raise `max_databases` to the server's `databases` setting",
            max.saturating_sub(1)
        ),
    );
}

/// The endpoints with their names (`None` = the default endpoint), for rules on their keys.
fn endpoints_of(cfg: &Config) -> impl Iterator<Item = (Option<&str>, &ConnectionSettings)> {
    std::iter::once((None, &cfg.connection)).chain(
        cfg.endpoints
            .iter()
            .map(|e| (Some(e.name.as_str()), &e.connection)),
    )
}

/// The path of the `tls` section of an endpoint (`None` = the top level).
fn tls_section(endpoint: Option<&str>) -> KeyPath {
    match endpoint {
        Some(name) => KeyPath::endpoint(name, 0).key("tls"),
        None => KeyPath::root().key("tls"),
    }
}

/// " of endpoint `name`" or "" (the top level), to complete key labels.
fn of_endpoint(endpoint: Option<&str>) -> String {
    endpoint.map_or(String::new(), |name| format!(" of endpoint `{name}`"))
}

/// `tls`: a client certificate comes with its key, and `insecure` does not pretend to use a CA.
fn tls_rules(cfg: &Config, sink: &mut Sink<'_>) {
    for (name, connection) in endpoints_of(cfg) {
        let tls = &connection.tls_options;
        let section = tls_section(name);
        let of = of_endpoint(name);
        let under = match name {
            Some(name) => format!("`endpoints.{name}.tls`"),
            None => "`tls`".to_owned(),
        };
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => sink.push(
                sink.value(&section.key("cert_file")),
                format!("`tls.cert_file`{of} is set without `tls.key_file`: mutual TLS needs both the client certificate and its private key"),
                format!("add `key_file: path/to/client.key` under {under}, or remove `cert_file`"),
            ),
            (None, Some(_)) => sink.push(
                sink.value(&section.key("key_file")),
                format!("`tls.key_file`{of} is set without `tls.cert_file`: mutual TLS needs both the client certificate and its private key"),
                format!("add `cert_file: path/to/client.pem` under {under}, or remove `key_file`"),
            ),
            _ => {}
        }
        if tls.insecure && tls.ca_file.is_some() {
            sink.push(
                sink.value(&section.key("insecure")),
                format!("`tls.insecure: true`{of} skips every check of the server's certificate, so `tls.ca_file` would be ignored"),
                format!("remove `insecure` under {under} to verify the server against `ca_file` (recommended), or remove `ca_file`"),
            );
        }
    }
}

/// Compile-time rule: every `tls` file exists. Relative paths are resolved against `base`
/// (the YAML's directory).
pub(crate) fn tls_files_exist(cfg: &Config, base: &Path, sink: &mut Sink<'_>) {
    for (name, connection) in endpoints_of(cfg) {
        let section = tls_section(name);
        let of = of_endpoint(name);
        for (key, path) in connection.tls_options.files() {
            let resolved = base.join(path);
            let problem = match std::fs::metadata(&resolved) {
                Ok(meta) if meta.is_file() => continue,
                Ok(_) => "it is not a file".to_owned(),
                Err(e) => e.to_string(),
            };
            let help = if path.is_relative() {
                format!(
                    "fix the path or create the file; a relative path is resolved from the YAML's directory ({}) when building and from the working directory when a runtime file or the builder gives it",
                    base.display()
                )
            } else {
                "fix the path or create the file".to_owned()
            };
            sink.push(
                sink.value(&section.key(key)),
                format!(
                    "`tls.{key}`{of} names {}, which cannot be read: {problem}",
                    resolved.display()
                ),
                help,
            );
        }
    }
}

/// Names of `endpoints`: snake_case, unique, not `default`.
fn endpoint_names(cfg: &Config, sink: &mut Sink<'_>) {
    for (i, endpoint) in cfg.endpoints.iter().enumerate() {
        let name = &endpoint.name;
        let nth = cfg.endpoints[..i]
            .iter()
            .filter(|e| &e.name == name)
            .count();
        let at = sink.key(&KeyPath::endpoint(name, nth));
        if nth > 0 {
            let first = sink.key(&KeyPath::endpoint(name, 0));
            let first = first.map_or(String::new(), |at| format!(" (first at line {})", at.line));
            sink.push(
                at,
                format!("duplicate endpoint name `{name}`{first}"),
                "each endpoint name may appear once; rename or remove one of them",
            );
        } else if !names::is_snake_case(name) {
            sink.push(
                at,
                format!("endpoint name `{name}` is not a snake_case identifier"),
                "use lowercase ASCII letters, digits and single underscores, starting with a letter (e.g. `vectors`)",
            );
        } else if name == DEFAULT_ENDPOINT {
            sink.push(
                at,
                format!("endpoint name `{DEFAULT_ENDPOINT}` is reserved for the top-level connection keys"),
                "choose another name; databases without `endpoint:` already use the default endpoint",
            );
        }
    }
}

/// The topology `db` lives on; `None` when its `endpoint` names no defined endpoint.
fn topology_of<'a>(cfg: &'a Config, db: &Database) -> Option<&'a Topology> {
    match &db.endpoint {
        Some(name) => cfg.endpoint(name).map(|e| &e.topology),
        None => Some(&cfg.topology),
    }
}

/// "the default endpoint" or "endpoint `name`".
fn endpoint_words(db: &Database) -> String {
    match &db.endpoint {
        Some(name) => format!("endpoint `{name}`"),
        None => "the default endpoint".to_owned(),
    }
}
