//! No password in `Debug`, `Display`, errors or logs: every tracing event the SDK emits, at
//! TRACE with per-command logging on, is captured while it connects with right and wrong
//! passwords, fails, opens its breaker and reports health; the password appears nowhere.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use redis_db::redis::AsyncCommands;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

const PASSWORD: &str = "s3cret-Pa55word-never-shown";
const WRONG: &str = "wrong-Pa55word-never-shown";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_password_appears_in_no_log_error_or_debug_output() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let mut server = RedisServer::start(&["--requirepass", PASSWORD]);
    let url = |password: &str| format!("redis://:{password}@127.0.0.1:{}", server.port());
    let mut shown = Vec::new();

    let wrong = Db::builder()
        .url(url(WRONG))
        .ignore_environment()
        .connect()
        .await
        .unwrap_err();
    shown.push(format!("{wrong} {wrong:?}"));

    let builder = Db::builder()
        .url(url(PASSWORD))
        .ignore_environment()
        .configure(|c| {
            c.log_commands = true;
            c.retry.attempts = 1;
            c.circuit_breaker.failure_threshold = 1;
        });
    shown.push(format!("{builder:?}"));
    let config = Db::builder()
        .url(url(PASSWORD))
        .ignore_environment()
        .resolve()
        .unwrap();
    shown.push(format!("{config:?}"));
    let db = builder.connect().await.unwrap();
    shown.push(format!("{db:?} {:?}", db.main()));
    let _: () = db.main().set("k", "v").await.unwrap();
    let wrongtype = db.main().lpush::<_, _, i64>("k", 1).await.unwrap_err();
    shown.push(format!("{wrongtype} {wrongtype:?}"));

    server.kill();
    for _ in 0..2 {
        let down = db.main().get::<_, Option<String>>("k").await.unwrap_err();
        shown.push(format!("{down} {down:?}"));
    }
    shown.push(format!("{:?}", db.health().await));
    shown.push(serde_json::to_string(&db.stats()).unwrap());
    shown.push(format!("{:?}", db.stats()));
    drop(db);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("redis-db: command"),
        "per-command events were captured:\n{logs}"
    );
    assert!(
        logs.contains("circuit opened"),
        "breaker events were captured:\n{logs}"
    );
    for text in shown.iter().chain(std::iter::once(&logs)) {
        for secret in [PASSWORD, WRONG] {
            assert!(!text.contains(secret), "a password leaked into:\n{text}");
        }
    }
}
