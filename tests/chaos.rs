//! Fault injection: many tasks and two blocking-client threads read and write through every
//! database and every write path while a controller kills, stops, floods, starves and partitions
//! the server in a seeded random order. Every fault proves it took effect; a ledger of writes,
//! reads, pops, moves and group reads then proves that no write was applied twice, no
//! acknowledged write was lost, no transaction was applied in part, no reply reached the wrong
//! caller and no item was popped twice or lost.
//!
//! Short form (about a minute, part of `cargo test`): `cargo test --test chaos -- --nocapture`.
//! Soak: `REDIS_DB_SOAK_SECS=600 cargo test --release --test chaos -- --nocapture`.
//! Replay an order of faults: `REDIS_DB_CHAOS_SEED=<seed>` (printed by every run).
//! Results and how to read them: docs/RELIABILITY.md.

mod support;

#[path = "chaos/audit.rs"]
mod audit;
#[path = "chaos/faults.rs"]
mod faults;
#[path = "chaos/rng.rs"]
mod rng;
#[path = "chaos/workload.rs"]
mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use faults::{control, foreign_clients, Chaos, Fault, FAULTS};
use redis_db::redis;
use rng::Rng;
use support::info;
use support::proxy::Proxy;
use support::RedisServer;
use workload::{Budget, TaskReport};

#[redis_db::databases(config = "tests/fixtures/chaos.yaml")]
pub enum Db {}

const CONFIG_YAML: &str = include_str!("fixtures/chaos.yaml");

/// Concurrent async worker tasks.
const TASKS: usize = 32;
/// Plain threads on the blocking client (task ids from `BLOCKING_TASK_BASE`).
const BLOCKING_THREADS: usize = 2;
const BLOCKING_TASK_BASE: usize = 1000;
/// Fault phase of the short form; the whole test takes about a minute.
const SHORT_SECS: u64 = 40;
/// Keys in db 9 that make a restart load slowly enough to answer `LOADING`.
const LOADING_KEYS: u32 = 30_000;
/// Slack on top of the computed per-call budget: scheduling on a loaded 2-core machine.
const BUDGET_SLACK: Duration = Duration::from_secs(1);
/// After a fault ends every database must answer again within this (measured: see RELIABILITY.md).
const RECOVERY_BOUND: Duration = Duration::from_secs(2);
/// Soak: RSS may grow by at most this after warm-up.
const RSS_GROWTH_BOUND_KB: u64 = 32 * 1024;

static PANICS: AtomicU64 = AtomicU64::new(0);

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

/// Waits until no retry was counted for `quiet` (at most `give_up`): every call that failed
/// has had its retries or given up.
fn retries_settle(client: &DbClient, quiet: Duration, give_up: Duration) {
    let started = Instant::now();
    let mut last = client.stats().totals.retries;
    let mut still_since = Instant::now();
    while still_since.elapsed() < quiet && started.elapsed() < give_up {
        std::thread::sleep(Duration::from_millis(20));
        let now = client.stats().totals.retries;
        if now != last {
            last = now;
            still_since = Instant::now();
        }
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

fn joined(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

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
        command: config.timeout,
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
        audit::seed(&mut raw);
        audit::seed_registers(
            &mut raw,
            (0..TASKS).chain(BLOCKING_TASK_BASE..BLOCKING_TASK_BASE + BLOCKING_THREADS),
        );
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
            info::read(&mut raw, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
                && info::read(&mut raw, "persistence", "aof_rewrite_scheduled").as_deref()
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
    let blocking_client: DbBlockingClient = Db::builder()
        .url(proxy.url())
        .ignore_environment()
        .connect_blocking()
        .expect("connect the blocking client through the proxy");

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..TASKS)
        .map(|id| {
            runtime.spawn(workload::worker(
                id,
                client.clone(),
                seed,
                stop.clone(),
                budget,
            ))
        })
        .collect();
    let (blocking_reports, blocking_received) = mpsc::channel();
    for thread in 0..BLOCKING_THREADS {
        let (client, stop, reports) = (
            blocking_client.clone(),
            stop.clone(),
            blocking_reports.clone(),
        );
        std::thread::spawn(move || {
            let task = BLOCKING_TASK_BASE + thread;
            let _ = reports.send(workload::blocking_worker(task, client, seed, stop, budget));
        });
    }
    drop(blocking_reports);

    // The controller: every kind once in a seeded order, then seeded random picks.
    let mut chaos = Chaos {
        server: &mut server,
        proxy: &proxy,
        rng: Rng::new(seed),
        loading_windows: Vec::new(),
        max_wait: config.readiness.max_wait,
    };
    let mut order = FAULTS.to_vec();
    chaos.rng.shuffle(&mut order);
    let started = Instant::now();
    let mut injected: BTreeMap<Fault, u64> = BTreeMap::new();
    let mut recoveries: Vec<Duration> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut rss: Vec<(Duration, u64)> = vec![(Duration::ZERO, rss_kb())];
    let mut next_rss = Duration::from_secs(5);
    let mut index = 0;
    // Every kind at least once, whatever the seed drew for the durations.
    while started.elapsed() < fault_phase || index < order.len() {
        let fault = if index < order.len() {
            order[index]
        } else {
            FAULTS[chaos.rng.below(FAULTS.len() as u64) as usize]
        };
        index += 1;
        if fault == Fault::Oom {
            // Calls of the previous fault may still be in their backoff, and their retries
            // would be counted against this one: let them finish first.
            let quiet = (config.timeout + config.retry.max_delay) * 2;
            retries_settle(&client, quiet, Duration::from_secs(30));
        }
        let retries_before = client.stats().totals.retries;
        let at = started.elapsed();
        let outcome = chaos.inject(fault);
        let retries_during = client.stats().totals.retries - retries_before;
        let recovered = runtime.block_on(recovery(&client, Duration::from_secs(30)));
        *injected.entry(fault).or_default() += 1;
        println!(
            "chaos: {:>7.1}s {fault:?}: {}; recovered in {recovered:?}",
            at.as_secs_f64(),
            outcome.detail
        );
        if let Some(why) = outcome.no_effect {
            problems.push(format!(
                "{fault:?} at {:.1}s did not take effect: {why} ({})",
                at.as_secs_f64(),
                outcome.detail
            ));
        }
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
                "no recovery within 30 s after {fault:?} ({})",
                outcome.detail
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

    // Every task and thread must finish: no deadlock.
    stop.store(true, Ordering::Relaxed);
    let join_limit = budget.call * 3 + budget.command * 4 + Duration::from_secs(5);
    let joined_tasks = runtime.block_on(async {
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
    let mut reports: Vec<TaskReport> = Vec::new();
    for (id, result) in joined_tasks.into_iter().enumerate() {
        match result {
            Ok(report) => reports.push(report),
            Err(e) => problems.push(format!("task {id}: {e}")),
        }
    }
    for _ in 0..BLOCKING_THREADS {
        match blocking_received.recv_timeout(join_limit) {
            Ok(report) => reports.push(report),
            Err(e) => problems.push(format!("a blocking-client thread did not report: {e}")),
        }
    }

    // No pool leak.
    let stats = client.stats();
    for database in stats
        .databases
        .iter()
        .chain(blocking_client.stats().databases.iter())
    {
        if database.pool.in_use != 0 || database.pool.waiting != 0 {
            problems.push(format!(
                "`{}`: pool in_use {} waiting {} at the end",
                database.name, database.pool.in_use, database.pool.waiting
            ));
        }
    }

    // The ledger: straight from the server, every fault over.
    let findings = audit::audit(&mut control(server.port()), &reports);
    problems.extend(findings.problems.iter().cloned());
    let total = findings.total();
    if total.unknown_applied == 0 {
        problems.push(format!(
            "no write in doubt was applied ({} in doubt): the faults never hit the ambiguous window",
            total.unknown
        ));
    }

    // Calls, failures, latency.
    let calls: u64 = reports.iter().map(|r| r.calls).sum();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut samples: BTreeMap<String, String> = BTreeMap::new();
    for report in &reports {
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
        .map(|r| r.max_latency)
        .max()
        .unwrap_or_default();
    let violations: Vec<&String> = reports.iter().flat_map(|r| &r.violations).collect();
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
    let still_loading = failures.get("StillLoading").copied().unwrap_or(0);
    let failed_calls: u64 = failures.values().sum();
    recoveries.sort();
    let (p50, p99, recovery_max) = (
        percentile(&recoveries, 0.5),
        percentile(&recoveries, 0.99),
        recoveries.last().copied().unwrap_or_default(),
    );

    // After the clients are dropped: no task of ours left, no connection of ours on the server.
    let totals = stats.totals.clone();
    drop(stats);
    drop(client);
    drop(blocking_client);
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
    let faults_total: u64 = injected.values().sum();
    println!("\n===== chaos summary =====");
    println!("seed: {seed}");
    println!(
        "mode: {}",
        match soak_secs {
            Some(s) => format!("soak, {s} s of faults"),
            None => format!("short, {SHORT_SECS} s of faults"),
        }
    );
    println!("run: {:.1} s, {TASKS} tasks + {BLOCKING_THREADS} blocking-client threads, 4 databases (main, jobs, jobs_monitor alias, archive) through the proxy", started.elapsed().as_secs_f64());
    println!(
        "faults injected: {faults_total} = {}",
        joined(injected.iter().map(|(k, n)| format!("{k:?} {n}")))
    );
    println!("LOADING windows: {loading_windows:?}; StillLoading failures: {still_loading}");
    println!(
        "calls: {calls} ({failed_calls} failed, {:.2}%), SDK totals: {} commands, {} retries",
        100.0 * failed_calls as f64 / calls.max(1) as f64,
        totals.commands,
        totals.retries
    );
    println!(
        "failures by kind: {}",
        joined(failures.iter().map(|(k, n)| format!("{k} {n}")))
    );
    for (kind, message) in &samples {
        println!("  e.g. {kind}: {message}");
    }
    println!("max call latency: {max_latency:?} (budget {call_budget:?} a call)");
    println!("recovery after a fault ends: p50 {p50:?}, p99 {p99:?}, max {recovery_max:?} (bound {RECOVERY_BOUND:?}, {} faults)", recoveries.len());
    println!("ledger writes by path (issued / acknowledged / refused / in doubt (applied)):");
    for (path, audit) in &findings.per_path {
        println!(
            "  {path:?}: {} / {} / {} / {} ({})",
            audit.issued(),
            audit.acked,
            audit.refused,
            audit.unknown,
            audit.unknown_applied
        );
    }
    println!("ledger writes: {} issued, {} acknowledged, {} refused (not applied), {} in doubt ({} of them applied)",
        total.issued(), total.acked, total.refused, total.unknown, total.unknown_applied);
    println!(
        "duplicates: {}, lost: {}, refused-but-applied: {}, torn transactions: {}, strays: {}",
        total.duplicates.len(),
        total.lost.len(),
        total.refused_but_applied.len(),
        findings.torn_transactions.len(),
        findings.strays.len()
    );
    println!(
        "reads checked: {}, wrong replies: {}; registers wrong at the end: {}",
        findings.reads_checked,
        findings.wrong_replies,
        findings.bad_registers.len()
    );
    println!(
        "BLPOP: {} items popped, {} empty, {} in doubt; acknowledged queue items held nowhere: {} (at most the in-doubt pops)",
        findings.pops, findings.empty_pops, findings.in_doubt_pops, findings.queue_missing
    );
    println!(
        "BLMOVE: {} items moved, {} in-doubt moves that did move; XREADGROUP: {} entries delivered, {} in-doubt reads left pending; double pops: {}",
        findings.moves_with_item,
        findings.moves_in_doubt,
        findings.group_deliveries,
        findings.pending_in_doubt,
        findings.double_pops()
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
        faults_total >= FAULTS.len() as u64,
        "every kind of fault must be injected at least once"
    );
}
