//! What a command is, as far as the policies care: may it be re-sent, does it block, may it
//! run on a shared connection.

use std::time::Duration;

use redis::{Arg, Cmd, Pipeline};

/// The facts about one command (or a whole pipeline) that decide how it may travel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommandTraits {
    /// Upper-case command name (the first of a pipeline that decides the other fields).
    pub name: String,
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
        let args: Vec<&[u8]> = cmd
            .args_iter()
            .filter_map(|arg| match arg {
                Arg::Simple(bytes) => Some(bytes),
                _ => None,
            })
            .collect();
        Self::of_args(&args)
    }

    /// The traits of a pipeline: read-only only if every command is; blocking or exclusive if any is.
    pub fn of_pipeline(pipeline: &Pipeline) -> Self {
        let mut combined = CommandTraits {
            name: String::from("PIPELINE"),
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
    pub fn of_args(args: &[&[u8]]) -> Self {
        let name = args
            .first()
            .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
            .unwrap_or_default();
        let sub = args
            .get(1)
            .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
            .unwrap_or_default();
        CommandTraits {
            read_only: is_read_only(&name, &sub),
            blocks_for: block_time(&name, &args[1.min(args.len())..]),
            needs_exclusive: needs_exclusive(&name, &sub),
            name,
        }
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

fn is_read_only(name: &str, sub: &str) -> bool {
    match name {
        // Container commands: only some subcommands are reads.
        "OBJECT" => matches!(sub, "ENCODING" | "FREQ" | "IDLETIME" | "REFCOUNT" | "HELP"),
        "MEMORY" => matches!(sub, "USAGE" | "STATS" | "DOCTOR" | "HELP"),
        "CONFIG" => sub == "GET",
        "CLIENT" => matches!(sub, "LIST" | "INFO" | "GETNAME" | "ID"),
        "INFO" | "COMMAND" => true,
        _ => READ_ONLY.binary_search(&name).is_ok(),
    }
}

fn needs_exclusive(name: &str, sub: &str) -> bool {
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
    ) || (name == "CLIENT" && matches!(sub, "REPLY" | "SETNAME" | "TRACKING"))
}

/// How long a blocking command may legitimately wait server-side. `args` excludes the name.
fn block_time(name: &str, args: &[&[u8]]) -> Option<Option<Duration>> {
    let seconds = |raw: Option<&&[u8]>| -> Option<Option<Duration>> {
        let text = std::str::from_utf8(raw?).ok()?;
        let secs: f64 = text.trim().parse().ok()?;
        if secs <= 0.0 {
            return Some(None);
        }
        Some(Duration::try_from_secs_f64(secs).ok())
    };
    let millis = |raw: Option<&&[u8]>| -> Option<Option<Duration>> {
        let text = std::str::from_utf8(raw?).ok()?;
        let ms: u64 = text.trim().parse().ok()?;
        Some((ms > 0).then(|| Duration::from_millis(ms)))
    };
    match name {
        "BLPOP" | "BRPOP" | "BRPOPLPUSH" | "BLMOVE" | "BZPOPMIN" | "BZPOPMAX" => {
            seconds(args.last())
        }
        "BLMPOP" | "BZMPOP" => seconds(args.first()),
        "WAIT" => millis(args.last()),
        "WAITAOF" => millis(args.last()),
        "XREAD" | "XREADGROUP" => {
            let block = args.iter().position(|a| a.eq_ignore_ascii_case(b"BLOCK"))?;
            millis(args.get(block + 1))
        }
        _ => None,
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
