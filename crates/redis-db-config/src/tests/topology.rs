//! CONTRACT section 6: sentinel, cluster and named endpoints.

use std::collections::HashMap;

use super::{error_at, errors, with};
use crate::{
    parse_str, Cluster, Config, ConfigError, ConfigErrors, NodeAddress, ReadFrom, Secret, Sentinel,
    Topology,
};

fn node(host: &str, port: u16) -> NodeAddress {
    NodeAddress {
        host: host.to_owned(),
        port,
    }
}

fn valid(text: &str) -> Config {
    match parse_str(text, "t.yaml") {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

const SENTINEL: &str = "\
redis_databases:
  main:
    db: 0
  queue:
    db: 3
username: app
password: data-secret
sentinel:
  master_name: mymaster
  nodes: [\"10.0.0.1:26379\", \"sentinel-2:26380\", \"[::1]:26381\"]
  username: watcher
  password: sentinel-secret
  read_from: Replica
";

#[test]
fn full_sentinel_config() {
    let cfg = valid(SENTINEL);
    assert_eq!(
        cfg.topology,
        Topology::Sentinel(Sentinel {
            master_name: "mymaster".to_owned(),
            nodes: vec![
                node("10.0.0.1", 26379),
                node("sentinel-2", 26380),
                node("::1", 26381)
            ],
            username: Some("watcher".to_owned()),
            password: Some(Secret::new("sentinel-secret")),
            read_from: ReadFrom::Replica,
        })
    );
    // Top-level credentials are the data nodes' credentials.
    assert_eq!(cfg.connection.username.as_deref(), Some("app"));
    assert_eq!(
        cfg.connection.password.as_ref().map(Secret::expose),
        Some("data-secret")
    );
    assert!(cfg.endpoints.is_empty());
    let (_, topology) = cfg.endpoint_of(&cfg.databases[1]);
    assert_eq!(topology.kind(), "sentinel");
    assert_eq!(cfg.endpoint_name_of(&cfg.databases[1]), "default");
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("sentinel-secret"), "{debug}");
    assert!(!debug.contains("data-secret"), "{debug}");

    // Optional keys take their defaults; block-style node lists work too.
    let cfg = valid(&with(
        "sentinel:\n  master_name: m\n  nodes:\n    - \"h:26379\"\n    - h2:26379\n",
    ));
    let Topology::Sentinel(s) = &cfg.topology else {
        panic!("{:?}", cfg.topology)
    };
    assert_eq!(s.read_from, ReadFrom::Master);
    assert_eq!((s.username.as_ref(), s.password.as_ref()), (None, None));
    assert_eq!(s.nodes, vec![node("h", 26379), node("h2", 26379)]);
}

const CLUSTER: &str = "\
redis_databases:
  main:
    db: 0
  sessions:
    db: 0
    endpoint: sessions
  main_view:
    db: 0
    alias_of: main
password: pw
cluster:
  nodes: [\"127.0.0.1:7000\", \"127.0.0.1:7001\"]
  read_from: replica
endpoints:
  sessions:
    cluster:
      nodes: [\"10.1.0.1:7000\"]
      numbered_databases: false
";

#[test]
fn full_cluster_config() {
    let cfg = valid(CLUSTER);
    assert_eq!(
        cfg.topology,
        Topology::Cluster(Cluster {
            nodes: vec![node("127.0.0.1", 7000), node("127.0.0.1", 7001)],
            read_from: ReadFrom::Replica,
            numbered_databases: false,
        })
    );
    assert_eq!(
        cfg.connection.password.as_ref().map(Secret::expose),
        Some("pw")
    );
    assert_eq!(cfg.endpoints.len(), 1);
    let sessions = cfg.endpoint("sessions").expect("defined");
    assert_eq!(
        sessions.topology,
        Topology::Cluster(Cluster {
            nodes: vec![node("10.1.0.1", 7000)],
            read_from: ReadFrom::Master,
            numbered_databases: false,
        })
    );
    assert_eq!(
        sessions.connection.password, None,
        "top-level credentials are the default endpoint's only"
    );
    assert_eq!(cfg.databases[1].endpoint.as_deref(), Some("sessions"));
    assert_eq!(cfg.endpoint_name_of(&cfg.databases[1]), "sessions");
    let (_, topology) = cfg.endpoint_of(&cfg.databases[1]);
    assert_eq!(topology, &sessions.topology);
}

#[test]
fn endpoints_with_a_database_on_each() {
    let cfg = valid(
        "\
redis_databases:
  main:
    db: 0
  knowledge:
    db: 0
    endpoint: vectors
  jobs:
    db: 2
    endpoint: queue
  shards:
    db: 5
    endpoint: shards
  local:
    db: 0
    endpoint: local
host: primary.internal
endpoints:
  vectors:
    url: rediss://reader:s3cret@vectors.internal:6380
  queue:
    sentinel:
      master_name: jobs
      nodes: [\"s1:26379\"]
    password: queue-pw
  shards:
    cluster:
      nodes: [\"c1:7000\"]
      numbered_databases: true
  local:
    host: 127.0.0.1
",
    );
    let names: Vec<&str> = cfg.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["vectors", "queue", "shards", "local"]);
    let (conn, topology) = cfg.endpoint_of(&cfg.databases[0]);
    assert_eq!(
        (conn.host.as_str(), topology),
        ("primary.internal", &Topology::Standalone)
    );

    let (conn, topology) = cfg.endpoint_of(&cfg.databases[1]);
    assert_eq!(conn.display_address(), "rediss://vectors.internal:6380");
    assert_eq!(conn.username.as_deref(), Some("reader"));
    assert_eq!(conn.password.as_ref().map(Secret::expose), Some("s3cret"));
    assert_eq!(topology, &Topology::Standalone);

    let (conn, topology) = cfg.endpoint_of(&cfg.databases[2]);
    assert_eq!(conn.password.as_ref().map(Secret::expose), Some("queue-pw"));
    assert_eq!(topology.kind(), "sentinel");

    let (_, topology) = cfg.endpoint_of(&cfg.databases[3]);
    assert!(matches!(topology, Topology::Cluster(c) if c.numbered_databases));

    let (conn, _) = cfg.endpoint_of(&cfg.databases[4]);
    assert_eq!((conn.host.as_str(), conn.port), ("127.0.0.1", 6379));
    assert_eq!(conn.username, None);
}

#[test]
fn same_number_on_different_endpoints_is_fine_but_not_on_one() {
    let text = "\
redis_databases:
  main:
    db: 0
  a:
    db: 4
    endpoint: other
  b:
    db: 4
    endpoint: other
  c:
    db: 4
endpoints:
  other:
    host: h
";
    let cfg_errors = errors(text);
    assert_eq!(cfg_errors.len(), 1, "{cfg_errors:#?}");
    let e = error_at(
        text,
        "databases `a` and `b` both use db 4 on endpoint `other`; declare the intended one as an alias: `alias_of: a` under `b`",
        8,
        9,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("add `alias_of: a` under `b` if they are meant to share db 4 on endpoint `other`, else give `b` a free number")
    );
    // An alias may share the number on the same endpoint.
    valid(&text.replace(
        "    db: 4\n    endpoint: other\n  c:",
        "    db: 4\n    endpoint: other\n    alias_of: a\n  c:",
    ));
}

#[test]
fn cluster_db_number_rule() {
    let text = "\
redis_databases:
  main:
    db: 0
  audit:
    db: 10
cluster:
  nodes: [\"127.0.0.1:7000\"]
";
    let e = error_at(
        text,
        "database `audit` has db 10, but it is on the default endpoint, a Redis Cluster, which has only db 0",
        5,
        9,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("give each logical database its own cluster endpoint (an entry under `endpoints:`, then `endpoint: <name>` and `db: 0` under `audit`), or set `numbered_databases: true` under `cluster` if the servers support numbered databases in cluster mode (Valkey 9+)")
    );
    assert_eq!(errors(text).len(), 1);
    // The documented fixes both work.
    valid(&text.replace("nodes:", "numbered_databases: true\n  nodes:"));
    valid(&format!(
        "{}endpoints:\n  audit:\n    cluster:\n      nodes: [\"10.0.0.9:7000\"]\n",
        text.replace("db: 10", "db: 0\n    endpoint: audit")
    ));

    // On a named cluster endpoint the help points at its section.
    let named = "\
redis_databases:
  main:
    db: 3
    endpoint: shards
endpoints:
  shards:
    cluster:
      nodes: [\"c:7000\"]
";
    let e = error_at(named, "is on endpoint `shards`, a Redis Cluster", 3, 9);
    assert!(
        e.help
            .as_deref()
            .is_some_and(|h| h.contains("under `endpoints.shards.cluster`")),
        "{e}"
    );
}

#[test]
fn two_databases_on_db_0_of_one_cluster_need_alias_of() {
    let text = "\
redis_databases:
  main:
    db: 0
  cache:
    db: 0
cluster:
  nodes: [\"127.0.0.1:7000\"]
";
    let e = error_at(text, "databases `main` and `cache` both use db 0", 5, 9);
    assert_eq!(
        e.help.as_deref(),
        Some("add `alias_of: main` under `cache` if they are meant to share db 0 of the cluster on the default endpoint, else put `cache` on its own cluster endpoint (an entry under `endpoints:`, then `endpoint: <name>` under `cache`)")
    );
}

#[test]
fn max_databases_applies_to_every_endpoint() {
    error_at(
        "redis_databases:\n  main:\n    db: 16\n    endpoint: e\nendpoints:\n  e:\n    host: h\n",
        "database `main` has db 16, outside 0..16",
        3,
        9,
    );
}

#[test]
fn one_kind_per_endpoint() {
    let e = error_at(
        &with("host: h\nsentinel:\n  master_name: m\n  nodes: [\"s:26379\"]\n"),
        "the default endpoint has both `sentinel` and `host`: an endpoint is exactly one of a standalone server (`url` or `host`/`port`), a `sentinel` master or a `cluster`",
        5,
        1,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("remove `host` (a sentinel endpoint lists its nodes under `sentinel.nodes`), or remove `sentinel`")
    );
    let e = error_at(
        &with("cluster:\n  nodes: [\"c:7000\"]\nurl: redis://h:1\nport: 2\n"),
        "the default endpoint has both `cluster`, `url` and `port`",
        4,
        1,
    );
    assert!(
        e.help
            .as_deref()
            .is_some_and(|h| h.starts_with("remove `url` and `port`")),
        "{e}"
    );
    error_at(
        &with("sentinel:\n  master_name: m\n  nodes: [\"s:1\"]\ncluster:\n  nodes: [\"c:7000\"]\n"),
        "the default endpoint has both `sentinel` and `cluster`",
        7,
        1,
    );
    error_at(
        &with("endpoints:\n  e:\n    port: 6380\n    cluster:\n      nodes: [\"c:7000\"]\n"),
        "endpoint `e` has both `cluster` and `port`",
        7,
        5,
    );
}

#[test]
fn named_endpoint_needs_an_address() {
    let e = error_at(
        &with("endpoints:\n  e:\n    password: x\n"),
        "endpoint `e` states no address",
        5,
        3,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("give `e` exactly one of `url: redis://host:port`, `host:` (with an optional `port:`), `sentinel:` or `cluster:`")
    );
    error_at(
        &with("endpoints:\n  e:\n    port: 6380\n"),
        "endpoint `e` has `port` but no `host`",
        5,
        3,
    );
    error_at(
        &with("endpoints:\n  e:\n    url: redis://h:1\n    host: h\n"),
        "`url` and `host`/`port` of endpoint `e` are both set",
        6,
        5,
    );
    error_at(
        &with("endpoints:\n  e:\n    url: redis://h:1/3\n"),
        "`url` of endpoint `e` is not a usable Redis URL",
        6,
        10,
    );
    // The top level keeps its default: no address = localhost:6379.
    let cfg = valid(&with(""));
    assert_eq!(cfg.connection.display_address(), "redis://localhost:6379");
    assert_eq!(cfg.topology, Topology::Standalone);
    // An empty `endpoints:` is no endpoints.
    assert!(valid(&with("endpoints:\n")).endpoints.is_empty());
}

#[test]
fn endpoint_references_and_names() {
    let text = with("endpoints:\n  vectors:\n    host: v\n  queue:\n    host: q\n")
        .replace("    db: 0\n", "    db: 0\n    endpoint: vector\n");
    let e = error_at(
        &text,
        "`endpoint: vector` of database `main` names an unknown endpoint",
        4,
        15,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("endpoint must name one of: vectors, queue (defined under `endpoints:`); remove it to use the default endpoint")
    );
    let e = error_at(
        &with("").replace("    db: 0\n", "    db: 0\n    endpoint: vectors\n"),
        "names an unknown endpoint",
        4,
        15,
    );
    assert!(
        e.help
            .as_deref()
            .is_some_and(|h| h.starts_with("no endpoints are defined")),
        "{e}"
    );
    // `endpoint: null` is the default endpoint.
    let cfg = valid(&with("").replace("    db: 0\n", "    db: 0\n    endpoint: null\n"));
    assert_eq!(cfg.databases[0].endpoint, None);

    error_at(
        &with("endpoints:\n  Vectors:\n    host: v\n"),
        "endpoint name `Vectors` is not a snake_case identifier",
        5,
        3,
    );
    error_at(
        &with("endpoints:\n  default:\n    host: v\n"),
        "endpoint name `default` is reserved",
        5,
        3,
    );
    let e = error_at(
        &with("endpoints:\n  v:\n    host: a\n  v:\n    host: b\n"),
        "duplicate endpoint name `v` (first at line 5)",
        7,
        3,
    );
    assert!(e.help.is_some());
    // A broken endpoint entry raises no follow-on "unknown endpoint".
    let all = errors(
        &with("endpoints:\n  v: 3\n").replace("    db: 0\n", "    db: 0\n    endpoint: v\n"),
    );
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].message.contains("endpoint `v` must be a mapping"),
        "{}",
        all[0]
    );
}

#[test]
fn alias_lives_on_its_targets_endpoint() {
    let text = "\
redis_databases:
  a:
    db: 1
  b:
    db: 1
    alias_of: a
    endpoint: e
endpoints:
  e:
    host: h
";
    let e = error_at(
        text,
        "`alias_of: a` of database `b`: `b` is on endpoint `e` but `a` is on the default endpoint",
        6,
        15,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("an alias lives on its target's endpoint: remove `endpoint` under `b`")
    );
}

#[test]
fn node_lists_are_checked_entry_by_entry() {
    for (nodes, needle) in [
        (
            "[\"h\"]",
            "entry 1 of `cluster.nodes` is not a `host:port` address: the address has no `:port`",
        ),
        ("[\"h:0\"]", "`0` is not a TCP port between 1 and 65535"),
        ("[\"h:1\", \"h:70000\"]", "entry 2 of `cluster.nodes`"),
        ("[\"::1:7000\"]", "write an IPv6 address in brackets"),
        ("[\"redis://h:7000\"]", "no `redis://` scheme"),
        ("[\"[nope]:7000\"]", "not an IPv6 address"),
        ("[\":7000\"]", "the address has no host"),
        ("[7000]", "found an integer (7000)"),
        ("[]", "`cluster.nodes` is empty"),
        (
            "\"h:7000\"",
            "`cluster.nodes` must be a list of `host:port` strings",
        ),
    ] {
        let e = error_at(
            &with(&format!("cluster:\n  nodes: {nodes}\n")),
            needle,
            5,
            10,
        );
        assert!(e.help.is_some(), "{e}");
    }
    let cfg = valid(&with(
        "cluster:\n  nodes: [\"[2001:db8::1]:7000\", \"node-1.example:7001\"]\n",
    ));
    let Topology::Cluster(c) = &cfg.topology else {
        panic!()
    };
    assert_eq!(c.nodes[0], node("2001:db8::1", 7000));
    assert_eq!(c.nodes[0].to_string(), "2001:db8::1:7000");
    assert_eq!(c.nodes[1], node("node-1.example", 7001));
}

#[test]
fn section_keys_and_values() {
    let e = error_at(
        &with("sentinel:\n  master_name: m\n  nodes: [\"s:1\"]\n  readfrom: replica\n"),
        "unknown key `readfrom` in `sentinel` (valid keys: master_name, nodes, username, password, read_from)",
        7,
        3,
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `read_from`?"));
    error_at(
        &with("cluster:\n  nodes: [\"c:1\"]\n  numbered: true\n"),
        "unknown key `numbered` in `cluster` (valid keys: nodes, read_from, numbered_databases, topology_refresh)",
        6,
        3,
    );
    error_at(
        &with("endpoints:\n  e:\n    host: h\n    timeout: 3\n"),
        "unknown key `timeout` in endpoint `e` (valid keys: url, host, port, username, password, sentinel, cluster, tls)",
        7,
        5,
    );
    error_at(
        &with("endpoints:\n  e:\n    cluster:\n      nodes: [\"c:1\"]\n      seeds: 1\n"),
        "unknown key `seeds` in `cluster` of endpoint `e`",
        8,
        7,
    );
    let e = error_at(
        &with("cluster:\n  nodes: [\"c:1\"]\n  read_from: slave\n"),
        "`cluster.read_from` must be `master` or `replica`, found `slave`",
        6,
        14,
    );
    assert!(e.help.is_some());
    error_at(
        &with("cluster:\n  nodes: [\"c:1\"]\n  numbered_databases: maybe\n"),
        "`cluster.numbered_databases` must be true or false",
        6,
        23,
    );
    error_at(
        &with("cluster:\n  nodes: [\"c:1\"]\n  topology_refresh: 0\n"),
        "`cluster.topology_refresh` must be greater than 0, found 0",
        6,
        21,
    );
    error_at(
        &with("endpoints:\n  e:\n    cluster:\n      nodes: [\"c:1\"]\n      topology_refresh: soon\n"),
        "`cluster.topology_refresh` of endpoint `e` must be",
        8,
        25,
    );
    error_at(
        &with("sentinel: [a]\n"),
        "`sentinel` must be a mapping with keys master_name, nodes",
        4,
        11,
    );
    error_at(
        &with("endpoints:\n  e:\n    sentinel:\n      master_name: \"\"\n      nodes: [\"s:1\"]\n"),
        "`sentinel.master_name` of endpoint `e` is empty",
        7,
        20,
    );
    for read_from in ["MASTER", "Replica", "replica"] {
        valid(&with(&format!(
            "cluster:\n  nodes: [\"c:1\"]\n  read_from: {read_from}\n"
        )));
    }
}

#[test]
fn required_sentinel_and_cluster_keys() {
    let e = error_at(
        &with("sentinel:\n  nodes: [\"s:1\"]\n"),
        "`sentinel` has no `master_name`",
        4,
        1,
    );
    assert!(e
        .help
        .as_deref()
        .is_some_and(|h| h.contains("master_name: mymaster")));
    error_at(
        &with("sentinel:\n  master_name: m\n"),
        "`sentinel` has no `nodes`",
        4,
        1,
    );
    error_at(&with("cluster: {}\n"), "`cluster` has no `nodes`", 4, 1);
    error_at(
        &with("endpoints:\n  e:\n    cluster:\n      read_from: replica\n"),
        "`cluster` of endpoint `e` has no `nodes`",
        6,
        5,
    );
}

// ---------------------------------------------------------------- environment

fn env(cfg: Config, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    cfg.overlay_env(|name| map.get(name).map(|v| (*v).to_owned()))
}

#[test]
fn address_variables_on_a_cluster_or_sentinel_are_errors() {
    let e = env(valid(CLUSTER), &[("REDIS_HOST", "h"), ("REDIS_PORT", "1")])
        .expect_err("rejected")
        .into_vec();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].file, "environment");
    assert_eq!(
        e[0].message,
        "the default endpoint is a Redis Cluster; REDIS_HOST cannot apply to it"
    );
    assert!(
        e[0].help
            .as_deref()
            .is_some_and(|h| h.contains("`cluster.nodes`")),
        "{}",
        e[0]
    );
    assert_eq!(
        e[1].message,
        "the default endpoint is a Redis Cluster; REDIS_PORT cannot apply to it"
    );
    let e = env(valid(SENTINEL), &[("REDIS_URL", "redis://u:hunter2@h:1")])
        .expect_err("rejected")
        .into_vec();
    assert_eq!(
        e[0].message,
        "the default endpoint is a Sentinel-managed master; REDIS_URL cannot apply to it"
    );
    assert!(!format!("{e:?}").contains("hunter2"));

    // Credentials still apply: they are the data nodes'.
    let cfg = env(
        valid(CLUSTER),
        &[
            ("REDIS_USERNAME", "u"),
            ("REDIS_PASSWORD", "p"),
            ("REDIS_HOST", ""),
        ],
    )
    .expect("valid");
    assert_eq!(cfg.connection.username.as_deref(), Some("u"));
    assert_eq!(
        cfg.connection.password.as_ref().map(Secret::expose),
        Some("p")
    );
    assert_eq!(
        cfg.endpoints,
        valid(CLUSTER).endpoints,
        "named endpoints untouched"
    );
}

#[test]
fn address_variables_apply_to_the_default_endpoint_only() {
    let text = "redis_databases:\n  main:\n    db: 0\n  v:\n    db: 0\n    endpoint: v\nendpoints:\n  v:\n    host: vh\n";
    let cfg = env(
        valid(text),
        &[("REDIS_HOST", "eh"), ("REDIS_PASSWORD", "p")],
    )
    .expect("valid");
    assert_eq!(cfg.connection.host, "eh");
    let v = cfg.endpoint("v").expect("defined");
    assert_eq!(
        (v.connection.host.as_str(), v.connection.password.as_ref()),
        ("vh", None)
    );
}

// ---------------------------------------------------------------- runtime file

fn overlay(base: &str, text: &str) -> Result<Config, ConfigErrors> {
    valid(base).overlay_str(text, "r.yaml")
}

fn overlay_error(base: &str, text: &str, needle: &str, line: usize, column: usize) -> ConfigError {
    let all = overlay(base, text).expect_err("rejected").into_vec();
    let found: Vec<&ConfigError> = all.iter().filter(|e| e.message.contains(needle)).collect();
    assert_eq!(found.len(), 1, "{needle:?} in {all:#?}");
    let e = found[0].clone();
    assert_eq!(e.location, Some(crate::Location { line, column }), "{e}");
    assert!(e.help.is_some());
    e
}

#[test]
fn topology_refresh_is_per_cluster_endpoint_with_a_60_s_default() {
    let cfg = valid(CLUSTER);
    assert_eq!(cfg.topology_refresh, std::time::Duration::from_secs(60));
    let text = CLUSTER.replace(
        "numbered_databases: false\n",
        "numbered_databases: false\n      topology_refresh: 2.5\n",
    );
    let cfg = valid(&text);
    assert_eq!(cfg.topology_refresh_of(&cfg.databases[0]).as_secs(), 60);
    assert_eq!(
        cfg.topology_refresh_of(&cfg.databases[1]),
        std::time::Duration::from_millis(2500)
    );
    let cfg = overlay(CLUSTER, "cluster:\n  topology_refresh: 5\n").expect("valid");
    assert_eq!(cfg.topology_refresh.as_secs(), 5);
    assert_eq!(
        cfg.endpoint("sessions").unwrap().topology_refresh.as_secs(),
        60
    );
}

#[test]
fn overlay_changes_topology_settings() {
    let cfg = overlay(
        SENTINEL,
        "sentinel:\n  nodes: [\"n:1\"]\n  password: null\n  read_from: master\npassword: other\n",
    )
    .expect("valid");
    let Topology::Sentinel(s) = &cfg.topology else {
        panic!()
    };
    assert_eq!(s.master_name, "mymaster", "untouched key keeps its value");
    assert_eq!(s.nodes, vec![node("n", 1)]);
    assert_eq!(s.username.as_deref(), Some("watcher"));
    assert_eq!(s.password, None);
    assert_eq!(s.read_from, ReadFrom::Master);
    assert_eq!(
        cfg.connection.password.as_ref().map(Secret::expose),
        Some("other")
    );

    let cfg = overlay(
        CLUSTER,
        "endpoints:\n  sessions:\n    username: u\n    cluster:\n      read_from: replica\n",
    )
    .expect("valid");
    let sessions = cfg.endpoint("sessions").expect("defined");
    assert_eq!(sessions.connection.username.as_deref(), Some("u"));
    assert!(
        matches!(&sessions.topology, Topology::Cluster(c) if c.read_from == ReadFrom::Replica && c.nodes.len() == 1)
    );
    assert_eq!(
        cfg.topology,
        valid(CLUSTER).topology,
        "default endpoint untouched"
    );

    // A standalone endpoint may move.
    let base =
        "redis_databases:\n  main:\n    db: 0\n    endpoint: v\nendpoints:\n  v:\n    host: a\n";
    let cfg = overlay(base, "endpoints:\n  v:\n    url: redis://b:7\n").expect("valid");
    assert_eq!(
        cfg.endpoint("v").expect("v").connection.display_address(),
        "redis://b:7"
    );
}

#[test]
fn overlay_may_not_change_kinds_endpoints_or_placement() {
    let e = overlay_error(
        CLUSTER,
        "host: elsewhere\n",
        "the default endpoint is a Redis Cluster in the compiled config but r.yaml gives it `host`: a runtime file may not change an endpoint's kind",
        1,
        1,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("remove `host` from r.yaml; to move the default endpoint, change its `cluster.nodes`")
    );
    overlay_error(
        &with(""),
        "sentinel:\n  nodes: [\"s:1\"]\n",
        "the default endpoint is a standalone server in the compiled config but r.yaml gives it `sentinel`",
        1,
        1,
    );
    overlay_error(
        CLUSTER,
        "endpoints:\n  sessions:\n    sentinel:\n      master_name: m\n",
        "endpoint `sessions` is a Redis Cluster in the compiled config but r.yaml gives it `sentinel`",
        3,
        5,
    );
    let e = overlay_error(
        CLUSTER,
        "endpoints:\n  extra:\n    host: h\n",
        "endpoint `extra` is not in the compiled config: a runtime file may not add endpoints",
        2,
        3,
    );
    assert!(
        e.help.as_deref().is_some_and(|h| h.contains("(sessions)")),
        "{e}"
    );
    let e = overlay_error(
        CLUSTER,
        "redis_databases:\n  main:\n    db: 0\n    endpoint: sessions\n  sessions:\n    db: 0\n  main_view:\n    db: 0\n    alias_of: main\n",
        "database `main` is on the default endpoint in the compiled config but on endpoint `sessions` in r.yaml: a runtime file may not move databases between endpoints",
        4,
        15,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("remove `endpoint` under `main` in r.yaml")
    );
    let e = overlay_error(
        CLUSTER,
        "redis_databases:\n  main:\n    db: 0\n  sessions:\n    db: 0\n  main_view:\n    db: 0\n    alias_of: main\n",
        "database `sessions` is on endpoint `sessions` in the compiled config but on the default endpoint in r.yaml",
        4,
        3,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("write `endpoint: sessions` under `sessions` in r.yaml")
    );
}

#[test]
fn overlay_is_revalidated() {
    let base = "redis_databases:\n  main:\n    db: 3\ncluster:\n  nodes: [\"c:1\"]\n  numbered_databases: true\n";
    let e = overlay(base, "cluster:\n  numbered_databases: false\n")
        .expect_err("rejected")
        .into_vec();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].file, "r.yaml");
    assert!(
        e[0].message.contains(
            "database `main` has db 3, but it is on the default endpoint, a Redis Cluster"
        ),
        "{}",
        e[0]
    );
}

// ---------------------------------------------------------------- Config::check

#[test]
fn check_validates_topologies_changed_in_code() {
    let mut cfg = valid(CLUSTER);
    if let Topology::Cluster(c) = &mut cfg.topology {
        c.nodes.clear();
    }
    cfg.endpoints[0].topology = Topology::Sentinel(Sentinel {
        master_name: " ".to_owned(),
        nodes: vec![node("h", 0)],
        username: None,
        password: None,
        read_from: ReadFrom::Master,
    });
    cfg.databases[0].endpoint = Some("nowhere".to_owned());
    let messages: Vec<String> = cfg
        .check("builder")
        .expect_err("rejected")
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(
        messages,
        [
            "`cluster.nodes` of the default endpoint is empty",
            "`sentinel.master_name` of endpoint `sessions` is empty",
            "`sentinel.nodes` of endpoint `sessions` has an unusable address `h:0`",
            "`alias_of: main` of database `main_view`: `main_view` is on the default endpoint but `main` is on endpoint `nowhere`",
            "`endpoint: nowhere` of database `main` names an unknown endpoint",
        ],
    );

    let mut cfg = valid(CLUSTER);
    cfg.databases[0].db = 2;
    cfg.databases[2].db = 2;
    let e = cfg.check("builder").expect_err("rejected").into_vec();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].message.contains("which has only db 0"), "{}", e[0]);
    assert!(valid(CLUSTER).check("builder").is_ok());
}

#[test]
fn node_address_parsing() {
    assert_eq!("h:1".parse::<NodeAddress>(), Ok(node("h", 1)));
    assert_eq!(" [::1]:7000 ".parse::<NodeAddress>(), Ok(node("::1", 7000)));
    for bad in [
        "h",
        "h:",
        "h:x",
        "[::1]",
        "[::1:7000",
        "a b:1",
        "u@h:1",
        ":1",
        "h:65536",
    ] {
        assert!(bad.parse::<NodeAddress>().is_err(), "{bad}");
    }
    assert_eq!("replica".parse::<ReadFrom>(), Ok(ReadFrom::Replica));
    assert!("slave".parse::<ReadFrom>().is_err());
    assert_eq!(ReadFrom::Replica.to_string(), "replica");
    assert_eq!(Topology::Standalone.describe(), "a standalone server");
}
