//! What a command is, as far as the policies care: may it be re-sent, does it block, may it
//! run on a shared connection.

use std::time::Duration;

use redis::{Arg, Cmd, Pipeline};

/// The facts about one command (or a whole pipeline) that decide how it may travel. Computed
/// on every call without allocating (it was half the per-call cost when it allocated).
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

impl CommandTraits {
    /// The traits of one command.
    pub fn of_cmd(cmd: &Cmd) -> Self {
        Self::classify(simple_args(cmd))
    }

    /// The traits of a pipeline: read-only only if every command is; blocking or exclusive if any is.
    pub fn of_pipeline(pipeline: &Pipeline) -> Self {
        let mut combined = CommandTraits {
            read_only: true,
            blocks_for: None,
            needs_exclusive: false,
        };
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
        let name = name.as_str();
        // The subcommand is looked at only for the few commands that have one: for the others
        // the second argument is a key, and upper-casing it would be wasted work.
        let sub = || Upper::of(args.clone().next().unwrap_or_default());
        CommandTraits {
            read_only: is_read_only(name, sub),
            blocks_for: block_time(name, args.clone()),
            needs_exclusive: needs_exclusive(name, sub),
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

/// Commands that never change data. Anything not listed (unknown commands, EVAL, EVALSHA,
/// FCALL, modules) counts as a write, so a retry can never apply it twice.
const READ_ONLY: &[&str] = &[
    "BITCOUNT",
    "BITFIELD_RO",
    "BITPOS",
    "DBSIZE",
    "DUMP",
    "ECHO",
    "EVALSHA_RO",
    "EVAL_RO",
    "EXISTS",
    "EXPIRETIME",
    "FCALL_RO",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEORADIUSBYMEMBER_RO",
    "GEORADIUS_RO",
    "GEOSEARCH",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HRANDFIELD",
    "HSCAN",
    "HSTRLEN",
    "HVALS",
    "KEYS",
    "LCS",
    "LINDEX",
    "LLEN",
    "LOLWUT",
    "LPOS",
    "LRANGE",
    "MGET",
    "PEXPIRETIME",
    "PFCOUNT",
    "PING",
    "PTTL",
    "RANDOMKEY",
    "SCAN",
    "SCARD",
    "SDIFF",
    "SINTER",
    "SINTERCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SORT_RO",
    "SRANDMEMBER",
    "SSCAN",
    "STRLEN",
    "SUBSTR",
    "SUNION",
    "TIME",
    "TOUCH",
    "TTL",
    "TYPE",
    "XINFO",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREAD",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZDIFF",
    "ZINTER",
    "ZINTERCARD",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNION",
];

fn is_read_only(name: &str, sub: impl Fn() -> Upper) -> bool {
    match name {
        // Container commands: only some subcommands are reads.
        "OBJECT" => matches!(
            sub().as_str(),
            "ENCODING" | "FREQ" | "IDLETIME" | "REFCOUNT" | "HELP"
        ),
        "MEMORY" => matches!(sub().as_str(), "USAGE" | "STATS" | "DOCTOR" | "HELP"),
        "CONFIG" => sub().as_str() == "GET",
        "CLIENT" => matches!(sub().as_str(), "LIST" | "INFO" | "GETNAME" | "ID"),
        "INFO" | "COMMAND" => true,
        _ => READ_ONLY.binary_search(&name).is_ok(),
    }
}

fn needs_exclusive(name: &str, sub: impl Fn() -> Upper) -> bool {
    matches!(
        name,
        "SELECT"
            | "WATCH"
            | "UNWATCH"
            | "MULTI"
            | "EXEC"
            | "DISCARD"
            | "SUBSCRIBE"
            | "PSUBSCRIBE"
            | "SSUBSCRIBE"
            | "UNSUBSCRIBE"
            | "PUNSUBSCRIBE"
            | "SUNSUBSCRIBE"
            | "MONITOR"
            | "QUIT"
            | "RESET"
            | "AUTH"
            | "HELLO"
            | "SWAPDB"
    ) || (name == "CLIENT" && matches!(sub().as_str(), "REPLY" | "SETNAME" | "TRACKING"))
}

/// How long a blocking command may legitimately wait server-side. `args` excludes the name.
fn block_time<'a>(
    name: &str,
    mut args: impl Iterator<Item = &'a [u8]> + Clone,
) -> Option<Option<Duration>> {
    let seconds = |raw: Option<&[u8]>| -> Option<Option<Duration>> {
        let text = std::str::from_utf8(raw?).ok()?;
        let secs: f64 = text.trim().parse().ok()?;
        if secs <= 0.0 {
            return Some(None);
        }
        Some(Duration::try_from_secs_f64(secs).ok())
    };
    let millis = |raw: Option<&[u8]>| -> Option<Option<Duration>> {
        let text = std::str::from_utf8(raw?).ok()?;
        let ms: u64 = text.trim().parse().ok()?;
        Some((ms > 0).then(|| Duration::from_millis(ms)))
    };
    match name {
        "BLPOP" | "BRPOP" | "BRPOPLPUSH" | "BLMOVE" | "BZPOPMIN" | "BZPOPMAX" => {
            seconds(args.last())
        }
        "BLMPOP" | "BZMPOP" => seconds(args.next()),
        "WAIT" | "WAITAOF" => millis(args.last()),
        "XREAD" | "XREADGROUP" => {
            args.position(|a| a.eq_ignore_ascii_case(b"BLOCK"))?;
            millis(args.next())
        }
        _ => None,
    }
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
    fn read_only_table_is_sorted_for_binary_search() {
        assert!(READ_ONLY.windows(2).all(|w| w[0] < w[1]));
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
