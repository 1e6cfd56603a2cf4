//! Contract 5.2 (retries) and 5.5 (dead connections replaced without the caller seeing an error):
//! connection-level failures are retried with backoff up to `retry_attempts`; `0` means none.

mod support;

use std::time::{Duration, Instant};

use redis_db::redis::AsyncCommands;
use redis_db::Error;
use support::client::OnTestServer;
use support::{wait_for_async, RedisServer};

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_survives_a_server_restart_through_retries() {
    let mut server = RedisServer::start(&[]);
    let db = Db::builder()
        .on(&server)
        .configure(|c| {
            c.retry.attempts = 8;
            c.retry.delay = Duration::from_millis(100);
            c.retry.max_delay = Duration::from_millis(400);
        })
        .connect()
        .await
        .unwrap();
    let _: () = db.main().set("survivor", "still here").await.unwrap();
    let _: () = redis::cmd("SAVE").query(&mut server.raw(0)).unwrap();
    server.kill();

    // The server comes back only once the SDK has had to retry, so the retry is what saves the call.
    let watcher = db.clone();
    let restarter = std::thread::spawn(move || {
        RedisServer::wait_for(Duration::from_secs(5), "a first retry", || {
            watcher.stats().database("main").unwrap().retries > 0
        });
        server.restart();
        server
    });
    let value: String = db
        .main()
        .get("survivor")
        .await
        .expect("the GET is retried until the server is back");
    let _server = restarter.join().unwrap();
    assert_eq!(value, "still here");
    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert!(main.retries > 0, "{main:?}");
    assert_eq!(main.failures, 0, "{main:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_attempts_zero_fails_at_the_first_failure() {
    let mut server = RedisServer::start(&[]);
    let db = Db::builder()
        .on(&server)
        .configure(|c| {
            c.retry.attempts = 0;
            // A retry loop would show: 1 s before the first retry.
            c.retry.delay = Duration::from_secs(1);
            c.retry.max_delay = Duration::from_secs(1);
        })
        .connect()
        .await
        .unwrap();
    server.kill();
    // Until the call is over nothing else may listen on the dead server's port, or the call
    // would reach that process (seen once under load on a shared machine: the GET timed out
    // instead of being refused), and no connect may pick it as its own source port either.
    let _held = hold_port(server.port());
    let started = Instant::now();
    let error = db
        .main()
        .query::<Option<String>>(redis::cmd("GET").arg("k"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, Error::Unreachable { attempts: 1, .. }),
        "{error:?}"
    );
    assert!(
        elapsed < Duration::from_millis(800),
        "no retry means no backoff: {elapsed:?}"
    );
    assert!(error.to_string().contains("`main`"), "{error}");
    assert_eq!(db.stats().database("main").unwrap().retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_read_survives_its_connection_being_killed() {
    let server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    let blocked = |server: &RedisServer| server.info_field("clients", "blocked_clients").unwrap();

    let handle = db.main();
    let reader = tokio::spawn(async move {
        let mut handle = handle;
        redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(3000)
            .arg("STREAMS")
            .arg("events")
            .arg("$")
            .query_async::<redis::Value>(&mut handle)
            .await
    });
    wait_for_async(
        Duration::from_secs(5),
        "XREAD blocked on the server",
        || blocked(&server) == "1",
    )
    .await;

    // Kill every client connection (SKIPME yes keeps the killer): the in-flight XREAD loses its socket.
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut server.raw(0))
        .unwrap();
    assert!(killed >= 1, "the XREAD's connection was killed");

    // The SDK re-sends the read on a fresh connection; it blocks again, and then sees the entry.
    wait_for_async(
        Duration::from_secs(5),
        "XREAD blocked again on a new connection",
        || blocked(&server) == "1",
    )
    .await;
    let _: String = redis::cmd("XADD")
        .arg("events")
        .arg("*")
        .arg("field")
        .arg("value")
        .query(&mut server.raw(0))
        .unwrap();

    let reply = reader
        .await
        .unwrap()
        .expect("the caller never sees the killed connection");
    let text = format!("{reply:?}");
    assert!(
        text.contains("events") && text.contains("value"),
        "the entry added after the kill: {text}"
    );
    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert!(main.retries >= 1, "{main:?}");
    assert_eq!(main.failures, 0, "{main:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_after_the_shared_connection_was_killed() {
    let server = RedisServer::start(&[]);
    let db = Db::builder().on(&server).connect().await.unwrap();
    let _: () = db.main().set("k", 1).await.unwrap();
    assert_eq!(server.clients_on_db(0), 1, "one shared connection on db 0");
    let created_before = db.stats().database("main").unwrap().connections_created;

    let _: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut server.raw(0))
        .unwrap();
    wait_for_async(
        Duration::from_secs(5),
        "the server dropped the shared connection",
        || server.clients_on_db(0) == 0,
    )
    .await;
    // The SDK learns of the close when its driver reads the end of the stream and closes its
    // side; until then a send races the close (on a loaded machine it lost, once).
    wait_for_async(
        Duration::from_secs(5),
        "the client side of the shared connection was closed",
        || client_sockets_to(server.port()) == 0,
    )
    .await;

    // A write first: it may only go out on a connection known to be alive.
    let _: () = db.main().set("k", 2).await.expect("SET after the kill");
    let value: i64 = db.main().get("k").await.expect("GET after the kill");
    assert_eq!(value, 2);

    let stats = db.stats();
    let main = stats.database("main").unwrap();
    assert_eq!(main.failures, 0, "{main:?}");
    assert_eq!(
        main.retries, 0,
        "the dead connection was replaced before sending, not after failing: {main:?}"
    );
    assert!(
        main.connections_created > created_before,
        "a new connection was opened: {main:?}"
    );
    assert!(
        main.connections_closed >= 1,
        "the dead one is counted as closed: {main:?}"
    );
    assert_eq!(server.clients_on_db(0), 1, "again one shared connection");
}

/// Binds `port` without listening: connecting to it is refused at once, and no other process
/// can listen on it (or use it as a source port) while the socket lives.
fn hold_port(port: u16) -> redis::io::tcp::socket2::Socket {
    use redis::io::tcp::socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    // The dead server's connections may linger in TIME_WAIT on this port.
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    socket
        .bind(&address.into())
        .unwrap_or_else(|e| panic!("hold the dead server's port {port}: {e}"));
    socket
}

/// Client sockets towards `port` still open on this side (established, or half-closed by the
/// server and not yet closed here), from `ss -tnH dst 127.0.0.1:PORT`.
fn client_sockets_to(port: u16) -> usize {
    let output = std::process::Command::new("ss")
        .args(["-tnH", "dst", &format!("127.0.0.1:{port}")])
        .output()
        .expect("ss(8) from iproute2 is needed by this test");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("ESTAB") || line.starts_with("CLOSE-WAIT"))
        .count()
}
