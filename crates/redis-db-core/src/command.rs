//! What a command is, as far as the policies care: may it be re-sent, does it block, may it
//! run on a shared connection.
//!
//! The rule for "may be re-sent": the server flags the command `readonly` and none of its key
//! specs writes (`Class::Read`), or it is on the short reviewed list (`Class::Reviewed`), each
//! entry with the reason. `tests/command_table.rs` holds this table against the live `COMMAND`
//! and `COMMAND DOCS` of the test servers (redis-server 7.0.15, and valkey-server 9.1.2 when
//! found), so that a new server version shows a mismatch as a failing test.

use std::time::Duration;

use redis::{Arg, Cmd, Pipeline};

/// The facts about one command (or a whole pipeline) that decide how it may travel. Computed
/// on every call without allocating, from one table lookup (two for a command resolved by its
/// subcommand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CommandTraits {
    /// Safe to send twice: reads only.
    pub read_only: bool,
    /// Blocks server-side for up to this long; `Some(None)` blocks without limit.
    pub blocks_for: Option<Option<Duration>>,
    /// Changes the state of the connection (SELECT, WATCH, SUBSCRIBE, ...): a shared lane must
    /// not carry it.
    pub needs_exclusive: bool,
}

/// What the table says about a command. Anything not in it (unknown commands, `EVAL`,
/// `EVALSHA`, `FCALL`, modules) counts as a write, so a retry can never apply it twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// The server flags it `readonly` and none of its key specs writes.
    Read,
    /// Re-sent although the server does not flag it `readonly` (or a key spec of it writes):
    /// reviewed one by one, the reason next to the entry.
    Reviewed,
    /// `ACL LOG`: reviewed like the above, but `ACL LOG RESET` clears the log (a write).
    ReviewedUnlessReset,
    /// Changes connection state.
    Exclusive,
    /// Blocks; the block time is the last argument, in seconds.
    BlockLastSeconds,
    /// Blocks; the block time is the first argument, in seconds.
    BlockFirstSeconds,
    /// Blocks; the block time is the last argument, in milliseconds.
    BlockLastMillis,
    /// Reads a stream; blocks when it has `BLOCK <milliseconds>`.
    StreamRead,
    /// `XREADGROUP`: like `StreamRead`, but it moves the group's cursor and pending list, so
    /// it is not safe to send twice.
    StreamReadGroup,
    /// Its nature depends on the subcommand (`SUBCOMMANDS`); an unknown one is a write.
    Container,
}

/// A command name as three big-endian words (up to 24 bytes, zero-padded): comparing keys
/// orders them like the names, without `memcmp` or UTF-8 checks on the hot path.
type Key = [u64; 3];

const KEY_BYTES: usize = 24;

/// The key of an upper-case name (`const`, for the table).
const fn key(name: &[u8]) -> Key {
    let mut key = [0u64; 3];
    let mut i = 0;
    while i < name.len() && i < KEY_BYTES {
        key[i / 8] |= (name[i] as u64) << (56 - 8 * (i % 8));
        i += 1;
    }
    key
}

/// The key of a command's name as sent (any case); `None` when longer than any we know.
fn key_of(token: &[u8]) -> Option<Key> {
    if token.len() > KEY_BYTES {
        return None;
    }
    let mut key = [0u64; 3];
    for (i, byte) in token.iter().enumerate() {
        key[i / 8] |= u64::from(byte.to_ascii_uppercase()) << (56 - 8 * (i % 8));
    }
    Some(key)
}

/// Sorted by name, for a binary search.
const COMMANDS: &[(Key, Class)] = &[
    (key(b"ACL"), Class::Container),
    // Connection state (each one changes what this connection does for every caller on it):
    // ASKING the next command, whoever sends it; READONLY/READWRITE the replica-read mode of a
    // cluster connection; SYNC/PSYNC/REPLCONF turn it into a replication link.
    (key(b"ASKING"), Class::Exclusive),
    (key(b"AUTH"), Class::Exclusive),
    (key(b"BITCOUNT"), Class::Read),
    (key(b"BITFIELD_RO"), Class::Read),
    (key(b"BITPOS"), Class::Read),
    (key(b"BLMOVE"), Class::BlockLastSeconds),
    (key(b"BLMPOP"), Class::BlockFirstSeconds),
    (key(b"BLPOP"), Class::BlockLastSeconds),
    (key(b"BRPOP"), Class::BlockLastSeconds),
    (key(b"BRPOPLPUSH"), Class::BlockLastSeconds),
    (key(b"BZMPOP"), Class::BlockFirstSeconds),
    (key(b"BZPOPMAX"), Class::BlockLastSeconds),
    (key(b"BZPOPMIN"), Class::BlockLastSeconds),
    (key(b"CLIENT"), Class::Container),
    (key(b"CLUSTER"), Class::Container),
    (key(b"CLUSTERSCAN"), Class::Read),
    // Reviewed (`Class::Reviewed`): COMMAND (every subcommand), ECHO, INFO, LASTSAVE, PING,
    // ROLE and TIME flag neither `readonly` nor `write` on the server (they touch no key), and
    // change nothing: they only report.
    (key(b"COMMAND"), Class::Reviewed),
    (key(b"COMMANDLOG"), Class::Container),
    (key(b"CONFIG"), Class::Container),
    (key(b"DBSIZE"), Class::Read),
    (key(b"DISCARD"), Class::Exclusive),
    (key(b"DUMP"), Class::Read),
    (key(b"ECHO"), Class::Reviewed),
    (key(b"EVALSHA_RO"), Class::Read),
    (key(b"EVAL_RO"), Class::Read),
    (key(b"EXEC"), Class::Exclusive),
    (key(b"EXISTS"), Class::Read),
    (key(b"EXPIRETIME"), Class::Read),
    (key(b"FCALL_RO"), Class::Read),
    (key(b"FUNCTION"), Class::Container),
    (key(b"GEODIST"), Class::Read),
    (key(b"GEOHASH"), Class::Read),
    (key(b"GEOPOS"), Class::Read),
    (key(b"GEORADIUSBYMEMBER_RO"), Class::Read),
    (key(b"GEORADIUS_RO"), Class::Read),
    (key(b"GEOSEARCH"), Class::Read),
    (key(b"GET"), Class::Read),
    (key(b"GETBIT"), Class::Read),
    (key(b"GETRANGE"), Class::Read),
    (key(b"HELLO"), Class::Exclusive),
    (key(b"HEXISTS"), Class::Read),
    (key(b"HEXPIRETIME"), Class::Read),
    (key(b"HGET"), Class::Read),
    (key(b"HGETALL"), Class::Read),
    (key(b"HKEYS"), Class::Read),
    (key(b"HLEN"), Class::Read),
    (key(b"HMGET"), Class::Read),
    (key(b"HPEXPIRETIME"), Class::Read),
    (key(b"HPTTL"), Class::Read),
    (key(b"HRANDFIELD"), Class::Read),
    (key(b"HSCAN"), Class::Read),
    (key(b"HSTRLEN"), Class::Read),
    (key(b"HTTL"), Class::Read),
    (key(b"HVALS"), Class::Read),
    (key(b"INFO"), Class::Reviewed),
    (key(b"KEYS"), Class::Read),
    (key(b"LASTSAVE"), Class::Reviewed),
    (key(b"LATENCY"), Class::Container),
    (key(b"LCS"), Class::Read),
    (key(b"LINDEX"), Class::Read),
    (key(b"LLEN"), Class::Read),
    (key(b"LOLWUT"), Class::Read),
    (key(b"LPOS"), Class::Read),
    (key(b"LRANGE"), Class::Read),
    (key(b"MEMORY"), Class::Container),
    (key(b"MGET"), Class::Read),
    (key(b"MODULE"), Class::Container),
    (key(b"MONITOR"), Class::Exclusive),
    (key(b"MULTI"), Class::Exclusive),
    (key(b"OBJECT"), Class::Container),
    (key(b"PEXPIRETIME"), Class::Read),
    // Reviewed: both servers mark PFCOUNT's key spec as writing (RW): counting one HyperLogLog
    // whose cached count is stale (a PFADD changed it) stores the count in the value's header,
    // and the server propagates that PFCOUNT to replicas and the AOF. Still safe to send twice:
    // the second PFCOUNT finds the cache valid, answers the same number and changes nothing
    // (`tests/command_table.rs` measures both on a live server); with several keys it writes
    // nothing at all. The server flags it `readonly`, so replicas serve it: it stays a read.
    (key(b"PFCOUNT"), Class::Reviewed),
    (key(b"PING"), Class::Reviewed),
    (key(b"PSUBSCRIBE"), Class::Exclusive),
    (key(b"PSYNC"), Class::Exclusive),
    (key(b"PTTL"), Class::Read),
    (key(b"PUBSUB"), Class::Container),
    (key(b"PUNSUBSCRIBE"), Class::Exclusive),
    (key(b"QUIT"), Class::Exclusive),
    (key(b"RANDOMKEY"), Class::Read),
    (key(b"READONLY"), Class::Exclusive),
    (key(b"READWRITE"), Class::Exclusive),
    (key(b"REPLCONF"), Class::Exclusive),
    (key(b"RESET"), Class::Exclusive),
    (key(b"ROLE"), Class::Reviewed),
    (key(b"SCAN"), Class::Read),
    (key(b"SCARD"), Class::Read),
    (key(b"SCRIPT"), Class::Container),
    (key(b"SDIFF"), Class::Read),
    (key(b"SELECT"), Class::Exclusive),
    (key(b"SINTER"), Class::Read),
    (key(b"SINTERCARD"), Class::Read),
    (key(b"SISMEMBER"), Class::Read),
    (key(b"SLOWLOG"), Class::Container),
    (key(b"SMEMBERS"), Class::Read),
    (key(b"SMISMEMBER"), Class::Read),
    (key(b"SORT_RO"), Class::Read),
    (key(b"SRANDMEMBER"), Class::Read),
    (key(b"SSCAN"), Class::Read),
    (key(b"SSUBSCRIBE"), Class::Exclusive),
    (key(b"STRLEN"), Class::Read),
    (key(b"SUBSCRIBE"), Class::Exclusive),
    (key(b"SUBSTR"), Class::Read),
    (key(b"SUNION"), Class::Read),
    (key(b"SUNSUBSCRIBE"), Class::Exclusive),
    (key(b"SWAPDB"), Class::Exclusive),
    (key(b"SYNC"), Class::Exclusive),
    (key(b"TIME"), Class::Reviewed),
    (key(b"TOUCH"), Class::Read),
    (key(b"TTL"), Class::Read),
    (key(b"TYPE"), Class::Read),
    (key(b"UNSUBSCRIBE"), Class::Exclusive),
    (key(b"UNWATCH"), Class::Exclusive),
    (key(b"WAIT"), Class::BlockLastMillis),
    (key(b"WAITAOF"), Class::BlockLastMillis),
    (key(b"WATCH"), Class::Exclusive),
    (key(b"XGROUP"), Class::Container),
    (key(b"XINFO"), Class::Container),
    (key(b"XLEN"), Class::Read),
    (key(b"XPENDING"), Class::Read),
    (key(b"XRANGE"), Class::Read),
    (key(b"XREAD"), Class::StreamRead),
    (key(b"XREADGROUP"), Class::StreamReadGroup),
    (key(b"XREVRANGE"), Class::Read),
    (key(b"ZCARD"), Class::Read),
    (key(b"ZCOUNT"), Class::Read),
    (key(b"ZDIFF"), Class::Read),
    (key(b"ZINTER"), Class::Read),
    (key(b"ZINTERCARD"), Class::Read),
    (key(b"ZLEXCOUNT"), Class::Read),
    (key(b"ZMSCORE"), Class::Read),
    (key(b"ZRANDMEMBER"), Class::Read),
    (key(b"ZRANGE"), Class::Read),
    (key(b"ZRANGEBYLEX"), Class::Read),
    (key(b"ZRANGEBYSCORE"), Class::Read),
    (key(b"ZRANK"), Class::Read),
    (key(b"ZREVRANGE"), Class::Read),
    (key(b"ZREVRANGEBYLEX"), Class::Read),
    (key(b"ZREVRANGEBYSCORE"), Class::Read),
    (key(b"ZREVRANK"), Class::Read),
    (key(b"ZSCAN"), Class::Read),
    (key(b"ZSCORE"), Class::Read),
    (key(b"ZUNION"), Class::Read),
];

/// The subcommands of the `Container` commands, sorted by (command, subcommand) for a binary
/// search. A subcommand not listed is a write.
const SUBCOMMANDS: &[(Key, Key, Class)] = &[
    // Reviewed: every `Reviewed` subcommand below flags neither `readonly` nor `write` on the
    // server (none touches a key) and only reports server or connection state, so sending it
    // twice is the same as sending it once. ACL GENPASS returns fresh random bytes and stores
    // nothing; ACL DRYRUN only simulates; ACL LOG is a read unless its argument is RESET.
    (key(b"ACL"), key(b"CAT"), Class::Reviewed),
    (key(b"ACL"), key(b"DRYRUN"), Class::Reviewed),
    (key(b"ACL"), key(b"GENPASS"), Class::Reviewed),
    (key(b"ACL"), key(b"GETUSER"), Class::Reviewed),
    (key(b"ACL"), key(b"HELP"), Class::Reviewed),
    (key(b"ACL"), key(b"LIST"), Class::Reviewed),
    (key(b"ACL"), key(b"LOG"), Class::ReviewedUnlessReset),
    (key(b"ACL"), key(b"USERS"), Class::Reviewed),
    (key(b"ACL"), key(b"WHOAMI"), Class::Reviewed),
    // CLIENT: CACHING (the next command's tracking), CAPA, IMPORT-SOURCE, NO-EVICT, NO-TOUCH,
    // REPLY, SETINFO, SETNAME and TRACKING set an attribute of this connection, so every other
    // caller of a shared one would inherit it. KILL, PAUSE, UNPAUSE and UNBLOCK act on other
    // clients or the whole server: writes.
    (key(b"CLIENT"), key(b"CACHING"), Class::Exclusive),
    (key(b"CLIENT"), key(b"CAPA"), Class::Exclusive),
    (key(b"CLIENT"), key(b"GETNAME"), Class::Reviewed),
    (key(b"CLIENT"), key(b"GETREDIR"), Class::Reviewed),
    (key(b"CLIENT"), key(b"HELP"), Class::Reviewed),
    (key(b"CLIENT"), key(b"ID"), Class::Reviewed),
    (key(b"CLIENT"), key(b"IMPORT-SOURCE"), Class::Exclusive),
    (key(b"CLIENT"), key(b"INFO"), Class::Reviewed),
    (key(b"CLIENT"), key(b"LIST"), Class::Reviewed),
    (key(b"CLIENT"), key(b"NO-EVICT"), Class::Exclusive),
    (key(b"CLIENT"), key(b"NO-TOUCH"), Class::Exclusive),
    (key(b"CLIENT"), key(b"REPLY"), Class::Exclusive),
    (key(b"CLIENT"), key(b"SETINFO"), Class::Exclusive),
    (key(b"CLIENT"), key(b"SETNAME"), Class::Exclusive),
    (key(b"CLIENT"), key(b"TRACKING"), Class::Exclusive),
    (key(b"CLIENT"), key(b"TRACKINGINFO"), Class::Reviewed),
    (
        key(b"CLUSTER"),
        key(b"COUNT-FAILURE-REPORTS"),
        Class::Reviewed,
    ),
    (key(b"CLUSTER"), key(b"COUNTKEYSINSLOT"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"GETKEYSINSLOT"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"GETSLOTMIGRATIONS"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"HELP"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"INFO"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"KEYSLOT"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"LINKS"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"MYID"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"MYSHARDID"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"NODES"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"REPLICAS"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"SHARDS"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"SLAVES"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"SLOT-STATS"), Class::Reviewed),
    (key(b"CLUSTER"), key(b"SLOTS"), Class::Reviewed),
    (key(b"COMMANDLOG"), key(b"GET"), Class::Reviewed),
    (key(b"COMMANDLOG"), key(b"HELP"), Class::Reviewed),
    (key(b"COMMANDLOG"), key(b"LEN"), Class::Reviewed),
    (key(b"CONFIG"), key(b"GET"), Class::Reviewed),
    (key(b"CONFIG"), key(b"HELP"), Class::Reviewed),
    (key(b"FUNCTION"), key(b"DUMP"), Class::Reviewed),
    (key(b"FUNCTION"), key(b"HELP"), Class::Reviewed),
    (key(b"FUNCTION"), key(b"LIST"), Class::Reviewed),
    (key(b"FUNCTION"), key(b"STATS"), Class::Reviewed),
    (key(b"LATENCY"), key(b"DOCTOR"), Class::Reviewed),
    (key(b"LATENCY"), key(b"GRAPH"), Class::Reviewed),
    (key(b"LATENCY"), key(b"HELP"), Class::Reviewed),
    (key(b"LATENCY"), key(b"HISTOGRAM"), Class::Reviewed),
    (key(b"LATENCY"), key(b"HISTORY"), Class::Reviewed),
    (key(b"LATENCY"), key(b"LATEST"), Class::Reviewed),
    (key(b"MEMORY"), key(b"DOCTOR"), Class::Reviewed),
    (key(b"MEMORY"), key(b"HELP"), Class::Reviewed),
    (key(b"MEMORY"), key(b"MALLOC-STATS"), Class::Reviewed),
    (key(b"MEMORY"), key(b"STATS"), Class::Reviewed),
    (key(b"MEMORY"), key(b"USAGE"), Class::Read),
    (key(b"MODULE"), key(b"HELP"), Class::Reviewed),
    (key(b"MODULE"), key(b"LIST"), Class::Reviewed),
    (key(b"OBJECT"), key(b"ENCODING"), Class::Read),
    (key(b"OBJECT"), key(b"FREQ"), Class::Read),
    (key(b"OBJECT"), key(b"HELP"), Class::Reviewed),
    (key(b"OBJECT"), key(b"IDLETIME"), Class::Read),
    (key(b"OBJECT"), key(b"REFCOUNT"), Class::Read),
    (key(b"PUBSUB"), key(b"CHANNELS"), Class::Reviewed),
    (key(b"PUBSUB"), key(b"HELP"), Class::Reviewed),
    (key(b"PUBSUB"), key(b"NUMPAT"), Class::Reviewed),
    (key(b"PUBSUB"), key(b"NUMSUB"), Class::Reviewed),
    (key(b"PUBSUB"), key(b"SHARDCHANNELS"), Class::Reviewed),
    (key(b"PUBSUB"), key(b"SHARDNUMSUB"), Class::Reviewed),
    // SCRIPT DEBUG puts this connection's next EVAL into the Lua debugger: connection state.
    // SCRIPT LOAD and FLUSH change the script cache: writes.
    (key(b"SCRIPT"), key(b"DEBUG"), Class::Exclusive),
    (key(b"SCRIPT"), key(b"EXISTS"), Class::Reviewed),
    (key(b"SCRIPT"), key(b"HELP"), Class::Reviewed),
    (key(b"SCRIPT"), key(b"SHOW"), Class::Reviewed),
    (key(b"SLOWLOG"), key(b"GET"), Class::Reviewed),
    (key(b"SLOWLOG"), key(b"HELP"), Class::Reviewed),
    (key(b"SLOWLOG"), key(b"LEN"), Class::Reviewed),
    (key(b"XGROUP"), key(b"HELP"), Class::Reviewed),
    (key(b"XINFO"), key(b"CONSUMERS"), Class::Read),
    (key(b"XINFO"), key(b"GROUPS"), Class::Read),
    (key(b"XINFO"), key(b"HELP"), Class::Reviewed),
    (key(b"XINFO"), key(b"STREAM"), Class::Read),
];

const WRITE: CommandTraits = CommandTraits {
    read_only: false,
    blocks_for: None,
    needs_exclusive: false,
};
const READ: CommandTraits = CommandTraits {
    read_only: true,
    ..WRITE
};
const EXCLUSIVE: CommandTraits = CommandTraits {
    needs_exclusive: true,
    ..WRITE
};

impl CommandTraits {
    /// The traits of one command.
    pub fn of_cmd(cmd: &Cmd) -> Self {
        Self::classify(simple_args(cmd))
    }

    /// The traits of a pipeline: read-only only if every command is; blocking or exclusive if any is.
    pub fn of_pipeline(pipeline: &Pipeline) -> Self {
        let mut combined = READ;
        for cmd in pipeline.cmd_iter() {
            combined.merge(Self::of_cmd(cmd));
        }
        combined
    }

    /// The traits of a command given as its arguments (name first).
    pub fn of_args(args: &[&[u8]]) -> Self {
        Self::classify(args.iter().copied())
    }

    /// Whether the command is re-sent because it is on the reviewed list rather than by the
    /// server's flags (for the comparison with a live command table; not on the hot path).
    pub fn is_reviewed(args: &[&[u8]]) -> bool {
        let mut rest = args.iter().copied();
        match resolve(&mut rest) {
            Some(Class::Reviewed) => true,
            Some(class @ Class::ReviewedUnlessReset) => traits_of(Some(class), rest).read_only,
            _ => false,
        }
    }

    fn classify<'a>(mut args: impl Iterator<Item = &'a [u8]> + Clone) -> Self {
        let class = resolve(&mut args);
        traits_of(class, args)
    }

    /// The upper-case name of a command, for messages and logs, with its subcommand for a
    /// command resolved by one (`CLIENT NO-EVICT`). Allocates; not on the hot path.
    pub fn name_of(cmd: &Cmd) -> String {
        let mut args = simple_args(cmd);
        let name = args.next().unwrap_or_default();
        let mut text = String::from_utf8_lossy(name).to_ascii_uppercase();
        if lookup(name) == Some(Class::Container) {
            if let Some(sub) = args.next() {
                text.push(' ');
                text.push_str(&String::from_utf8_lossy(sub).to_ascii_uppercase());
            }
        }
        text
    }

    /// The time one attempt may take: the database's timeout plus the block time of a blocking
    /// command, or no limit for a command that blocks without one.
    pub fn deadline(&self, timeout: Duration) -> Option<Duration> {
        match self.blocks_for {
            None => Some(timeout),
            Some(None) => None,
            Some(Some(block)) => Some(timeout + block),
        }
    }

    /// Folds another command of the same pipeline into these traits.
    pub fn merge(&mut self, other: CommandTraits) {
        self.read_only &= other.read_only;
        self.needs_exclusive |= other.needs_exclusive;
        self.blocks_for = match (self.blocks_for, other.blocks_for) {
            (None, b) | (b, None) => b,
            (Some(None), _) | (_, Some(None)) => Some(None),
            (Some(Some(a)), Some(Some(b))) => Some(Some(a + b)),
        };
    }
}

/// The table's entry for a command name (any case).
fn lookup(name: &[u8]) -> Option<Class> {
    find(&key_of(name)?)
}

/// Open addressing over `COMMANDS`, built at compile time: every call classifies its command,
/// and a hash probe costs a third of a binary search over the table.
const INDEX_BITS: u32 = 9;
const INDEX_LEN: usize = 1 << INDEX_BITS;
/// Positions in `COMMANDS` plus one; 0 = empty.
static INDEX: [u16; INDEX_LEN] = build_index();

const fn bucket(key: &Key) -> usize {
    let mixed = (key[0] ^ key[1].rotate_left(21) ^ key[2].rotate_left(42))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> (64 - INDEX_BITS)) as usize
}

const fn build_index() -> [u16; INDEX_LEN] {
    // At most half full, so that every probe sequence is short and ends at an empty bucket.
    assert!(COMMANDS.len() * 2 <= INDEX_LEN);
    let mut index = [0u16; INDEX_LEN];
    let mut position = 0;
    while position < COMMANDS.len() {
        let mut at = bucket(&COMMANDS[position].0);
        while index[at] != 0 {
            at = (at + 1) % INDEX_LEN;
        }
        index[at] = position as u16 + 1;
        position += 1;
    }
    index
}

fn find(key: &Key) -> Option<Class> {
    let mut at = bucket(key);
    loop {
        let entry = COMMANDS.get(usize::from(INDEX[at]).checked_sub(1)?)?;
        if entry.0 == *key {
            return Some(entry.1);
        }
        at = (at + 1) % INDEX_LEN;
    }
}

/// The class of a command, from its name, and from its subcommand for a `Container`: consumes
/// what it read of `args`, leaving the arguments the class looks at. `None`: unknown, a write.
/// A container's second argument is upper-cased only here: for other commands it is a key,
/// and reading it would be wasted work.
fn resolve<'a>(args: &mut impl Iterator<Item = &'a [u8]>) -> Option<Class> {
    let name = args.next().unwrap_or_default();
    let key = key_of(name)?;
    match find(&key)? {
        Class::Container => {
            let sub = key_of(args.next()?)?;
            let found = SUBCOMMANDS
                .binary_search_by(|(command, known, _)| (command, known).cmp(&(&key, &sub)))
                .ok()?;
            Some(SUBCOMMANDS[found].2)
        }
        class => Some(class),
    }
}

/// The traits of a resolved class, given the arguments after the command (and subcommand).
fn traits_of<'a>(class: Option<Class>, mut args: impl Iterator<Item = &'a [u8]>) -> CommandTraits {
    let Some(class) = class else {
        return WRITE;
    };
    let blocking = |blocks_for| CommandTraits {
        blocks_for,
        ..WRITE
    };
    match class {
        Class::Read | Class::Reviewed => READ,
        Class::ReviewedUnlessReset => match args.next() {
            Some(arg) if arg.eq_ignore_ascii_case(b"RESET") => WRITE,
            _ => READ,
        },
        Class::Exclusive => EXCLUSIVE,
        Class::BlockLastSeconds => blocking(seconds(args.last())),
        Class::BlockFirstSeconds => blocking(seconds(args.next())),
        Class::BlockLastMillis => blocking(millis(args.last())),
        Class::StreamRead | Class::StreamReadGroup => {
            let read_only = class == Class::StreamRead;
            if !read_only {
                // `GROUP <group> <consumer>`: names that may well be `block`.
                args.nth(2);
            }
            let blocks_for = stream_block(args);
            CommandTraits {
                blocks_for,
                read_only,
                ..WRITE
            }
        }
        // `resolve` never returns a container: a missing or unknown subcommand is `None`.
        Class::Container => WRITE,
    }
}

/// A block time in seconds; 0 blocks without limit. `None` when the argument is missing or not
/// a number (the server will refuse the command; it is then timed as an ordinary one).
fn seconds(raw: Option<&[u8]>) -> Option<Option<Duration>> {
    let secs: f64 = std::str::from_utf8(raw?).ok()?.trim().parse().ok()?;
    if secs <= 0.0 {
        return Some(None);
    }
    Some(Duration::try_from_secs_f64(secs).ok())
}

/// The `BLOCK` option of `XREAD`/`XREADGROUP`, looked for among the options only: they end at
/// `STREAMS`, after which keys and ids follow (a stream may be named `BLOCK`), and an option's
/// value (`COUNT <n>`) is never taken for an option.
fn stream_block<'a>(mut options: impl Iterator<Item = &'a [u8]>) -> Option<Option<Duration>> {
    while let Some(option) = options.next() {
        if option.eq_ignore_ascii_case(b"STREAMS") {
            return None;
        }
        if option.eq_ignore_ascii_case(b"BLOCK") {
            return millis(options.next());
        }
        if option.eq_ignore_ascii_case(b"COUNT") || option.eq_ignore_ascii_case(b"CLAIM") {
            options.next();
        }
    }
    None
}

/// A block time in milliseconds; 0 blocks without limit.
fn millis(raw: Option<&[u8]>) -> Option<Option<Duration>> {
    let ms: u64 = std::str::from_utf8(raw?).ok()?.trim().parse().ok()?;
    Some((ms > 0).then(|| Duration::from_millis(ms)))
}

fn simple_args(cmd: &Cmd) -> impl Iterator<Item = &[u8]> + Clone {
    cmd.args_iter().filter_map(|arg| match arg {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits(args: &[&str]) -> CommandTraits {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        CommandTraits::of_args(&bytes)
    }

    #[test]
    fn every_command_is_found_through_the_index_and_no_other_name_is() {
        for (key, class) in COMMANDS {
            assert_eq!(find(key), Some(*class));
        }
        for unknown in ["", "GETT", "XYZZY", "EVAL", "GE"] {
            assert_eq!(lookup(unknown.as_bytes()), None, "{unknown}");
        }
        assert_eq!(lookup(b"get"), Some(Class::Read));
    }

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        assert!(COMMANDS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(SUBCOMMANDS
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)));
    }

    #[test]
    fn subcommands_belong_to_containers_and_every_container_has_some() {
        for (command, _, class) in SUBCOMMANDS {
            let entry = COMMANDS.iter().find(|(known, _)| known == command);
            assert_eq!(entry.map(|e| e.1), Some(Class::Container));
            assert_ne!(*class, Class::Container);
        }
        for (command, class) in COMMANDS {
            if *class == Class::Container {
                assert!(SUBCOMMANDS.iter().any(|(c, _, _)| c == command));
            }
        }
    }

    #[test]
    fn a_name_longer_than_any_command_is_a_write() {
        let long = "X".repeat(100);
        assert!(!traits(&[&long, "k"]).read_only);
    }

    #[test]
    fn reads_are_read_only_and_writes_are_not() {
        for read in ["GET", "get", "MGET", "EVAL_RO", "FCALL_RO", "PING", "XREAD"] {
            assert!(traits(&[read, "k"]).read_only, "{read} should be read-only");
        }
        for write in [
            "SET",
            "INCR",
            "DEL",
            "EVAL",
            "EVALSHA",
            "FCALL",
            "MYMODULE.CMD",
            "XREADGROUP",
            "",
        ] {
            assert!(
                !traits(&[write, "k"]).read_only,
                "{write} should count as a write"
            );
        }
        assert!(traits(&["OBJECT", "ENCODING", "k"]).read_only);
        assert!(!traits(&["CONFIG", "SET", "x", "y"]).read_only);
    }

    #[test]
    fn blocking_commands_report_their_block_time() {
        let secs = |s: f64| Some(Some(Duration::from_secs_f64(s)));
        assert_eq!(traits(&["BLPOP", "a", "b", "2.5"]).blocks_for, secs(2.5));
        assert_eq!(traits(&["BRPOP", "a", "0"]).blocks_for, Some(None));
        assert_eq!(
            traits(&["BLMOVE", "a", "b", "LEFT", "RIGHT", "3"]).blocks_for,
            secs(3.0)
        );
        assert_eq!(
            traits(&["BZMPOP", "1", "1", "z", "MIN"]).blocks_for,
            secs(1.0)
        );
        assert_eq!(
            traits(&["XREAD", "COUNT", "1", "BLOCK", "1500", "STREAMS", "s", "$"]).blocks_for,
            secs(1.5)
        );
        assert_eq!(traits(&["XREAD", "STREAMS", "s", "0"]).blocks_for, None);
        // A group, a consumer or a stream named `block`, or a count of it, is not the option.
        let group = [
            "XREADGROUP",
            "GROUP",
            "block",
            "c1",
            "BLOCK",
            "5000",
            "STREAMS",
            "s",
            ">",
        ];
        assert_eq!(traits(&group).blocks_for, secs(5.0));
        let consumer = [
            "XREADGROUP",
            "GROUP",
            "g",
            "BLOCK",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ];
        assert_eq!(traits(&consumer).blocks_for, None);
        assert_eq!(traits(&["XREAD", "STREAMS", "BLOCK", "0"]).blocks_for, None);
        assert_eq!(
            traits(&["XREAD", "COUNT", "BLOCK", "BLOCK", "10", "STREAMS", "s", "$"]).blocks_for,
            secs(0.01),
            "COUNT's value is not the option"
        );
        assert_eq!(traits(&["WAIT", "1", "200"]).blocks_for, secs(0.2));
        assert_eq!(traits(&["GET", "k"]).blocks_for, None);
    }

    #[test]
    fn connection_state_commands_need_an_exclusive_connection() {
        for cmd in ["SELECT", "WATCH", "MULTI", "SUBSCRIBE", "MONITOR"] {
            assert!(traits(&[cmd, "x"]).needs_exclusive, "{cmd}");
        }
        assert!(!traits(&["GET", "k"]).needs_exclusive);
    }

    /// Issue 11: these went out on the shared connection as plain writes.
    #[test]
    fn replication_cluster_and_client_attribute_commands_need_an_exclusive_connection() {
        let commands: &[&[&str]] = &[
            &["READONLY"],
            &["READWRITE"],
            &["ASKING"],
            &["SYNC"],
            &["PSYNC", "?", "-1"],
            &["REPLCONF", "listening-port", "6380"],
            &["CLIENT", "NO-EVICT", "on"],
            &["client", "caching", "yes"],
            &["CLIENT", "NO-TOUCH", "on"],
            &["CLIENT", "SETINFO", "LIB-NAME", "x"],
            &["CLIENT", "CAPA", "redirect"],
            &["CLIENT", "IMPORT-SOURCE", "on"],
            &["SCRIPT", "DEBUG", "yes"],
        ];
        for args in commands {
            let traits = traits(args);
            assert!(traits.needs_exclusive, "{args:?}");
            assert!(!traits.read_only, "{args:?}");
        }
        for args in [["CLIENT", "LIST"], ["CLIENT", "KILL"], ["SCRIPT", "EXISTS"]] {
            assert!(!traits(&args).needs_exclusive, "{args:?}");
        }
    }

    /// Issue 11: PFCOUNT's key spec writes (it caches the count), yet it stays re-sendable, on
    /// the reviewed list.
    #[test]
    fn pfcount_is_re_sent_as_a_reviewed_read() {
        assert_eq!(traits(&["PFCOUNT", "hll"]), READ);
        assert!(CommandTraits::is_reviewed(&[b"PFCOUNT", b"hll"]));
        assert!(!CommandTraits::is_reviewed(&[b"GET", b"k"]));
    }

    /// Issue 11: reads that were treated as writes (lost retries, never on a replica).
    #[test]
    fn valkey_hash_field_ttls_and_read_only_admin_subcommands_are_reads() {
        let reads: &[&[&str]] = &[
            &["HTTL", "h", "FIELDS", "1", "f"],
            &["HPTTL", "h", "FIELDS", "1", "f"],
            &["HEXPIRETIME", "h", "FIELDS", "1", "f"],
            &["HPEXPIRETIME", "h", "FIELDS", "1", "f"],
            &["CLUSTERSCAN", "0"],
            &["CLUSTER", "INFO"],
            &["cluster", "slots"],
            &["CLUSTER", "NODES"],
            &["CLUSTER", "SHARDS"],
            &["ACL", "WHOAMI"],
            &["ACL", "LOG"],
            &["ACL", "LOG", "10"],
            &["FUNCTION", "LIST"],
            &["SCRIPT", "EXISTS", "abc"],
            &["PUBSUB", "CHANNELS"],
            &["SLOWLOG", "GET"],
            &["LATENCY", "LATEST"],
            &["XINFO", "STREAM", "s"],
            &["XINFO", "HELP"],
            &["COMMAND", "DOCS", "GET"],
        ];
        for args in reads {
            assert_eq!(traits(args), READ, "{args:?}");
        }
        let writes: &[&[&str]] = &[
            &["ACL", "SETUSER", "u"],
            &["ACL", "LOG", "RESET"],
            &["acl", "log", "reset"],
            &["CONFIG", "SET", "x", "y"],
            &["SLOWLOG", "RESET"],
            &["LATENCY", "RESET"],
            &["CLUSTER", "FAILOVER"],
            &["SCRIPT", "FLUSH"],
            &["SCRIPT", "LOAD", "return 1"],
            &["FUNCTION", "DELETE", "lib"],
            &["PUBSUB"],
            &["CLUSTER", "NO-SUCH-SUBCOMMAND"],
            &["CLIENT", "KILL", "ID", "1"],
            &["MEMORY", "PURGE"],
            &["XGROUP", "CREATE", "s", "g", "$"],
        ];
        for args in writes {
            assert_eq!(traits(args), WRITE, "{args:?}");
        }
    }

    #[test]
    fn a_container_command_is_named_with_its_subcommand() {
        assert_eq!(
            CommandTraits::name_of(redis::cmd("client").arg("no-evict").arg("on")),
            "CLIENT NO-EVICT"
        );
        assert_eq!(CommandTraits::name_of(redis::cmd("get").arg("k")), "GET");
    }

    #[test]
    fn a_pipeline_is_read_only_only_when_every_command_is() {
        let mut reads = redis::pipe();
        reads.get("a").get("b");
        assert!(CommandTraits::of_pipeline(&reads).read_only);
        let mut mixed = redis::pipe();
        mixed.get("a").incr("b", 1);
        assert!(!CommandTraits::of_pipeline(&mixed).read_only);
    }
}
