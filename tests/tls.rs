//! TLS on real servers (CONTRACT section 11): `redis-server` listening on TLS only, with a
//! private CA, server and client certificates made by `openssl` for each test.

mod support;
#[path = "support/tls.rs"]
mod tls_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use redis_db::redis::AsyncCommands;
use tls_support::{runtime_file, show, Certificates, ClientAuth, TlsServer};

#[redis_db::databases(config = "tests/fixtures/tls.yaml")]
pub enum Db {}

/// A builder on `server` with the runtime file `tls` (the YAML of a `tls:` section).
fn on(server: &TlsServer, certs: &Certificates, tls: &str) -> redis_db::Builder<Db> {
    let file = runtime_file(certs, "runtime.yaml", &format!("tls:\n{tls}"));
    Db::builder()
        .url(server.url())
        .ignore_environment()
        .config_file(file)
}

/// A certificate refusal fails the same way every time: it must fail at the first attempt, as
/// `Error::Tls` naming the database and `endpoint`. With a 10 s first backoff, a single retry
/// would take over 10 s; the refusal itself takes milliseconds. Returns the error text.
async fn refused_at_once(builder: redis_db::Builder<Db>, endpoint: &str, why: &str) -> String {
    let started = Instant::now();
    let error = builder
        .configure(|c| {
            c.retry.attempts = 5;
            c.retry.delay = Duration::from_secs(10);
            c.retry.max_delay = Duration::from_secs(10);
        })
        .connect()
        .await
        .expect_err(why);
    let elapsed = started.elapsed();
    let text = error.to_string();
    eprintln!("[{why}] {elapsed:?}: {text}");
    assert!(
        elapsed < Duration::from_secs(5),
        "{why}: retried ({elapsed:?}): {text}"
    );
    match &error {
        redis_db::Error::Tls {
            database, address, ..
        } => {
            assert_eq!(database, "main", "{text}");
            assert_eq!(address, endpoint, "{text}");
        }
        other => panic!("{why}: not Error::Tls: {other:?}"),
    }
    assert!(text.contains("`main`"), "{text}");
    assert!(text.contains(endpoint), "names the endpoint: {text}");
    assert!(text.contains("TLS handshake refused"), "{text}");
    assert!(text.contains("not retried"), "{text}");
    text
}

fn ca_line(certs: &Certificates) -> String {
    format!("  ca_file: {}\n", show(&certs.ca()))
}

fn client_lines(certs: &Certificates) -> String {
    format!(
        "  cert_file: {}\n  key_file: {}\n",
        show(&certs.path("client.pem")),
        show(&certs.path("client.key"))
    )
}

#[tokio::test]
async fn rediss_with_a_private_ca_connects_and_runs_commands() {
    let certs = Certificates::new("private");
    let server = TlsServer::start(&certs, ClientAuth::No);
    let db = on(&server, &certs, &ca_line(&certs))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect over TLS: {e}"));
    let _: () = db.main().set("tls:key", "over tls").await.unwrap();
    let v: String = db.main().get("tls:key").await.unwrap();
    assert_eq!(v, "over tls");
    // The other database, a pipeline and an exclusive connection take the same road.
    let (n,): (i64,) = redis::pipe()
        .incr("tls:n", 2)
        .query_async(&mut db.cache())
        .await
        .unwrap();
    assert_eq!(n, 2);
    let mut exclusive = db.cache().connection().await.unwrap();
    let n: i64 = redis::cmd("GET")
        .arg("tls:n")
        .query_async(&mut exclusive)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(db.health().await.databases.len(), 2);
}

#[test]
fn the_blocking_client_speaks_tls_too() {
    let certs = Certificates::new("blocking");
    let server = TlsServer::start(&certs, ClientAuth::No);
    let db = on(&server, &certs, &ca_line(&certs))
        .connect_blocking()
        .unwrap_or_else(|e| panic!("connect_blocking over TLS: {e}"));
    let _: () = redis::Commands::set(&mut db.main(), "k", 1).unwrap();
    let v: i64 = redis::Commands::get(&mut db.main(), "k").unwrap();
    assert_eq!(v, 1);
}

#[tokio::test]
async fn mutual_tls_is_accepted_with_a_client_certificate_and_refused_without() {
    let certs = Certificates::new("mutual");
    let server = TlsServer::start(&certs, ClientAuth::Required);

    let with_cert = format!("{}{}", ca_line(&certs), client_lines(&certs));
    let db = on(&server, &certs, &with_cert)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("mutual TLS with a client certificate: {e}"));
    let _: () = db.main().set("m", "tls").await.unwrap();
    let v: String = db.main().get("m").await.unwrap();
    assert_eq!(v, "tls");

    let text = refused_at_once(
        on(&server, &certs, &ca_line(&certs)),
        &server.url(),
        "no client certificate",
    )
    .await;
    assert!(text.contains("CertificateRequired"), "{text}");
    assert!(text.contains("`tls.cert_file`"), "{text}");

    // A client certificate from a CA the server does not trust.
    let stranger = Certificates::new("stranger");
    let foreign = format!("{}{}", ca_line(&certs), client_lines(&stranger));
    let text = refused_at_once(
        on(&server, &certs, &foreign),
        &server.url(),
        "client certificate of another CA",
    )
    .await;
    assert!(text.contains("received fatal alert"), "{text}");
    assert!(text.contains("`tls.cert_file`"), "{text}");
}

#[tokio::test]
async fn a_wrong_ca_is_refused_naming_the_endpoint_and_the_reason() {
    let certs = Certificates::new("server-ca");
    let other = Certificates::new("other-ca");
    let server = TlsServer::start(&certs, ClientAuth::No);

    // A CA that did not sign the server's certificate.
    let text = refused_at_once(
        on(&server, &certs, &ca_line(&other)),
        &server.url(),
        "wrong CA",
    )
    .await;
    assert!(text.contains("invalid peer certificate"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("`tls.ca_file`"), "{text}");

    // The compiled YAML's CA (relative to the YAML's directory: the file exists, it just signed
    // nothing) and `rediss://` without any CA (the built-in web roots): refused the same way,
    // never a panic.
    for builder in [
        Db::builder().url(server.url()).ignore_environment(),
        Db::builder()
            .url(server.url())
            .ignore_environment()
            .configure(|c| c.connection.tls_options.ca_file = None),
    ] {
        let text = builder.connect().await.expect_err("refused").to_string();
        assert!(text.contains("UnknownIssuer"), "{text}");
        assert!(!text.contains("cannot read"), "{text}");
    }
}

/// The server's certificate is signed by the trusted CA but names another host.
#[tokio::test]
async fn a_certificate_for_another_host_is_refused_at_once() {
    let certs = Certificates::new("hostname");
    let server = TlsServer::start_with(&certs, ClientAuth::No, "elsewhere");
    let text = refused_at_once(
        on(&server, &certs, &ca_line(&certs)),
        &server.url(),
        "hostname mismatch",
    )
    .await;
    assert!(text.contains("not valid for name"), "{text}");
    assert!(text.contains("does not name the host"), "{text}");
}

#[tokio::test]
async fn a_missing_certificate_file_is_named_in_the_error() {
    let certs = Certificates::new("missing");
    let server = TlsServer::start(&certs, ClientAuth::Required);
    let missing = certs.path("no-such-client.pem");
    let tls = format!(
        "{}  cert_file: {}\n  key_file: {}\n",
        ca_line(&certs),
        show(&missing),
        show(&certs.path("client.key"))
    );
    let error = on(&server, &certs, &tls)
        .connect()
        .await
        .expect_err("a missing certificate file is an error");
    let text = error.to_string();
    eprintln!("[missing file] {text}");
    assert!(text.contains("`main`"), "{text}");
    assert!(text.contains("`tls.cert_file`"), "{text}");
    assert!(text.contains(&show(&missing)), "{text}");
    assert!(text.contains("No such file"), "{text}");

    // A relative path in a runtime file is the working directory's.
    let tls = "  ca_file: no/such/ca.pem\n";
    let text = on(&server, &certs, tls)
        .connect()
        .await
        .expect_err("missing")
        .to_string();
    let resolved: PathBuf = std::env::current_dir().unwrap().join("no/such/ca.pem");
    assert!(text.contains("`tls.ca_file`"), "{text}");
    assert!(text.contains(&show(&resolved)), "{text}");
}

#[test]
fn the_compiled_tls_paths_are_the_yaml_directorys() {
    let config = Db::builder().ignore_environment().resolve().expect("valid");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    assert!(config.connection.tls);
    assert_eq!(
        config.connection.tls_options.ca_file,
        Some(fixtures.canonicalize().unwrap().join("tls/unused-ca.pem"))
    );
}

/// A provider the application installed before connecting is the one every handshake uses; the
/// SDK installs ring only when there is none. Runs in a child process of its own (this test
/// binary, this test only), so that no other test installs one first.
#[test]
fn a_crypto_provider_the_application_installed_is_kept() {
    const CHILD: &str = "REDIS_DB_TLS_PROVIDER_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_crypto_provider_the_application_installed_is_kept",
            ])
            .args(["--nocapture", "--test-threads", "1"])
            .env(CHILD, "1")
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    // The application's own provider: ring with one cipher suite only.
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|suite| suite.suite() == rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
    provider.install_default().expect("nothing installed yet");

    let certs = Certificates::new("provider");
    let server = TlsServer::start(&certs, ClientAuth::No);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = on(&server, &certs, &ca_line(&certs))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect with the application's provider: {e}"));
        let _: () = db.main().set("p", 1).await.unwrap();
    });
    let installed = rustls::crypto::CryptoProvider::get_default().expect("a provider");
    assert_eq!(
        installed.cipher_suites.len(),
        1,
        "the SDK replaced the application's provider"
    );
}

/// `insecure: true` skips the server's certificate checks (tests only): it connects where the
/// same server is refused with the built-in roots.
#[tokio::test]
async fn insecure_skips_the_certificate_checks() {
    let certs = Certificates::new("insecure");
    let server = TlsServer::start(&certs, ClientAuth::No);
    let db = Db::builder()
        .url(server.url())
        .ignore_environment()
        .configure(|c| {
            c.connection.tls_options.ca_file = None;
            c.connection.tls_options.insecure = true;
        })
        .connect()
        .await
        .unwrap_or_else(|e| panic!("insecure TLS: {e}"));
    let _: () = db.main().set("i", 1).await.unwrap();
}

mod cluster {
    #[redis_db::databases(config = "tests/fixtures/tls-cluster.yaml")]
    pub enum TlsCluster {}
}

/// A Redis Cluster over TLS (one node serving every slot, `--tls-cluster yes`): the cluster
/// client takes the endpoint's CA.
#[tokio::test]
async fn a_cluster_over_tls_with_a_private_ca() {
    use redis_db::config::{Cluster, ReadFrom, Topology};
    let certs = Certificates::new("cluster");
    let server = TlsServer::start_cluster(&certs);
    let seed = format!("127.0.0.1:{}", server.port());
    let ca = certs.ca();
    let topology = Topology::Cluster(Cluster {
        nodes: vec![seed.parse().unwrap()],
        read_from: ReadFrom::Master,
        numbered_databases: false,
    });
    let wrong = topology.clone();
    let db = cluster::TlsCluster::builder()
        .ignore_environment()
        .configure(move |c| {
            c.topology = topology;
            c.connection.tls_options.ca_file = Some(ca);
        })
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cluster over TLS: {e}"));
    for i in 0..20 {
        let _: () = db.main().set(format!("k{i}"), i).await.unwrap();
    }
    let v: i64 = db.main().get("k7").await.unwrap();
    assert_eq!(v, 7);

    // The compiled CA signed nothing: refused at once, naming the cluster.
    let error = cluster::TlsCluster::builder()
        .ignore_environment()
        .configure(move |c| c.topology = wrong)
        .connect()
        .await
        .expect_err("the wrong CA is refused");
    let text = error.to_string();
    eprintln!("[cluster, wrong CA] {text}");
    assert!(
        matches!(&error, redis_db::Error::Tls { address, .. } if *address == format!("cluster {seed}")),
        "{error:?}"
    );
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("`tls.ca_file`"), "{text}");
}

/// `REDIS_URL=rediss://...` and a `REDIS_DB_CONFIG` file naming the CA: `Db::connect()` speaks
/// TLS from the environment alone, and `REDIS_URL=redis://...` turns TLS off (the URL sets TLS
/// with the address), so the TLS-only server is not reached. The variables are set for child
/// processes (this test binary, this test only), never in this process where other tests run.
#[test]
fn rediss_from_the_environment() {
    const CHILD: &str = "REDIS_DB_TLS_ENV_CHILD";
    let Some(expect) = std::env::var_os(CHILD) else {
        let certs = Certificates::new("env");
        let server = TlsServer::start(&certs, ClientAuth::No);
        let file = runtime_file(&certs, "env.yaml", &format!("tls:\n{}", ca_line(&certs)));
        for (scheme, expect) in [("rediss", "connects"), ("redis", "fails")] {
            let output = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "rediss_from_the_environment"])
                .args(["--nocapture", "--test-threads", "1"])
                .env(CHILD, expect)
                .env(
                    "REDIS_URL",
                    format!("{scheme}://127.0.0.1:{}", server.port()),
                )
                .env("REDIS_DB_CONFIG", &file)
                .output()
                .expect("run the test binary");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && stdout.contains("1 passed"),
                "child ({scheme}://) failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let result = Db::connect().await;
        if expect == "connects" {
            let db = result.unwrap_or_else(|e| panic!("connect from the environment: {e}"));
            let _: () = db.main().set("env", "tls").await.unwrap();
            let v: String = db.main().get("env").await.unwrap();
            assert_eq!(v, "tls");
        } else {
            let error = result.expect_err("plain TCP to a TLS-only server");
            let text = error.to_string();
            assert!(text.contains("at redis://127.0.0.1:"), "{text}");
        }
    });
}

mod sentinel {
    //! A Sentinel deployment on TLS only (CONTRACT section 11: the endpoint's `tls:` keys):
    //! the sentinels listen on `tls-port` alone and ask for a client certificate, so the SDK
    //! reaches both the sentinels and the master it is told of over mutual TLS.

    use super::*;
    use redis_db::config::{ReadFrom, Sentinel, Topology};
    use support::topology::{settle, MASTER_NAME};
    use tls_support::TlsSentinelSet;

    fn topology(set: &TlsSentinelSet, read_from: ReadFrom) -> Topology {
        Topology::Sentinel(Sentinel {
            master_name: MASTER_NAME.to_owned(),
            nodes: set
                .sentinel_addresses()
                .iter()
                .map(|a| a.parse().expect("host:port"))
                .collect(),
            username: None,
            password: None,
            read_from,
        })
    }

    /// `tls` (a `tls:` section's YAML) on the Sentinel endpoint of `set`.
    fn through(
        set: &TlsSentinelSet,
        certs: &Certificates,
        read_from: ReadFrom,
        tls: &str,
    ) -> redis_db::Builder<Db> {
        let topology = topology(set, read_from);
        let file = runtime_file(certs, "sentinel.yaml", &format!("tls:\n{tls}"));
        Db::builder()
            .ignore_environment()
            .config_file(file)
            .configure(move |c| {
                c.topology = topology;
                // Enough to ride out a failover (the old master answers READONLY, then the
                // sentinels name the new one).
                c.retry.attempts = 10;
                c.retry.delay = Duration::from_millis(100);
                c.retry.max_delay = Duration::from_millis(500);
            })
    }

    fn endpoint(set: &TlsSentinelSet) -> String {
        format!(
            "sentinel master `{MASTER_NAME}` via {}",
            set.sentinel_addresses().join(",")
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sentinel_managed_master_over_mutual_tls_follows_a_failover() {
        let certs = Certificates::new("sentinel");
        let set = TlsSentinelSet::start(&certs, ClientAuth::Required);
        let tls = format!("{}{}", ca_line(&certs), client_lines(&certs));
        let db = through(&set, &certs, ReadFrom::Master, &tls)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect through TLS sentinels: {e}\n{}", set.logs()));
        let old = set.nodes[0].port();
        let _: () = db.cache().set("where", "before").await.unwrap();
        let on_master = set.node(old).cli(&["-n", "3", "GET", "where"]);
        assert_eq!(
            on_master.trim(),
            "before",
            "the write landed on the master, db 3"
        );

        // Replica reads take the same road (the replica the sentinels name, over TLS).
        let replicas = through(&set, &certs, ReadFrom::Replica, &tls)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("read_from: replica through TLS sentinels: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen: Option<String> = replicas.cache().get("where").await.unwrap();
            if seen.as_deref() == Some("before") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the replica never served the write"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        set.failover();
        let new = set.wait_for_new_master(old, Duration::from_secs(30));
        // The old master comes back as a replica of the new one: a write sent now may meet
        // it (READONLY, refused without running), and is re-sent to the new master.
        settle(Duration::from_secs(30), "the old master demoted", || {
            let role = set.node(old).role();
            (role == "slave").then_some(()).ok_or(role)
        });
        let n: i64 = db
            .cache()
            .incr("after", 1)
            .await
            .unwrap_or_else(|e| panic!("write after the failover: {e}\n{}", set.logs()));
        assert_eq!(n, 1, "applied once");
        let on_new = set.node(new).cli(&["-n", "3", "GET", "after"]);
        assert_eq!(
            on_new.trim(),
            "1",
            "the write landed on the new master :{new}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_sentinels_refuse_a_wrong_ca_and_a_missing_client_certificate_at_once() {
        let certs = Certificates::new("sentinel-refusals");
        let other = Certificates::new("sentinel-other-ca");
        let set = TlsSentinelSet::start(&certs, ClientAuth::Required);
        let endpoint = endpoint(&set);

        let wrong_ca = format!("{}{}", ca_line(&other), client_lines(&certs));
        let text = refused_at_once(
            through(&set, &certs, ReadFrom::Master, &wrong_ca),
            &endpoint,
            "sentinels with a wrong CA",
        )
        .await;
        assert!(text.contains("UnknownIssuer"), "{text}");
        assert!(text.contains("`tls.ca_file`"), "{text}");

        let text = refused_at_once(
            through(&set, &certs, ReadFrom::Master, &ca_line(&certs)),
            &endpoint,
            "sentinels without a client certificate",
        )
        .await;
        assert!(text.contains("CertificateRequired"), "{text}");
        assert!(text.contains("`tls.cert_file`"), "{text}");
    }
}
