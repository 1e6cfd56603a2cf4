//! Instructions per call, SDK against raw redis-rs: the deterministic figure behind
//! `benches/compare.rs`'s throughput and CPU ratios.
//!
//! `cargo bench --bench calls -- <contender> <calls>` makes `<calls>` sequential GET/SET calls on
//! a current-thread runtime (one task, so no scheduling noise) against its own `redis-server`
//! (or `REDIS_URL`), then exits. Run it under callgrind twice per contender, with two call counts,
//! and the difference divided by the difference in calls is the client's instructions per call,
//! connection set-up and server start cancelled out:
//!
//! ```text
//! cargo bench --no-run --bench calls   # then, with the binary it names:
//! for c in redis-db raw raw-resp3 redis-db-handle-per-call; do for n in 2000 12000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$c.$n target/release/deps/calls-* --bench $c $n
//! done; done
//! ```
//!
//! `scripts/instructions.sh` does exactly that and prints `INSTR <contender> <per call>`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;

use redis::io::tcp::TcpSettings;
use redis::{AsyncCommands, IntoConnectionInfo, ProtocolVersion};

#[redis_db::databases(config = "benches/redis-databases.yaml")]
pub enum Db {}

const VALUE: [u8; 64] = [b'x'; 64];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(contender), Some(calls)) = (args.first(), args.get(1)) else {
        println!("benches/calls: usage: cargo bench --bench calls -- <redis-db|redis-db-handle-per-call|raw|raw-resp3> <calls>");
        return ExitCode::SUCCESS;
    };
    let Ok(calls) = calls.parse::<u64>() else {
        eprintln!("calls: {calls} is not a number");
        return ExitCode::from(2);
    };
    let server = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| Err(support::RedisServer::start(&[])), Ok);
    let url = match &server {
        Ok(url) => url.clone(),
        Err(own) => own.url(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let result = runtime.block_on(run(contender, calls, &url));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("benches/calls {contender}: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(contender: &str, calls: u64, url: &str) -> Result<(), String> {
    let keys: Vec<String> = (0..100).map(|i| format!("redis-db-bench:{i}")).collect();
    match contender {
        "redis-db" | "redis-db-handle-per-call" => {
            let db = Db::builder()
                .url(url)
                .ignore_environment()
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            let mut handle = db.main();
            for i in 0..calls {
                let key = &keys[(i / 2 % 100) as usize];
                if contender == "redis-db" {
                    call(&mut handle, i, key).await?;
                } else {
                    call(&mut db.main(), i, key).await?;
                }
            }
        }
        "raw" | "raw-resp3" => {
            let mut info = url.into_connection_info().map_err(|e| e.to_string())?;
            let settings = info.redis_settings().clone().set_db(15);
            info = if contender == "raw-resp3" {
                info.set_redis_settings(settings.set_protocol(ProtocolVersion::RESP3))
                    .set_tcp_settings(TcpSettings::default().set_nodelay(true))
            } else {
                info.set_redis_settings(settings)
            };
            let mut connection = redis::Client::open(info)
                .map_err(|e| e.to_string())?
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            for i in 0..calls {
                call(&mut connection, i, &keys[(i / 2 % 100) as usize]).await?;
            }
        }
        other => return Err(format!("no such contender {other}")),
    }
    Ok(())
}

async fn call<C: redis::aio::ConnectionLike + Send + Sync>(
    connection: &mut C,
    i: u64,
    key: &str,
) -> Result<(), String> {
    let result = if i.is_multiple_of(2) {
        connection.set::<_, _, ()>(key, &VALUE[..]).await
    } else {
        connection.get::<_, redis::Value>(key).await.map(drop)
    };
    result.map_err(|e| e.to_string())
}
