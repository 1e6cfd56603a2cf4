//! The ledger audit, straight from the server once every fault is over: every write id held at
//! most once and every acknowledged one held, both halves of every transaction or neither, every
//! queue item and stream entry in exactly one place, every move and group read holding exactly
//! what its caller was told, every register holding a version its writer could have left.

use std::collections::{BTreeMap, HashMap};

use redis_db::redis::{self, Value};

use crate::support::ledger::{tally_lists, Audit, Outcome, Tally};
use crate::workload::{
    consumer_name, move_destination, unpack, Path, TaskReport, GROUP, LEDGER_DBS, PATHS,
};

/// Items in each db's queue and entries in its stream before the run, so that the pops, moves
/// and group reads find work from the first second.
pub const SEEDED: usize = 300;

pub fn seed_id(n: usize) -> String {
    format!("seed:{n}")
}

/// Fills the queue and stream of every ledger db and creates the consumer group.
pub fn seed(connection: &mut redis::Connection) {
    for db in LEDGER_DBS {
        let _: () = redis::cmd("SELECT").arg(db).query(connection).unwrap();
        let mut pipe = redis::pipe();
        pipe.cmd("XGROUP")
            .arg("CREATE")
            .arg("stream")
            .arg(GROUP)
            .arg("$")
            .arg("MKSTREAM")
            .ignore();
        for n in 0..SEEDED {
            pipe.rpush("queue", seed_id(n)).ignore();
            pipe.cmd("XADD")
                .arg("stream")
                .arg("*")
                .arg("op")
                .arg(seed_id(n))
                .ignore();
        }
        let _: () = pipe.query(connection).unwrap();
    }
}

/// Sets version 0 of every register of `tasks`.
pub fn seed_registers(connection: &mut redis::Connection, tasks: impl Iterator<Item = usize>) {
    let tasks: Vec<usize> = tasks.collect();
    for db in LEDGER_DBS {
        let _: () = redis::cmd("SELECT").arg(db).query(connection).unwrap();
        let mut pipe = redis::pipe();
        for &task in &tasks {
            for n in 0..crate::workload::REGISTERS {
                let key = crate::workload::register_key(db, task, n);
                let value = crate::workload::register_value(&key, 0);
                pipe.set(key, value).ignore();
            }
        }
        let _: () = pipe.query(connection).unwrap();
    }
}

/// What the audit found.
#[derive(Default)]
pub struct Findings {
    pub per_path: BTreeMap<Path, Audit>,
    pub torn_transactions: Vec<String>,
    pub strays: Vec<String>,
    pub reads_checked: u64,
    pub wrong_replies: u64,
    pub wrong_samples: Vec<String>,
    pub pops: u64,
    pub empty_pops: u64,
    pub in_doubt_pops: u64,
    /// Acknowledged queue items held nowhere: at most one per in-doubt `BLPOP`.
    pub queue_missing: u64,
    pub moves_with_item: u64,
    pub moves_in_doubt: u64,
    pub bad_moves: Vec<String>,
    pub group_deliveries: u64,
    pub pending_in_doubt: u64,
    pub bad_group_reads: Vec<String>,
    pub bad_registers: Vec<String>,
    pub problems: Vec<String>,
}

impl Findings {
    pub fn total(&self) -> Audit {
        let mut total = Audit::default();
        for audit in self.per_path.values() {
            total.acked += audit.acked;
            total.refused += audit.refused;
            total.unknown += audit.unknown;
            total.unknown_applied += audit.unknown_applied;
            total.duplicates.extend(audit.duplicates.iter().cloned());
            total.lost.extend(audit.lost.iter().cloned());
            total
                .refused_but_applied
                .extend(audit.refused_but_applied.iter().cloned());
        }
        total
    }

    /// Moves and group reads that held more than their caller was told: the double pops.
    pub fn double_pops(&self) -> usize {
        self.bad_moves.len() + self.bad_group_reads.len()
    }
}

fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

fn sample(list: &[String]) -> &[String] {
    &list[..list.len().min(10)]
}

pub fn audit(connection: &mut redis::Connection, reports: &[TaskReport]) -> Findings {
    let mut found = Findings::default();
    for path in PATHS {
        found.per_path.insert(path, Audit::default());
    }
    let mut queue_missing = [0u64; 3];
    let mut in_doubt_pops = [0u64; 3];
    for report in reports {
        found.reads_checked += report.reads_checked;
        found.wrong_replies += report.wrong_replies;
        found
            .wrong_samples
            .extend(report.wrong_samples.iter().cloned());
        found.pops += report.pops.len() as u64;
        found.empty_pops += report.empty_pops;
        for (db, n) in report.in_doubt_pops.iter().enumerate() {
            in_doubt_pops[db] += n;
        }
    }
    found.in_doubt_pops = in_doubt_pops.iter().sum();

    for (index, &db) in LEDGER_DBS.iter().enumerate() {
        let index = index as u8;
        let _: () = redis::cmd("SELECT").arg(db).query(connection).unwrap();
        let mut ledger = tally_lists(connection, ["ledger".to_owned()]);
        let mut ledger_tx = tally_lists(connection, ["ledger:tx".to_owned()]);
        let mut queue = tally_lists(connection, ["queue".to_owned()]);
        for report in reports {
            queue.extend(
                report
                    .pops
                    .iter()
                    .filter(|(d, _)| *d == index)
                    .map(|(_, item)| item.clone()),
            );
        }
        audit_moves(connection, reports, index, &mut queue, &mut found);
        let mut stream = audit_stream(connection, reports, index, &mut found);

        let mut record_queued = |id: &str, outcome: Outcome, found: &mut Findings| {
            let count = queue.take(id);
            if outcome == Outcome::Acked && count == 0 {
                // Not lost by the SDK if an in-doubt BLPOP took it: counted against those.
                queue_missing[index as usize] += 1;
                found.per_path.get_mut(&Path::QueuePush).unwrap().acked += 1;
                return;
            }
            found
                .per_path
                .get_mut(&Path::QueuePush)
                .unwrap()
                .record(id, outcome, count);
        };
        for n in 0..SEEDED {
            record_queued(&seed_id(n), Outcome::Acked, &mut found);
            let count = stream.take(&seed_id(n));
            found.per_path.get_mut(&Path::StreamAdd).unwrap().record(
                &seed_id(n),
                Outcome::Acked,
                count,
            );
        }
        for report in reports {
            for (seq, &packed) in report.ops.iter().enumerate() {
                let (op_db, path, outcome) = unpack(packed);
                if op_db != index {
                    continue;
                }
                let id = format!("{}:{seq}", report.task);
                match path {
                    Path::QueuePush => record_queued(&id, outcome, &mut found),
                    Path::StreamAdd => {
                        let count = stream.take(&id);
                        found
                            .per_path
                            .get_mut(&path)
                            .unwrap()
                            .record(&id, outcome, count);
                    }
                    _ => {
                        let count = ledger.take(&id);
                        if path.transactional() {
                            let other_half = ledger_tx.take(&id);
                            if other_half != count {
                                found.torn_transactions.push(format!(
                                    "{id} ({path:?}): {count} in ledger, {other_half} in ledger:tx"
                                ));
                            }
                        }
                        found
                            .per_path
                            .get_mut(&path)
                            .unwrap()
                            .record(&id, outcome, count);
                    }
                }
            }
        }
        for (what, tally) in [
            ("ledger", &ledger),
            ("ledger:tx", &ledger_tx),
            ("queue", &queue),
            ("stream", &stream),
        ] {
            for id in tally.remaining().into_iter().take(10) {
                found
                    .strays
                    .push(format!("{id} in {what} of db {db}, never issued there"));
            }
        }
        audit_registers(connection, reports, index, &mut found);
    }
    found.queue_missing = queue_missing.iter().sum();
    for (index, db) in LEDGER_DBS.iter().enumerate() {
        if queue_missing[index] > in_doubt_pops[index] {
            found.problems.push(format!(
                "db {db}: {} acknowledged queue item(s) held nowhere, more than the {} BLPOP(s) in doubt \
                 that may have taken them: an item popped twice or lost",
                queue_missing[index], in_doubt_pops[index]
            ));
        }
    }

    for (path, audit) in &found.per_path {
        found.problems.extend(audit.problems(&format!("{path:?}")));
        if audit.acked == 0 {
            found.problems.push(format!(
                "path {path:?} was never acknowledged ({} issued): not exercised",
                audit.issued()
            ));
        }
    }
    for (list, what) in [
        (&found.torn_transactions, "transaction(s) applied in part"),
        (&found.strays, "ledger entries never issued in their db"),
        (
            &found.bad_moves,
            "BLMOVE(s) holding other than their caller was told",
        ),
        (
            &found.bad_group_reads,
            "XREADGROUP(s) delivered other than their caller was told",
        ),
        (
            &found.bad_registers,
            "register(s) holding a version their writer could not leave",
        ),
    ] {
        if !list.is_empty() {
            found
                .problems
                .push(format!("{} {what}: {:?}", list.len(), sample(list)));
        }
    }
    if found.wrong_replies > 0 {
        found.problems.push(format!(
            "{} read(s) answered with a reply meant for another caller (another key, or a version \
             its writer never left there), e.g. {:?}",
            found.wrong_replies,
            sample(&found.wrong_samples)
        ));
    }
    for (figure, what) in [
        (found.pops, "BLPOP returned an item"),
        (found.moves_with_item, "BLMOVE moved an item"),
        (found.group_deliveries, "XREADGROUP delivered an entry"),
        (found.reads_checked, "read was checked"),
    ] {
        if figure == 0 {
            found.problems.push(format!("no {what}: not exercised"));
        }
    }
    found
}

/// Every `BLMOVE` had a destination of its own: it holds the item the caller was told of (or
/// nothing), or, when the call failed in doubt, at most one item.
fn audit_moves(
    connection: &mut redis::Connection,
    reports: &[TaskReport],
    index: u8,
    queue: &mut Tally,
    found: &mut Findings,
) {
    let moves: Vec<(usize, &crate::workload::Move)> = reports
        .iter()
        .flat_map(|r| r.moves.iter().map(move |m| (r.task, m)))
        .filter(|(_, m)| m.db == index)
        .collect();
    for chunk in moves.chunks(500) {
        let mut pipe = redis::pipe();
        for (task, record) in chunk {
            pipe.lrange(move_destination(*task, record.seq), 0, -1);
        }
        let held: Vec<Vec<String>> = pipe.query(connection).unwrap();
        for ((task, record), held) in chunk.iter().zip(held) {
            let destination = move_destination(*task, record.seq);
            let expected: Vec<String> = match (&record.outcome, &record.item) {
                (Outcome::Acked, Some(item)) => vec![item.clone()],
                _ => Vec::new(),
            };
            let fine = match record.outcome {
                Outcome::Unknown => held.len() <= 1,
                _ => held == expected,
            };
            if !fine {
                found.bad_moves.push(format!(
                    "{destination} ({:?}, told {:?}) holds {held:?}",
                    record.outcome, record.item
                ));
            }
            found.moves_with_item += u64::from(record.item.is_some());
            found.moves_in_doubt +=
                u64::from(record.outcome == Outcome::Unknown && !held.is_empty());
            queue.extend(held);
        }
    }
}

/// The stream's entries (tallied by write id, returned) against the group reads: each entry
/// delivered to at most one call, each delivery the entry the stream holds under that id, each
/// pending entry explained by its call (its `XACK` failed, or the call itself was in doubt),
/// and every entry up to the group's cursor delivered or pending.
fn audit_stream(
    connection: &mut redis::Connection,
    reports: &[TaskReport],
    index: u8,
    found: &mut Findings,
) -> Tally {
    let entries: Vec<(String, String)> = {
        let reply: Value = redis::cmd("XRANGE")
            .arg("stream")
            .arg("-")
            .arg("+")
            .query(connection)
            .unwrap();
        let Value::Array(entries) = reply else {
            panic!("XRANGE answered {reply:?}")
        };
        entries
            .into_iter()
            .filter_map(|entry| match entry {
                Value::Array(mut parts) if parts.len() == 2 => {
                    let fields = parts.pop()?;
                    let id = text(&parts[0]);
                    let Value::Array(fields) = fields else {
                        return None;
                    };
                    Some((id, fields.get(1).map(text).unwrap_or_default()))
                }
                _ => None,
            })
            .collect()
    };
    let by_id: HashMap<&str, &str> = entries
        .iter()
        .map(|(id, op)| (id.as_str(), op.as_str()))
        .collect();
    let mut stream = Tally::new();
    stream.extend(entries.iter().map(|(_, op)| op.clone()));

    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg("stream")
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(i64::MAX)
        .query(connection)
        .unwrap();
    let groups: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("stream")
        .query(connection)
        .unwrap();
    let cursor = groups
        .iter()
        .find(|g| g.get("name").map(text).as_deref() == Some(GROUP))
        .and_then(|g| g.get("last-delivered-id").map(text))
        .map(|id| stream_id(&id))
        .unwrap_or((0, 0));

    let mut reads: HashMap<String, &crate::workload::GroupRead> = HashMap::new();
    let mut delivered: HashMap<&str, Vec<String>> = HashMap::new();
    for report in reports {
        for read in report.group_reads.iter().filter(|r| r.db == index) {
            let consumer = consumer_name(report.task, read.seq);
            if let Some((id, op)) = &read.entry {
                found.group_deliveries += 1;
                delivered
                    .entry(id.as_str())
                    .or_default()
                    .push(consumer.clone());
                if by_id.get(id.as_str()) != Some(&op.as_str()) {
                    found.bad_group_reads.push(format!(
                        "{consumer} was delivered {id} = {op:?}, the stream holds {:?}",
                        by_id.get(id.as_str())
                    ));
                }
                if read.xack == Some(0) {
                    found.bad_group_reads.push(format!(
                        "{consumer}: XACK of its just-delivered {id} answered 0"
                    ));
                }
            }
            reads.insert(consumer, read);
        }
    }
    for (id, consumers) in &delivered {
        if consumers.len() > 1 {
            found
                .bad_group_reads
                .push(format!("{id} delivered to {consumers:?}"));
        }
    }
    let mut pending_per_consumer: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, consumer, _, _) in &pending {
        pending_per_consumer
            .entry(consumer.as_str())
            .or_default()
            .push(id.as_str());
    }
    for (consumer, ids) in &pending_per_consumer {
        let explained = match reads.get(*consumer) {
            Some(read) if read.outcome == Outcome::Unknown => {
                found.pending_in_doubt += 1;
                ids.len() == 1
            }
            Some(read) => match &read.entry {
                // Delivered and told, but its XACK did not get through.
                Some((told, _)) => ids == &[told.as_str()] && read.xack != Some(1),
                None => false,
            },
            None => false,
        };
        if !explained {
            found.bad_group_reads.push(format!(
                "{consumer} has {ids:?} pending, its call was told {:?}",
                reads.get(*consumer).map(|r| (r.outcome, r.entry.clone()))
            ));
        }
    }
    let pending_ids: std::collections::HashSet<&str> =
        pending.iter().map(|(id, ..)| id.as_str()).collect();
    let undelivered: Vec<&str> = entries
        .iter()
        .map(|(id, _)| id.as_str())
        .filter(|id| stream_id(id) <= cursor)
        .filter(|id| !delivered.contains_key(id) && !pending_ids.contains(id))
        .collect();
    if !undelivered.is_empty() {
        found.bad_group_reads.push(format!(
            "{} entries behind the group's cursor were delivered to nobody: {:?}",
            undelivered.len(),
            &undelivered[..undelivered.len().min(10)]
        ));
    }
    stream
}

/// Every register's final value must be one its writer could have left.
fn audit_registers(
    connection: &mut redis::Connection,
    reports: &[TaskReport],
    index: u8,
    found: &mut Findings,
) {
    for report in reports {
        let registers = &report.registers[index as usize * crate::workload::REGISTERS..]
            [..crate::workload::REGISTERS];
        for register in registers {
            let value: Value = redis::cmd("GET")
                .arg(&register.key)
                .query(connection)
                .unwrap();
            if let Err(wrong) = register.check(&value) {
                found.bad_registers.push(format!("at the end: {wrong}"));
            }
        }
    }
}
