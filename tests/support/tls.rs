//! TLS test servers: a private CA, server and client certificates made with the `openssl`
//! command line tool, and `redis-server` listening on TLS only (`--port 0 --tls-port P`).
//! Included by `tests/tls.rs` only (`#[path]`), so the other test binaries are unaffected.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::support::info;

/// A private CA with a server certificate (127.0.0.1 and localhost) and a client certificate,
/// in a temp dir removed on drop.
pub struct Certificates {
    pub dir: PathBuf,
}

impl Certificates {
    /// Makes a CA named `name`, then the certificates it signs.
    pub fn new(name: &str) -> Certificates {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "redis-db-tls-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let certs = Certificates { dir };
        certs.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            &format!("/CN=redis-db test CA {name}"),
        ]);
        certs.signed(
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        );
        certs.signed(
            "client",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        );
        // Signed by the same CA, but for another host: the hostname check must refuse it.
        certs.signed(
            "elsewhere",
            "subjectAltName=DNS:elsewhere.example\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        );
        certs
    }

    /// `<name>.pem` and `<name>.key`, signed by the CA with the given v3 extensions.
    fn signed(&self, name: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(self.dir.join(&ext), extensions).expect("write extensions");
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN=redis-db test {name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run openssl ({e}); the TLS tests need the openssl command line tool")
            });
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the server asks for a client certificate (`--tls-auth-clients`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    No,
    Required,
}

/// A `redis-server` that speaks TLS only, with the server certificate of `certs`; killed on
/// drop. (Always Debian's `redis-server`, which is built with TLS.) Its own connections (a
/// replica's to its master) present the client certificate and speak TLS too.
pub struct TlsServer {
    child: Child,
    port: u16,
    log: PathBuf,
    certs: PathBuf,
}

impl TlsServer {
    pub fn start(certs: &Certificates, auth: ClientAuth) -> TlsServer {
        Self::spawn(certs, auth, "server", &[])
    }

    /// A server presenting the certificate `<cert>.pem` of `certs` (e.g. `elsewhere`, valid for
    /// another host name only).
    pub fn start_with(certs: &Certificates, auth: ClientAuth, cert: &str) -> TlsServer {
        Self::spawn(certs, auth, cert, &[])
    }

    /// A replica of the TLS server on `master` (`--replicaof`, replicating over TLS).
    pub fn start_replica(certs: &Certificates, auth: ClientAuth, master: u16) -> TlsServer {
        let master = master.to_string();
        Self::spawn(
            certs,
            auth,
            "server",
            &["--replicaof", "127.0.0.1", &master],
        )
    }

    /// A one-node Redis Cluster over TLS (`--tls-cluster yes`) serving every slot.
    pub fn start_cluster(certs: &Certificates) -> TlsServer {
        let server = Self::spawn(
            certs,
            ClientAuth::No,
            "server",
            &["--cluster-enabled", "yes"],
        );
        server.cli(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server
            .cli(&["CLUSTER", "INFO"])
            .contains("cluster_state:ok")
        {
            assert!(
                Instant::now() < deadline,
                "TLS cluster node never reached cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `redis-cli --tls` with the CA and client certificate of the server's `certs`; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        tls_cli(&self.certs, self.port, args).expect("redis-cli")
    }

    fn spawn(certs: &Certificates, auth: ClientAuth, cert: &str, extra: &[&str]) -> TlsServer {
        let cluster = extra.contains(&"--cluster-enabled");
        // A cluster node's bus listens on port + 10000.
        let port = loop {
            let port = crate::support::unused_port();
            let bus_free = || std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok();
            if !cluster || (port < 55000 && bus_free()) {
                break port;
            }
        };
        let cluster_args = if cluster {
            vec![
                "--cluster-config-file".to_owned(),
                format!("nodes-{port}.conf"),
                "--tls-cluster".to_owned(),
                "yes".to_owned(),
            ]
        } else {
            Vec::new()
        };
        let log = certs.path(&format!("server-{port}.log"));
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", "", "--appendonly", "no"])
            // A replica's first sync starts at once instead of after 5 s.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&certs.dir)
            .arg("--tls-cert-file")
            .arg(certs.path(&format!("{cert}.pem")))
            .arg("--tls-key-file")
            .arg(certs.path(&format!("{cert}.key")))
            .args(tls_outgoing(certs))
            .args(["--tls-auth-clients", auth.flag()])
            .args(extra)
            .args(&cluster_args)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e})"));
        let mut server = TlsServer {
            child,
            port,
            log,
            certs: certs.dir.clone(),
        };
        wait_for_port(port, &mut server.child, || server_log(&server.log));
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rediss://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The server's own log (handshake failures are logged there).
    pub fn log(&self) -> String {
        server_log(&self.log)
    }

    /// `role` of `INFO replication`: `master` or `slave`; empty while the server cannot say
    /// (e.g. `LOADING` during the resync that demotes a master), so that callers poll on.
    pub fn role(&self) -> String {
        tls_cli(&self.certs, self.port, &["INFO", "replication"])
            .and_then(|info| info::field(&info, "role"))
            .unwrap_or_default()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ClientAuth {
    fn flag(self) -> &'static str {
        match self {
            ClientAuth::No => "no",
            ClientAuth::Required => "yes",
        }
    }
}

/// What a TLS server or sentinel trusts and presents on its own outgoing connections (a
/// replica to its master, a sentinel to the nodes and the other sentinels): the CA, and the
/// client certificate (the server one is for `serverAuth` only).
fn tls_outgoing(certs: &Certificates) -> Vec<std::ffi::OsString> {
    [
        ("--tls-ca-cert-file", certs.ca()),
        ("--tls-client-cert-file", certs.path("client.pem")),
        ("--tls-client-key-file", certs.path("client.key")),
    ]
    .into_iter()
    .flat_map(|(flag, path)| [flag.into(), path.into_os_string()])
    .chain(["--tls-replication".into(), "yes".into()])
    .collect()
}

/// `redis-cli --tls` on `port` with the CA and client certificate in `dir`; `None` when it
/// fails (the server is down, or answered an error).
fn tls_cli(dir: &Path, port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .arg("--tls")
        .arg("--cacert")
        .arg(dir.join("ca.pem"))
        .arg("--cert")
        .arg(dir.join("client.pem"))
        .arg("--key")
        .arg(dir.join("client.key"))
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // redis-cli exits 0 on an error reply too; it prints it as `(error) ...` or `ERR ...`.
    (output.status.success() && !stdout.starts_with("ERR") && !stdout.starts_with("(error)"))
        .then_some(stdout)
}

/// Waits until `port` accepts TCP connections; panics with `log` if the process exits first.
fn wait_for_port(port: u16, child: &mut Child, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_err()
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "redis-server on :{port} exited at start ({status}); its log:\n{}",
                log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on :{port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Sentinel over TLS

/// `redis-server --sentinel` on `tls-port` only (`port 0`), reaching the nodes and the other
/// sentinels over TLS (`tls-replication yes`) with the client certificate of `certs`.
pub struct TlsSentinel {
    child: Child,
    port: u16,
    log: PathBuf,
    certs: PathBuf,
}

impl TlsSentinel {
    pub fn start(certs: &Certificates, auth: ClientAuth, master: u16) -> TlsSentinel {
        let port = crate::support::unused_port();
        let conf = certs.path(&format!("sentinel-{port}.conf"));
        let log = certs.path(&format!("sentinel-{port}.log"));
        let outgoing: Vec<String> = tls_outgoing(certs)
            .chunks(2)
            .map(|pair| {
                format!(
                    "{} {}",
                    pair[0].to_string_lossy().trim_start_matches("--"),
                    pair[1].to_string_lossy()
                )
            })
            .collect();
        let master_name = crate::support::topology::MASTER_NAME;
        std::fs::write(
            &conf,
            format!(
                "port 0\n\
                 tls-port {port}\n\
                 bind 127.0.0.1\n\
                 daemonize no\n\
                 dir {dir}\n\
                 logfile {log}\n\
                 tls-cert-file {cert}\n\
                 tls-key-file {key}\n\
                 tls-auth-clients {auth}\n\
                 {outgoing}\n\
                 sentinel resolve-hostnames no\n\
                 sentinel monitor {master_name} 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds {master_name} 1000\n\
                 sentinel failover-timeout {master_name} 5000\n",
                dir = certs.dir.display(),
                log = log.display(),
                cert = certs.path("server.pem").display(),
                key = certs.path("server.key").display(),
                auth = auth.flag(),
                outgoing = outgoing.join("\n"),
            ),
        )
        .expect("write sentinel.conf");
        let mut child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel");
        wait_for_port(port, &mut child, || server_log(&log));
        TlsSentinel {
            child,
            port,
            log,
            certs: certs.dir.clone(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        server_log(&self.log)
    }

    fn sentinel(&self, args: &[&str]) -> Option<String> {
        let mut all = vec!["SENTINEL"];
        all.extend_from_slice(args);
        tls_cli(&self.certs, self.port, &all)
    }

    /// The master's port this sentinel names.
    pub fn master_port(&self) -> Option<u16> {
        let master_name = crate::support::topology::MASTER_NAME;
        let reply = self.sentinel(&["GET-MASTER-ADDR-BY-NAME", master_name])?;
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// How many healthy replicas (flags exactly `slave`) and other sentinels it knows.
    fn known(&self) -> (usize, usize) {
        let master_name = crate::support::topology::MASTER_NAME;
        let replicas = self
            .sentinel(&["REPLICAS", master_name])
            .unwrap_or_default();
        let lines: Vec<&str> = replicas.lines().collect();
        let healthy = lines
            .windows(2)
            .filter(|pair| pair[0] == "flags" && pair[1] == "slave")
            .count();
        let sentinels = self
            .sentinel(&["SENTINELS", master_name])
            .unwrap_or_default()
            .lines()
            .filter(|line| *line == "runid")
            .count();
        (healthy, sentinels)
    }
}

impl Drop for TlsSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS-only Sentinel deployment: a master and a replica, and three sentinels monitoring them
/// as `mymaster` (quorum 2, down-after 1 s), every process on `tls-port` only and every link
/// between them TLS, with the certificates of one `Certificates`.
pub struct TlsSentinelSet {
    /// The two data nodes; which one is the master changes with a failover.
    pub nodes: Vec<TlsServer>,
    pub sentinels: Vec<TlsSentinel>,
}

impl TlsSentinelSet {
    pub fn start(certs: &Certificates, auth: ClientAuth) -> TlsSentinelSet {
        use crate::support::topology::settle;
        let started = Instant::now();
        let master = TlsServer::start(certs, auth);
        let replica = TlsServer::start_replica(certs, auth, master.port());
        let set = TlsSentinelSet {
            sentinels: (0..3)
                .map(|_| TlsSentinel::start(certs, auth, master.port()))
                .collect(),
            nodes: vec![master, replica],
        };
        let within = Duration::from_secs(20);
        settle(within, "the TLS replica's link to its master up", || {
            let info = set.nodes[1].cli(&["INFO", "replication"]);
            let link = info::field(&info, "master_link_status");
            (link.as_deref() == Some("up"))
                .then_some(())
                .ok_or(format!("master_link_status={link:?}"))
        });
        let master = set.nodes[0].port();
        for sentinel in &set.sentinels {
            settle(
                within,
                "every TLS sentinel knowing the master, the replica and the 2 other sentinels",
                || {
                    let named = sentinel.master_port();
                    let known = sentinel.known();
                    (named == Some(master) && known == (1, 2))
                        .then_some(())
                        .ok_or(format!(
                            "sentinel :{} master={named:?} (replicas, sentinels)={known:?}",
                            sentinel.port()
                        ))
                },
            );
        }
        eprintln!(
            "[tls] sentinel set up in {:?}: master :{}, replica :{}, sentinels :{} :{} :{}",
            started.elapsed(),
            set.nodes[0].port(),
            set.nodes[1].port(),
            set.sentinels[0].port(),
            set.sentinels[1].port(),
            set.sentinels[2].port()
        );
        set
    }

    /// `["127.0.0.1:p1", ...]` of the sentinels, for `sentinel.nodes`.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        crate::support::topology::loopback_addresses(self.sentinels.iter().map(TlsSentinel::port))
    }

    /// The data node on `port`.
    pub fn node(&self, port: u16) -> &TlsServer {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no TLS data node on :{port}"))
    }

    /// `SENTINEL FAILOVER mymaster` on the first sentinel.
    pub fn failover(&self) {
        let master_name = crate::support::topology::MASTER_NAME;
        let ok = self.sentinels[0].sentinel(&["FAILOVER", master_name]);
        assert_eq!(
            ok.as_deref().map(str::trim),
            Some("OK"),
            "SENTINEL FAILOVER"
        );
    }

    /// Waits until every sentinel names a master other than `old` and that node says it is a
    /// master; returns its port.
    pub fn wait_for_new_master(&self, old: u16, within: Duration) -> u16 {
        let mut new = 0;
        crate::support::topology::settle(within, "TLS sentinels promoting a new master", || {
            let views: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(TlsSentinel::master_port)
                .collect();
            let Some(Some(first)) = views.first().copied() else {
                return Err(format!("views {views:?}"));
            };
            if first == old || views.iter().any(|v| *v != Some(first)) {
                return Err(format!("views {views:?}"));
            }
            let role = self.node(first).role();
            if role != "master" {
                return Err(format!(":{first} role={role}"));
            }
            new = first;
            Ok(())
        });
        new
    }

    /// Every sentinel's log, for failure messages.
    pub fn logs(&self) -> String {
        self.sentinels
            .iter()
            .map(|s| format!("--- sentinel :{} ---\n{}", s.port(), s.log()))
            .collect()
    }
}

/// A YAML runtime file (`builder.config_file`) with `text`, in `certs`' dir.
pub fn runtime_file(certs: &Certificates, name: &str, text: &str) -> PathBuf {
    let path = certs.path(name);
    std::fs::write(&path, text).expect("write runtime file");
    path
}

pub fn show(path: &Path) -> String {
    path.to_str().expect("utf-8 temp path").to_owned()
}
