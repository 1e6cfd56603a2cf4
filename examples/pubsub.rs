//! The README's pub/sub example: `cargo run --example pubsub`.
//!
//! Against the Redis on 127.0.0.1:6379 (or `REDIS_URL`): subscribes to a channel and a pattern
//! of `main`, publishes, and receives both deliveries; then asks for the keyspace notifications
//! of `sessions` (db 6). A server with `notify-keyspace-events` off answers with the SDK's error
//! naming the setting, which is printed: the example never changes the server's configuration.

use std::process::ExitCode;
use std::time::Duration;

use redis_db::redis::AsyncCommands;

#[redis_db::databases(config = "config/redis-databases.yaml")]
pub enum RedisDatabase {}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pubsub example failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let db = RedisDatabase::connect().await?;

    let mut sub = db.main().subscriber().await?;
    sub.subscribe("redis-db-example:jobs:done").await?;
    sub.psubscribe("redis-db-example:jobs:*").await?;
    let receivers: i64 = db
        .main()
        .publish("redis-db-example:jobs:done", "42")
        .await?;
    println!("published to {receivers} subscription(s)");
    for _ in 0..2 {
        let msg = tokio::time::timeout(Duration::from_secs(5), sub.recv())
            .await?
            .ok_or("the subscriber stopped")?;
        let body: String = msg.payload()?;
        println!(
            "received on {} (pattern {:?}): {body}",
            msg.channel(),
            msg.pattern()
        );
    }

    match db
        .sessions()
        .keyspace_events("redis-db-example:session:*")
        .await
    {
        Ok(mut events) => {
            let _: () = db
                .sessions()
                .set_ex("redis-db-example:session:42", "x", 60)
                .await?;
            let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await?
                .ok_or("the keyspace stream stopped")?;
            println!("keyspace event of db 6: {} {}", event.key(), event.event());
            let _: () = db.sessions().del("redis-db-example:session:42").await?;
        }
        Err(error) => println!("keyspace events: {error}"),
    }
    println!("{}", serde_json::to_string(&db.stats().database("main"))?);
    Ok(())
}
