//! The shared handle's own connection (`multiplex.rs`) against a real server: every kind of
//! reply is the `Value` an exclusive (redis-rs) connection gets, replies go to the caller that
//! asked, large replies arrive whole, and a transaction the server refused fails as with
//! redis-rs.

mod support;

use redis_db::redis::aio::ConnectionLike;
use redis_db::redis::{self, AsyncCommands, ErrorKind, ServerErrorKind, Value};
use support::client::OnTestServer;
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

async fn connect(server: &RedisServer) -> DbClient {
    Db::builder().on(server).connect().await.expect("connect")
}

/// Writes that set up the keys, then reads whose replies cover every RESP3 kind a command can
/// produce (Lua in RESP3 mode makes the rare ones) and are the same each time they run.
fn commands() -> (Vec<redis::Cmd>, Vec<redis::Cmd>) {
    let script = |body: &str| {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(format!("redis.setresp(3); return {body}")).arg(0);
        cmd
    };
    let mut hset = redis::cmd("HSET");
    hset.arg("shared:h").arg("a").arg(1).arg("b").arg("two");
    let mut sadd = redis::cmd("SADD");
    sadd.arg("shared:s").arg("x").arg("y");
    let mut zadd = redis::cmd("ZADD");
    zadd.arg("shared:z").arg(1.5).arg("m");
    let arg = |name: &str, key: &str| {
        let mut cmd = redis::cmd(name);
        cmd.arg(key);
        cmd
    };
    let setup = [hset, sadd, zadd];
    let reads = vec![
        redis::cmd("PING"),
        arg("HGETALL", "shared:h"),
        arg("SMEMBERS", "shared:s"),
        {
            let mut cmd = redis::cmd("ZSCORE");
            cmd.arg("shared:z").arg("m");
            cmd
        },
        arg("GET", "shared:missing"),
        arg("HGET", "shared:h"),
        script("{double = 3.25}"),
        script("true"),
        script("false"),
        script("{big_number = '1234567890123456789012345678901234567890'}"),
        script("{verbatim_string = {format = 'txt', string = 'some text'}}"),
        script("{map = {k = {1, 2, {map = {}}}}}"),
        script("{set = {a = true}}"),
        script("redis.error_reply('MYERR custom failure')"),
        script("{1, 'two', {err = 'NESTED inner'}, redis.status_reply('FINE')}"),
    ];
    (setup.into(), reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_reply_is_what_an_exclusive_connection_gets() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut shared = db.main();
    let mut exclusive = db
        .main()
        .connection()
        .await
        .expect("an exclusive connection");
    let (setup, reads) = commands();
    for cmd in setup {
        shared.req_packed_command(&cmd).await.expect("setup");
    }
    for cmd in reads {
        let on_shared = shared.req_packed_command(&cmd).await;
        let on_exclusive = exclusive.req_packed_command(&cmd).await;
        let text = String::from_utf8_lossy(&cmd.get_packed_command()).into_owned();
        match (on_shared, on_exclusive) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Err(a), Err(b)) => {
                assert_eq!(a.kind(), b.kind(), "{text}");
                assert_eq!(a.to_string(), b.to_string(), "{text}");
            }
            (a, b) => panic!("{text}: shared {a:?}, exclusive {b:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_each_get_the_reply_to_their_own_command() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let tasks: Vec<_> = (0..64)
        .map(|task| {
            let mut handle = db.main();
            tokio::spawn(async move {
                for i in 0..200 {
                    let key = format!("shared:{task}:{i}");
                    let value = format!("{task}-{i}-{}", "v".repeat(i % 50));
                    let _: () = handle.set(&key, &value).await.unwrap();
                    let back: String = handle.get(&key).await.unwrap();
                    assert_eq!(back, value, "task {task} got another caller's reply");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_replies_arrive_whole_beside_small_ones() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut handle = db.main();
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let _: () = handle.set("shared:big", &big).await.unwrap();
    let items: Vec<String> = (0..100_000).map(|i| format!("item-{i}")).collect();
    let _: () = handle.rpush("shared:list", &items).await.unwrap();
    let small = tokio::spawn({
        let mut handle = db.main();
        async move {
            for i in 0..2_000 {
                let n: i64 = handle.incr("shared:counter", 1).await.unwrap();
                assert_eq!(n, i + 1);
            }
        }
    });
    for _ in 0..3 {
        let back: Vec<u8> = handle.get("shared:big").await.unwrap();
        assert!(back == big, "the 8 MiB value came back whole");
        let listed: Vec<String> = handle.lrange("shared:list", 0, -1).await.unwrap();
        assert_eq!(listed, items);
    }
    small.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_the_server_refused_to_queue_is_aborted_and_nothing_runs() {
    let server = RedisServer::start(&[]);
    let db = connect(&server).await;
    let mut handle = db.main();
    let error = redis::pipe()
        .atomic()
        .set("shared:t", 1)
        .cmd("INCRBY")
        .arg("shared:t")
        .query_async::<Value>(&mut handle)
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::Server(ServerErrorKind::ExecAbort),
        "{error}"
    );
    assert!(
        error.to_string().contains("wrong number of arguments"),
        "the error names the refused command's error: {error}"
    );
    let set: Option<i64> = handle.get("shared:t").await.unwrap();
    assert_eq!(set, None, "nothing in the transaction ran");
    // The connection is still in step: the next reply is its own.
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("shared:t", 2)
        .incr("shared:t", 3)
        .query_async(&mut handle)
        .await
        .unwrap();
    assert_eq!((a, b), (2, 5));
}
