//! Layers over a compiled config: a runtime YAML file, then `REDIS_*` variables.
//!
//! A layer may change settings but never the set of databases, their numbers, aliases or
//! endpoints, nor the set of endpoints or their kinds: the enum generated at compile time
//! would then describe databases that do not exist where they are looked for.

use std::path::Path;

use crate::error::{ConfigError, ConfigErrors, Sink};
use crate::locate::{KeyPath, Locator};
use crate::model::{Config, Secret, Topology};
use crate::parse::{finish, parse_node, read_file};
use crate::raw::{RawDatabase, RawEndpoint};
use crate::read::{read, Mode};
use crate::{build, validate};

/// Display name of the environment as an error source.
const ENVIRONMENT: &str = "environment";

impl Config {
    /// A runtime YAML file laid over this config (REDIS_DB_CONFIG / builder.config_file), field by field.
    ///
    /// Every key is optional. If it has `redis_databases`, the names, numbers, `alias_of`
    /// and `endpoint` there must equal this config's; only `description`, `max_connections`
    /// and `timeout_seconds` may differ. `endpoints` may list some of the compiled endpoints
    /// to change their settings (address, credentials, nodes, `read_from`, ...), but may not
    /// add one, and no endpoint (the default one included) may change its kind
    /// (standalone, `sentinel`, `cluster`).
    pub fn overlay_file(self, path: &Path) -> Result<Config, ConfigErrors> {
        let text = read_file(path)?;
        // Messages show the absolute path: the variable may hold a relative one.
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.overlay_str(&text, &shown.display().to_string())
    }

    /// [`Config::overlay_file`] for a text; `file` is the name shown in messages.
    pub fn overlay_str(mut self, text: &str, file: &str) -> Result<Config, ConfigErrors> {
        let node = parse_node(text, file)?;
        let locator = Locator::new(text);
        let mut sink = Sink::new(file, Some(&locator));
        let mut raw = read(&node, Mode::Overlay, &mut sink);
        // A runtime file's relative `tls` paths are relative to the working directory: fixed
        // now, so that nothing later takes them for the compiled YAML's.
        if let Ok(cwd) = std::env::current_dir() {
            let sections = std::iter::once(&mut raw.endpoint)
                .chain(raw.endpoints.iter_mut().flatten().map(|e| &mut e.endpoint));
            for tls in sections.filter_map(|e| e.tls.as_mut()) {
                tls.absolute(&cwd);
            }
        }
        if let Some(databases) = &raw.databases {
            same_databases(&self, databases, &raw.broken_databases, &mut sink);
            for entry in databases {
                if let Some(db) = self.databases.iter_mut().find(|d| d.name == entry.name) {
                    if let Some(description) = &entry.description {
                        db.description.clone_from(description);
                    }
                    if entry.max_connections.is_some() {
                        db.max_connections = entry.max_connections;
                    }
                    if entry.timeout.is_some() {
                        db.timeout = entry.timeout;
                    }
                }
            }
        }
        same_kind(
            &self.topology,
            &raw.endpoint,
            &KeyPath::root(),
            "the default endpoint",
            &mut sink,
        );
        build::apply_settings(&mut self, &raw, &mut sink);
        for entry in raw.endpoints.iter().flatten() {
            let path = KeyPath::endpoint(&entry.name, entry.nth);
            let at = sink.key(&path);
            let file = sink.file.to_owned();
            if entry.nth > 0 {
                sink.push(
                    at,
                    format!("duplicate endpoint name `{}`", entry.name),
                    "keep one entry per endpoint",
                );
                continue;
            }
            let Some(compiled) = self.endpoints.iter_mut().find(|e| e.name == entry.name) else {
                let defined: Vec<&str> = self.endpoints.iter().map(|e| e.name.as_str()).collect();
                sink.push(
                    at,
                    format!(
                        "endpoint `{}` is not in the compiled config: a runtime file may not add endpoints",
                        entry.name
                    ),
                    format!(
                        "change only compiled endpoints ({}) in {file}, or add `{}` to the compiled YAML and rebuild",
                        if defined.is_empty() { "there are none".to_owned() } else { defined.join(", ") },
                        entry.name
                    ),
                );
                continue;
            };
            let who = format!("endpoint `{}`", entry.name);
            same_kind(&compiled.topology, &entry.endpoint, &path, &who, &mut sink);
            build::apply_endpoint(
                &mut compiled.connection,
                &mut compiled.topology,
                &mut compiled.topology_refresh,
                &entry.endpoint,
                &path,
                &format!(" of endpoint `{}`", entry.name),
                &mut sink,
            );
        }
        validate::validate(&self, &[], &raw.broken_endpoints, &mut sink);
        finish(self, sink.errors)
    }

    /// REDIS_URL, then REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD (later wins field by field). `get` reads a variable.
    ///
    /// Empty variables count as unset. Errors name the variable and never show a password.
    pub fn overlay_env(
        mut self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let mut errors = Vec::new();
        if !matches!(self.topology, Topology::Standalone) {
            // Ignoring an address variable would connect somewhere the operator did not ask for.
            let key = self.topology.kind();
            for name in ["REDIS_URL", "REDIS_HOST", "REDIS_PORT"] {
                if var(name).is_some() {
                    errors.push(
                        ConfigError::new(
                            ENVIRONMENT,
                            format!(
                                "the default endpoint is {}; {name} cannot apply to it",
                                self.topology.describe()
                            ),
                        )
                        .with_help(format!(
                            "unset {name}, and change `{key}.nodes` (in the YAML or the REDIS_DB_CONFIG file) to point at other nodes; REDIS_USERNAME and REDIS_PASSWORD still set the data nodes' credentials"
                        )),
                    );
                }
            }
            let mut sink = Sink::new(ENVIRONMENT, None);
            sink.errors = errors;
            if let Some(username) = var("REDIS_USERNAME") {
                self.connection.username = Some(username);
            }
            if let Some(password) = var("REDIS_PASSWORD") {
                self.connection.password = Some(Secret::new(password));
            }
            validate::validate(&self, &[], &[], &mut sink);
            return finish(self, sink.errors);
        }
        if let Some(url) = var("REDIS_URL") {
            if let Err(e) = self.connection.apply_url(&url) {
                errors.push(
                    ConfigError::new(
                        ENVIRONMENT,
                        format!("REDIS_URL is not a usable Redis URL: {e}"),
                    )
                    .with_help(
                        "set REDIS_URL=redis://[user:password@]host:port (rediss:// for TLS)",
                    ),
                );
            }
        }
        if let Some(host) = var("REDIS_HOST") {
            self.connection.host = host;
        }
        if let Some(port) = var("REDIS_PORT") {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => self.connection.port = p,
                _ => errors.push(
                    ConfigError::new(
                        ENVIRONMENT,
                        format!(
                            "REDIS_PORT must be a TCP port between 1 and 65535, found `{port}`"
                        ),
                    )
                    .with_help("set REDIS_PORT to a number such as 6379, or unset it"),
                ),
            }
        }
        if let Some(username) = var("REDIS_USERNAME") {
            self.connection.username = Some(username);
        }
        if let Some(password) = var("REDIS_PASSWORD") {
            self.connection.password = Some(Secret::new(password));
        }
        let mut sink = Sink::new(ENVIRONMENT, None);
        sink.errors = errors;
        validate::validate(&self, &[], &[], &mut sink);
        finish(self, sink.errors)
    }
}

/// Reports every key of a runtime file's endpoint that would change its compiled kind.
fn same_kind(
    compiled: &Topology,
    overlay: &RawEndpoint,
    path: &KeyPath,
    who: &str,
    sink: &mut Sink<'_>,
) {
    let file = sink.file.to_owned();
    let address = overlay
        .kind_keys()
        .into_iter()
        .find(|k| !matches!(*k, "sentinel" | "cluster"));
    let given = [
        address.map(|k| (k, "standalone")),
        overlay.sentinel.as_ref().map(|_| ("sentinel", "sentinel")),
        overlay.cluster.as_ref().map(|_| ("cluster", "cluster")),
    ];
    for (key, kind) in given.into_iter().flatten() {
        if kind == compiled.kind() {
            continue;
        }
        sink.push(
            sink.key(&path.key(key)),
            format!(
                "{who} is {} in the compiled config but {file} gives it `{key}`: a runtime file may not change an endpoint's kind",
                compiled.describe()
            ),
            match compiled {
                Topology::Standalone => format!("remove `{key}` from {file}; a different kind of deployment needs a change to the compiled YAML and a rebuild"),
                other => format!(
                    "remove `{key}` from {file}; to move {who}, change its `{}.nodes`",
                    other.kind()
                ),
            },
        );
    }
}

/// Reports every difference between the overlay's databases and the compiled ones.
fn same_databases(base: &Config, overlay: &[RawDatabase], broken: &[String], sink: &mut Sink<'_>) {
    let file = sink.file.to_owned();
    for entry in overlay {
        let at = sink.key(&KeyPath::database(&entry.name, entry.nth));
        if entry.nth > 0 {
            sink.push(
                at,
                format!("duplicate database name `{}`", entry.name),
                "keep one entry per database",
            );
            continue;
        }
        let Some(compiled) = base.databases.iter().find(|d| d.name == entry.name) else {
            sink.push(
                at,
                format!(
                    "database `{}` is not in the compiled config: a runtime file may not add databases",
                    entry.name
                ),
                format!("remove `{}` from {file}, or add it to the compiled YAML and rebuild", entry.name),
            );
            continue;
        };
        if let Some(db) = entry.db {
            if db != i128::from(compiled.db) {
                sink.push(
                    sink.value(&KeyPath::database(&entry.name, 0).key("db")),
                    format!(
                        "database `{}` has db {} in the compiled config but {db} in {file}: a runtime file may not renumber databases",
                        entry.name, compiled.db
                    ),
                    format!("set `db: {}` under `{}` in {file}", compiled.db, entry.name),
                );
            }
        }
        if entry.alias_of != compiled.alias_of {
            let show = |a: &Option<String>| match a {
                Some(t) => format!("an alias of `{t}`"),
                None => "not an alias".to_owned(),
            };
            let fix = match &compiled.alias_of {
                Some(t) => format!("write `alias_of: {t}` under `{}` in {file}", entry.name),
                None => format!("remove `alias_of` under `{}` in {file}", entry.name),
            };
            sink.push(
                sink.value(&KeyPath::database(&entry.name, 0).key("alias_of")),
                format!(
                    "database `{}` is {} in the compiled config but {} in {file}: a runtime file may not change aliases",
                    entry.name,
                    show(&compiled.alias_of),
                    show(&entry.alias_of)
                ),
                fix,
            );
        }
    }
    for entry in overlay {
        let Some(compiled) = base.databases.iter().find(|d| d.name == entry.name) else {
            continue;
        };
        if entry.nth > 0 || entry.endpoint == compiled.endpoint {
            continue;
        }
        let show = |e: &Option<String>| match e {
            Some(e) => format!("on endpoint `{e}`"),
            None => "on the default endpoint".to_owned(),
        };
        let fix = match &compiled.endpoint {
            Some(e) => format!("write `endpoint: {e}` under `{}` in {file}", entry.name),
            None => format!("remove `endpoint` under `{}` in {file}", entry.name),
        };
        sink.push(
            sink.value(&KeyPath::database(&entry.name, 0).key("endpoint")),
            format!(
                "database `{}` is {} in the compiled config but {} in {file}: a runtime file may not move databases between endpoints",
                entry.name,
                show(&compiled.endpoint),
                show(&entry.endpoint)
            ),
            fix,
        );
    }
    for compiled in &base.databases {
        let present =
            overlay.iter().any(|e| e.name == compiled.name) || broken.contains(&compiled.name);
        if !present {
            sink.push(
                sink.key(&KeyPath::root().key("redis_databases")),
                format!(
                    "database `{}` of the compiled config is missing from {file}: a runtime file may not remove databases",
                    compiled.name
                ),
                format!(
                    "add `{}: {{ db: {} }}` to {file}, or drop `redis_databases` from it entirely",
                    compiled.name, compiled.db
                ),
            );
        }
    }
}

impl Config {
    /// Checks a config changed in code (e.g. by the builder's `configure`) against every rule
    /// a file must pass; `origin` names the source in messages. Sizes and durations must be
    /// positive (`retry.attempts: 0` and `health_check_interval: None` are valid).
    pub fn check(self, origin: &str) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut positive = |what: &str, ok: bool| {
            if !ok {
                errors.push(
                    ConfigError::new(origin, format!("`{what}` must be greater than zero"))
                        .with_help(format!("set `{what}` to a positive value")),
                );
            }
        };
        positive("timeout", !self.timeout.is_zero());
        positive("connect_timeout", !self.connect_timeout.is_zero());
        positive("max_connections", self.max_connections > 0);
        positive("retry_delay", !self.retry.delay.is_zero());
        positive("retry_max_delay", !self.retry.max_delay.is_zero());
        positive("idle_timeout", !self.idle_timeout.is_zero());
        positive("max_databases", self.max_databases > 0);
        positive("readiness.max_wait", !self.readiness.max_wait.is_zero());
        positive(
            "readiness.poll_interval",
            !self.readiness.poll_interval.is_zero(),
        );
        positive(
            "circuit_breaker.failure_threshold",
            self.circuit_breaker.failure_threshold > 0,
        );
        positive(
            "circuit_breaker.reset_timeout",
            !self.circuit_breaker.reset_timeout.is_zero(),
        );
        positive("keepalive.idle", !self.keepalive.idle.is_zero());
        positive("keepalive.interval", !self.keepalive.interval.is_zero());
        positive("keepalive.count", self.keepalive.count > 0);
        positive(
            "health_check_interval",
            self.health_check_interval.is_none_or(|d| !d.is_zero()),
        );
        for db in &self.databases {
            positive(
                &format!("redis_databases.{}.max_connections", db.name),
                db.max_connections != Some(0),
            );
            positive(
                &format!("redis_databases.{}.timeout_seconds", db.name),
                db.timeout.is_none_or(|d| !d.is_zero()),
            );
        }
        let endpoints = std::iter::once(("the default endpoint".to_owned(), &self.topology)).chain(
            self.endpoints
                .iter()
                .map(|e| (format!("endpoint `{}`", e.name), &e.topology)),
        );
        for (who, topology) in endpoints {
            for (message, help) in topology_problems(&who, topology) {
                errors.push(ConfigError::new(origin, message).with_help(help));
            }
        }
        let mut sink = Sink::new(origin, None);
        sink.errors = errors;
        validate::validate(&self, &[], &[], &mut sink);
        finish(self, sink.errors)
    }
}

/// What a file could not express but code can: empty names, no nodes, port 0.
fn topology_problems(who: &str, topology: &Topology) -> Vec<(String, String)> {
    let (kind, nodes) = match topology {
        Topology::Standalone => return Vec::new(),
        Topology::Sentinel(s) => ("sentinel", &s.nodes),
        Topology::Cluster(c) => ("cluster", &c.nodes),
    };
    let mut out = Vec::new();
    if let Topology::Sentinel(s) = topology {
        if s.master_name.trim().is_empty() {
            out.push((
                format!("`sentinel.master_name` of {who} is empty"),
                "set `master_name` to the name of the master the sentinels monitor".to_owned(),
            ));
        }
    }
    if nodes.is_empty() {
        out.push((
            format!("`{kind}.nodes` of {who} is empty"),
            format!("list at least one `{kind}` node"),
        ));
    }
    for node in nodes {
        if node.host.trim().is_empty() || node.port == 0 {
            out.push((
                format!("`{kind}.nodes` of {who} has an unusable address `{node}`"),
                "give every node a host and a port between 1 and 65535".to_owned(),
            ));
        }
    }
    out
}
