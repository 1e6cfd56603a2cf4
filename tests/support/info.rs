//! Reading `INFO`: one `field:value` line of a section, and the per-command counters of
//! `INFO commandstats` (`cmdstat_<name>:calls=3,usec=...,rejected_calls=0,...`). Every test
//! reads the server's figures through here, so the format is parsed in one place.

use std::collections::HashMap;

/// `INFO <section>` on `connection`.
pub fn query(connection: &mut redis::Connection, section: &str) -> redis::RedisResult<String> {
    redis::cmd("INFO").arg(section).query(connection)
}

/// The value of `field` (trimmed) in `INFO` text, `None` when absent.
pub fn field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}

/// `field` of `INFO <section>` read on `connection`, `None` when the query fails or the field is
/// absent.
pub fn read(connection: &mut redis::Connection, section: &str, name: &str) -> Option<String> {
    field(&query(connection, section).ok()?, name)
}

/// One counter (`calls`, `rejected_calls`, ...) of a `cmdstat_<command>` value, 0 when the
/// command has no line (never called) or the line lacks the counter.
pub fn cmdstat(stats: Option<&str>, counter: &str) -> u64 {
    let prefix = format!("{counter}=");
    stats
        .unwrap_or_default()
        .split(',')
        .find_map(|kv| kv.strip_prefix(prefix.as_str()))
        .map_or(0, |n| {
            n.parse()
                .unwrap_or_else(|e| panic!("cmdstat {counter}={n}: {e}"))
        })
}

/// `calls` of every command in `INFO commandstats` text, keyed by the server's lower-case name
/// (`client|setinfo` for subcommands).
pub fn commandstats_calls(info: &str) -> HashMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}
