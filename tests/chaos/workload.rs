//! The chaos workload: every write path of the SDK with a unique id per write, reads whose
//! replies name their own key and version, and blocking pops, moves and group reads on lists and
//! streams that hold items. Each task (async or blocking thread) keeps its own ledger of what it
//! saw; `audit.rs` holds that against the server afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_db::redis::{self, streams::StreamReadReply, Value};
use redis_db::Error;

use crate::rng::Rng;
use crate::support::ledger::Outcome;

/// The ledger databases: main (0), jobs and its alias jobs_monitor (3), archive (6).
pub const LEDGER_DBS: [u32; 3] = [0, 3, 6];
/// Registers per task and ledger database: keys whose value names the key and a version.
pub const REGISTERS: usize = 2;
/// The consumer group every `XREADGROUP` reads through.
pub const GROUP: &str = "chaos";
/// Every `StillLoading` any task saw: the long LOADING fault must move it.
pub static STILL_LOADING: AtomicU64 = AtomicU64::new(0);

/// How a ledger write was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    /// `handle.query(RPUSH)`.
    Command = 0,
    /// `handle.rpush(..)` (`AsyncCommands`, the `ConnectionLike` road).
    AsyncCommands,
    /// `handle.query_pipeline` of an `.atomic()` pipeline: MULTI/EXEC of two `RPUSH`es.
    Multi,
    /// `pipe.atomic().query_async(&mut handle)`: the same transaction through `ConnectionLike`.
    PipeQueryAsync,
    /// `handle.query_pipeline` of a plain pipeline: `RPUSH` and a checked `GET`.
    Pipeline,
    /// `EVAL` of a script that pushes (scripts count as writes).
    Eval,
    /// `RPUSH` on an exclusive `connection()`, then a checked `GET` on it.
    Exclusive,
    /// `MULTI`, two `RPUSH`es and `EXEC` sent one by one on an exclusive `connection()`.
    ExclusiveMulti,
    /// `RPUSH` through the blocking client.
    Blocking,
    /// An `.atomic()` pipeline through the blocking client.
    BlockingMulti,
    /// `RPUSH queue`: an item for the blocking pops and moves.
    QueuePush,
    /// `XADD stream`: an entry for the group reads.
    StreamAdd,
}

pub const PATHS: [Path; 12] = [
    Path::Command,
    Path::AsyncCommands,
    Path::Multi,
    Path::PipeQueryAsync,
    Path::Pipeline,
    Path::Eval,
    Path::Exclusive,
    Path::ExclusiveMulti,
    Path::Blocking,
    Path::BlockingMulti,
    Path::QueuePush,
    Path::StreamAdd,
];

impl Path {
    /// Writes `ledger:tx` too, in the same transaction as `ledger`: both or neither.
    pub fn transactional(self) -> bool {
        matches!(
            self,
            Path::Multi | Path::PipeQueryAsync | Path::ExclusiveMulti | Path::BlockingMulti
        )
    }
}

/// One ledger write, packed into a byte so that a long soak stays small: `db index << 6 | path
/// << 2 | outcome`; its id is `<task>:<index in the task's ops>`.
pub fn pack(db: u8, path: Path, outcome: Outcome) -> u8 {
    db << 6 | (path as u8) << 2 | outcome as u8
}

pub fn unpack(packed: u8) -> (u8, Path, Outcome) {
    (
        packed >> 6,
        PATHS[((packed >> 2) & 0xF) as usize],
        Outcome::from_bits(packed),
    )
}

/// A key whose value is `<key>@<version>`, written by one task only: a read reply that names
/// another key, a version never written, a refused version, or one older than the last
/// acknowledged (unless that older write was in doubt and may have landed late) was meant for
/// another caller.
pub struct Register {
    pub key: String,
    /// Outcome of every version written (version 0: set before the run).
    pub versions: Vec<Outcome>,
    /// The newest acknowledged version.
    pub floor: usize,
}

impl Register {
    pub fn new(db: u32, task: usize, n: usize) -> Register {
        Register {
            key: register_key(db, task, n),
            versions: vec![Outcome::Acked],
            floor: 0,
        }
    }

    /// Why `reply` cannot be this register's value now, if it cannot.
    pub fn check(&self, reply: &Value) -> Result<(), String> {
        let text = match reply {
            Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Value::SimpleString(text) => text.clone(),
            other => return Err(format!("GET {} answered {other:?}", self.key)),
        };
        let version = text
            .strip_prefix(self.key.as_str())
            .and_then(|rest| rest.strip_prefix('@'))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| format!("GET {} answered {text:?}", self.key))?;
        match self.versions.get(version) {
            None => Err(format!(
                "GET {} answered version {version}, never written",
                self.key
            )),
            Some(Outcome::NotApplied) => Err(format!(
                "GET {} answered version {version}, which was refused",
                self.key
            )),
            Some(Outcome::Acked) if version < self.floor => Err(format!(
                "GET {} answered version {version}, older than acknowledged version {}",
                self.key, self.floor
            )),
            Some(_) => Ok(()),
        }
    }

    fn record(&mut self, outcome: Outcome) {
        if outcome == Outcome::Acked {
            self.floor = self.versions.len();
        }
        self.versions.push(outcome);
    }
}

pub fn register_key(db: u32, task: usize, n: usize) -> String {
    format!("reg:{db}:{task}:{n}")
}

pub fn register_value(key: &str, version: usize) -> String {
    format!("{key}@{version}")
}

/// One `BLMOVE queue moved:<task>:<seq>`: a destination of its own, so that the server shows
/// exactly what each call moved.
pub struct Move {
    pub db: u8,
    pub seq: usize,
    pub outcome: Outcome,
    pub item: Option<String>,
}

pub fn move_destination(task: usize, seq: usize) -> String {
    format!("moved:{task}:{seq}")
}

/// One `XREADGROUP` as consumer `c:<task>:<seq>`: a consumer of its own, so that the pending
/// list shows exactly what each call was delivered.
pub struct GroupRead {
    pub db: u8,
    pub seq: usize,
    pub outcome: Outcome,
    /// (entry id, the id of the write that added it).
    pub entry: Option<(String, String)>,
    /// What `XACK` answered (1: no longer pending), `None` when not sent or failed.
    pub xack: Option<i64>,
}

pub fn consumer_name(task: usize, seq: usize) -> String {
    format!("c:{task}:{seq}")
}

#[derive(Clone, Copy)]
pub struct Budget {
    /// One call through a handle.
    pub call: Duration,
    /// One command on an exclusive connection.
    pub command: Duration,
}

/// What one task saw.
pub struct TaskReport {
    pub task: usize,
    pub ops: Vec<u8>,
    /// `registers[db index * REGISTERS + n]`.
    pub registers: Vec<Register>,
    /// Items `BLPOP` returned, with the db index.
    pub pops: Vec<(u8, String)>,
    /// `BLPOP`s that failed in doubt, per db index: each may have popped an item nobody saw.
    pub in_doubt_pops: [u64; 3],
    pub empty_pops: u64,
    pub moves: Vec<Move>,
    pub group_reads: Vec<GroupRead>,
    pub reads_checked: u64,
    pub wrong_replies: u64,
    pub wrong_samples: Vec<String>,
    pub calls: u64,
    pub failures: BTreeMap<String, u64>,
    pub samples: BTreeMap<String, String>,
    pub max_latency: Duration,
    pub violations: Vec<String>,
}

impl TaskReport {
    fn new(task: usize) -> TaskReport {
        let registers = LEDGER_DBS
            .iter()
            .flat_map(|&db| (0..REGISTERS).map(move |n| Register::new(db, task, n)))
            .collect();
        TaskReport {
            task,
            ops: Vec::new(),
            registers,
            pops: Vec::new(),
            in_doubt_pops: [0; 3],
            empty_pops: 0,
            moves: Vec::new(),
            group_reads: Vec::new(),
            reads_checked: 0,
            wrong_replies: 0,
            wrong_samples: Vec::new(),
            calls: 0,
            failures: BTreeMap::new(),
            samples: BTreeMap::new(),
            max_latency: Duration::ZERO,
            violations: Vec::new(),
        }
    }

    fn next_op(&self) -> String {
        format!("{}:{}", self.task, self.ops.len())
    }

    fn record_op(&mut self, db: u8, path: Path, outcome: Outcome) {
        self.ops.push(pack(db, path, outcome));
    }

    fn register(&mut self, db: u8, n: usize) -> &mut Register {
        &mut self.registers[db as usize * REGISTERS + n]
    }

    /// The key and value of the register's next version.
    fn next_version(&mut self, db: u8, n: usize) -> (String, String) {
        let register = self.register(db, n);
        let value = register_value(&register.key, register.versions.len());
        (register.key.clone(), value)
    }

    fn check_read(&mut self, db: u8, n: usize, reply: &Value, via: &str) {
        self.reads_checked += 1;
        if let Err(wrong) = self.register(db, n).check(reply) {
            self.wrong_replies += 1;
            if self.wrong_samples.len() < 5 {
                self.wrong_samples
                    .push(format!("task {} {via}: {wrong}", self.task));
            }
        }
    }

    /// Counts one operation: its latency against `limit`, and its failure if any.
    fn note(
        &mut self,
        what: &str,
        database: &str,
        started: Instant,
        limit: Duration,
        failure: Option<Failure>,
    ) {
        let elapsed = started.elapsed();
        self.calls += 1;
        self.max_latency = self.max_latency.max(elapsed);
        if let Some(failure) = &failure {
            if failure.kind == "StillLoading" {
                STILL_LOADING.fetch_add(1, Ordering::Relaxed);
            }
            *self.failures.entry(failure.kind.clone()).or_default() += 1;
            self.samples
                .entry(failure.kind.clone())
                .or_insert_with(|| format!("{what}: {}", failure.message));
        }
        if elapsed > limit {
            self.violations.push(format!(
                "task {} {what} on `{database}` took {elapsed:?} > budget {limit:?}: {}",
                self.task,
                failure.map_or("ok".to_owned(), |f| format!("{}: {}", f.kind, f.message))
            ));
        }
    }
}

/// A failed operation: its kind (for the counts) and message (for the samples).
pub struct Failure {
    kind: String,
    message: String,
}

impl Failure {
    fn of(error: &Error) -> Failure {
        Failure {
            kind: label(error),
            message: error.to_string(),
        }
    }

    /// An error that came back as a `redis::RedisError` (`ConnectionLike`, exclusive connection,
    /// blocking client), labelled by the road it took.
    fn of_redis(road: &str, error: &redis::RedisError) -> Failure {
        let message = error.to_string();
        let kind = if message.contains("still loading") {
            "StillLoading".to_owned()
        } else {
            format!("{road}({})", redis_label(error))
        };
        Failure { kind, message }
    }
}

pub fn label(error: &Error) -> String {
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
    let text = error.to_string();
    if text.contains("circuit open") {
        "circuit open".into()
    } else if text.contains("pool exhausted") {
        "pool exhausted".into()
    } else if error.is_timeout() || text.contains("no reply within") {
        "timeout".into()
    } else if error.is_io_error() {
        "io".into()
    } else {
        format!("{:?}", error.kind())
    }
}

/// Whether a failed write provably did not run: refused before sending (open circuit, still
/// loading, no pooled connection) or by the server with an error reply (`OOM`, `EXECABORT`).
pub fn outcome_of(error: &Error) -> Outcome {
    match error {
        Error::CircuitOpen { .. }
        | Error::StillLoading { .. }
        | Error::PoolExhausted { .. }
        | Error::NeedsExclusiveConnection { .. } => Outcome::NotApplied,
        Error::Command { source, .. } => outcome_of_redis(source),
        _ => Outcome::Unknown,
    }
}

/// [`outcome_of`] for an error that travelled as a `redis::RedisError`: the SDK's refusals
/// before sending keep their text on that road.
pub fn outcome_of_redis(error: &redis::RedisError) -> Outcome {
    let text = error.to_string();
    let refused_before_sending = [
        "circuit open",
        "still loading",
        "pool exhausted",
        "nothing was sent",
    ]
    .iter()
    .any(|refusal| text.contains(refusal));
    if (error.code().is_some() && !error.is_io_error()) || refused_before_sending {
        Outcome::NotApplied
    } else {
        Outcome::Unknown
    }
}

fn outcome<T>(result: &Result<T, Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Acked,
        Err(e) => outcome_of(e),
    }
}

fn outcome_redis<T>(result: &redis::RedisResult<T>) -> Outcome {
    match result {
        Ok(_) => Outcome::Acked,
        Err(e) => outcome_of_redis(e),
    }
}

const RPUSH_SCRIPT: &str = "return redis.call('RPUSH', KEYS[1], ARGV[1])";

/// One async task: a seeded random mix of every path on four handles until `stop`.
pub async fn worker(
    task: usize,
    client: crate::DbClient,
    seed: u64,
    stop: Arc<AtomicBool>,
    budget: Budget,
) -> TaskReport {
    let mut rng = Rng::new(seed ^ (task as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    // (handle, ledger db index): jobs_monitor writes into jobs' ledger (same db 3).
    let handles = [
        (client.main(), 0u8),
        (client.jobs(), 1),
        (client.jobs_monitor(), 1),
        (client.archive(), 2),
    ];
    drop(client);
    let mut report = TaskReport::new(task);
    while !stop.load(Ordering::Relaxed) {
        let (handle, db) = &handles[rng.below(4) as usize];
        let (handle, db) = (handle.clone(), *db);
        let roll = rng.below(100);
        let n = rng.below(REGISTERS as u64) as usize;
        let started = Instant::now();
        let (what, limit, failure) = match roll {
            0..=29 => ledger_write(&mut report, &handle, db, n, roll, budget).await,
            30..=34 => exclusive(&mut report, &handle, db, n, roll, budget).await,
            35..=39 => {
                let (key, value) = report.next_version(db, n);
                let result = handle
                    .query::<()>(redis::cmd("SET").arg(&key).arg(&value))
                    .await;
                report.register(db, n).record(outcome(&result));
                ("SET", budget.call, result.err().map(|e| Failure::of(&e)))
            }
            40..=69 => checked_read(&mut report, &handle, db, n, roll, budget).await,
            70..=79 => {
                let op = report.next_op();
                let pushed = handle
                    .query::<i64>(redis::cmd("RPUSH").arg("queue").arg(&op))
                    .await;
                report.record_op(db, Path::QueuePush, outcome(&pushed));
                (
                    "RPUSH queue",
                    budget.call,
                    pushed.err().map(|e| Failure::of(&e)),
                )
            }
            80..=84 => {
                let op = report.next_op();
                let added = handle
                    .query::<String>(redis::cmd("XADD").arg("stream").arg("*").arg("op").arg(&op))
                    .await;
                report.record_op(db, Path::StreamAdd, outcome(&added));
                ("XADD", budget.call, added.err().map(|e| Failure::of(&e)))
            }
            _ => consume(&mut report, &handle, db, roll, budget).await,
        };
        report.note(what, handle.name(), started, limit, failure);
        tokio::time::sleep(Duration::from_micros(rng.below(2_000))).await;
    }
    report
}

/// A ledger write through the shared handle, one of six ways.
async fn ledger_write(
    report: &mut TaskReport,
    handle: &redis_db::Handle,
    db: u8,
    n: usize,
    roll: u64,
    budget: Budget,
) -> (&'static str, Duration, Option<Failure>) {
    let op = report.next_op();
    let (path, failure) = match roll % 6 {
        0 => {
            let result = handle
                .query::<i64>(redis::cmd("RPUSH").arg("ledger").arg(&op))
                .await;
            report.record_op(db, Path::Command, outcome(&result));
            (Path::Command, result.err().map(|e| Failure::of(&e)))
        }
        1 => {
            use redis::AsyncCommands;
            let result = handle.clone().rpush::<_, _, i64>("ledger", &op).await;
            report.record_op(db, Path::AsyncCommands, outcome_redis(&result));
            (
                Path::AsyncCommands,
                result.err().map(|e| Failure::of_redis("Redis", &e)),
            )
        }
        2 => {
            let mut pipe = redis::pipe();
            pipe.atomic().rpush("ledger", &op).rpush("ledger:tx", &op);
            let result = handle.query_pipeline::<(i64, i64)>(&pipe).await;
            report.record_op(db, Path::Multi, outcome(&result));
            (Path::Multi, result.err().map(|e| Failure::of(&e)))
        }
        3 => {
            let result = redis::pipe()
                .atomic()
                .rpush("ledger", &op)
                .rpush("ledger:tx", &op)
                .query_async::<(i64, i64)>(&mut handle.clone())
                .await;
            report.record_op(db, Path::PipeQueryAsync, outcome_redis(&result));
            (
                Path::PipeQueryAsync,
                result.err().map(|e| Failure::of_redis("Redis", &e)),
            )
        }
        4 => {
            // Plain pipeline: each reply stands alone, so the write's outcome is its own reply.
            let key = report.register(db, n).key.clone();
            let mut pipe = redis::pipe();
            pipe.rpush("ledger", &op).get(&key).ignore_errors();
            let result = handle.query_pipeline::<Vec<Value>>(&pipe).await;
            let failure = match result {
                Ok(replies) if replies.len() == 2 => {
                    let written = match &replies[0] {
                        Value::Int(_) => Outcome::Acked,
                        Value::ServerError(_) => Outcome::NotApplied,
                        _ => Outcome::Unknown,
                    };
                    report.record_op(db, Path::Pipeline, written);
                    if !matches!(replies[1], Value::ServerError(_)) {
                        report.check_read(db, n, &replies[1], "pipeline");
                    }
                    None
                }
                Ok(replies) => {
                    report.record_op(db, Path::Pipeline, Outcome::Unknown);
                    report.wrong_replies += 1;
                    report
                        .wrong_samples
                        .push(format!("pipeline of 2 answered {replies:?}"));
                    None
                }
                Err(e) => {
                    report.record_op(db, Path::Pipeline, outcome_of(&e));
                    Some(Failure::of(&e))
                }
            };
            (Path::Pipeline, failure)
        }
        _ => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(RPUSH_SCRIPT).arg(1).arg("ledger").arg(&op);
            let result = handle.query::<i64>(&eval).await;
            report.record_op(db, Path::Eval, outcome(&result));
            (Path::Eval, result.err().map(|e| Failure::of(&e)))
        }
    };
    let what = match path {
        Path::Command => "RPUSH",
        Path::AsyncCommands => "rpush (AsyncCommands)",
        Path::Multi => "MULTI (query_pipeline)",
        Path::PipeQueryAsync => "MULTI (pipe.query_async)",
        Path::Pipeline => "pipeline",
        _ => "EVAL",
    };
    (what, budget.call, failure)
}

/// A write and a checked read on an exclusive `connection()`, or a MULTI/EXEC sent command by
/// command on it.
async fn exclusive(
    report: &mut TaskReport,
    handle: &redis_db::Handle,
    db: u8,
    n: usize,
    roll: u64,
    budget: Budget,
) -> (&'static str, Duration, Option<Failure>) {
    let transaction = roll.is_multiple_of(2);
    let path = if transaction {
        Path::ExclusiveMulti
    } else {
        Path::Exclusive
    };
    let what = if transaction {
        "exclusive MULTI/EXEC"
    } else {
        "exclusive"
    };
    let limit = budget.call + budget.command * 4;
    let op = report.next_op();
    let mut connection = match handle.connection().await {
        Ok(connection) => connection,
        Err(e) => {
            // Nothing was sent.
            report.record_op(db, path, Outcome::NotApplied);
            return (what, limit, Some(Failure::of(&e)));
        }
    };
    let road = "Connection";
    if !transaction {
        let pushed: redis::RedisResult<i64> = redis::cmd("RPUSH")
            .arg("ledger")
            .arg(&op)
            .query_async(&mut connection)
            .await;
        report.record_op(db, path, outcome_redis(&pushed));
        if let Err(e) = pushed {
            return (what, limit, Some(Failure::of_redis(road, &e)));
        }
        let key = report.register(db, n).key.clone();
        let read: redis::RedisResult<Value> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await;
        return match read {
            Ok(value) => {
                report.check_read(db, n, &value, "exclusive GET");
                (what, limit, None)
            }
            Err(e) => (what, limit, Some(Failure::of_redis(road, &e))),
        };
    }
    // Until EXEC is sent nothing runs: a failure before it means not applied.
    let queued: redis::RedisResult<()> = async {
        redis::cmd("MULTI")
            .query_async::<()>(&mut connection)
            .await?;
        for list in ["ledger", "ledger:tx"] {
            let reply: redis::RedisResult<Value> = redis::cmd("RPUSH")
                .arg(list)
                .arg(&op)
                .query_async(&mut connection)
                .await;
            // A refusal while queueing (OOM) makes EXEC abort; a broken connection stops here.
            if let Err(e) = reply {
                if e.is_io_error() || e.code().is_none() {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = queued {
        report.record_op(db, path, Outcome::NotApplied);
        return (what, limit, Some(Failure::of_redis(road, &e)));
    }
    let executed: redis::RedisResult<Value> = redis::cmd("EXEC").query_async(&mut connection).await;
    let result = match executed {
        Ok(Value::Array(replies))
            if replies.len() == 2 && replies.iter().all(|r| matches!(r, Value::Int(_))) =>
        {
            Ok(())
        }
        Ok(other) => Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "EXEC answered",
            format!("{other:?}"),
        ))),
        Err(e) => Err(e),
    };
    report.record_op(db, path, outcome_redis(&result));
    (
        what,
        limit,
        result.err().map(|e| Failure::of_redis(road, &e)),
    )
}

/// A read of this task's registers, whose replies must name the key and a possible version.
async fn checked_read(
    report: &mut TaskReport,
    handle: &redis_db::Handle,
    db: u8,
    n: usize,
    roll: u64,
    budget: Budget,
) -> (&'static str, Duration, Option<Failure>) {
    let keys: Vec<String> = (0..REGISTERS)
        .map(|n| report.register(db, n).key.clone())
        .collect();
    match roll % 3 {
        0 => {
            let result = handle.query::<Value>(redis::cmd("GET").arg(&keys[n])).await;
            match result {
                Ok(value) => {
                    report.check_read(db, n, &value, "GET");
                    ("GET", budget.call, None)
                }
                Err(e) => ("GET", budget.call, Some(Failure::of(&e))),
            }
        }
        1 => {
            let result = handle.query::<Value>(redis::cmd("MGET").arg(&keys)).await;
            match result {
                Ok(Value::Array(values)) if values.len() == REGISTERS => {
                    for (n, value) in values.iter().enumerate() {
                        report.check_read(db, n, value, "MGET");
                    }
                    ("MGET", budget.call, None)
                }
                Ok(other) => {
                    report.reads_checked += 1;
                    report.wrong_replies += 1;
                    report
                        .wrong_samples
                        .push(format!("MGET {keys:?} answered {other:?}"));
                    ("MGET", budget.call, None)
                }
                Err(e) => ("MGET", budget.call, Some(Failure::of(&e))),
            }
        }
        _ => {
            // A read-only pipeline may be re-sent by the SDK: its replies must still match.
            let result = redis::pipe()
                .get(&keys[0])
                .get(&keys[1])
                .query_async::<Vec<Value>>(&mut handle.clone())
                .await;
            match result {
                Ok(values) if values.len() == REGISTERS => {
                    for (n, value) in values.iter().enumerate() {
                        report.check_read(db, n, value, "read pipeline");
                    }
                    ("read pipeline", budget.call, None)
                }
                Ok(other) => {
                    report.reads_checked += 1;
                    report.wrong_replies += 1;
                    report
                        .wrong_samples
                        .push(format!("read pipeline answered {other:?}"));
                    ("read pipeline", budget.call, None)
                }
                Err(e) => (
                    "read pipeline",
                    budget.call,
                    Some(Failure::of_redis("Redis", &e)),
                ),
            }
        }
    }
}

/// `BLPOP`, `BLMOVE` or `XREADGROUP` + `XACK` on the db's queue or stream.
async fn consume(
    report: &mut TaskReport,
    handle: &redis_db::Handle,
    db: u8,
    roll: u64,
    budget: Budget,
) -> (&'static str, Duration, Option<Failure>) {
    // Blocking commands get their block time (50 ms) on top of the timeout.
    let limit = budget.call + Duration::from_millis(50);
    match roll % 3 {
        0 => {
            let result = handle
                .query::<Option<(String, String)>>(redis::cmd("BLPOP").arg("queue").arg(0.05))
                .await;
            match &result {
                Ok(Some((_, item))) => report.pops.push((db, item.clone())),
                Ok(None) => report.empty_pops += 1,
                Err(e) if outcome_of(e) == Outcome::Unknown => {
                    report.in_doubt_pops[db as usize] += 1
                }
                Err(_) => {}
            }
            ("BLPOP", limit, result.err().map(|e| Failure::of(&e)))
        }
        1 => {
            let seq = report.moves.len();
            let result = handle
                .query::<Option<String>>(
                    redis::cmd("BLMOVE")
                        .arg("queue")
                        .arg(move_destination(report.task, seq))
                        .arg("LEFT")
                        .arg("RIGHT")
                        .arg(0.05),
                )
                .await;
            report.moves.push(Move {
                db,
                seq,
                outcome: outcome(&result),
                item: result.as_ref().ok().cloned().flatten(),
            });
            ("BLMOVE", limit, result.err().map(|e| Failure::of(&e)))
        }
        _ => {
            let seq = report.group_reads.len();
            let result = handle
                .query::<Option<StreamReadReply>>(
                    redis::cmd("XREADGROUP")
                        .arg("GROUP")
                        .arg(GROUP)
                        .arg(consumer_name(report.task, seq))
                        .arg("COUNT")
                        .arg(1)
                        .arg("BLOCK")
                        .arg(50)
                        .arg("STREAMS")
                        .arg("stream")
                        .arg(">"),
                )
                .await;
            let entry = result.as_ref().ok().cloned().flatten().and_then(|reply| {
                let entry = reply.keys.into_iter().next()?.ids.into_iter().next()?;
                let op = match entry.map.get("op") {
                    Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                    other => format!("{other:?}"),
                };
                Some((entry.id, op))
            });
            let mut read = GroupRead {
                db,
                seq,
                outcome: outcome(&result),
                entry,
                xack: None,
            };
            let mut failure = result.err().map(|e| Failure::of(&e));
            if let Some((id, _)) = &read.entry {
                let acked = handle
                    .query::<i64>(redis::cmd("XACK").arg("stream").arg(GROUP).arg(id))
                    .await;
                match acked {
                    Ok(n) => read.xack = Some(n),
                    Err(e) => failure = Some(Failure::of(&e)),
                }
            }
            report.group_reads.push(read);
            ("XREADGROUP+XACK", limit + budget.call, failure)
        }
    }
}

/// One plain thread on the blocking client: ledger writes (a command and a transaction) and
/// its own registers, written and read back.
pub fn blocking_worker(
    task: usize,
    client: crate::DbBlockingClient,
    seed: u64,
    stop: Arc<AtomicBool>,
    budget: Budget,
) -> TaskReport {
    let mut rng = Rng::new(seed ^ (task as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25));
    let handles = [
        (client.main(), 0u8),
        (client.jobs(), 1),
        (client.jobs_monitor(), 1),
        (client.archive(), 2),
    ];
    drop(client);
    let mut report = TaskReport::new(task);
    let road = "Blocking";
    while !stop.load(Ordering::Relaxed) {
        let (handle, db) = &handles[rng.below(4) as usize];
        let (mut handle, db) = (handle.clone(), *db);
        let n = rng.below(REGISTERS as u64) as usize;
        let started = Instant::now();
        let (what, failure) = match rng.below(4) {
            0 => {
                let op = report.next_op();
                let result: redis::RedisResult<i64> = redis::cmd("RPUSH")
                    .arg("ledger")
                    .arg(&op)
                    .query(&mut handle);
                report.record_op(db, Path::Blocking, outcome_redis(&result));
                ("blocking RPUSH", result.err())
            }
            1 => {
                let op = report.next_op();
                let result: redis::RedisResult<(i64, i64)> = redis::pipe()
                    .atomic()
                    .rpush("ledger", &op)
                    .rpush("ledger:tx", &op)
                    .query(&mut handle);
                report.record_op(db, Path::BlockingMulti, outcome_redis(&result));
                ("blocking MULTI", result.err())
            }
            2 => {
                let (key, value) = report.next_version(db, n);
                let result: redis::RedisResult<()> =
                    redis::cmd("SET").arg(&key).arg(&value).query(&mut handle);
                report.register(db, n).record(outcome_redis(&result));
                ("blocking SET", result.err())
            }
            _ => {
                let key = report.register(db, n).key.clone();
                let result: redis::RedisResult<Value> =
                    redis::cmd("GET").arg(&key).query(&mut handle);
                match result {
                    Ok(value) => {
                        report.check_read(db, n, &value, "blocking GET");
                        ("blocking GET", None)
                    }
                    Err(e) => ("blocking GET", Some(e)),
                }
            }
        };
        let failure = failure.map(|e| Failure::of_redis(road, &e));
        report.note(what, handle.name(), started, budget.call, failure);
        std::thread::sleep(Duration::from_micros(rng.below(2_000)));
    }
    report
}
