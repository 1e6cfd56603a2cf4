//! `redis-db wait-ready` against the harness's own servers.

#[path = "../../../tests/support/mod.rs"]
mod support;

mod common;

use std::time::{Duration, Instant};

use common::{config_yaml, redis_db, Scratch};
use support::RedisServer;

#[test]
fn ready_server_returns_0_at_once() {
    let server = RedisServer::start(&[]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    let run = redis_db(scratch.path(), &["wait-ready", "--config", &config]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("ready: 4 databases answer after "),
        "{}",
        run.stdout
    );
    // Not a terminal: no progress line.
    assert_eq!(run.stderr, "");
}

#[test]
fn loading_is_waited_out() {
    let mut server = RedisServer::start(&[]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    // About 3 s of LOADING, proven open before this returns.
    support::restart_into_loading(&mut server, 30_000, 100);
    let run = redis_db(
        scratch.path(),
        &["wait-ready", "--config", &config, "--timeout", "60"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // It returned because loading ended, not before.
    assert_eq!(
        server.info_field("persistence", "loading").as_deref(),
        Some("0")
    );
}

#[test]
fn timeout_on_a_loading_server_gives_the_reason() {
    let mut server = RedisServer::start(&[]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    support::restart_into_loading(&mut server, 30_000, 300);
    let started = Instant::now();
    let run = redis_db(
        scratch.path(),
        &["wait-ready", "--config", &config, "--timeout", "1"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "{run:?}");
    assert!(
        run.stderr.contains("not ready after 1.0 s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("server still loading its dataset"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn unreachable_server_times_out_with_the_reason() {
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(support::unused_port()));
    let run = redis_db(
        scratch.path(),
        &["wait-ready", "--config", &config, "--timeout", "0.5"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("endpoint default: 4 databases not ready:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("unreachable"), "{}", run.stderr);
}

#[test]
fn a_server_that_starts_later_is_waited_for() {
    let mut server = RedisServer::start(&[]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    server.kill();
    let child = common::command(
        scratch.path(),
        &["wait-ready", "--config", &config, "--timeout", "30"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    server.restart();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn a_wrong_password_fails_at_once_without_showing_it() {
    let server = RedisServer::start(&["--requirepass", "right-pw"]);
    let scratch = Scratch::new();
    let config = scratch.write("redis-databases.yaml", &config_yaml(server.port()));
    let url = format!("redis://:wr0ng-pw@127.0.0.1:{}", server.port());
    let started = Instant::now();
    let run = redis_db(
        scratch.path(),
        &[
            "wait-ready",
            "--config",
            &config,
            "--url",
            &url,
            "--timeout",
            "30",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    // Waiting cannot cure it: it is reported long before the timeout.
    assert!(started.elapsed() < Duration::from_secs(10), "{run:?}");
    assert!(
        run.stderr.contains("authentication failed"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("wr0ng-pw"), "{run:?}");

    let url = format!("redis://:right-pw@127.0.0.1:{}", server.port());
    let run = redis_db(
        scratch.path(),
        &["wait-ready", "--config", &config, "--url", &url],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.all().contains("right-pw"), "{run:?}");
}

#[test]
fn a_bad_timeout_is_a_usage_error() {
    let scratch = Scratch::new();
    for bad in ["0", "-3", "soon"] {
        let run = redis_db(scratch.path(), &["wait-ready", &format!("--timeout={bad}")]);
        assert_eq!(run.code, 64, "{bad}: {run:?}");
        assert!(run.stderr.contains("--timeout"), "{}", run.stderr);
    }
}
