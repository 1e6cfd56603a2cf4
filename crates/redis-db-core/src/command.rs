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

/// Sorted by name, for a binary search.
const COMMANDS: &[(&str, Class)] = &[
    ("AUTH", Class::Exclusive),
    ("BITCOUNT", Class::Read),
    ("BITFIELD_RO", Class::Read),
    ("BITPOS", Class::Read),
    ("BLMOVE", Class::BlockLastSeconds),
    ("BLMPOP", Class::BlockFirstSeconds),
    ("BLPOP", Class::BlockLastSeconds),
    ("BRPOP", Class::BlockLastSeconds),
    ("BRPOPLPUSH", Class::BlockLastSeconds),
    ("BZMPOP", Class::BlockFirstSeconds),
    ("BZPOPMAX", Class::BlockLastSeconds),
    ("BZPOPMIN", Class::BlockLastSeconds),
    ("CLIENT", Class::Container),
    ("COMMAND", Class::Read),
    ("CONFIG", Class::Container),
    ("DBSIZE", Class::Read),
    ("DISCARD", Class::Exclusive),
    ("DUMP", Class::Read),
    ("ECHO", Class::Read),
    ("EVALSHA_RO", Class::Read),
    ("EVAL_RO", Class::Read),
    ("EXEC", Class::Exclusive),
    ("EXISTS", Class::Read),
    ("EXPIRETIME", Class::Read),
    ("FCALL_RO", Class::Read),
    ("GEODIST", Class::Read),
    ("GEOHASH", Class::Read),
    ("GEOPOS", Class::Read),
    ("GEORADIUSBYMEMBER_RO", Class::Read),
    ("GEORADIUS_RO", Class::Read),
    ("GEOSEARCH", Class::Read),
    ("GET", Class::Read),
    ("GETBIT", Class::Read),
    ("GETRANGE", Class::Read),
    ("HELLO", Class::Exclusive),
    ("HEXISTS", Class::Read),
    ("HGET", Class::Read),
    ("HGETALL", Class::Read),
    ("HKEYS", Class::Read),
    ("HLEN", Class::Read),
    ("HMGET", Class::Read),
    ("HRANDFIELD", Class::Read),
    ("HSCAN", Class::Read),
    ("HSTRLEN", Class::Read),
    ("HVALS", Class::Read),
    ("INFO", Class::Read),
    ("KEYS", Class::Read),
    ("LCS", Class::Read),
    ("LINDEX", Class::Read),
    ("LLEN", Class::Read),
    ("LOLWUT", Class::Read),
    ("LPOS", Class::Read),
    ("LRANGE", Class::Read),
    ("MEMORY", Class::Container),
    ("MGET", Class::Read),
    ("MONITOR", Class::Exclusive),
    ("MULTI", Class::Exclusive),
    ("OBJECT", Class::Container),
    ("PEXPIRETIME", Class::Read),
    ("PFCOUNT", Class::Read),
    ("PING", Class::Read),
    ("PSUBSCRIBE", Class::Exclusive),
    ("PTTL", Class::Read),
    ("PUNSUBSCRIBE", Class::Exclusive),
    ("QUIT", Class::Exclusive),
    ("RANDOMKEY", Class::Read),
    ("RESET", Class::Exclusive),
    ("SCAN", Class::Read),
    ("SCARD", Class::Read),
    ("SDIFF", Class::Read),
    ("SELECT", Class::Exclusive),
    ("SINTER", Class::Read),
    ("SINTERCARD", Class::Read),
    ("SISMEMBER", Class::Read),
    ("SMEMBERS", Class::Read),
    ("SMISMEMBER", Class::Read),
    ("SORT_RO", Class::Read),
    ("SRANDMEMBER", Class::Read),
    ("SSCAN", Class::Read),
    ("SSUBSCRIBE", Class::Exclusive),
    ("STRLEN", Class::Read),
    ("SUBSCRIBE", Class::Exclusive),
    ("SUBSTR", Class::Read),
    ("SUNION", Class::Read),
    ("SUNSUBSCRIBE", Class::Exclusive),
    ("SWAPDB", Class::Exclusive),
    ("TIME", Class::Read),
    ("TOUCH", Class::Read),
    ("TTL", Class::Read),
    ("TYPE", Class::Read),
    ("UNSUBSCRIBE", Class::Exclusive),
    ("UNWATCH", Class::Exclusive),
    ("WAIT", Class::BlockLastMillis),
    ("WAITAOF", Class::BlockLastMillis),
    ("WATCH", Class::Exclusive),
    ("XINFO", Class::Read),
    ("XLEN", Class::Read),
    ("XPENDING", Class::Read),
    ("XRANGE", Class::Read),
    ("XREAD", Class::StreamRead),
    ("XREADGROUP", Class::StreamReadGroup),
    ("XREVRANGE", Class::Read),
    ("ZCARD", Class::Read),
    ("ZCOUNT", Class::Read),
    ("ZDIFF", Class::Read),
    ("ZINTER", Class::Read),
    ("ZINTERCARD", Class::Read),
    ("ZLEXCOUNT", Class::Read),
    ("ZMSCORE", Class::Read),
    ("ZRANDMEMBER", Class::Read),
    ("ZRANGE", Class::Read),
    ("ZRANGEBYLEX", Class::Read),
    ("ZRANGEBYSCORE", Class::Read),
    ("ZRANK", Class::Read),
    ("ZREVRANGE", Class::Read),
    ("ZREVRANGEBYLEX", Class::Read),
    ("ZREVRANGEBYSCORE", Class::Read),
    ("ZREVRANK", Class::Read),
    ("ZSCAN", Class::Read),
    ("ZSCORE", Class::Read),
    ("ZUNION", Class::Read),
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
        let name = Upper::of(args.next().unwrap_or_default());
        let Ok(found) = COMMANDS.binary_search_by(|(known, _)| (*known).cmp(name.as_str())) else {
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
                let blocks_for = args
                    .position(|a| a.eq_ignore_ascii_case(b"BLOCK"))
                    .and_then(|_| millis(args.next()));
                let read_only = COMMANDS[found].1 == Class::StreamRead;
                CommandTraits {
                    blocks_for,
                    read_only,
                    ..WRITE
                }
            }
            // The subcommand is read only here: for other commands the second argument is a
            // key, and upper-casing it would be wasted work.
            Class::Container => subcommand(
                name.as_str(),
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
