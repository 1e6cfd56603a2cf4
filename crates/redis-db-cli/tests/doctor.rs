//! `redis-db doctor` against the harness's own servers.

#[path = "../../../tests/support/mod.rs"]
mod support;

mod common;

use std::time::Duration;

use common::{config_yaml, json, redis_db, Scratch};
use support::RedisServer;

/// The verdict line of the check `name`.
fn verdict<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no `{name}` check in:\n{stdout}"))
}

#[test]
fn a_sound_setup_passes_every_check() {
    let server = RedisServer::start(&[]);
    let scratch = Scratch::new();
    let yaml = format!(
        "{}keepalive:\n  idle: 45\n  interval: 5\n  count: 3\n",
        config_yaml(server.port())
    );
    let config = scratch.write("redis-databases.yaml", &yaml);
    let run = redis_db(scratch.path(), &["doctor", "--config", &config]);
    assert_eq!(run.code, 0, "{run:?}");
    for name in [
        "databases setting",
        "select access",
        "keepalive",
        "cluster databases",
    ] {
        assert!(
            verdict(&run.stdout, name).starts_with("PASS"),
            "{name}:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("`databases 16` covers db 0..=7"),
        "{}",
        run.stdout
    );
    // The SDK's socket carries the configured idle time, not the OS default (~2 h).
    let timer: u64 = run
        .stdout
        .split("keepalive timer at ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no timer in:\n{}", run.stdout));
    assert!((30..=45).contains(&timer), "{}", run.stdout);
    assert!(run.stdout.contains("(idle 45 s)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("idle 45 s, interval 5 s, count 3"),
        "{}",
        run.stdout
    );

    let run = redis_db(
        scratch.path(),
        &["doctor", "--config", &config, "--format", "json"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let doc = json(&run.stdout);
    let checks = doc["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 4);
    assert!(checks.iter().all(|c| c["verdict"] == "pass"), "{doc:#}");
}

#[test]
fn too_few_server_databases_fail_with_a_fix() {
    let server = RedisServer::start(&["--databases", "6"]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    let run = redis_db(scratch.path(), &["doctor", "--config", &config]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = verdict(&run.stdout, "databases setting");
    assert!(line.starts_with("FAIL"), "{}", run.stdout);
    assert!(
        run.stdout.contains("`databases 6` but db 7 is configured"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("fix: raise `databases` in redis.conf"),
        "{}",
        run.stdout
    );
    // The server rejects SELECT 7: the same finding, from the SDK's own connect.
    assert!(
        verdict(&run.stdout, "select access").starts_with("FAIL"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("out of range"), "{}", run.stdout);
}

#[test]
fn a_user_without_select_fails_with_a_fix() {
    let server = RedisServer::start(&[]);
    let mut raw = server.raw(0);
    let _: () = redis::cmd("ACL")
        .arg(
            &[
                "SETUSER", "app", "on", ">app-pw", "~*", "&*", "+@all", "-select",
            ][..],
        )
        .query(&mut raw)
        .unwrap();
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    let url = format!("redis://app:app-pw@127.0.0.1:{}", server.port());
    let run = redis_db(
        scratch.path(),
        &["doctor", "--config", &config, "--url", &url],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        verdict(&run.stdout, "select access").starts_with("FAIL"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("cache (db 5)") || run.stdout.contains("database `cache`"));
    assert!(
        run.stdout.contains("ACL SETUSER app +select"),
        "{}",
        run.stdout
    );
    // db 0 needs no SELECT: it passes.
    assert!(
        run.stdout.contains("selected and answered: main (db 0)\n"),
        "{}",
        run.stdout
    );
    assert!(!run.all().contains("app-pw"), "{run:?}");
}

#[test]
fn numbered_databases_on_a_cluster_mode_server_fail() {
    let nodes = support::topology::cluster_nodes(1);
    let node = &nodes[0];
    let mut raw = node.raw(0);
    let _: () = redis::cmd("CLUSTER")
        .arg(&["ADDSLOTSRANGE", "0", "16383"][..])
        .query(&mut raw)
        .unwrap();
    support::topology::settle(Duration::from_secs(10), "cluster_state:ok", || {
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut node.raw(0))
            .map_err(|e| e.to_string())?;
        if info.contains("cluster_state:ok") {
            Ok(())
        } else {
            Err(info)
        }
    });
    let scratch = Scratch::new();

    // A cluster endpoint with db 0 only: sound.
    let cluster = scratch.write(
        "cluster.yaml",
        &format!(
            "redis_databases:\n  main:\n    db: 0\ncluster:\n  nodes: [\"127.0.0.1:{}\"]\n",
            node.port()
        ),
    );
    let run = redis_db(scratch.path(), &["doctor", "--config", &cluster]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("endpoint default: every database is db 0"),
        "{}",
        run.stdout
    );
    let run = redis_db(scratch.path(), &["status", "--config", &cluster]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("enabled, cluster_state:ok"),
        "{}",
        run.stdout
    );

    // `numbered_databases: true` on a server without `cluster-databases` (Redis 7).
    let numbered = scratch.write(
        "numbered.yaml",
        &format!(
            "redis_databases:\n  main:\n    db: 0\n  cache:\n    db: 3\ncluster:\n  nodes: [\"127.0.0.1:{}\"]\n  numbered_databases: true\n",
            node.port()
        ),
    );
    let run = redis_db(scratch.path(), &["doctor", "--config", &numbered]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        verdict(&run.stdout, "cluster databases").starts_with("FAIL"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Valkey 9+"), "{}", run.stdout);

    // A standalone endpoint on a server in cluster mode, with db 3.
    let standalone = scratch.write(
        "standalone.yaml",
        &format!(
            "redis_databases:\n  main:\n    db: 0\n  cache:\n    db: 3\nhost: 127.0.0.1\nport: {}\n",
            node.port()
        ),
    );
    let run = redis_db(scratch.path(), &["doctor", "--config", &standalone]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        verdict(&run.stdout, "cluster databases").starts_with("FAIL"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("in cluster mode, which serves db 0 only"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unreachable_server_fails_the_run() {
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(support::unused_port()));
    let run = redis_db(scratch.path(), &["doctor", "--config", &config]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        verdict(&run.stdout, "select access").starts_with("FAIL"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("make sure the server runs"),
        "{}",
        run.stdout
    );
}
