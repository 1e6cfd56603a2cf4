//! redis-db side by side with its peers, in one run: `cargo bench --bench compare`.
//!
//! Contenders, interleaved in rounds so that machine drift hits all alike:
//! - `redis-db`: the SDK's `Handle` (breaker, readiness gate, retries, stats on every call);
//! - `raw`: a `redis` 1.8 `MultiplexedConnection` shared by clones, with redis-rs's defaults
//!   (RESP2, Nagle on), as an application would open it: the floor of our stack;
//! - `raw-tuned`: the same with redis-db's socket settings (TCP_NODELAY, RESP3 where the SDK
//!   speaks it), to tell the cost of the settings from the cost of the layer;
//! - `deadpool`: a `deadpool-redis` pool with a checkout per operation;
//! - `fred`: one `fred` client (one multiplexed, pipelining connection);
//! - `redis-benchmark`: the C tool at the same concurrency, the ceiling of this machine.
//!
//! The other peers use redis-db's socket settings (TCP_NODELAY) on the same database, and a pool
//! of 20 (redis-db's default `max_connections`) where there is a pool.
//!
//! Beside throughput (which spreads 30-80 % between rounds on a shared 2-core VM) every sample
//! records the process CPU time per operation (`getrusage` around the measured phase; for
//! `redis-benchmark` its own CPU), the server's CPU per operation (`/proc/<pid>/stat`, own server
//! only) and TCP segments per operation (`/proc/net/snmp`, both directions on loopback): fewer
//! segments per command means better implicit pipelining on the multiplexed connection.
//!
//! Options (arguments after `--`, or environment variables):
//! `--secs S` / `BENCH_SECS` (measured seconds per contender and round, default 1),
//! `--warmup S` / `BENCH_WARMUP` (default 0.25), `--rounds N` / `BENCH_ROUNDS` (default 5),
//! `--allow-dirty` / `BENCH_ALLOW_DIRTY=1` (run even if the database holds data).
//! `REDIS_URL` points it at an existing server instead of starting its own `redis-server`.
//!
//! The last lines it prints are `RATIO <workload> redis-db/<peer> <value>` (throughput),
//! `CPU <workload> <contender> <us/op>` and `CPURATIO <workload> redis-db/<peer> <value>`.
//! Instructions per call (deterministic, callgrind) come from `benches/calls.rs`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::interfaces::{ClientLike, KeysInterface};
use hdrhistogram::Histogram;
use redis::io::tcp::TcpSettings;
use redis::{AsyncCommands, ConnectionInfo, IntoConnectionInfo, ProtocolVersion};

#[redis_db::databases(config = "benches/redis-databases.yaml")]
pub enum Db {}

/// The database every contender uses (the one `benches/redis-databases.yaml` declares).
const DB: u8 = 15;
/// Every key the bench writes starts with this (redis-benchmark's own `key:__rand_int__` aside).
const PREFIX: &str = "redis-db-bench:";
const KEYS: usize = 1000;
const VALUE: [u8; 64] = [b'x'; 64];
const PIPELINE: usize = 100;
/// redis-db's default `max_connections`; the deadpool peer gets the same pool size.
const POOL_SIZE: usize = 20;
/// The protocol redis-db's connections speak; `raw-tuned`, deadpool and fred use it too.
const SDK_PROTOCOL: ProtocolVersion = ProtocolVersion::RESP3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    GetSet(usize),
    Pipeline,
    Checkout(usize),
}

impl Workload {
    fn id(self) -> String {
        match self {
            Workload::GetSet(tasks) => format!("getset-c{tasks}"),
            Workload::Pipeline => format!("pipeline{PIPELINE}-c1"),
            Workload::Checkout(tasks) => format!("checkout-c{tasks}"),
        }
    }

    fn describe(self) -> String {
        match self {
            Workload::GetSet(tasks) => format!("GET/SET 50/50, 64 B, {tasks} task(s)"),
            Workload::Pipeline => {
                format!("{PIPELINE}-command pipeline (50 SET + 50 GET), 1 task; ops = commands")
            }
            Workload::Checkout(tasks) => {
                format!("exclusive checkout + GET/SET per op, {tasks} tasks")
            }
        }
    }

    fn tasks(self) -> usize {
        match self {
            Workload::GetSet(tasks) | Workload::Checkout(tasks) => tasks,
            Workload::Pipeline => 1,
        }
    }

    fn contenders(self) -> &'static [Contender] {
        use Contender::*;
        match self {
            Workload::GetSet(_) | Workload::Pipeline => {
                &[RedisDb, Raw, RawTuned, Deadpool, Fred, RedisBenchmark]
            }
            Workload::Checkout(_) => &[RedisDb, Deadpool],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Contender {
    RedisDb,
    Raw,
    RawTuned,
    Deadpool,
    Fred,
    RedisBenchmark,
}

impl Contender {
    fn id(self) -> &'static str {
        match self {
            Contender::RedisDb => "redis-db",
            Contender::Raw => "raw",
            Contender::RawTuned => "raw-tuned",
            Contender::Deadpool => "deadpool",
            Contender::Fred => "fred",
            Contender::RedisBenchmark => "redis-benchmark",
        }
    }
}

const WORKLOADS: [Workload; 5] = [
    Workload::GetSet(1),
    Workload::GetSet(16),
    Workload::GetSet(256),
    Workload::Pipeline,
    Workload::Checkout(16),
];

// ---------------------------------------------------------------------------------------------
// Options and the server

struct Options {
    secs: f64,
    warmup: f64,
    rounds: usize,
    allow_dirty: bool,
    url: Option<String>,
    /// Workload ids to run (all when empty), e.g. for profiling one of them.
    only: Vec<String>,
    /// Contender ids to run (all when empty).
    contenders: Vec<String>,
}

impl Options {
    fn selected(&self, workload: Workload, contender: Contender) -> bool {
        (self.only.is_empty() || self.only.contains(&workload.id()))
            && (self.contenders.is_empty() || self.contenders.iter().any(|c| c == contender.id()))
    }
}

const USAGE: &str = "usage: cargo bench --bench compare [-- [--secs S] [--warmup S] [--rounds N] [--allow-dirty]\n\
    [--only getset-c1,getset-c16,getset-c256,pipeline100-c1,checkout-c16] [--contenders redis-db,raw,raw-tuned,deadpool,fred,redis-benchmark]]\n\
    env: BENCH_SECS, BENCH_WARMUP, BENCH_ROUNDS, BENCH_ALLOW_DIRTY=1, REDIS_URL (else it starts its own redis-server)";

/// `Ok(None)`: not run by `cargo bench` (e.g. `cargo test --benches`), so do nothing.
fn parse_options() -> Result<Option<Options>, String> {
    fn env<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}={v}: not a valid value")),
            _ => Ok(None),
        }
    }
    let mut options = Options {
        secs: env("BENCH_SECS")?.unwrap_or(1.0),
        warmup: env("BENCH_WARMUP")?.unwrap_or(0.25),
        rounds: env("BENCH_ROUNDS")?.unwrap_or(5),
        allow_dirty: std::env::var("BENCH_ALLOW_DIRTY").is_ok_and(|v| !v.is_empty() && v != "0"),
        url: std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()),
        only: Vec::new(),
        contenders: Vec::new(),
    };
    let list = |text: String| {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut bench = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{what} needs a value\n{USAGE}"))
        };
        let number = |text: String, what: &str| -> Result<f64, String> {
            text.parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0)
                .ok_or_else(|| format!("{what} {text}: not a positive number"))
        };
        match name.as_str() {
            "--bench" => bench = true,
            "--allow-dirty" => options.allow_dirty = true,
            "--secs" => options.secs = number(value("--secs")?, "--secs")?,
            "--warmup" => options.warmup = number(value("--warmup")?, "--warmup")?,
            "--rounds" => options.rounds = number(value("--rounds")?, "--rounds")? as usize,
            "--only" => options.only = list(value("--only")?),
            "--contenders" => options.contenders = list(value("--contenders")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if !bench {
        return Ok(None);
    }
    if options.rounds == 0 || options.secs <= 0.0 {
        return Err(format!("rounds and secs must be positive\n{USAGE}"));
    }
    for only in &options.only {
        if !WORKLOADS.iter().any(|w| w.id() == *only) {
            return Err(format!("--only {only}: no such workload\n{USAGE}"));
        }
    }
    let ids = [
        Contender::RedisDb,
        Contender::Raw,
        Contender::RawTuned,
        Contender::Deadpool,
        Contender::Fred,
        Contender::RedisBenchmark,
    ]
    .map(Contender::id);
    for contender in &options.contenders {
        if !ids.contains(&contender.as_str()) {
            return Err(format!(
                "--contenders {contender}: no such contender\n{USAGE}"
            ));
        }
    }
    Ok(Some(options))
}

/// The server under test: our own `redis-server` on a free port, or `REDIS_URL`.
enum Server {
    Own(support::RedisServer),
    External(String),
}

impl Server {
    fn url(&self) -> String {
        match self {
            Server::Own(server) => server.url(),
            Server::External(url) => url.clone(),
        }
    }
}

/// `url` on [`DB`] with redis-rs's defaults otherwise (RESP2, Nagle on): the `raw` peer.
fn default_connection_info(url: &str) -> Result<ConnectionInfo, String> {
    let info = url
        .into_connection_info()
        .map_err(|e| format!("REDIS_URL {url}: {e}"))?;
    let settings = info.redis_settings().clone().set_db(i64::from(DB));
    Ok(info.set_redis_settings(settings))
}

/// `url` on [`DB`] with redis-db's socket settings: TCP_NODELAY, and `protocol`.
fn connection_info(url: &str, protocol: ProtocolVersion) -> Result<ConnectionInfo, String> {
    let info = default_connection_info(url)?;
    let settings = info.redis_settings().clone().set_protocol(protocol);
    Ok(info
        .set_redis_settings(settings)
        .set_tcp_settings(TcpSettings::default().set_nodelay(true)))
}

fn sync_connection(url: &str) -> Result<redis::Connection, String> {
    redis::Client::open(default_connection_info(url)?)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
        .map_err(|e| format!("cannot connect to {url} db {DB}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// One operation of one contender

/// One operation; `i` counts the task's operations (even: SET, odd: GET of the same key).
trait Op: Clone + Send + 'static {
    fn run<'a>(
        &'a mut self,
        i: u64,
        key: &'a str,
    ) -> impl Future<Output = Result<(), String>> + Send + 'a;
}

async fn get_or_set<C: redis::aio::ConnectionLike + Send + Sync>(
    c: &mut C,
    i: u64,
    key: &str,
) -> Result<(), String> {
    if i.is_multiple_of(2) {
        c.set::<_, _, ()>(key, &VALUE[..])
            .await
            .map_err(|e| e.to_string())
    } else {
        c.get::<_, redis::Value>(key)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

fn redis_pipeline() -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for j in 0..PIPELINE / 2 {
        let key = format!("{PREFIX}pipe:{j}");
        pipe.set(&key, &VALUE[..]).get(&key);
    }
    pipe
}

#[derive(Clone)]
struct HandleGetSet(redis_db::Handle);
impl Op for HandleGetSet {
    async fn run<'a>(&'a mut self, i: u64, key: &'a str) -> Result<(), String> {
        get_or_set(&mut self.0, i, key).await
    }
}

#[derive(Clone)]
struct RawGetSet(redis::aio::MultiplexedConnection);
impl Op for RawGetSet {
    async fn run<'a>(&'a mut self, i: u64, key: &'a str) -> Result<(), String> {
        get_or_set(&mut self.0, i, key).await
    }
}

#[derive(Clone)]
struct DeadpoolGetSet(deadpool_redis::Pool);
impl Op for DeadpoolGetSet {
    async fn run<'a>(&'a mut self, i: u64, key: &'a str) -> Result<(), String> {
        let mut connection = self.0.get().await.map_err(|e| e.to_string())?;
        get_or_set(&mut connection, i, key).await
    }
}

#[derive(Clone)]
struct FredGetSet(fred::prelude::Client);
impl Op for FredGetSet {
    async fn run<'a>(&'a mut self, i: u64, key: &'a str) -> Result<(), String> {
        if i.is_multiple_of(2) {
            self.0
                .set::<(), _, _>(key, &VALUE[..], None, None, false)
                .await
                .map_err(|e| e.to_string())
        } else {
            self.0
                .get::<fred::prelude::Value, _>(key)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

#[derive(Clone)]
struct HandleCheckout(redis_db::Handle);
impl Op for HandleCheckout {
    async fn run<'a>(&'a mut self, i: u64, key: &'a str) -> Result<(), String> {
        let mut connection = self.0.connection().await.map_err(|e| e.to_string())?;
        get_or_set(&mut connection, i, key).await
    }
}

#[derive(Clone)]
struct HandlePipeline(redis_db::Handle, Arc<redis::Pipeline>);
impl Op for HandlePipeline {
    async fn run<'a>(&'a mut self, _: u64, _: &'a str) -> Result<(), String> {
        self.1
            .query_async::<redis::Value>(&mut self.0)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[derive(Clone)]
struct RawPipeline(redis::aio::MultiplexedConnection, Arc<redis::Pipeline>);
impl Op for RawPipeline {
    async fn run<'a>(&'a mut self, _: u64, _: &'a str) -> Result<(), String> {
        self.1
            .query_async::<redis::Value>(&mut self.0)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[derive(Clone)]
struct DeadpoolPipeline(deadpool_redis::Pool, Arc<redis::Pipeline>);
impl Op for DeadpoolPipeline {
    async fn run<'a>(&'a mut self, _: u64, _: &'a str) -> Result<(), String> {
        let mut connection = self.0.get().await.map_err(|e| e.to_string())?;
        self.1
            .query_async::<redis::Value>(&mut connection)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// fred's pipeline is built once per task and re-sent (`all()` clones the buffered commands).
struct FredPipeline(
    fred::prelude::Client,
    Option<fred::clients::Pipeline<fred::prelude::Client>>,
);
impl Clone for FredPipeline {
    fn clone(&self) -> Self {
        FredPipeline(self.0.clone(), None)
    }
}
impl Op for FredPipeline {
    async fn run<'a>(&'a mut self, _: u64, _: &'a str) -> Result<(), String> {
        if self.1.is_none() {
            let pipeline = self.0.pipeline();
            for j in 0..PIPELINE / 2 {
                let key = format!("{PREFIX}pipe:{j}");
                pipeline
                    .set::<(), _, _>(key.as_str(), &VALUE[..], None, None, false)
                    .await
                    .map_err(|e| e.to_string())?;
                pipeline
                    .get::<(), _>(key.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            self.1 = Some(pipeline);
        }
        let pipeline = self.1.as_ref().expect("built above");
        pipeline
            .all::<fred::prelude::Value>()
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// One contender's figures in one round.
#[derive(Clone, Copy, Debug)]
struct Sample {
    ops_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    /// The client's CPU time (user + system, all threads) per operation.
    cpu_us: f64,
    /// The server's CPU time per operation (NaN when the server is not ours).
    server_cpu_us: f64,
    /// TCP segments sent on the machine per operation (NaN without `/proc/net/snmp`).
    segments: f64,
}

/// The costs of one measured phase: client CPU, server CPU, TCP segments.
#[derive(Clone, Copy)]
struct Meter {
    cpu: Duration,
    server_ticks: Option<u64>,
    segments: Option<u64>,
}

impl Meter {
    fn start(who: Rusage) -> Meter {
        Meter {
            cpu: cpu_time(who),
            server_ticks: server_ticks(),
            segments: tcp_out_segments(),
        }
    }

    /// What was spent since `start`: client CPU us, server CPU us, segments.
    fn stop(self, who: Rusage) -> Spent {
        let server_ticks = match (self.server_ticks, server_ticks()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let segments = match (self.segments, tcp_out_segments()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        Spent {
            cpu_us: cpu_time(who).saturating_sub(self.cpu).as_secs_f64() * 1e6,
            server_cpu_us: server_ticks
                .map_or(f64::NAN, |t| t as f64 * 1e6 / clock_ticks_per_sec()),
            segments: segments.map_or(f64::NAN, |s| s as f64),
        }
    }
}

/// A measured phase's costs, to be divided by its operations.
#[derive(Clone, Copy)]
struct Spent {
    cpu_us: f64,
    server_cpu_us: f64,
    segments: f64,
}

#[derive(Clone, Copy)]
enum Rusage {
    /// This process: the Rust contenders.
    Own,
    /// Waited-for children: `redis-benchmark`.
    Children,
}

fn cpu_time(who: Rusage) -> Duration {
    let who = match who {
        Rusage::Own => libc::RUSAGE_SELF,
        Rusage::Children => libc::RUSAGE_CHILDREN,
    };
    // SAFETY: getrusage only writes into the struct we hand it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The pid of the server this run started (set once in `run`).
static SERVER_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// utime + stime of our own server, in clock ticks.
fn server_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", SERVER_PID.get()?)).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// `Tcp: OutSegs` of `/proc/net/snmp`: every TCP segment this machine sent.
fn tcp_out_segments() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let column = names.split_whitespace().position(|n| n == "OutSegs")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

fn histogram() -> Histogram<u64> {
    // Nanoseconds, 1 ns .. 60 s at 2 significant digits (a few kB per task).
    Histogram::new_with_bounds(1, 60_000_000_000, 2).expect("constant bounds are valid")
}

/// Runs `tasks` copies of `op` for the warm-up, then `secs` measured. `weight`: commands per op.
async fn drive<O: Op>(
    op: O,
    tasks: usize,
    weight: u64,
    options: &Options,
    keys: &Arc<Vec<String>>,
) -> Result<Sample, String> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let mut op = op.clone();
        let phase = phase.clone();
        let keys = keys.clone();
        handles.push(tokio::spawn(async move {
            let mut latency = histogram();
            let mut ops = 0u64;
            let mut first_error = None;
            let mut i = 0u64;
            loop {
                let now = phase.load(Ordering::Relaxed);
                if now == STOP {
                    break;
                }
                let key = &keys[(task * 31 + (i / 2) as usize) % keys.len()];
                let started = Instant::now();
                let result = op.run(i, key).await;
                let took = started.elapsed();
                if let Err(error) = result {
                    first_error.get_or_insert(error);
                } else if now == MEASURE {
                    ops += 1;
                    latency.saturating_record(took.as_nanos() as u64);
                }
                i += 1;
            }
            (ops, latency, first_error)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(options.warmup)).await;
    phase.store(MEASURE, Ordering::Relaxed);
    let meter = Meter::start(Rusage::Own);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(options.secs)).await;
    phase.store(STOP, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let spent = meter.stop(Rusage::Own);
    let mut total = 0u64;
    let mut latency = histogram();
    for handle in handles {
        let (ops, task_latency, error) = handle.await.map_err(|e| format!("task panicked: {e}"))?;
        if let Some(error) = error {
            return Err(error);
        }
        total += ops;
        latency.add(&task_latency).map_err(|e| e.to_string())?;
    }
    let ops = (total * weight) as f64;
    Ok(Sample {
        ops_per_sec: ops / elapsed,
        p50_us: latency.value_at_quantile(0.50) as f64 / 1000.0,
        p99_us: latency.value_at_quantile(0.99) as f64 / 1000.0,
        cpu_us: spent.cpu_us / ops,
        server_cpu_us: spent.server_cpu_us / ops,
        segments: spent.segments / ops,
    })
}

/// The contenders' clients, connected once and reused by every round.
struct Clients {
    handle: redis_db::Handle,
    /// The client the handle belongs to; its `stats()` prove every call took the SDK's road.
    db: DbClient,
    raw: redis::aio::MultiplexedConnection,
    raw_tuned: redis::aio::MultiplexedConnection,
    deadpool: deadpool_redis::Pool,
    fred: fred::prelude::Client,
    url: String,
    pipeline: Arc<redis::Pipeline>,
}

impl Clients {
    async fn connect(url: &str) -> Result<Clients, String> {
        let db = Db::builder()
            .url(url)
            .ignore_environment()
            .connect()
            .await
            .map_err(|e| format!("redis-db: {e}"))?;
        let raw = redis::Client::open(default_connection_info(url)?)
            .map_err(|e| e.to_string())?
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("raw: {e}"))?;
        let info = connection_info(url, SDK_PROTOCOL)?;
        let raw_tuned = redis::Client::open(info.clone())
            .map_err(|e| e.to_string())?
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("raw-tuned: {e}"))?;
        let manager = deadpool_redis::Manager::new(info).map_err(|e| format!("deadpool: {e}"))?;
        let deadpool = deadpool_redis::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_redis::Runtime::Tokio1)
            .build()
            .map_err(|e| format!("deadpool: {e}"))?;
        let mut config = fred::prelude::Config::from_url(url).map_err(|e| format!("fred: {e}"))?;
        config.version = match SDK_PROTOCOL {
            ProtocolVersion::RESP2 => fred::types::RespVersion::RESP2,
            _ => fred::types::RespVersion::RESP3,
        };
        config.database = Some(DB);
        let fred = fred::prelude::Builder::from_config(config)
            .with_connection_config(|c| {
                c.tcp = fred::prelude::TcpConfig {
                    nodelay: Some(true),
                    ..Default::default()
                }
            })
            .build()
            .map_err(|e| format!("fred: {e}"))?;
        fred.init().await.map_err(|e| format!("fred: {e}"))?;
        Ok(Clients {
            handle: db.main(),
            db,
            raw,
            raw_tuned,
            deadpool,
            fred,
            url: url.to_owned(),
            pipeline: Arc::new(redis_pipeline()),
        })
    }

    /// The heap size of one call's future on each `ConnectionLike` path (allocated, moved and
    /// polled on every call).
    fn future_sizes(&self) -> String {
        use redis::aio::ConnectionLike;
        let cmd = redis::cmd("GET").arg(format!("{PREFIX}0")).clone();
        let (mut handle, mut raw) = (self.handle.clone(), self.raw.clone());
        let ours = std::mem::size_of_val(&*handle.req_packed_command(&cmd));
        let theirs = std::mem::size_of_val(&*raw.req_packed_command(&cmd));
        format!("future of one call: redis-db Handle {ours} bytes, raw MultiplexedConnection {theirs} bytes")
    }

    /// The raw connection a raw contender drives: redis-rs defaults, or redis-db's settings.
    fn raw_of(&self, contender: Contender) -> redis::aio::MultiplexedConnection {
        match contender {
            Contender::RawTuned => self.raw_tuned.clone(),
            _ => self.raw.clone(),
        }
    }

    async fn measure(
        &self,
        workload: Workload,
        contender: Contender,
        options: &Options,
        keys: &Arc<Vec<String>>,
        estimate: f64,
    ) -> Result<Sample, String> {
        use Contender::*;
        let tasks = workload.tasks();
        let weight = PIPELINE as u64;
        match (workload, contender) {
            (_, RedisBenchmark) => {
                let (clients, pipeline) = match workload {
                    Workload::Pipeline => (1, PIPELINE),
                    _ => (tasks, 1),
                };
                let url = self.url.clone();
                let secs = options.secs;
                tokio::task::spawn_blocking(move || {
                    redis_benchmark(&url, clients, pipeline, estimate, secs)
                })
                .await
                .map_err(|e| e.to_string())?
            }
            (Workload::GetSet(_), RedisDb) => {
                drive(HandleGetSet(self.handle.clone()), tasks, 1, options, keys).await
            }
            (Workload::GetSet(_), Raw | RawTuned) => {
                drive(RawGetSet(self.raw_of(contender)), tasks, 1, options, keys).await
            }
            (Workload::GetSet(_), Deadpool) => {
                drive(
                    DeadpoolGetSet(self.deadpool.clone()),
                    tasks,
                    1,
                    options,
                    keys,
                )
                .await
            }
            (Workload::GetSet(_), Fred) => {
                drive(FredGetSet(self.fred.clone()), tasks, 1, options, keys).await
            }
            (Workload::Pipeline, RedisDb) => {
                drive(
                    HandlePipeline(self.handle.clone(), self.pipeline.clone()),
                    tasks,
                    weight,
                    options,
                    keys,
                )
                .await
            }
            (Workload::Pipeline, Raw | RawTuned) => {
                drive(
                    RawPipeline(self.raw_of(contender), self.pipeline.clone()),
                    tasks,
                    weight,
                    options,
                    keys,
                )
                .await
            }
            (Workload::Pipeline, Deadpool) => {
                drive(
                    DeadpoolPipeline(self.deadpool.clone(), self.pipeline.clone()),
                    tasks,
                    weight,
                    options,
                    keys,
                )
                .await
            }
            (Workload::Pipeline, Fred) => {
                drive(
                    FredPipeline(self.fred.clone(), None),
                    tasks,
                    weight,
                    options,
                    keys,
                )
                .await
            }
            (Workload::Checkout(_), RedisDb) => {
                drive(HandleCheckout(self.handle.clone()), tasks, 1, options, keys).await
            }
            (Workload::Checkout(_), Deadpool) => {
                drive(
                    DeadpoolGetSet(self.deadpool.clone()),
                    tasks,
                    1,
                    options,
                    keys,
                )
                .await
            }
            (Workload::Checkout(_), _) => {
                Err(format!("{} has no exclusive checkout", contender.id()))
            }
        }
    }
}

/// `redis-benchmark -t set,get` for about `secs` in all (`estimate`: expected ops/s). Its figures
/// for the pair: throughput of the whole run (harmonic mean of SET and GET), mean of their
/// p50/p99.
fn redis_benchmark(
    url: &str,
    clients: usize,
    pipeline: usize,
    estimate: f64,
    secs: f64,
) -> Result<Sample, String> {
    let requests = ((estimate * secs / 2.0) as u64)
        .max(1000)
        .max(clients as u64 * 10);
    let meter = Meter::start(Rusage::Children);
    let output = Command::new("redis-benchmark")
        .args(["-u", url, "--dbnum", &DB.to_string(), "-3", "-t", "set,get", "-d", "64", "--csv"])
        .args(["-c", &clients.to_string(), "-n", &requests.to_string(), "-P", &pipeline.to_string()])
        .output()
        .map_err(|e| format!("cannot run redis-benchmark ({e}); it comes with redis-server (apt-get install redis-tools)"))?;
    let spent = meter.stop(Rusage::Children);
    // Its own run, set-up included: the CPU figures are per request over the whole run.
    let ops = (requests * 2) as f64;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "redis-benchmark failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut rows = Vec::new();
    for line in stdout.lines() {
        let cols: Vec<&str> = line.split(',').map(|c| c.trim_matches('"')).collect();
        if matches!(cols.first(), Some(&"SET") | Some(&"GET")) && cols.len() >= 7 {
            let number = |i: usize| {
                cols[i]
                    .parse::<f64>()
                    .map_err(|_| format!("redis-benchmark CSV: {line}"))
            };
            rows.push((number(1)?, number(4)?, number(6)?));
        }
    }
    if rows.len() != 2 {
        return Err(format!(
            "redis-benchmark printed no SET/GET rows:\n{stdout}"
        ));
    }
    let n = rows.len() as f64;
    Ok(Sample {
        ops_per_sec: n / rows.iter().map(|r| 1.0 / r.0).sum::<f64>(),
        p50_us: rows.iter().map(|r| r.1).sum::<f64>() / n * 1000.0,
        p99_us: rows.iter().map(|r| r.2).sum::<f64>() / n * 1000.0,
        cpu_us: spent.cpu_us / ops,
        server_cpu_us: spent.server_cpu_us / ops,
        segments: spent.segments / ops,
    })
}

// ---------------------------------------------------------------------------------------------
// Report

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {kernel}, load average at start {load}")
}

fn server_version(connection: &mut redis::Connection) -> String {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(connection)
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned()
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("benches/compare: not started by `cargo bench` (no --bench argument): nothing to do.");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("benches/compare: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A Prometheus recorder as an application would install it, drained every 5 s on a thread of
/// its own (as its HTTP listener's scrapes would) so that histogram samples do not pile up.
#[cfg(feature = "metrics")]
fn install_prometheus_recorder() -> Result<std::thread::JoinHandle<()>, String> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("installing the Prometheus recorder: {e}"))?;
    Ok(std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_secs(5));
        handle.run_upkeep();
    }))
}

fn run(options: Options) -> Result<(), String> {
    let server = match &options.url {
        Some(url) => Server::External(url.clone()),
        None => Server::Own(support::RedisServer::start(&[])),
    };
    let url = server.url();
    let mut admin = sync_connection(&url)?;
    let size: u64 = redis::cmd("DBSIZE")
        .query(&mut admin)
        .map_err(|e| e.to_string())?;
    if size > 0 && !options.allow_dirty {
        return Err(format!(
            "database {DB} of {} holds {size} keys; the benchmark writes there and refuses to run on data. \
             Use an empty database, or pass --allow-dirty (BENCH_ALLOW_DIRTY=1) to run anyway.",
            match &server {
                Server::Own(_) => "our own server".to_owned(),
                Server::External(_) => "REDIS_URL".to_owned(),
            }
        ));
    }
    let benchmark_key_existed: bool = redis::cmd("EXISTS")
        .arg("key:__rand_int__")
        .query(&mut admin)
        .map_err(|e| e.to_string())?;

    println!("redis-db compare: {}", machine());
    println!(
        "server: redis {} at {} (db {DB}); {} rounds x {} s measured (+{} s warm-up) per contender; tokio multi-thread, 2 workers",
        server_version(&mut admin),
        match &server {
            Server::Own(s) => format!("127.0.0.1:{} (own)", s.port()),
            Server::External(_) => "REDIS_URL".to_owned(),
        },
        options.rounds,
        options.secs,
        options.warmup
    );

    // `--features metrics`: every SDK call records into a real Prometheus recorder, so the run
    // shows what the figures cost (docs/PERFORMANCE.md). Installed before any client connects.
    #[cfg(feature = "metrics")]
    let _recorder = install_prometheus_recorder()?;
    #[cfg(feature = "metrics")]
    println!("metrics: on (metrics-exporter-prometheus recorder, upkeep every 5 s)");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("{PREFIX}{i}")).collect());
    let started = Instant::now();
    if let Server::Own(own) = &server {
        if let Some(pid) = own.pid() {
            let _ = SERVER_PID.set(pid);
        }
    }
    let results = runtime.block_on(async {
        let clients = Clients::connect(&url).await?;
        let mut results: BTreeMap<(Workload, Contender), Vec<Sample>> = BTreeMap::new();
        // First guesses of redis-benchmark's rate, so that its run lasts about `secs`.
        let mut estimates: BTreeMap<Workload, f64> = WORKLOADS
            .iter()
            .map(|w| {
                (
                    *w,
                    if *w == Workload::Pipeline {
                        1_000_000.0
                    } else if w.tasks() == 1 {
                        15_000.0
                    } else {
                        150_000.0
                    },
                )
            })
            .collect();
        for round in 0..options.rounds {
            eprintln!(
                "round {}/{} ({:.0} s so far)",
                round + 1,
                options.rounds,
                started.elapsed().as_secs_f64()
            );
            for workload in WORKLOADS {
                // Rotate the order each round so no contender always runs first or after the C tool.
                let contenders = workload.contenders();
                for k in 0..contenders.len() {
                    let contender = contenders[(k + round) % contenders.len()];
                    if !options.selected(workload, contender) {
                        continue;
                    }
                    let estimate = estimates[&workload];
                    let sample = clients
                        .measure(workload, contender, &options, &keys, estimate)
                        .await
                        .map_err(|e| format!("{} / {}: {e}", workload.id(), contender.id()))?;
                    if contender == Contender::RedisBenchmark {
                        estimates.insert(workload, sample.ops_per_sec);
                    }
                    eprintln!(
                        "  {:<16} {:<16} {:>11.0} ops/s  p50 {:>8.1} us  p99 {:>8.1} us  CPU {:>6.3} us/op  srv {:>6.3}  seg {:>5.3}",
                        workload.id(),
                        contender.id(),
                        sample.ops_per_sec,
                        sample.p50_us,
                        sample.p99_us,
                        sample.cpu_us,
                        sample.server_cpu_us,
                        sample.segments
                    );
                    results
                        .entry((workload, contender))
                        .or_default()
                        .push(sample);
                }
            }
        }
        eprintln!("{}", clients.future_sizes());
        let totals = clients.db.stats().totals;
        eprintln!(
            "redis-db stats: {} calls recorded, {} failures, {} retries, {} connections opened",
            totals.commands, totals.failures, totals.retries, totals.connections_created
        );
        Ok::<_, String>(results)
    })?;
    drop(runtime);

    // Clean up what we wrote (a server of our own is simply stopped).
    if let Server::External(_) = server {
        let ours: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{PREFIX}*"))
            .query(&mut admin)
            .unwrap_or_default();
        for chunk in ours.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut admin);
        }
        if !benchmark_key_existed {
            let _: Result<(), _> = redis::cmd("DEL").arg("key:__rand_int__").query(&mut admin);
        }
    }

    report(&results, started.elapsed());
    Ok(())
}

fn report(results: &BTreeMap<(Workload, Contender), Vec<Sample>>, took: Duration) {
    let median_of = |samples: &[Sample], f: fn(&Sample) -> f64| {
        median(&mut samples.iter().map(f).collect::<Vec<_>>())
    };
    let spread_of = |samples: &[Sample], f: fn(&Sample) -> f64| {
        let (min, max) = samples
            .iter()
            .map(f)
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        (max - min) / median_of(samples, f) * 100.0
    };
    let mut ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut cpu_lines = Vec::new();
    println!();
    println!("Median of rounds; spread = (max - min) / median of the rounds; ratio = redis-db / contender (throughput).");
    println!("CPU = client process CPU per op (redis-benchmark: its own); srv = server CPU per op; seg = TCP segments per op.");
    println!(
        "{:<18} {:<16} {:>11} {:>7} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>6} {:>7}",
        "workload",
        "contender",
        "ops/s",
        "spread",
        "p50 us",
        "p99 us",
        "ratio",
        "CPU us",
        "spread",
        "srv us",
        "seg",
        "cpu x"
    );
    for workload in WORKLOADS {
        let Some(ours) = results.get(&(workload, Contender::RedisDb)) else {
            continue;
        };
        let ours_ops = median_of(ours, |s| s.ops_per_sec);
        let ours_cpu = median_of(ours, |s| s.cpu_us);
        println!("{}", workload.describe());
        for contender in workload.contenders() {
            let Some(samples) = results.get(&(workload, *contender)) else {
                continue;
            };
            let ops = median_of(samples, |s| s.ops_per_sec);
            let cpu = median_of(samples, |s| s.cpu_us);
            let (ratio, cpu_ratio) = if *contender == Contender::RedisDb {
                (String::new(), String::new())
            } else {
                ratios.push((workload.id(), contender.id(), ours_ops / ops));
                if *contender != Contender::RedisBenchmark {
                    cpu_ratios.push((workload.id(), contender.id(), ours_cpu / cpu));
                }
                (
                    format!("{:.3}", ours_ops / ops),
                    format!("{:.3}", ours_cpu / cpu),
                )
            };
            cpu_lines.push(format!(
                "CPU {} {} {:.3} (spread {:.0}%)",
                workload.id(),
                contender.id(),
                cpu,
                spread_of(samples, |s| s.cpu_us)
            ));
            println!(
                "{:<18} {:<16} {:>11.0} {:>6.1}% {:>8.1} {:>8.1} {:>7} {:>8.3} {:>6.1}% {:>7.3} {:>6.3} {:>7}",
                workload.id(),
                contender.id(),
                ops,
                spread_of(samples, |s| s.ops_per_sec),
                median_of(samples, |s| s.p50_us),
                median_of(samples, |s| s.p99_us),
                ratio,
                cpu,
                spread_of(samples, |s| s.cpu_us),
                median_of(samples, |s| s.server_cpu_us),
                median_of(samples, |s| s.segments),
                cpu_ratio
            );
        }
    }

    println!();
    println!("Targets (the per-call-tax issue):");
    for (workload, peer, value) in &ratios {
        let target = match *peer {
            "raw" if workload != "checkout-c16" => Some(0.97),
            "deadpool" => Some(1.0),
            "fred" if workload == "getset-c16" || workload == "getset-c256" => Some(1.0),
            _ => None,
        };
        if let Some(target) = target {
            let verdict = if *value >= target { "met" } else { "MISSED" };
            println!("  {workload:<18} redis-db/{peer:<16} throughput {value:.3} >= {target:.2}: {verdict}");
        }
    }
    for (workload, peer, value) in &cpu_ratios {
        if *peer == "raw" && (workload == "getset-c16" || workload == "getset-c256") {
            let verdict = if *value <= 1.05 { "met" } else { "MISSED" };
            println!(
                "  {workload:<18} redis-db/{peer:<16} CPU per op {value:.3} <= 1.05: {verdict}"
            );
        }
    }
    println!("(run took {:.0} s)", took.as_secs_f64());
    println!();
    for line in cpu_lines {
        println!("{line}");
    }
    for (workload, peer, value) in ratios {
        println!("RATIO {workload} redis-db/{peer} {value:.3}");
    }
    for (workload, peer, value) in cpu_ratios {
        println!("CPURATIO {workload} redis-db/{peer} {value:.3}");
    }
}
