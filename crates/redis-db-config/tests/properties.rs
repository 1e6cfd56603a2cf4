//! Bad input never panics: arbitrary bytes, arbitrary YAML-shaped documents (nested maps, lists
//! and scalars, the known keys with random values) and random environment values go into
//! `parse_str`, `Config::overlay_str` and `Config::overlay_env`; each must return `Ok` or `Err`.
//!
//! `PROPTEST_CASES=<n>` runs more cases than the few hundred per property kept for CI.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use redis_db_config::{parse_str, Config};

/// A valid base to overlay onto.
const BASE: &str = "\
redis_databases:
  main:
    db: 0
  jobs:
    db: 3
    timeout_seconds: 2
  jobs_monitor:
    db: 3
    alias_of: jobs
";

const TOP_KEYS: &[&str] = &[
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
    "sentinel",
    "cluster",
    "endpoints",
];
const DATABASE_KEYS: &[&str] = &[
    "db",
    "description",
    "alias_of",
    "max_connections",
    "timeout_seconds",
    "endpoint",
];
const NESTED_KEYS: &[&str] = &[
    "max_wait",
    "poll_interval",
    "failure_threshold",
    "reset_timeout",
    "idle",
    "interval",
    "count",
];
const DATABASE_NAMES: &[&str] = &[
    "main",
    "jobs",
    "jobs_monitor",
    "archive",
    "Main",
    "self",
    "type",
    "a-b",
    "",
    "_x",
    "é",
];
const ENV_NAMES: &[&str] = &[
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_DB_CONFIG",
];

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(192);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn base() -> Config {
    parse_str(BASE, "base.yaml").expect("the base parses")
}

/// Scalars as YAML writes them, the awkward ones included.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        (-5i32..100000).prop_map(|n| n.to_string()),
        (0.0f64..100.0).prop_map(|f| f.to_string()),
        Just("~".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("no".to_owned()),
        Just(".inf".to_owned()),
        Just("-.inf".to_owned()),
        Just(".nan".to_owned()),
        Just("1e400".to_owned()),
        Just("0x1F".to_owned()),
        Just("0o17".to_owned()),
        Just("''".to_owned()),
        Just("\"\"".to_owned()),
        Just("!!binary aGVsbG8=".to_owned()),
        Just("&a 1".to_owned()),
        Just("*a".to_owned()),
        Just("redis://u:p@h:1/2".to_owned()),
        Just("rediss://[::1]:6380".to_owned()),
        Just("redis://:@:0".to_owned()),
        "[a-z_]{0,12}",
        "\"[ -~]{0,20}\"",
        any::<String>().prop_map(|s| format!("{s:?}")),
    ]
}

/// A YAML value as a tree; rendered in block style, with flow style at the leaves.
#[derive(Clone, Debug)]
enum Node {
    Scalar(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
    Flow(String),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(TOP_KEYS).prop_map(str::to_owned),
        3 => proptest::sample::select(DATABASE_KEYS).prop_map(str::to_owned),
        3 => proptest::sample::select(NESTED_KEYS).prop_map(str::to_owned),
        3 => proptest::sample::select(DATABASE_NAMES).prop_map(|s| format!("{s:?}")),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,10}",
        1 => scalar(),
        1 => Just("<<".to_owned()),
        1 => Just("? complex".to_owned()),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        6 => scalar().prop_map(Node::Scalar),
        1 => proptest::collection::vec(scalar(), 0..4).prop_map(|v| Node::Flow(format!("[{}]", v.join(", ")))),
        1 => proptest::collection::vec((key(), scalar()), 0..4)
            .prop_map(|v| Node::Flow(format!("{{{}}}", v.iter().map(|(k, s)| format!("{k}: {s}")).collect::<Vec<_>>().join(", ")))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Node::List),
            proptest::collection::vec((key(), inner), 0..6).prop_map(Node::Map),
        ]
    })
}

fn render(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Scalar(s) | Node::Flow(s) => {
            out.push(' ');
            out.push_str(s);
            out.push('\n');
        }
        Node::List(items) if items.is_empty() => out.push_str(" []\n"),
        Node::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        Node::List(items) => {
            out.push('\n');
            for item in items {
                out.push_str(&pad);
                out.push('-');
                render(item, indent + 2, out);
            }
        }
        Node::Map(entries) => {
            out.push('\n');
            for (key, value) in entries {
                out.push_str(&pad);
                out.push_str(key);
                out.push(':');
                render(value, indent + 2, out);
            }
        }
    }
}

/// A whole document: a top-level map, usually with a plausible `redis_databases` section.
fn document() -> impl Strategy<Value = String> {
    let database = proptest::collection::vec(
        (
            proptest::sample::select(DATABASE_KEYS),
            prop_oneof![3 => scalar().prop_map(Node::Scalar), 1 => node()],
        ),
        0..5,
    );
    let databases =
        proptest::collection::vec((proptest::sample::select(DATABASE_NAMES), database), 0..6);
    let settings = proptest::collection::vec((key(), node()), 0..8);
    (proptest::option::of(databases), settings, any::<bool>()).prop_map(
        |(databases, settings, databases_first)| {
            let mut top = Vec::new();
            if let Some(databases) = databases {
                let entries = databases
                    .into_iter()
                    .map(|(name, fields)| {
                        let fields = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                        (name.to_owned(), Node::Map(fields))
                    })
                    .collect();
                top.push(("redis_databases".to_owned(), Node::Map(entries)));
            }
            if databases_first {
                top.extend(settings);
            } else {
                top.splice(0..0, settings);
            }
            let mut out = String::new();
            render(&Node::Map(top), 0, &mut out);
            out
        },
    )
}

/// A value for `key`: usually of the right type and range, sometimes any scalar.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let good: BoxedStrategy<String> = match key {
        "host" => Just("localhost".to_owned()).boxed(),
        "port" => (0u32..70000).prop_map(|n| n.to_string()).boxed(),
        "url" => Just("redis://u:p@localhost:6380".to_owned()).boxed(),
        "username" | "password" => "[a-z]{0,6}".boxed(),
        "log_commands" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        "log_level" => {
            proptest::sample::select(&["debug", "info", "warn", "error", "trace", "loud"][..])
                .prop_map(str::to_owned)
                .boxed()
        }
        "max_connections" | "retry_attempts" | "max_databases" | "failure_threshold" | "count" => {
            (0u32..40).prop_map(|n| n.to_string()).boxed()
        }
        _ => prop_oneof![
            (0.0f64..5.0).prop_map(|f| format!("{f:.3}")),
            (0u32..10).prop_map(|n| n.to_string())
        ]
        .boxed(),
    };
    prop_oneof![9 => good, 1 => scalar()].boxed()
}

fn setting(keys: &'static [&'static str]) -> impl Strategy<Value = (&'static str, String)> {
    proptest::sample::select(keys).prop_flat_map(|key| (Just(key), value_for(key)))
}

/// Documents close to real files: valid names, small numbers, the known keys. Many of these
/// parse, so the builder and the validation rules see random but well-formed settings.
fn plausible() -> impl Strategy<Value = String> {
    const NAMES: &[&str] = &["main", "jobs", "jobs_monitor", "archive", "cache"];
    const SETTINGS: &[&str] = &[
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
    ];
    let database = (
        0u32..20,
        proptest::option::weighted(0.15, proptest::sample::select(NAMES)),
        proptest::option::weighted(0.3, value_for("timeout_seconds")),
        proptest::option::weighted(0.3, value_for("max_connections")),
    );
    let databases = proptest::collection::vec(database, 1..5);
    let settings = proptest::collection::vec(setting(SETTINGS), 0..5);
    let nested = proptest::collection::vec(
        (
            proptest::sample::select(&["readiness", "circuit_breaker", "keepalive"][..]),
            setting(NESTED_KEYS),
        ),
        0..4,
    );
    (databases, settings, nested).prop_map(move |(databases, settings, nested)| {
        let mut out = String::from("redis_databases:\n");
        for (i, (db, alias, timeout, pool)) in databases.iter().enumerate() {
            out.push_str(&format!("  {}:\n    db: {db}\n", NAMES[i]));
            if let Some(alias) = alias {
                out.push_str(&format!("    alias_of: {alias}\n"));
            }
            if let Some(timeout) = timeout {
                out.push_str(&format!("    timeout_seconds: {timeout}\n"));
            }
            if let Some(pool) = pool {
                out.push_str(&format!("    max_connections: {pool}\n"));
            }
        }
        for (key, value) in &settings {
            out.push_str(&format!("{key}: {value}\n"));
        }
        let mut sections: Vec<&str> = Vec::new();
        for (section, _) in &nested {
            if !sections.contains(section) {
                sections.push(section);
            }
        }
        for section in sections {
            out.push_str(&format!("{section}:\n"));
            for (_, (key, value)) in nested.iter().filter(|(s, _)| *s == section) {
                out.push_str(&format!("  {key}: {value}\n"));
            }
        }
        out
    })
}

/// Small edits of a valid document: the shapes closest to real mistakes.
fn mutated_base() -> impl Strategy<Value = String> {
    (0..BASE.len(), 0..8usize, "[ -~\\n\\t]{0,8}").prop_map(|(at, cut, insert)| {
        let mut bytes = BASE.as_bytes().to_vec();
        let end = (at + cut).min(bytes.len());
        bytes.splice(at..end, insert.bytes());
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        scalar(),
        any::<String>(),
        "redis(s)?://([a-z:@]{0,8})?[a-z0-9.\\[\\]:]{0,20}(/[0-9a-z]{0,4})?",
        Just("redis://".to_owned()),
        Just("redis://:65536".to_owned()),
        Just("redis://h:0/99999999999999999999".to_owned()),
        Just("unix:///tmp/x.sock".to_owned()),
        Just("http://h".to_owned()),
        Just("65535".to_owned()),
        Just("-1".to_owned()),
        Just("\u{0}".to_owned()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_str(&text, "fuzz.yaml");
        let _ = base().overlay_str(&text, "overlay.yaml");
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_str(&text, "fuzz.yaml");
        let _ = base().overlay_str(&text, "overlay.yaml");
    }

    #[test]
    fn yaml_shaped_documents_never_panic(text in document()) {
        if let Ok(config) = parse_str(&text, "fuzz.yaml") {
            // What parses must survive a further overlay of itself.
            let _ = config.overlay_str(&text, "again.yaml");
        }
        let _ = base().overlay_str(&text, "overlay.yaml");
    }

    #[test]
    fn plausible_documents_never_panic(text in plausible()) {
        if let Ok(config) = parse_str(&text, "plausible.yaml") {
            let _ = config.overlay_str(&text, "again.yaml");
        }
        let _ = base().overlay_str(&text, "overlay.yaml");
    }

    #[test]
    fn near_valid_documents_never_panic(text in mutated_base()) {
        let _ = parse_str(&text, "fuzz.yaml");
        let _ = base().overlay_str(&text, "overlay.yaml");
    }

    #[test]
    fn random_environments_never_panic(
        values in proptest::collection::vec((proptest::sample::select(ENV_NAMES), env_value()), 0..8)
    ) {
        let env = |name: &str| values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        let _ = base().overlay_env(env);
    }

    #[test]
    fn layers_in_sequence_never_panic(
        text in prop_oneof![document(), plausible()],
        values in proptest::collection::vec((proptest::sample::select(ENV_NAMES), env_value()), 0..6)
    ) {
        let env = |name: &str| values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        if let Ok(config) = base().overlay_str(&text, "overlay.yaml") {
            let _ = config.overlay_env(env);
        }
    }
}
