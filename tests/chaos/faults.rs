//! The faults: each is injected, held for a seeded time, ended, and checked to have taken effect
//! (a fault that silently did nothing would make a quiet run pass trivially).

use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis_db::redis;

use crate::rng::Rng;
use crate::support::info;
use crate::support::proxy::{Mode, Proxy};
use crate::support::RedisServer;
use crate::workload::STILL_LOADING;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Kill9Restart,
    StopCont,
    ClientKill,
    DebugSleep,
    /// A LOADING window inside `readiness.max_wait`: calls wait it out.
    Loading,
    /// A LOADING window well past `readiness.max_wait`: calls fail with `StillLoading`.
    LoadingPastMaxWait,
    MaxClients,
    Oom,
    ProxyReset,
    ProxyBlackHole,
    ProxyDelay,
}

pub const FAULTS: [Fault; 11] = [
    Fault::Kill9Restart,
    Fault::StopCont,
    Fault::ClientKill,
    Fault::DebugSleep,
    Fault::Loading,
    Fault::LoadingPastMaxWait,
    Fault::MaxClients,
    Fault::Oom,
    Fault::ProxyReset,
    Fault::ProxyBlackHole,
    Fault::ProxyDelay,
];

/// Per-key load delay (µs) of the short LOADING fault: `usleep(10)` takes about 80 µs here,
/// about 2.4 s with 30k keys.
const LOADING_DELAY_US: u32 = 10;
/// Per-key load delay (µs) of the long one: `usleep(150)` takes 200-270 µs here, 6-8 s with 30k
/// keys, past `max_wait` 5 s.
const LOADING_PAST_MAX_WAIT_DELAY_US: u32 = 150;

/// A raw connection straight to the server (not through the proxy), named so that the final
/// `CLIENT LIST` check can tell it from the SDK's; retried while the server restarts.
pub fn control(port: u16) -> redis::Connection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            .and_then(|mut c| {
                redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg("chaos-control")
                    .query::<()>(&mut c)?;
                Ok(c)
            });
        match attempt {
            Ok(connection) => return connection,
            Err(e) if Instant::now() > deadline => panic!("control connection to :{port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn info_number(connection: &mut redis::Connection, section: &str, field: &str) -> u64 {
    info::read(connection, section, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `errorstat_<code>:count=N` of `INFO errorstats`.
fn error_count(connection: &mut redis::Connection, code: &str) -> u64 {
    info::read(connection, "errorstats", &format!("errorstat_{code}"))
        .and_then(|v| v.strip_prefix("count=").and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Connections the server has that are not the test's own (named `chaos-*` or `harness`).
pub fn foreign_clients(port: u16) -> Vec<String> {
    let mut raw = control(port);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut raw).unwrap();
    list.lines()
        .filter(|line| !line.contains(" name=chaos-") && !line.contains(" name=harness"))
        .map(str::to_owned)
        .collect()
}

fn client_ids(list: &str) -> Vec<(u64, String)> {
    list.lines()
        .filter_map(|line| {
            let id = line
                .split(' ')
                .find_map(|f| f.strip_prefix("id="))?
                .parse()
                .ok()?;
            let name = line
                .split(' ')
                .find_map(|f| f.strip_prefix("name="))
                .unwrap_or("")
                .to_owned();
            Some((id, name))
        })
        .collect()
}

fn foreign_ids(port: u16) -> Vec<u64> {
    foreign_clients(port)
        .iter()
        .filter_map(|line| client_ids(line).first().map(|(id, _)| *id))
        .collect()
}

/// Bytes that clients sent to the proxy's port and the proxy has not read (its sockets'
/// `Recv-Q`): what a black hole holds.
fn held_by_proxy(proxy_port: u16) -> u64 {
    let output = std::process::Command::new("ss")
        .args(["-tnH", "state", "established"])
        .arg(format!("( sport = :{proxy_port} )"))
        .output()
        .expect("ss(8)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

pub struct Chaos<'a> {
    pub server: &'a mut RedisServer,
    pub proxy: &'a Proxy,
    pub rng: Rng,
    /// The LOADING windows observed (`INFO` showed `loading:1`).
    pub loading_windows: Vec<Duration>,
    /// `readiness.max_wait` of the client under test.
    pub max_wait: Duration,
}

/// What one injection did, and why it may not have taken effect.
pub struct Injected {
    pub detail: String,
    pub no_effect: Option<String>,
}

impl Chaos<'_> {
    /// Injects one fault and returns once it has ended.
    pub fn inject(&mut self, fault: Fault) -> Injected {
        let port = self.server.port();
        let (detail, no_effect) = match fault {
            Fault::Kill9Restart => {
                let down = self.rng.millis(200, 1500);
                self.server.kill();
                let refused = TcpStream::connect(("127.0.0.1", port)).is_err();
                std::thread::sleep(down);
                self.server.restart();
                (
                    format!("down {down:?}"),
                    (!refused).then(|| "the port still accepted after SIGKILL".to_owned()),
                )
            }
            Fault::StopCont => {
                let stopped = self.rng.millis(300, 4000);
                let mut probe = control(port);
                self.server.pause();
                let started = Instant::now();
                let _ = probe.set_read_timeout(Some(Duration::from_millis(200)));
                let answered = redis::cmd("PING").query::<String>(&mut probe).is_ok();
                std::thread::sleep(stopped.saturating_sub(started.elapsed()));
                self.server.resume();
                (
                    format!("stopped {stopped:?}"),
                    answered.then(|| "a PING was answered while stopped".to_owned()),
                )
            }
            Fault::ClientKill => {
                let mut raw = control(port);
                let rounds = 1 + self.rng.below(3);
                let mut killed = 0;
                for _ in 0..rounds {
                    killed += redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("TYPE")
                        .arg("normal")
                        .query::<u64>(&mut raw)
                        .unwrap();
                    std::thread::sleep(self.rng.millis(50, 400));
                }
                (
                    format!("{rounds} round(s), {killed} connection(s) killed"),
                    (killed == 0).then(|| "no connection was killed".to_owned()),
                )
            }
            Fault::DebugSleep => {
                let sleep = self.rng.millis(300, 1500);
                let mut raw = control(port);
                let started = Instant::now();
                let _: () = redis::cmd("DEBUG")
                    .arg("SLEEP")
                    .arg(sleep.as_secs_f64())
                    .query(&mut raw)
                    .unwrap();
                let busy = started.elapsed();
                (
                    format!("slept {sleep:?}"),
                    (busy < sleep).then(|| format!("DEBUG SLEEP returned after {busy:?}")),
                )
            }
            Fault::Loading => self.loading(LOADING_DELAY_US, false),
            Fault::LoadingPastMaxWait => self.loading(LOADING_PAST_MAX_WAIT_DELAY_US, true),
            Fault::MaxClients => {
                let holders = 4;
                let mut raw = control(port);
                let original: Vec<String> = redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxclients")
                    .query(&mut raw)
                    .unwrap();
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxclients")
                    .arg(1 + holders)
                    .query(&mut raw)
                    .unwrap();
                let own_id: u64 = redis::cmd("CLIENT").arg("ID").query(&mut raw).unwrap();
                let mut held: Vec<(u64, redis::Connection)> = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(5);
                // Evict every connection but ours, and take the free slots before the SDK does.
                while held.len() < holders && Instant::now() < deadline {
                    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut raw).unwrap();
                    for (id, _) in client_ids(&list) {
                        if id != own_id && !held.iter().any(|(h, _)| *h == id) {
                            let _: redis::RedisResult<u64> = redis::cmd("CLIENT")
                                .arg("KILL")
                                .arg("ID")
                                .arg(id)
                                .query(&mut raw);
                        }
                    }
                    let holder = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
                        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                        .and_then(|mut c| {
                            redis::cmd("CLIENT")
                                .arg("SETNAME")
                                .arg("chaos-holder")
                                .query::<()>(&mut c)?;
                            let id: u64 = redis::cmd("CLIENT").arg("ID").query(&mut c)?;
                            Ok((id, c))
                        });
                    if let Ok(holder) = holder {
                        held.push(holder);
                    }
                }
                // From here on only the SDK connects: every refusal counted is one of its own.
                let rejected_before = info_number(&mut raw, "stats", "rejected_connections");
                let hold = self.rng.millis(800, 2000);
                std::thread::sleep(hold);
                let rejected = info_number(&mut raw, "stats", "rejected_connections")
                    .saturating_sub(rejected_before);
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxclients")
                    .arg(&original[1])
                    .query(&mut raw)
                    .unwrap();
                (
                    format!(
                        "maxclients {} held by us for {hold:?}: {rejected} connection(s) refused",
                        1 + holders
                    ),
                    (rejected == 0).then(|| "no connection was refused".to_owned()),
                )
            }
            Fault::Oom => {
                let hold = self.rng.millis(500, 2000);
                let mut raw = control(port);
                let refused_before = error_count(&mut raw, "OOM");
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory-policy")
                    .arg("noeviction")
                    .query(&mut raw)
                    .unwrap();
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory")
                    .arg("1mb")
                    .query(&mut raw)
                    .unwrap();
                std::thread::sleep(hold);
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory")
                    .arg(0)
                    .query(&mut raw)
                    .unwrap();
                let refused = error_count(&mut raw, "OOM").saturating_sub(refused_before);
                (
                    format!("maxmemory 1mb noeviction for {hold:?}: {refused} OOM replies"),
                    (refused == 0).then(|| "no write was refused with OOM".to_owned()),
                )
            }
            Fault::ProxyReset => {
                let refused = self.rng.millis(0, 800);
                let before = foreign_ids(port);
                self.proxy.set_mode(Mode::Refuse);
                self.proxy.reset_all();
                let started = Instant::now();
                let mut survivors = before.clone();
                while !survivors.is_empty() && started.elapsed() < Duration::from_secs(2) {
                    let now = foreign_ids(port);
                    survivors.retain(|id| now.contains(id));
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(refused.saturating_sub(started.elapsed()));
                self.proxy.set_mode(Mode::Pass);
                let no_effect = if before.is_empty() {
                    Some("no connection of the SDK to reset".to_owned())
                } else if !survivors.is_empty() {
                    Some(format!(
                        "{} connection(s) survived the reset",
                        survivors.len()
                    ))
                } else {
                    None
                };
                (
                    format!(
                        "reset {} connection(s), then refused new ones for {refused:?}",
                        before.len()
                    ),
                    no_effect,
                )
            }
            Fault::ProxyBlackHole => {
                let held = self.rng.millis(300, 6000);
                self.proxy.set_mode(Mode::BlackHole);
                let started = Instant::now();
                let mut most_held = 0;
                while started.elapsed() < held {
                    if most_held == 0 {
                        most_held = held_by_proxy(self.proxy.port());
                    }
                    std::thread::sleep(Duration::from_millis(20).min(held - started.elapsed()));
                }
                self.proxy.set_mode(Mode::Pass);
                (
                    format!("black-holed {held:?}, {most_held} bytes held"),
                    (most_held == 0).then(|| "no byte was held".to_owned()),
                )
            }
            Fault::ProxyDelay => {
                let delay = self.rng.millis(30, 400);
                let held = self.rng.millis(500, 2000);
                self.proxy.set_mode(Mode::Delay(delay));
                let started = Instant::now();
                let round_trip = self.round_trip_through_proxy();
                std::thread::sleep(held.saturating_sub(started.elapsed()));
                self.proxy.set_mode(Mode::Pass);
                (
                    format!("{delay:?} each way for {held:?}: a PING took {round_trip:?}"),
                    match round_trip {
                        Some(rtt) if rtt >= delay * 2 => None,
                        other => Some(format!("a PING through the proxy took {other:?}")),
                    },
                )
            }
        };
        Injected { detail, no_effect }
    }

    fn round_trip_through_proxy(&self) -> Option<Duration> {
        let client = redis::Client::open(self.proxy.url()).ok()?;
        let mut connection = client
            .get_connection_with_timeout(Duration::from_secs(3))
            .ok()?;
        connection
            .set_read_timeout(Some(Duration::from_secs(3)))
            .ok()?;
        let started = Instant::now();
        redis::cmd("PING").query::<String>(&mut connection).ok()?;
        Some(started.elapsed())
    }

    /// Compacts the AOF (so that the window is the per-key delay of the base file, not a replay
    /// of every ledger write so far), restarts with `delay_us` per key, and waits for
    /// `loading:0`. `past_max_wait`: the window must outlast `readiness.max_wait` and calls must
    /// have failed with `StillLoading` meanwhile.
    fn loading(&mut self, delay_us: u32, past_max_wait: bool) -> (String, Option<String>) {
        let port = self.server.port();
        let mut raw = control(port);
        // "already in progress" is as good: the wait below covers it.
        let _: redis::RedisResult<String> = redis::cmd("BGREWRITEAOF").query(&mut raw);
        let rewrite = Instant::now();
        while info::read(&mut raw, "persistence", "aof_rewrite_in_progress").as_deref() != Some("0")
            || info::read(&mut raw, "persistence", "aof_rewrite_scheduled").as_deref() != Some("0")
        {
            assert!(
                rewrite.elapsed() < Duration::from_secs(60),
                "AOF rewrite did not finish"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(raw);
        let still_loading_before = STILL_LOADING.load(Ordering::Relaxed);
        let started = Instant::now();
        self.server.restart_with(&[
            "--key-load-delay",
            &delay_us.to_string(),
            "--loading-process-events-interval-bytes",
            "1024",
        ]);
        let mut seen_loading = None;
        let mut raw = control(port);
        loop {
            match info::read(&mut raw, "persistence", "loading").as_deref() {
                Some("0") => break,
                Some("1") => {
                    seen_loading.get_or_insert_with(Instant::now);
                }
                _ => raw = control(port),
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "the server never finished loading"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let window = seen_loading.map(|t| t.elapsed());
        let still_loading = STILL_LOADING.load(Ordering::Relaxed) - still_loading_before;
        if let Some(window) = window {
            self.loading_windows.push(window);
        }
        let no_effect = match window {
            None => Some("no LOADING window was observed".to_owned()),
            Some(window) if past_max_wait && window <= self.max_wait => Some(format!(
                "the window {window:?} did not outlast max_wait {:?}",
                self.max_wait
            )),
            Some(_) if past_max_wait && still_loading == 0 => {
                Some("no call failed with StillLoading".to_owned())
            }
            Some(_) => None,
        };
        (
            format!("{delay_us} µs a key, LOADING window {window:?}, {still_loading} StillLoading"),
            no_effect,
        )
    }
}
