//! Fault injection: many tasks read and write through every database while a controller kills,
//! stops, floods, starves and partitions the server in a seeded random order. A ledger of writes
//! then proves that no write was applied twice and no acknowledged write was lost.
//!
//! Short form (about 60 s, part of `cargo test`): `cargo test --test chaos -- --nocapture`.
//! Soak: `REDIS_DB_SOAK_SECS=600 cargo test --release --test chaos -- --nocapture`.
//! Replay an order of faults: `REDIS_DB_CHAOS_SEED=<seed>` (printed by every run).
//! Results and how to read them: docs/RELIABILITY.md.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_db::redis;
use redis_db::Error;
use support::proxy::{Mode, Proxy};
use support::RedisServer;

#[redis_db::databases(config = "tests/fixtures/chaos.yaml")]
pub enum Db {}

const CONFIG_YAML: &str = include_str!("fixtures/chaos.yaml");

/// Concurrent worker tasks.
const TASKS: usize = 32;
/// Fault phase of the short form; the whole test takes about a minute.
const SHORT_SECS: u64 = 45;
/// Keys in db 9 that make a restart load slowly enough to answer `LOADING`.
const LOADING_KEYS: u32 = 30_000;
/// Per-key load delay (µs) of the LOADING fault: about 3 s of `LOADING` with 30k keys.
const LOADING_DELAY_US: u32 = 10;
/// Slack on top of the computed per-call budget: scheduling on a loaded 2-core machine.
const BUDGET_SLACK: Duration = Duration::from_secs(1);
/// After a fault ends every database must answer again within this (measured: see RELIABILITY.md).
const RECOVERY_BOUND: Duration = Duration::from_secs(2);
/// Soak: RSS may grow by at most this after warm-up.
const RSS_GROWTH_BOUND_KB: u64 = 32 * 1024;

/// The ledger databases: main (0), jobs and its alias (3), archive (6).
const LEDGER_DBS: [u32; 3] = [0, 3, 6];

static PANICS: AtomicU64 = AtomicU64::new(0);

// ---------------------------------------------------------------------------------------------
// A small seeded generator (SplitMix64): the order and shape of faults replay from the seed.

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The workload.

/// What became of one ledger write, as the caller saw it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// Acknowledged: must be in the ledger exactly once.
    Acked = 1,
    /// Failed before reaching the server, or refused by it: must not be in the ledger.
    NotApplied = 2,
    /// Timed out or broke mid-flight: in the ledger at most once.
    Unknown = 3,
}

/// One task's ledger writes (index = sequence number; op id `<task>:<seq>`), packed as
/// `ledger db index << 4 | outcome`, one byte per write so that a long soak stays small.
struct TaskReport {
    ops: Vec<u8>,
    calls: u64,
    failures: BTreeMap<String, u64>,
    /// The first message seen of each kind.
    samples: BTreeMap<String, String>,
    max_latency: Duration,
    violations: Vec<String>,
}

#[derive(Clone, Copy)]
struct Budget {
    call: Duration,
    /// `connection()` plus two commands on it.
    exclusive: Duration,
}

fn label(error: &Error) -> String {
    match error {
        Error::CircuitOpen { .. } => "CircuitOpen".into(),
        Error::StillLoading { .. } => "StillLoading".into(),
        Error::PoolExhausted { .. } => "PoolExhausted".into(),
        Error::Authentication { .. } => "Authentication".into(),
        Error::DatabaseOutOfRange { .. } => "DatabaseOutOfRange".into(),
        Error::Unreachable { .. } => "Unreachable".into(),
        Error::Timeout { .. } => "Timeout".into(),
        Error::Command { source, .. } => format!("Command({})", redis_label(source)),
        Error::NeedsExclusiveConnection { .. } => "NeedsExclusiveConnection".into(),
        Error::Config(_) => "Config".into(),
        Error::Blocking(_) => "Blocking".into(),
        _ => "other".into(),
    }
}

fn redis_label(error: &redis::RedisError) -> String {
    if let Some(code) = error.code() {
        return code.to_owned();
    }
    if error.is_timeout() {
        "io timeout".into()
    } else if error.is_io_error() {
        "io".into()
    } else {
        format!("{:?}", error.kind())
    }
}

/// Whether a failed write provably did not run: rejected before sending (open circuit, still
/// loading) or refused by the server with a command error (`OOM`, `EXECABORT`).
fn not_applied(error: &Error) -> bool {
    match error {
        Error::CircuitOpen { .. } | Error::StillLoading { .. } => true,
        Error::Command { source, .. } => source.code().is_some() && !source.is_io_error(),
        _ => false,
    }
}

const RPUSH_SCRIPT: &str = "return redis.call('RPUSH', KEYS[1], ARGV[1])";

async fn worker(
    id: usize,
    client: DbClient,
    seed: u64,
    stop: Arc<AtomicBool>,
    budget: Budget,
) -> TaskReport {
    let mut rng = Rng::new(seed ^ (id as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    // (handle, ledger db index): jobs_monitor writes into jobs' ledger (same db 3).
    let handles = [
        (client.main(), 0u8),
        (client.jobs(), 1),
        (client.jobs_monitor(), 1),
        (client.archive(), 2),
    ];
    drop(client);
    let mut report = TaskReport {
        ops: Vec::new(),
        calls: 0,
        failures: BTreeMap::new(),
        samples: BTreeMap::new(),
        max_latency: Duration::ZERO,
        violations: Vec::new(),
    };
    while !stop.load(Ordering::Relaxed) {
        let (handle, ledger) = &handles[rng.below(4) as usize];
        let roll = rng.below(100);
        let started = Instant::now();
        let mut limit = budget.call;
        let (what, error): (&str, Option<String>) = if roll < 45 {
            // A ledger write, three ways: plain, MULTI/EXEC, and a script (which counts as a write).
            let seq = report.ops.len();
            let op = format!("{id}:{seq}");
            let (what, result) = match roll % 3 {
                0 => (
                    "RPUSH",
                    handle
                        .query::<i64>(redis::cmd("RPUSH").arg("ledger").arg(&op))
                        .await
                        .map(drop),
                ),
                1 => {
                    let mut pipe = redis::pipe();
                    pipe.atomic().rpush("ledger", &op).incr("ledger:multi", 1);
                    (
                        "MULTI",
                        handle.query_pipeline::<(i64, i64)>(&pipe).await.map(drop),
                    )
                }
                _ => {
                    let mut eval = redis::cmd("EVAL");
                    eval.arg(RPUSH_SCRIPT).arg(1).arg("ledger").arg(&op);
                    ("EVAL", handle.query::<i64>(&eval).await.map(drop))
                }
            };
            let outcome = match &result {
                Ok(()) => Outcome::Acked,
                Err(e) if not_applied(e) => Outcome::NotApplied,
                Err(_) => Outcome::Unknown,
            };
            report.ops.push(ledger << 4 | outcome as u8);
            (
                what,
                result.err().map(|e| label(&e) + "\u{0}" + &e.to_string()),
            )
        } else if roll < 85 {
            let mut cmd = match roll % 4 {
                0 => redis::cmd("LLEN"),
                1 => redis::cmd("GET"),
                2 => redis::cmd("EXISTS"),
                _ => redis::cmd("LRANGE"),
            };
            match roll % 4 {
                1 => cmd.arg("ledger:multi"),
                3 => cmd.arg("ledger").arg(-3).arg(-1),
                _ => cmd.arg("ledger"),
            };
            let result = handle.query::<redis::Value>(&cmd).await;
            (
                "read",
                result.err().map(|e| label(&e) + "\u{0}" + &e.to_string()),
            )
        } else if roll < 93 {
            // A blocking command: its own exclusive connection, its block time on top of the timeout.
            limit += Duration::from_millis(50);
            let result = handle
                .query::<redis::Value>(redis::cmd("BLPOP").arg(format!("empty:{id}")).arg(0.05))
                .await;
            (
                "BLPOP",
                result.err().map(|e| label(&e) + "\u{0}" + &e.to_string()),
            )
        } else {
            limit = budget.exclusive;
            let error = match handle.connection().await {
                Err(e) => Some(label(&e) + "\u{0}" + &e.to_string()),
                Ok(mut connection) => {
                    let first: redis::RedisResult<i64> = redis::cmd("INCR")
                        .arg(format!("exclusive:{id}"))
                        .query_async(&mut connection)
                        .await;
                    let second: redis::RedisResult<Option<String>> = match first {
                        Ok(_) => {
                            redis::cmd("GET")
                                .arg("nothing")
                                .query_async(&mut connection)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    second
                        .err()
                        .map(|e| format!("Connection({})\u{0}{e}", redis_label(&e)))
                }
            };
            ("exclusive", error)
        };
        let elapsed = started.elapsed();
        report.calls += 1;
        report.max_latency = report.max_latency.max(elapsed);
        if let Some(error) = &error {
            let (kind, message) = error.split_once('\u{0}').unwrap_or((error, ""));
            *report.failures.entry(kind.to_owned()).or_default() += 1;
            report
                .samples
                .entry(kind.to_owned())
                .or_insert_with(|| format!("{what}: {message}"));
        }
        if elapsed > limit {
            report.violations.push(format!(
                "task {id} {what} on `{}` took {elapsed:?} > budget {limit:?}: {}",
                handle.name(),
                error.as_deref().unwrap_or("ok").replace('\u{0}', ": ")
            ));
        }
        tokio::time::sleep(Duration::from_micros(rng.below(2_000))).await;
    }
    report
}

// ---------------------------------------------------------------------------------------------
// The faults.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Kill9Restart,
    StopCont,
    ClientKill,
    DebugSleep,
    Loading,
    MaxClients,
    Oom,
    ProxyReset,
    ProxyBlackHole,
    ProxyDelay,
}

const FAULTS: [Fault; 10] = [
    Fault::Kill9Restart,
    Fault::StopCont,
    Fault::ClientKill,
    Fault::DebugSleep,
    Fault::Loading,
    Fault::MaxClients,
    Fault::Oom,
    Fault::ProxyReset,
    Fault::ProxyBlackHole,
    Fault::ProxyDelay,
];

/// A raw connection straight to the server (not through the proxy), named so that the final
/// `CLIENT LIST` check can tell it from the SDK's; retried while the server restarts.
fn control(port: u16) -> redis::Connection {
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

fn info_field(connection: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(connection).ok()?;
    info.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}

/// Connections the server has that are not the test's own (named `chaos-*` or `harness`).
fn foreign_clients(port: u16) -> Vec<String> {
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

struct Chaos<'a> {
    server: &'a mut RedisServer,
    proxy: &'a Proxy,
    rng: Rng,
    /// Set by the LOADING fault when `INFO` showed `loading:1`.
    loading_windows: Vec<Duration>,
}

impl Chaos<'_> {
    /// Injects one fault and returns once it has ended, with a line describing it.
    fn inject(&mut self, fault: Fault) -> String {
        let port = self.server.port();
        match fault {
            Fault::Kill9Restart => {
                let down = self.rng.millis(200, 1500);
                self.server.kill();
                std::thread::sleep(down);
                self.server.restart();
                format!("down {down:?}")
            }
            Fault::StopCont => {
                let stopped = self.rng.millis(300, 4000);
                self.server.pause();
                std::thread::sleep(stopped);
                self.server.resume();
                format!("stopped {stopped:?}")
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
                format!("{rounds} round(s), {killed} connection(s) killed")
            }
            Fault::DebugSleep => {
                let sleep = self.rng.millis(300, 1500);
                let mut raw = control(port);
                let _: () = redis::cmd("DEBUG")
                    .arg("SLEEP")
                    .arg(sleep.as_secs_f64())
                    .query(&mut raw)
                    .unwrap();
                format!("slept {sleep:?}")
            }
            Fault::Loading => {
                // Compact the AOF first, so that the window is the per-key delay of the base
                // file and not a replay of every ledger write so far: about 3 s (10 µs a key,
                // inside readiness.max_wait) or about 6 s (20 µs, past it: `StillLoading`).
                let delay_us = LOADING_DELAY_US * (1 + self.rng.below(2) as u32);
                let mut raw = control(port);
                // "already in progress" is as good: the wait below covers it.
                let _: redis::RedisResult<String> = redis::cmd("BGREWRITEAOF").query(&mut raw);
                let rewrite = Instant::now();
                while info_field(&mut raw, "persistence", "aof_rewrite_in_progress").as_deref()
                    != Some("0")
                    || info_field(&mut raw, "persistence", "aof_rewrite_scheduled").as_deref()
                        != Some("0")
                {
                    assert!(
                        rewrite.elapsed() < Duration::from_secs(60),
                        "AOF rewrite did not finish"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                drop(raw);
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
                    match info_field(&mut raw, "persistence", "loading").as_deref() {
                        Some("0") => break,
                        Some("1") => {
                            seen_loading.get_or_insert_with(Instant::now);
                        }
                        _ => raw = control(port),
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "the server never finished loading"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                let window = seen_loading.map(|t| t.elapsed());
                if let Some(window) = window {
                    self.loading_windows.push(window);
                }
                format!("{delay_us} µs a key, LOADING window {window:?}")
            }
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
                let hold = self.rng.millis(500, 2000);
                std::thread::sleep(hold);
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxclients")
                    .arg(&original[1])
                    .query(&mut raw)
                    .unwrap();
                format!("maxclients {} held by us for {hold:?}", 1 + holders)
            }
            Fault::Oom => {
                let hold = self.rng.millis(500, 2000);
                let mut raw = control(port);
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
                format!("maxmemory 1mb noeviction for {hold:?}")
            }
            Fault::ProxyReset => {
                let refused = self.rng.millis(0, 800);
                self.proxy.set_mode(Mode::Refuse);
                self.proxy.reset_all();
                std::thread::sleep(refused);
                self.proxy.set_mode(Mode::Pass);
                format!("reset all, then refused new connections for {refused:?}")
            }
            Fault::ProxyBlackHole => {
                let held = self.rng.millis(300, 6000);
                self.proxy.set_mode(Mode::BlackHole);
                std::thread::sleep(held);
                self.proxy.set_mode(Mode::Pass);
                format!("black-holed {held:?}")
            }
            Fault::ProxyDelay => {
                let delay = self.rng.millis(30, 400);
                let held = self.rng.millis(500, 2000);
                self.proxy.set_mode(Mode::Delay(delay));
                std::thread::sleep(held);
                self.proxy.set_mode(Mode::Pass);
                format!("{delay:?} each way for {held:?}")
            }
        }
    }
}

/// Time until every distinct database answers a `PING` through the SDK again.
async fn recovery(client: &DbClient, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut pending = vec![client.main(), client.jobs(), client.archive()];
    loop {
        let mut still = Vec::new();
        for handle in pending {
            if handle.query::<String>(&redis::cmd("PING")).await.is_err() {
                still.push(handle);
            }
        }
        if still.is_empty() {
            return Some(started.elapsed());
        }
        if started.elapsed() > give_up {
            return None;
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

// ---------------------------------------------------------------------------------------------

#[test]
fn chaos() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));

    let soak_secs: Option<u64> = std::env::var("REDIS_DB_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok());
    let seed: u64 = std::env::var("REDIS_DB_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let fault_phase = Duration::from_secs(soak_secs.unwrap_or(SHORT_SECS));
    let reproduce = match soak_secs {
        Some(secs) => format!("REDIS_DB_CHAOS_SEED={seed} REDIS_DB_SOAK_SECS={secs} cargo test --release --test chaos -- --nocapture"),
        None => format!("REDIS_DB_CHAOS_SEED={seed} cargo test --test chaos -- --nocapture"),
    };
    println!("chaos: seed {seed}; reproduce with: {reproduce}");

    // The budget of one call, from the configuration the client runs on.
    let config = redis_db::config::parse_str(CONFIG_YAML, "chaos.yaml").expect("chaos.yaml");
    let attempts = config.retry.attempts;
    let call_budget = config.timeout * (attempts + 1)
        + config.retry.max_delay * attempts
        + config.readiness.max_wait
        + BUDGET_SLACK;
    let budget = Budget {
        call: call_budget,
        exclusive: call_budget + config.timeout * 2,
    };
    println!("chaos: per-call budget {call_budget:?} = timeout {:?} x {} + {attempts} x {:?} + max_wait {:?} + slack {BUDGET_SLACK:?}",
        config.timeout, attempts + 1, config.retry.max_delay, config.readiness.max_wait);

    // The server: every acknowledged write on disk before the reply (AOF, fsync always).
    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    {
        let mut raw = control(server.port());
        let aof: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendfsync")
            .query(&mut raw)
            .unwrap();
        assert_eq!(aof[1], "always");
        let _: () = redis::cmd("SELECT").arg(9).query(&mut raw).unwrap();
        let _: () = redis::cmd("DEBUG")
            .arg("POPULATE")
            .arg(LOADING_KEYS)
            .query(&mut raw)
            .unwrap();
        // DEBUG POPULATE is not logged to the AOF: a rewrite puts the keys in its base file, so
        // that every restart loads them (slowly when `--key-load-delay` is set).
        let _: String = redis::cmd("BGREWRITEAOF").query(&mut raw).unwrap();
        RedisServer::wait_for(Duration::from_secs(30), "AOF rewrite", || {
            info_field(&mut raw, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
                && info_field(&mut raw, "persistence", "aof_rewrite_scheduled").as_deref()
                    == Some("0")
        });
    }
    let proxy = Proxy::start(server.port());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("chaos-workload")
        .enable_all()
        .build()
        .unwrap();
    let baseline_tasks = runtime.metrics().num_alive_tasks();
    let client: DbClient = runtime
        .block_on(
            Db::builder()
                .url(proxy.url())
                .ignore_environment()
                .connect(),
        )
        .expect("connect through the proxy");
    let tasks_while_connected = runtime.metrics().num_alive_tasks();

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..TASKS)
        .map(|id| runtime.spawn(worker(id, client.clone(), seed, stop.clone(), budget)))
        .collect();

    // The controller: every kind once in a seeded order, then seeded random picks.
    let mut chaos = Chaos {
        server: &mut server,
        proxy: &proxy,
        rng: Rng::new(seed),
        loading_windows: Vec::new(),
    };
    let mut order = FAULTS.to_vec();
    chaos.rng.shuffle(&mut order);
    let started = Instant::now();
    let mut injected: BTreeMap<Fault, u64> = BTreeMap::new();
    let mut recoveries: Vec<Duration> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut rss: Vec<(Duration, u64)> = vec![(Duration::ZERO, rss_kb())];
    let mut next_rss = Duration::from_secs(5);
    let mut fault_log: Vec<String> = Vec::new();
    let mut index = 0;
    // Every kind at least once, whatever the seed drew for the durations.
    while started.elapsed() < fault_phase || index < order.len() {
        let fault = if index < order.len() {
            order[index]
        } else {
            FAULTS[chaos.rng.below(FAULTS.len() as u64) as usize]
        };
        index += 1;
        let retries_before = client.stats().totals.retries;
        let at = started.elapsed();
        let detail = chaos.inject(fault);
        let retries_during = client.stats().totals.retries - retries_before;
        let recovered = runtime.block_on(recovery(&client, Duration::from_secs(30)));
        *injected.entry(fault).or_default() += 1;
        let line = format!(
            "{:>7.1}s {fault:?}: {detail}; recovered in {recovered:?}",
            at.as_secs_f64()
        );
        println!("chaos: {line}");
        fault_log.push(line);
        match recovered {
            Some(time) => {
                recoveries.push(time);
                if time > RECOVERY_BOUND {
                    problems.push(format!(
                        "recovery after {fault:?} took {time:?} > {RECOVERY_BOUND:?}"
                    ));
                }
            }
            None => problems.push(format!(
                "no recovery within 30 s after {fault:?} ({detail})"
            )),
        }
        if fault == Fault::Oom && retries_during > 0 {
            // Only OOM is in the air: command errors must surface at once, never retried.
            problems.push(format!("{retries_during} retries during the OOM fault (command errors must not be retried)"));
        }
        // A quiet gap: traffic flows normally between faults.
        std::thread::sleep(chaos.rng.millis(200, 1000));
        if started.elapsed() >= next_rss {
            rss.push((started.elapsed(), rss_kb()));
            next_rss += if soak_secs.is_some() {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(5)
            };
        }
    }
    let loading_windows = std::mem::take(&mut chaos.loading_windows);
    drop(chaos);
    rss.push((started.elapsed(), rss_kb()));

    // Every task must finish: no deadlock.
    stop.store(true, Ordering::Relaxed);
    let join_limit = budget.exclusive + Duration::from_secs(5);
    let joined = runtime.block_on(async {
        let mut reports = Vec::new();
        for worker in workers {
            match tokio::time::timeout_at((Instant::now() + join_limit).into(), worker).await {
                Ok(Ok(report)) => reports.push(Ok(report)),
                Ok(Err(e)) => reports.push(Err(format!("task panicked or was cancelled: {e}"))),
                Err(_) => reports.push(Err(format!(
                    "task did not finish within {join_limit:?} of the stop"
                ))),
            }
        }
        reports
    });
    let mut reports = Vec::new();
    for (id, result) in joined.into_iter().enumerate() {
        match result {
            Ok(report) => reports.push((id, report)),
            Err(e) => problems.push(format!("task {id}: {e}")),
        }
    }

    // No pool leak.
    let stats = client.stats();
    for database in &stats.databases {
        if database.pool.in_use != 0 || database.pool.waiting != 0 {
            problems.push(format!(
                "`{}`: pool in_use {} waiting {} at the end",
                database.name, database.pool.in_use, database.pool.waiting
            ));
        }
    }

    // The ledger: straight from the server, every fault over.
    let mut applied: HashMap<(u8, String), u32> = HashMap::new();
    {
        let mut raw = control(server.port());
        for (index, db) in LEDGER_DBS.iter().enumerate() {
            let _: () = redis::cmd("SELECT").arg(db).query(&mut raw).unwrap();
            let entries: Vec<String> = redis::cmd("LRANGE")
                .arg("ledger")
                .arg(0)
                .arg(-1)
                .query(&mut raw)
                .unwrap();
            for entry in entries {
                *applied.entry((index as u8, entry)).or_default() += 1;
            }
        }
    }
    let (mut acked, mut not_applied_count, mut unknown, mut unknown_applied) =
        (0u64, 0u64, 0u64, 0u64);
    let (mut duplicates, mut lost, mut phantom_applied) = (Vec::new(), Vec::new(), Vec::new());
    let mut issued = 0usize;
    for (id, report) in &reports {
        for (seq, packed) in report.ops.iter().enumerate() {
            issued += 1;
            let (ledger, outcome) = (packed >> 4, packed & 0xF);
            let op = format!("{id}:{seq}");
            let count = applied.remove(&(ledger, op.clone())).unwrap_or(0);
            if count > 1 {
                duplicates.push(format!("{op} x{count}"));
            }
            match outcome {
                x if x == Outcome::Acked as u8 => {
                    acked += 1;
                    if count == 0 {
                        lost.push(op);
                    }
                }
                x if x == Outcome::NotApplied as u8 => {
                    not_applied_count += 1;
                    if count > 0 {
                        phantom_applied.push(op);
                    }
                }
                _ => {
                    unknown += 1;
                    unknown_applied += u64::from(count > 0);
                }
            }
        }
    }
    let strays: Vec<String> = applied
        .keys()
        .take(10)
        .map(|(l, op)| format!("{op} in db {}", LEDGER_DBS[*l as usize]))
        .collect();
    if !duplicates.is_empty() {
        problems.push(format!(
            "{} write(s) applied twice: {:?}",
            duplicates.len(),
            &duplicates[..duplicates.len().min(10)]
        ));
    }
    if !lost.is_empty() {
        problems.push(format!(
            "{} acknowledged write(s) missing: {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        ));
    }
    if !phantom_applied.is_empty() {
        problems.push(format!(
            "{} write(s) reported as not applied are in the ledger: {:?}",
            phantom_applied.len(),
            &phantom_applied[..phantom_applied.len().min(10)]
        ));
    }
    if !applied.is_empty() {
        problems.push(format!(
            "{} ledger entries in the wrong db or never issued: {strays:?}",
            applied.len()
        ));
    }

    // Calls, failures, latency.
    let calls: u64 = reports.iter().map(|(_, r)| r.calls).sum();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut samples: BTreeMap<String, String> = BTreeMap::new();
    for (_, report) in &reports {
        for (kind, message) in &report.samples {
            samples
                .entry(kind.clone())
                .or_insert_with(|| message.clone());
        }
        for (kind, n) in &report.failures {
            *failures.entry(kind.clone()).or_default() += n;
        }
    }
    let max_latency = reports
        .iter()
        .map(|(_, r)| r.max_latency)
        .max()
        .unwrap_or_default();
    let violations: Vec<&String> = reports.iter().flat_map(|(_, r)| &r.violations).collect();
    if !violations.is_empty() {
        problems.push(format!(
            "{} call(s) over budget, e.g.:\n    {}",
            violations.len(),
            violations
                .iter()
                .take(10)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n    ")
        ));
    }
    let failed_calls: u64 = failures.values().sum();
    recoveries.sort();
    let (p50, p99, recovery_max) = (
        percentile(&recoveries, 0.5),
        percentile(&recoveries, 0.99),
        recoveries.last().copied().unwrap_or_default(),
    );

    // After the client is dropped: no task of ours left, no connection of ours on the server.
    let totals = stats.totals.clone();
    drop(stats);
    drop(client);
    let drop_deadline = Instant::now() + Duration::from_secs(5);
    let mut tasks_left = runtime.metrics().num_alive_tasks();
    while tasks_left > baseline_tasks && Instant::now() < drop_deadline {
        std::thread::sleep(Duration::from_millis(20));
        tasks_left = runtime.metrics().num_alive_tasks();
    }
    if tasks_left > baseline_tasks {
        problems.push(format!("{} background task(s) alive 5 s after the client was dropped (baseline {baseline_tasks})", tasks_left));
    }
    let mut server_side = foreign_clients(server.port());
    while (!server_side.is_empty() || proxy.live_connections() > 0)
        && Instant::now() < drop_deadline + Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
        server_side = foreign_clients(server.port());
    }
    if !server_side.is_empty() || proxy.live_connections() > 0 {
        problems.push(format!(
            "after the drop the server still sees {} connection(s) of ours ({} through the proxy): {:?}",
            server_side.len(),
            proxy.live_connections(),
            server_side
        ));
    }
    runtime.shutdown_timeout(Duration::from_secs(2));

    // Memory across the soak: after a warm-up of a fifth of the run (at least 30 s).
    let warm_up = (fault_phase / 5).max(Duration::from_secs(30));
    let rss_growth = rss.iter().find(|(t, _)| *t >= warm_up).map(|(_, warm)| {
        rss.iter()
            .map(|(_, kb)| *kb)
            .max()
            .unwrap_or(0)
            .saturating_sub(*warm)
    });
    if soak_secs.is_some() {
        match rss_growth {
            Some(growth) if growth > RSS_GROWTH_BOUND_KB => problems.push(format!(
                "RSS grew by {growth} kB after warm-up (bound {RSS_GROWTH_BOUND_KB} kB): {rss:?}"
            )),
            _ => {}
        }
    }
    let panics = PANICS.load(Ordering::Relaxed);
    if panics > 0 {
        problems.push(format!("{panics} panic(s)"));
    }

    // The summary.
    let total: u64 = injected.values().sum();
    println!("\n===== chaos summary =====");
    println!("seed: {seed}");
    println!(
        "mode: {}",
        match soak_secs {
            Some(s) => format!("soak, {s} s of faults"),
            None => format!("short, {SHORT_SECS} s of faults"),
        }
    );
    println!("run: {:.1} s, {TASKS} tasks, 4 databases (main, jobs, jobs_monitor alias, archive) through the proxy", started.elapsed().as_secs_f64());
    println!(
        "faults injected: {total} = {}",
        injected
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("LOADING windows: {:?}", loading_windows);
    println!(
        "calls: {calls} ({failed_calls} failed, {:.2}%), SDK totals: {} commands, {} retries",
        100.0 * failed_calls as f64 / calls.max(1) as f64,
        totals.commands,
        totals.retries
    );
    println!(
        "failures by kind: {}",
        failures
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (kind, message) in &samples {
        println!("  e.g. {kind}: {message}");
    }
    println!(
        "max call latency: {max_latency:?} (budget {call_budget:?}, exclusive {:?})",
        budget.exclusive
    );
    println!("recovery after a fault ends: p50 {p50:?}, p99 {p99:?}, max {recovery_max:?} (bound {RECOVERY_BOUND:?}, {} faults)", recoveries.len());
    println!("ledger writes: {issued} issued, {acked} acknowledged, {not_applied_count} refused (not applied), {unknown} unknown ({unknown_applied} of them applied)");
    println!(
        "duplicates: {}, lost: {}, refused-but-applied: {}",
        duplicates.len(),
        lost.len(),
        phantom_applied.len()
    );
    println!("tasks: {baseline_tasks} before connect, {tasks_while_connected} connected, {tasks_left} after drop");
    println!("proxy: {} connections accepted", proxy.accepted());
    if let Some(growth) = rss_growth {
        println!("RSS: {} kB at start, {} kB at the end, {growth} kB growth after {warm_up:?} warm-up (samples {})",
            rss.first().map_or(0, |r| r.1), rss.last().map_or(0, |r| r.1), rss.len());
    } else {
        println!(
            "RSS: {} kB at start, {} kB at the end",
            rss.first().map_or(0, |r| r.1),
            rss.last().map_or(0, |r| r.1)
        );
    }
    println!("panics: {panics}");
    println!("reproduce: {reproduce}");
    println!("=========================\n");

    assert!(
        problems.is_empty(),
        "chaos run (seed {seed}) broke invariants:\n  - {}\nreproduce: {reproduce}",
        problems.join("\n  - ")
    );
    assert!(
        total >= FAULTS.len() as u64,
        "every kind of fault must be injected at least once"
    );
}
