//! TLS test servers: a private CA, server and client certificates made with the `openssl`
//! command line tool, and `redis-server` listening on TLS only (`--port 0 --tls-port P`).
//! Included by `tests/tls.rs` only (`#[path]`), so the other test binaries are unaffected.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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
/// drop. (Always Debian's `redis-server`, which is built with TLS.)
pub struct TlsServer {
    child: Child,
    port: u16,
    log: PathBuf,
    ca: PathBuf,
}

impl TlsServer {
    pub fn start(certs: &Certificates, auth: ClientAuth) -> TlsServer {
        Self::spawn(certs, auth, false, "server")
    }

    /// A server presenting the certificate `<cert>.pem` of `certs` (e.g. `elsewhere`, valid for
    /// another host name only).
    pub fn start_with(certs: &Certificates, auth: ClientAuth, cert: &str) -> TlsServer {
        Self::spawn(certs, auth, false, cert)
    }

    /// A one-node Redis Cluster over TLS (`--tls-cluster yes`) serving every slot.
    pub fn start_cluster(certs: &Certificates) -> TlsServer {
        let server = Self::spawn(certs, ClientAuth::No, true, "server");
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

    /// `redis-cli --tls` with the server's CA; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("--tls")
            .arg("--cacert")
            .arg(&self.ca)
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn spawn(certs: &Certificates, auth: ClientAuth, cluster: bool, cert: &str) -> TlsServer {
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
                "--cluster-enabled".to_owned(),
                "yes".to_owned(),
                "--cluster-config-file".to_owned(),
                format!("nodes-{port}.conf"),
                "--tls-cluster".to_owned(),
                "yes".to_owned(),
            ]
        } else {
            Vec::new()
        };
        let log = certs.path(&format!("server-{port}.log"));
        let auth = match auth {
            ClientAuth::No => "no",
            ClientAuth::Required => "yes",
        };
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
            .arg("--dir")
            .arg(&certs.dir)
            .arg("--tls-cert-file")
            .arg(certs.path(&format!("{cert}.pem")))
            .arg("--tls-key-file")
            .arg(certs.path(&format!("{cert}.key")))
            .arg("--tls-ca-cert-file")
            .arg(certs.ca())
            .args(["--tls-auth-clients", auth])
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
            ca: certs.ca(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .is_err()
        {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "redis-server exited at start ({status}); its log:\n{}",
                    server.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on :{port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
