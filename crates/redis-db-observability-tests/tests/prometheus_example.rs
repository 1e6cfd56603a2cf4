//! `examples/prometheus.rs`, run against a server of the harness: its `/metrics` page, fetched
//! over HTTP, has every family with the documented labels.
//!
//! The example's `#[redis_db::databases(config = "config/redis-databases.yaml")]` resolves
//! against this crate's directory here: `config/redis-databases.yaml` of this crate has the
//! databases it uses.

#[path = "../../../tests/support/mod.rs"]
mod support;

mod common;

#[path = "../../../examples/prometheus.rs"]
#[allow(dead_code)] // its `main`
mod example;

use std::net::{SocketAddr, TcpListener};

use support::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_metrics_page_has_every_family_and_label() {
    let server = RedisServer::start(&[]);
    let listen: SocketAddr = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let _client = example::run(listen, Some(server.url()), Some(1))
        .await
        .expect("the example runs one round");

    let page = get_metrics(listen).await;
    for family in [
        "# TYPE db_client_operation_duration histogram",
        "# TYPE redis_db_commands counter",
        "# TYPE redis_db_failures counter",
        "# TYPE redis_db_retries counter",
        "# TYPE redis_db_readiness_waits counter",
        "# TYPE redis_db_circuit_open gauge",
        "# TYPE redis_db_circuit_openings counter",
        "# TYPE redis_db_connections_created counter",
        "# TYPE redis_db_connections_closed counter",
        "# TYPE db_client_connection_count gauge",
        "# TYPE db_client_connection_max gauge",
        "# TYPE db_client_connection_pending_requests gauge",
    ] {
        assert!(page.contains(family), "no `{family}` in:\n{page}");
    }
    let samples = common::parse(&page);
    let knowledge = [("database", "knowledge"), ("db", "1")];
    // One round: 10 SET, 10 GET and one refused LPUSH on knowledge, a pipeline on sessions.
    assert_eq!(common::sum(&samples, "redis_db_commands", &knowledge), 21.0);
    assert_eq!(
        common::sum(&samples, "db_client_operation_duration_count", &knowledge),
        21.0
    );
    let get = [
        ("database", "knowledge"),
        ("db", "1"),
        ("db_system_name", "redis"),
        ("db_namespace", "1"),
        ("db_operation_name", "GET"),
    ];
    let buckets = common::find(&samples, "db_client_operation_duration_bucket", &get);
    assert_eq!(buckets.len(), example::BUCKETS.len() + 1, "{buckets:?}");
    let refused = [
        ("database", "knowledge"),
        ("db_operation_name", "LPUSH"),
        ("error_type", "WRONGTYPE"),
    ];
    assert_eq!(
        common::sum(&samples, "db_client_operation_duration_count", &refused),
        1.0
    );
    let sessions = [
        ("database", "sessions"),
        ("db", "6"),
        ("db_operation_name", "PIPELINE"),
    ];
    assert_eq!(
        common::sum(&samples, "db_client_operation_duration_count", &sessions),
        1.0
    );
    for state in ["idle", "used"] {
        let labels = [
            ("database", "knowledge"),
            ("db", "1"),
            ("db_client_connection_state", state),
        ];
        assert_eq!(
            common::find(&samples, "db_client_connection_count", &labels).len(),
            1,
            "{state}"
        );
    }
    assert!(common::sum(&samples, "redis_db_connections_created", &knowledge) >= 1.0);
    // Sampled at connect: the pool of a live client.
    assert!(common::sum(&samples, "db_client_connection_max", &knowledge) >= 1.0);
    assert_eq!(
        common::sum(&samples, "redis_db_circuit_open", &knowledge),
        0.0
    );
}

/// `GET /metrics` over HTTP/1.0, the body of the answer.
async fn get_metrics(listen: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(listen).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    body.to_owned()
}
