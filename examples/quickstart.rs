//! The README's first command: `cargo run --example quickstart`.
//!
//! Connects to the Redis on 127.0.0.1:6379 (or `REDIS_URL`) with the default
//! `config/redis-databases.yaml`, writes and reads through two databases, and prints the
//! statistics and a health report.

use std::process::ExitCode;

use redis_db::redis::AsyncCommands;

#[redis_db::databases(config = "config/redis-databases.yaml")]
pub enum RedisDatabase {}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quickstart failed: {error}");
            let unreachable = matches!(
                error.downcast_ref::<redis_db::Error>(),
                Some(redis_db::Error::Unreachable { .. } | redis_db::Error::Timeout { .. })
            );
            if unreachable {
                eprintln!(
                    "\nNo Redis answered. Start one with `redis-server --daemonize yes` \
                     (install: `sudo apt-get install -y redis-server`), or point REDIS_URL at yours."
                );
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Fail fast when nothing listens, instead of the production retry schedule.
    let db = RedisDatabase::builder()
        .configure(|c| c.retry.attempts = 1)
        .connect()
        .await?;

    let mut knowledge = db.knowledge();
    let _: () = knowledge
        .set("quickstart:doc:1", "hello from redis-db")
        .await?;
    let doc: String = knowledge.get("quickstart:doc:1").await?;
    println!(
        "knowledge (db {}) quickstart:doc:1 = {doc:?}",
        RedisDatabase::Knowledge.index()
    );

    let mut sessions = db.sessions();
    let (visits, _): (i64, bool) = redis_db::redis::pipe()
        .incr("quickstart:visits", 1)
        .expire("quickstart:visits", 300)
        .query_async(&mut sessions)
        .await?;
    println!(
        "sessions (db {}) quickstart:visits = {visits}",
        RedisDatabase::Sessions.index()
    );

    let stats = db.stats();
    println!("\nstats:\n{}", to_json(&stats));
    println!("\nhealth:\n{}", to_json(&db.health().await));
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("<{e}>"))
}
