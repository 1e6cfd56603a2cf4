//! `redis-db status` against the harness's own servers.

#[path = "../../../tests/support/mod.rs"]
mod support;

mod common;

use common::{config_yaml, json, redis_db, Scratch};
use support::RedisServer;

fn fill(server: &RedisServer, db: u32, keys: usize) {
    let mut raw = server.raw(db);
    for i in 0..keys {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut raw)
            .unwrap();
    }
}

#[test]
fn healthy_server_gives_an_aligned_table_and_exit_0() {
    let server = RedisServer::start(&[]);
    fill(&server, 5, 3);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    let run = redis_db(scratch.path(), &["status", "--config", &config]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "DATABASE    DB  ALIAS OF   ENDPOINT  STATE    LATENCY  KEYS  LOADING  CIRCUIT"
    );
    let state_column = lines[0].find("STATE").unwrap();
    for (line, name, keys) in [
        (lines[1], "main", "0"),
        (lines[2], "cache", "3"),
        (lines[3], "workflows", "0"),
        (lines[4], "monitoring", "0"),
    ] {
        assert!(line.starts_with(name), "{line}");
        assert_eq!(&line[state_column..state_column + 7], "healthy", "{line}");
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 3], keys, "{line}");
        assert!(line.ends_with("no       closed"), "{line}");
    }
    assert!(lines[4].contains("workflows"), "the alias names its target");
    // Piped, so no colour.
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    for fact in [
        &format!("endpoint default (redis://127.0.0.1:{})", server.port()),
        "role master",
        "databases:              16 (highest db used: 7)",
        "notify-keyspace-events: \"\"",
        "cluster:                disabled",
    ] {
        assert!(run.stdout.contains(fact), "{fact}\n{}", run.stdout);
    }
}

#[test]
fn json_has_every_database_by_name() {
    let server = RedisServer::start(&["--notify-keyspace-events", "KEA"]);
    fill(&server, 7, 2);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    let run = redis_db(
        scratch.path(),
        &["status", "--config", &config, "--format", "json"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let doc = json(&run.stdout);
    let databases = doc["databases"].as_object().unwrap();
    assert_eq!(databases.len(), 4);
    assert_eq!(doc["databases"]["cache"]["db"], 5);
    assert_eq!(doc["databases"]["cache"]["state"], "healthy");
    assert_eq!(doc["databases"]["cache"]["circuit"], "closed");
    assert_eq!(doc["databases"]["cache"]["loading"], false);
    assert_eq!(doc["databases"]["monitoring"]["alias_of"], "workflows");
    assert_eq!(doc["databases"]["monitoring"]["keys"], 2);
    assert!(doc["databases"]["main"]["latency_ms"].as_f64().unwrap() > 0.0);
    let server_facts = &doc["servers"]["default"];
    assert_eq!(server_facts["role"], "master");
    assert_eq!(server_facts["databases"], 16);
    assert_eq!(server_facts["highest_db"], 7);
    assert_eq!(server_facts["cluster_enabled"], false);
    let events = server_facts["notify_keyspace_events"].as_str().unwrap();
    assert!(events.contains('K') && events.contains('E'), "{events}");
    assert_eq!(doc["config"]["file"], config);
}

#[test]
fn stopped_server_is_failed_and_exits_2() {
    let mut server = RedisServer::start(&[]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    server.kill();
    let run = redis_db(scratch.path(), &["status", "--config", &config]);
    assert_eq!(run.code, 2, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    for line in &lines[1..5] {
        assert!(line.contains(" failed "), "{line}");
    }
    assert!(
        run.stdout
            .contains("no database answered: database `main` (db 0)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("unreachable"), "{}", run.stdout);

    let run = redis_db(
        scratch.path(),
        &["status", "--config", &config, "--format", "json"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    let doc = json(&run.stdout);
    for name in ["main", "cache", "workflows", "monitoring"] {
        assert_eq!(doc["databases"][name]["state"], "failed", "{name}");
    }
}

#[test]
fn loading_server_is_degraded_and_exits_1() {
    let mut server = RedisServer::start(&[]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    // 30k keys at 300 us each: a window far longer than this test.
    support::restart_into_loading(&mut server, 30_000, 300);
    let run = redis_db(
        scratch.path(),
        &["status", "--config", &config, "--format", "json"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let doc = json(&run.stdout);
    for name in ["main", "cache", "workflows", "monitoring"] {
        assert_eq!(doc["databases"][name]["state"], "degraded", "{name}");
        assert_eq!(doc["databases"][name]["loading"], true, "{name}");
    }
    let detail = doc["databases"]["main"]["detail"].as_str().unwrap();
    assert!(detail.contains("still loading"), "{detail}");

    let run = redis_db(scratch.path(), &["status", "--config", &config]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.lines().nth(1).unwrap().contains(" degraded "),
        "{}",
        run.stdout
    );
}

#[test]
fn passwords_never_appear() {
    let server = RedisServer::start(&["--requirepass", "s3cr3t-pw"]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    let url = format!("redis://:s3cr3t-pw@127.0.0.1:{}", server.port());
    for format in ["table", "json"] {
        let run = redis_db(
            scratch.path(),
            &[
                "status", "--config", &config, "--url", &url, "--format", format,
            ],
        );
        assert_eq!(run.code, 0, "{run:?}");
        assert!(!run.all().contains("s3cr3t-pw"), "{run:?}");
    }
    // A wrong password, from the environment: failed, named, and not shown.
    let run = common::run(
        common::command(scratch.path(), &["status", "--config", &config])
            .env("REDIS_PASSWORD", "wr0ng-pw"),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("authentication failed"), "{run:?}");
    assert!(!run.all().contains("wr0ng-pw"), "{run:?}");
}

#[test]
fn environment_and_runtime_file_apply_as_in_the_sdk() {
    let server = RedisServer::start(&[]);
    let scratch = Scratch::new();
    // The base points nowhere; REDIS_URL moves it to the harness server.
    let config = scratch.write(
        "config/redis-databases.yaml",
        &config_yaml(support::unused_port()),
    );
    let run = common::run(
        common::command(scratch.path(), &["status", "--format", "json"])
            .env("REDIS_URL", server.url()),
    );
    assert_eq!(run.code, 0, "{run:?}");
    // `./config/redis-databases.yaml` was found without --config.
    assert_eq!(
        json(&run.stdout)["config"]["file"],
        "config/redis-databases.yaml"
    );

    // REDIS_DB_CONFIG is laid over --config, with the SDK's rules: no renumbering.
    let renumber = scratch.write(
        "runtime.yaml",
        "redis_databases:\n  main:\n    db: 1\n  cache:\n    db: 5\n  workflows:\n    db: 7\n  monitoring:\n    db: 7\n    alias_of: workflows\n",
    );
    let run = common::run(
        common::command(scratch.path(), &["status", "--config", &config])
            .env("REDIS_DB_CONFIG", &renumber),
    );
    assert_eq!(run.code, 78, "{run:?}");
    assert!(
        run.stderr
            .contains("a runtime file may not renumber databases"),
        "{}",
        run.stderr
    );

    // A runtime file that only moves the server.
    let moved = scratch.write("moved.yaml", &format!("port: {}\n", server.port()));
    let run = common::run(
        common::command(
            scratch.path(),
            &["status", "--config", &config, "--format", "json"],
        )
        .env("REDIS_DB_CONFIG", &moved),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let doc = json(&run.stdout);
    assert_eq!(doc["config"]["overlay"], moved);

    // REDIS_DB_CONFIG alone is the config.
    let whole = scratch.write("whole.yaml", &config_yaml(server.port()));
    let run =
        common::run(common::command(scratch.path(), &["status"]).env("REDIS_DB_CONFIG", &whole));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("config: {whole}")),
        "{}",
        run.stdout
    );

    // A malformed variable is named.
    let run = common::run(
        common::command(scratch.path(), &["status", "--config", &config])
            .env("REDIS_PORT", "seventy"),
    );
    assert_eq!(run.code, 78, "{run:?}");
    assert!(run.stderr.contains("REDIS_PORT"), "{}", run.stderr);
}

#[test]
fn missing_config_says_where_it_looked() {
    let scratch = Scratch::new();
    let run = redis_db(scratch.path(), &["status"]);
    if std::path::Path::new("/app/config/redis-databases.yaml").exists() {
        return; // this machine has the container path: the default applies
    }
    assert_eq!(run.code, 78, "{run:?}");
    for needle in [
        "REDIS_DB_CONFIG",
        "config/redis-databases.yaml",
        "/app/config/redis-databases.yaml",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
}
