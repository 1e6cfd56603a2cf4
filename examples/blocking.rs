//! The blocking client from a plain `fn main`: `cargo run --example blocking`.
//!
//! Same databases, policies and figures as the async client, for CLIs, build tools and threads
//! outside a runtime.

use std::process::ExitCode;

use redis_db::redis::Commands;

#[redis_db::databases(config = "config/redis-databases.yaml")]
pub enum RedisDatabase {}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("blocking example failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let db = RedisDatabase::builder()
        .configure(|c| c.retry.attempts = 1)
        .connect_blocking()?;

    let _: () = db
        .knowledge()
        .set("blocking:doc:1", "hello from a plain thread")?;
    let doc: String = db.knowledge().get("blocking:doc:1")?;
    println!("knowledge: {doc:?}");

    // Handles are Clone + Send: share the client across threads.
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let mut cache = db.cache();
            std::thread::spawn(move || cache.incr::<_, _, i64>("blocking:counter", i))
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "worker panicked")??;
    }
    let (counter,): (i64,) = redis_db::redis::pipe()
        .get("blocking:counter")
        .query(&mut db.cache())?;
    println!("cache: blocking:counter = {counter}");

    let stats = db.stats();
    let cache = stats.database("cache").ok_or("no cache stats")?;
    println!(
        "cache: {} commands, p99 {} us",
        cache.commands, cache.latency.p99_us
    );
    println!(
        "health: {}",
        if db.health().is_healthy() {
            "healthy"
        } else {
            "not healthy"
        }
    );
    Ok(())
}
