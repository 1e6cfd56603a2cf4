//! Contract section 4: `REDIS_URL`, `REDIS_HOST`, `REDIS_PORT`, `REDIS_USERNAME`,
//! `REDIS_PASSWORD` and `REDIS_DB_CONFIG`; layers compiled YAML < runtime file < REDIS_URL <
//! single REDIS_* fields < builder; malformed variables are errors naming the variable.
//!
//! Environment variables are process-global, so this file holds ONE test that runs every case
//! in sequence. Add cases to it; do not add a second #[test] here.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use redis_db::redis::AsyncCommands;
use redis_db::Error;
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/environment.yaml")]
pub enum Db {}

const VARIABLES: &[&str] = &[
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_DB_CONFIG",
];

fn clear() {
    for name in VARIABLES {
        std::env::remove_var(name);
    }
}

/// Sets exactly these variables (all others unset).
fn only(vars: &[(&str, &str)]) {
    clear();
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
}

struct TempFiles(PathBuf);

impl TempFiles {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("redis-db-env-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempFiles(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The key written through the SDK is on our test server: the environment really pointed there.
async fn proves_it_reached(db: &DbClient, server: &RedisServer, case: &str) {
    let _: () = db
        .main()
        .set("env-case", case)
        .await
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let seen: String = redis::cmd("GET")
        .arg("env-case")
        .query(&mut server.raw(0))
        .unwrap();
    assert_eq!(seen, case);
}

fn config_error_text(result: Result<impl std::fmt::Debug, Error>, case: &str) -> String {
    match result {
        Err(error @ Error::Config(_)) => error.to_string(),
        other => panic!("{case}: expected a configuration error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_and_layers() {
    let server = RedisServer::start(&[]);
    let port = server.port().to_string();
    let nowhere = support::unused_port().to_string();
    let files = TempFiles::new();

    // The compiled address is unreachable: nothing set, nothing reached.
    clear();
    let error = Db::connect().await.unwrap_err();
    assert!(
        matches!(error, Error::Unreachable { .. }),
        "compiled 127.0.0.1:1: {error:?}"
    );

    // REDIS_URL, through the generated connect().
    only(&[("REDIS_URL", &server.url())]);
    let db = Db::connect().await.expect("REDIS_URL");
    proves_it_reached(&db, &server, "REDIS_URL").await;

    // REDIS_HOST + REDIS_PORT, through the builder without ignore_environment().
    only(&[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", &port)]);
    let db = Db::builder()
        .connect()
        .await
        .expect("REDIS_HOST + REDIS_PORT");
    proves_it_reached(&db, &server, "REDIS_HOST+REDIS_PORT").await;

    // A single field beats REDIS_URL.
    only(&[
        ("REDIS_URL", &format!("redis://127.0.0.1:{nowhere}")),
        ("REDIS_PORT", &port),
    ]);
    let config = Db::builder().resolve().unwrap();
    assert_eq!(
        config.connection.port,
        server.port(),
        "REDIS_PORT beats REDIS_URL's port"
    );
    let db = Db::builder()
        .connect()
        .await
        .expect("REDIS_PORT over REDIS_URL");
    proves_it_reached(&db, &server, "REDIS_PORT over REDIS_URL").await;

    // Malformed variables are errors naming the variable.
    for bad in ["not-a-port", "0", "70000", "63 79"] {
        only(&[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", bad)]);
        let text = config_error_text(Db::builder().connect().await, bad);
        assert!(text.contains("REDIS_PORT"), "REDIS_PORT={bad}: {text}");
    }
    only(&[("REDIS_URL", "http://not redis")]);
    let text = config_error_text(Db::builder().resolve(), "REDIS_URL");
    assert!(text.contains("REDIS_URL"), "{text}");

    // The builder beats the environment, field by field.
    only(&[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", &nowhere)]);
    let db = Db::builder()
        .port(server.port())
        .connect()
        .await
        .expect("builder .port() beats REDIS_PORT");
    proves_it_reached(&db, &server, "builder port").await;
    only(&[("REDIS_URL", &format!("redis://127.0.0.1:{nowhere}"))]);
    let db = Db::builder()
        .url(server.url())
        .connect()
        .await
        .expect("builder .url() beats REDIS_URL");
    proves_it_reached(&db, &server, "builder url").await;

    // ignore_environment() ignores even a malformed variable.
    only(&[
        ("REDIS_PORT", "not-a-port"),
        ("REDIS_DB_CONFIG", "/does/not/exist.yaml"),
    ]);
    let db = Db::builder()
        .on(&server)
        .connect()
        .await
        .expect("environment ignored");
    proves_it_reached(&db, &server, "ignored").await;

    // REDIS_DB_CONFIG: a runtime file changing settings is applied...
    let runtime = files.write(
        "runtime.yaml",
        "timeout: 2.5\nretry_attempts: 7\nport: 2\ncircuit_breaker:\n  failure_threshold: 9\nredis_databases:\n  main:\n    db: 0\n    timeout_seconds: 0.75\n  jobs:\n    db: 3\n",
    );
    only(&[("REDIS_DB_CONFIG", &runtime)]);
    let config = Db::builder().resolve().expect("a valid runtime file");
    assert_eq!(config.timeout, Duration::from_millis(2500));
    assert_eq!(config.retry.attempts, 7);
    assert_eq!(config.circuit_breaker.failure_threshold, 9);
    assert_eq!(
        config.connection.port, 2,
        "the file's port over the compiled one"
    );
    assert_eq!(
        config.databases[0].timeout,
        Some(Duration::from_millis(750))
    );
    // ... under the environment, which beats it ...
    only(&[("REDIS_DB_CONFIG", &runtime), ("REDIS_PORT", &port)]);
    let config = Db::builder().resolve().unwrap();
    assert_eq!(
        (config.connection.port, config.timeout),
        (server.port(), Duration::from_millis(2500))
    );
    let db = Db::connect().await.expect("file + REDIS_PORT");
    proves_it_reached(&db, &server, "file + env").await;
    // ... and the builder's file beats REDIS_DB_CONFIG.
    let other = files.write("other.yaml", "timeout: 4\n");
    let config = Db::builder().config_file(&other).resolve().unwrap();
    assert_eq!(config.timeout, Duration::from_secs(4));

    // A runtime file that renumbers a database is rejected, naming it.
    let renumbered = files.write(
        "renumbered.yaml",
        "redis_databases:\n  main:\n    db: 0\n  jobs:\n    db: 5\n",
    );
    only(&[("REDIS_DB_CONFIG", &renumbered)]);
    let text = config_error_text(Db::builder().resolve(), "renumbered");
    assert!(text.contains("`jobs`") && text.contains('5'), "{text}");
    let text = config_error_text(Db::connect().await, "renumbered, connect()");
    assert!(text.contains("`jobs`"), "{text}");
    // One that adds a database, too.
    let added = files.write(
        "added.yaml",
        "redis_databases:\n  main:\n    db: 0\n  jobs:\n    db: 3\n  extra:\n    db: 4\n",
    );
    only(&[("REDIS_DB_CONFIG", &added)]);
    let text = config_error_text(Db::builder().resolve(), "added");
    assert!(text.contains("`extra`"), "{text}");
    // A missing file shows its path.
    only(&[("REDIS_DB_CONFIG", "/does/not/exist/runtime.yaml")]);
    let text = config_error_text(Db::builder().resolve(), "missing");
    assert!(text.contains("/does/not/exist/runtime.yaml"), "{text}");

    // REDIS_PASSWORD on a protected server; a wrong one is an authentication error that hides it.
    let protected = RedisServer::start(&["--requirepass", "env-secret-1"]);
    only(&[
        ("REDIS_URL", &protected.url()),
        ("REDIS_PASSWORD", "env-secret-1"),
    ]);
    let db = Db::connect().await.expect("REDIS_PASSWORD");
    let _: () = db.main().set("k", 1).await.unwrap();
    only(&[
        ("REDIS_URL", &protected.url()),
        ("REDIS_PASSWORD", "env-wrong-2"),
    ]);
    let error = Db::connect().await.unwrap_err();
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    assert!(
        !format!("{error} {error:?}").contains("env-wrong-2"),
        "{error:?}"
    );
    // REDIS_URL's credentials are taken too, and REDIS_PASSWORD beats them.
    only(&[(
        "REDIS_URL",
        &format!("redis://:env-secret-1@127.0.0.1:{}", protected.port()),
    )]);
    Db::connect().await.expect("password from REDIS_URL");
    only(&[
        (
            "REDIS_URL",
            &format!("redis://:env-wrong-2@127.0.0.1:{}", protected.port()),
        ),
        ("REDIS_PASSWORD", "env-secret-1"),
    ]);
    Db::connect()
        .await
        .expect("REDIS_PASSWORD beats REDIS_URL's password");
    let debug = format!("{:?}", Db::builder().resolve().unwrap());
    assert!(
        !debug.contains("env-secret-1") && !debug.contains("env-wrong-2"),
        "{debug}"
    );

    clear();
}
