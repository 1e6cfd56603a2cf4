//! What a command is, as far as the policies care: may it be re-sent, does it block, may it
//! run on a shared connection.

use std::time::Duration;

use redis::{Arg, Cmd, Pipeline};

/// The facts about one command (or a whole pipeline) that decide how it may travel. Computed
/// on every call without allocating, from one table lookup.
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
    /// Never changes data.
    Read,
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
    /// Its nature depends on the subcommand.
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
    (key(b"COMMAND"), Class::Read),
    (key(b"CONFIG"), Class::Container),
    (key(b"DBSIZE"), Class::Read),
    (key(b"DISCARD"), Class::Exclusive),
    (key(b"DUMP"), Class::Read),
    (key(b"ECHO"), Class::Read),
    (key(b"EVALSHA_RO"), Class::Read),
    (key(b"EVAL_RO"), Class::Read),
    (key(b"EXEC"), Class::Exclusive),
    (key(b"EXISTS"), Class::Read),
    (key(b"EXPIRETIME"), Class::Read),
    (key(b"FCALL_RO"), Class::Read),
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
    (key(b"HGET"), Class::Read),
    (key(b"HGETALL"), Class::Read),
    (key(b"HKEYS"), Class::Read),
    (key(b"HLEN"), Class::Read),
    (key(b"HMGET"), Class::Read),
    (key(b"HRANDFIELD"), Class::Read),
    (key(b"HSCAN"), Class::Read),
    (key(b"HSTRLEN"), Class::Read),
    (key(b"HVALS"), Class::Read),
    (key(b"INFO"), Class::Read),
    (key(b"KEYS"), Class::Read),
    (key(b"LCS"), Class::Read),
    (key(b"LINDEX"), Class::Read),
    (key(b"LLEN"), Class::Read),
    (key(b"LOLWUT"), Class::Read),
    (key(b"LPOS"), Class::Read),
    (key(b"LRANGE"), Class::Read),
    (key(b"MEMORY"), Class::Container),
    (key(b"MGET"), Class::Read),
    (key(b"MONITOR"), Class::Exclusive),
    (key(b"MULTI"), Class::Exclusive),
    (key(b"OBJECT"), Class::Container),
    (key(b"PEXPIRETIME"), Class::Read),
    (key(b"PFCOUNT"), Class::Read),
    (key(b"PING"), Class::Read),
    (key(b"PSUBSCRIBE"), Class::Exclusive),
    (key(b"PTTL"), Class::Read),
    (key(b"PUNSUBSCRIBE"), Class::Exclusive),
    (key(b"QUIT"), Class::Exclusive),
    (key(b"RANDOMKEY"), Class::Read),
    (key(b"RESET"), Class::Exclusive),
    (key(b"SCAN"), Class::Read),
    (key(b"SCARD"), Class::Read),
    (key(b"SDIFF"), Class::Read),
    (key(b"SELECT"), Class::Exclusive),
    (key(b"SINTER"), Class::Read),
    (key(b"SINTERCARD"), Class::Read),
    (key(b"SISMEMBER"), Class::Read),
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
    (key(b"TIME"), Class::Read),
    (key(b"TOUCH"), Class::Read),
    (key(b"TTL"), Class::Read),
    (key(b"TYPE"), Class::Read),
    (key(b"UNSUBSCRIBE"), Class::Exclusive),
    (key(b"UNWATCH"), Class::Exclusive),
    (key(b"WAIT"), Class::BlockLastMillis),
    (key(b"WAITAOF"), Class::BlockLastMillis),
    (key(b"WATCH"), Class::Exclusive),
    (key(b"XINFO"), Class::Read),
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
    #[cfg(test)]
    pub fn of_args(args: &[&[u8]]) -> Self {
        Self::classify(args.iter().copied())
    }

    fn classify<'a>(mut args: impl Iterator<Item = &'a [u8]> + Clone) -> Self {
        let name = args.next().unwrap_or_default();
        let found = key_of(name)
            .and_then(|key| COMMANDS.binary_search_by(|(known, _)| known.cmp(&key)).ok());
        let Some(found) = found else {
            return WRITE;
        };
        let blocking = |blocks_for| CommandTraits {
            blocks_for,
            ..WRITE
        };
        match COMMANDS[found].1 {
            Class::Read => READ,
            Class::Exclusive => EXCLUSIVE,
            Class::BlockLastSeconds => blocking(seconds(args.last())),
            Class::BlockFirstSeconds => blocking(seconds(args.next())),
            Class::BlockLastMillis => blocking(millis(args.last())),
            Class::StreamRead | Class::StreamReadGroup => {
                let read_only = COMMANDS[found].1 == Class::StreamRead;
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
            // The subcommand is read only here: for other commands the second argument is a
            // key, and upper-casing it would be wasted work.
            Class::Container => subcommand(
                Upper::of(name).as_str(),
                Upper::of(args.next().unwrap_or_default()).as_str(),
            ),
        }
    }

    /// The upper-case name of a command, for messages and logs (allocates; not on the hot path).
    pub fn name_of(cmd: &Cmd) -> String {
        let name = simple_args(cmd).next().unwrap_or_default();
        String::from_utf8_lossy(name).to_ascii_uppercase()
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

fn subcommand(name: &str, sub: &str) -> CommandTraits {
    match (name, sub) {
        ("OBJECT", "ENCODING" | "FREQ" | "IDLETIME" | "REFCOUNT" | "HELP")
        | ("MEMORY", "USAGE" | "STATS" | "DOCTOR" | "HELP")
        | ("CONFIG", "GET")
        | ("CLIENT", "LIST" | "INFO" | "GETNAME" | "ID") => READ,
        ("CLIENT", "REPLY" | "SETNAME" | "TRACKING") => EXCLUSIVE,
        _ => WRITE,
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

/// A block time in milliseconds; 0 blocks without limit.
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

/// An upper-case ASCII copy of a short token, on the stack. No command or subcommand we know is
/// longer than its buffer; a longer token reads as "" (an unknown command: a write).
#[derive(Clone, Copy)]
struct Upper {
    bytes: [u8; 24],
    len: usize,
}

impl Upper {
    fn of(token: &[u8]) -> Self {
        let mut upper = Upper {
            bytes: [0; 24],
            len: 0,
        };
        if token.len() <= upper.bytes.len() {
            upper.bytes[..token.len()].copy_from_slice(token);
            upper.bytes[..token.len()].make_ascii_uppercase();
            upper.len = token.len();
        }
        upper
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits(args: &[&str]) -> CommandTraits {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        CommandTraits::of_args(&bytes)
    }

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        assert!(COMMANDS.windows(2).all(|w| w[0].0 < w[1].0));
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
