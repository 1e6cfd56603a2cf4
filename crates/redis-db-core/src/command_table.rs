//! The server's own command table, read from its `COMMAND` reply, and the built-in table's
//! verdict on one command, so that the two can be compared (`tests/command_table.rs`).
//!
//! Not a public API (`#[doc(hidden)]`): nothing here is on the connection path yet. The parser
//! is the first half of learning the classification from the server the SDK talks to (issue
//! 11); the second half, building a per-endpoint lookup table from it at connect and consulting
//! it instead of the built-in one, is not wired in.

use std::time::Duration;

use redis::Value;

use crate::command::CommandTraits;

/// The built-in table's verdict on one command, as the policies see it.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinVerdict {
    /// May be re-sent after a failure (and may go to a replica).
    pub resend: bool,
    /// Re-sent because it is on the reviewed list, not because the server flags it `readonly`
    /// with no writing key spec.
    pub reviewed: bool,
    /// Blocks server-side for up to this long (`Some(None)`: without limit); it then goes to an
    /// exclusive connection, with the block time added to its timeout.
    pub blocks_for: Option<Option<Duration>>,
    /// Changes connection state: refused on a shared handle, for `handle.connection()`.
    pub exclusive: bool,
}

/// What the built-in table says about a command given as its arguments, name first (the very
/// lookup every call makes).
#[doc(hidden)]
pub fn builtin_verdict(args: &[&[u8]]) -> BuiltinVerdict {
    let traits = CommandTraits::of_args(args);
    BuiltinVerdict {
        resend: traits.read_only,
        reviewed: traits.read_only && CommandTraits::is_reviewed(args),
        blocks_for: traits.blocks_for,
        exclusive: traits.needs_exclusive,
    }
}

/// The command flags of `COMMAND` that decide how a command may travel.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandFlags(u16);

impl CommandFlags {
    /// `readonly`: never changes data.
    pub const READONLY: Self = Self(1);
    /// `write`: may change data.
    pub const WRITE: Self = Self(1 << 1);
    /// `may_replicate`: may be propagated to replicas (a write in disguise).
    pub const MAY_REPLICATE: Self = Self(1 << 2);
    /// `blocking`: may block the client.
    pub const BLOCKING: Self = Self(1 << 3);
    /// `pubsub`: a pub/sub command.
    pub const PUBSUB: Self = Self(1 << 4);
    /// `admin`: an administrative command.
    pub const ADMIN: Self = Self(1 << 5);
    /// `noscript`: refused inside scripts.
    pub const NOSCRIPT: Self = Self(1 << 6);
    /// `no_multi`: refused inside MULTI.
    pub const NO_MULTI: Self = Self(1 << 7);
    /// `movablekeys`: the keys' positions depend on the arguments.
    pub const MOVABLEKEYS: Self = Self(1 << 8);

    fn of_name(name: &str) -> Self {
        match name {
            "readonly" => Self::READONLY,
            "write" => Self::WRITE,
            "may_replicate" => Self::MAY_REPLICATE,
            "blocking" => Self::BLOCKING,
            "pubsub" => Self::PUBSUB,
            "admin" => Self::ADMIN,
            "noscript" => Self::NOSCRIPT,
            "no_multi" => Self::NO_MULTI,
            "movablekeys" => Self::MOVABLEKEYS,
            _ => Self(0),
        }
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One command, or one subcommand, of a server's `COMMAND` reply.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCommand {
    /// Upper case; a subcommand as `CONTAINER|SUB` (the server's form: `CLIENT|LIST`).
    pub name: String,
    /// The server's arity (negative: at least that many arguments).
    pub arity: i64,
    /// The flags that matter here.
    pub flags: CommandFlags,
    /// Some key spec has `RW`, `OW`, `RM`, `INSERT`, `DELETE` or `UPDATE`.
    pub key_specs_write: bool,
    /// ACL categories, as the server names them (`@connection`, ...).
    pub categories: Vec<String>,
    /// Whether the server lists subcommands under it (the subcommands are entries of their own).
    pub has_subcommands: bool,
}

impl ServerCommand {
    /// The server's own answer to "may it be re-sent": flagged `readonly` (and neither `write`
    /// nor `may_replicate`) with no key spec that writes.
    pub fn may_resend(&self) -> bool {
        self.flags.contains(CommandFlags::READONLY)
            && !self.flags.contains(CommandFlags::WRITE)
            && !self.flags.contains(CommandFlags::MAY_REPLICATE)
            && !self.key_specs_write
    }

    /// A write by the server's flags or key specs.
    pub fn writes(&self) -> bool {
        self.flags.contains(CommandFlags::WRITE)
            || self.flags.contains(CommandFlags::MAY_REPLICATE)
            || self.key_specs_write
    }

    /// Flagged `blocking`.
    pub fn is_blocking(&self) -> bool {
        self.flags.contains(CommandFlags::BLOCKING)
    }

    /// In the given ACL category (`"@connection"`).
    pub fn in_category(&self, category: &str) -> bool {
        self.categories
            .iter()
            .any(|c| c.eq_ignore_ascii_case(category))
    }

    /// The name as the arguments that start a call: `["CLIENT", "LIST"]`.
    pub fn name_args(&self) -> Vec<&str> {
        self.name.split('|').collect()
    }
}

/// Parses a `COMMAND` (or `COMMAND INFO ...`) reply, RESP2 or RESP3, into one entry per command
/// and one per subcommand. Unknown names in `COMMAND INFO` (nil entries) are skipped.
#[doc(hidden)]
pub fn parse_command_reply(reply: &Value) -> Result<Vec<ServerCommand>, String> {
    let mut commands = Vec::new();
    for entry in items(reply).ok_or("COMMAND reply: not an array")? {
        if matches!(entry, Value::Nil) {
            continue;
        }
        parse_entry(entry, &mut commands)?;
    }
    Ok(commands)
}

fn parse_entry(entry: &Value, out: &mut Vec<ServerCommand>) -> Result<(), String> {
    let fields = items(entry).ok_or("COMMAND entry: not an array")?;
    let name = fields
        .first()
        .and_then(text)
        .ok_or("COMMAND entry: no name")?
        .to_ascii_uppercase();
    let field = |i: usize| {
        fields
            .get(i)
            .ok_or_else(|| format!("COMMAND entry {name}: field {i} missing"))
    };
    let arity = match field(1)? {
        Value::Int(n) => *n,
        _ => return Err(format!("COMMAND entry {name}: arity is not an integer")),
    };
    let mut flags = CommandFlags::default();
    for flag in strings(field(2)?).ok_or_else(|| format!("COMMAND entry {name}: flags"))? {
        flags.0 |= CommandFlags::of_name(&flag.to_ascii_lowercase()).0;
    }
    // Servers before 6 stop after the key step; before 7, after the categories.
    let categories = match fields.get(6) {
        Some(value) => strings(value).ok_or_else(|| format!("COMMAND entry {name}: categories"))?,
        None => Vec::new(),
    };
    let mut key_specs_write = false;
    if let Some(specs) = fields.get(8) {
        for spec in items(specs).ok_or_else(|| format!("COMMAND entry {name}: key specs"))? {
            let spec_flags = map_get(spec, "flags")
                .and_then(strings)
                .ok_or_else(|| format!("COMMAND entry {name}: key spec without flags"))?;
            key_specs_write |= spec_flags.iter().any(|f| {
                ["RW", "OW", "RM", "INSERT", "DELETE", "UPDATE"]
                    .iter()
                    .any(|w| f.eq_ignore_ascii_case(w))
            });
        }
    }
    let subcommands = match fields.get(9) {
        Some(value) => items(value).ok_or_else(|| format!("COMMAND entry {name}: subcommands"))?,
        None => &[],
    };
    out.push(ServerCommand {
        name,
        arity,
        flags,
        key_specs_write,
        categories,
        has_subcommands: !subcommands.is_empty(),
    });
    for sub in subcommands {
        parse_entry(sub, out)?;
    }
    Ok(())
}

fn items(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        Value::Attribute { data, .. } => items(data),
        _ => None,
    }
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        Value::Okay => Some("OK"),
        _ => None,
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    items(value)?
        .iter()
        .map(|v| text(v).map(str::to_owned))
        .collect()
}

/// A field of a RESP3 map, or of a RESP2 flat `[key, value, ...]` array.
fn map_get<'a>(value: &'a Value, field: &str) -> Option<&'a Value> {
    match value {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).is_some_and(|k| k.eq_ignore_ascii_case(field)))
            .map(|(_, v)| v),
        Value::Array(flat) => flat
            .chunks_exact(2)
            .find(|pair| text(&pair[0]).is_some_and(|k| k.eq_ignore_ascii_case(field)))
            .map(|pair| &pair[1]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn status(s: &str) -> Value {
        Value::SimpleString(s.to_owned())
    }

    fn list(items: &[&str]) -> Value {
        Value::Array(items.iter().map(|s| status(s)).collect())
    }

    /// A RESP2 key spec: a flat array with `flags` among other fields.
    fn spec_resp2(flags: &[&str]) -> Value {
        Value::Array(vec![
            bulk("notes"),
            bulk(""),
            bulk("flags"),
            list(flags),
            bulk("begin_search"),
            Value::Array(vec![]),
        ])
    }

    fn spec_resp3(flags: &[&str]) -> Value {
        Value::Map(vec![(bulk("flags"), list(flags))])
    }

    fn entry(name: &str, arity: i64, flags: &[&str], specs: Vec<Value>, subs: Vec<Value>) -> Value {
        Value::Array(vec![
            bulk(name),
            Value::Int(arity),
            list(flags),
            Value::Int(1),
            Value::Int(1),
            Value::Int(1),
            list(&["@read", "@connection"]),
            Value::Array(vec![]),
            Value::Array(specs),
            Value::Array(subs),
        ])
    }

    #[test]
    fn flags_key_specs_and_subcommands_are_read() {
        let reply = Value::Array(vec![
            entry(
                "get",
                2,
                &["readonly", "fast"],
                vec![spec_resp2(&["RO", "access"])],
                vec![],
            ),
            entry(
                "pfcount",
                -2,
                &["readonly"],
                vec![spec_resp2(&["RW", "access"])],
                vec![],
            ),
            entry(
                "client",
                -2,
                &[],
                vec![],
                vec![
                    entry("client|list", -2, &["admin", "noscript"], vec![], vec![]),
                    entry("client|no-evict", 3, &["admin"], vec![], vec![]),
                ],
            ),
            entry(
                "blpop",
                -3,
                &["write", "blocking"],
                vec![spec_resp3(&["RW", "ACCESS", "DELETE"])],
                vec![],
            ),
            Value::Nil,
        ]);
        let parsed = parse_command_reply(&reply).unwrap();
        let names: Vec<&str> = parsed.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "GET",
                "PFCOUNT",
                "CLIENT",
                "CLIENT|LIST",
                "CLIENT|NO-EVICT",
                "BLPOP"
            ]
        );
        let get = &parsed[0];
        assert!(get.may_resend() && !get.writes() && !get.is_blocking());
        assert_eq!(get.arity, 2);
        assert!(get.in_category("@connection") && !get.in_category("@admin"));
        let pfcount = &parsed[1];
        assert!(pfcount.flags.contains(CommandFlags::READONLY));
        assert!(pfcount.key_specs_write && !pfcount.may_resend() && pfcount.writes());
        assert!(parsed[2].has_subcommands && !parsed[3].has_subcommands);
        assert!(parsed[3].flags.contains(CommandFlags::ADMIN));
        assert_eq!(parsed[4].name_args(), ["CLIENT", "NO-EVICT"]);
        let blpop = &parsed[5];
        assert!(blpop.is_blocking() && blpop.writes() && blpop.key_specs_write);
    }

    #[test]
    fn an_old_server_without_key_specs_or_categories_parses() {
        let old = Value::Array(vec![Value::Array(vec![
            bulk("get"),
            Value::Int(2),
            list(&["readonly"]),
            Value::Int(1),
            Value::Int(1),
            Value::Int(1),
        ])]);
        let parsed = parse_command_reply(&old).unwrap();
        assert!(parsed[0].may_resend() && parsed[0].categories.is_empty());
    }

    #[test]
    fn may_replicate_is_a_write() {
        let reply = Value::Array(vec![entry(
            "x",
            1,
            &["readonly", "may_replicate"],
            vec![],
            vec![],
        )]);
        let parsed = parse_command_reply(&reply).unwrap();
        assert!(!parsed[0].may_resend() && parsed[0].writes());
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        for bad in [
            Value::Int(1),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![bulk("get")])]),
            Value::Array(vec![Value::Array(vec![bulk("get"), bulk("two")])]),
            Value::Array(vec![entry("get", 2, &[], vec![Value::Int(3)], vec![])]),
        ] {
            assert!(parse_command_reply(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_builtin_verdict_is_the_hot_path_lookup() {
        let pfcount = builtin_verdict(&[b"PFCOUNT", b"h"]);
        assert!(pfcount.resend && pfcount.reviewed && !pfcount.exclusive);
        let get = builtin_verdict(&[b"GET", b"k"]);
        assert!(get.resend && !get.reviewed);
        let select = builtin_verdict(&[b"SELECT", b"1"]);
        assert!(select.exclusive && !select.resend);
        let blpop = builtin_verdict(&[b"BLPOP", b"k", b"1"]);
        assert_eq!(blpop.blocks_for, Some(Some(Duration::from_secs(1))));
        let acl_reset = builtin_verdict(&[b"ACL", b"LOG", b"RESET"]);
        assert!(!acl_reset.resend && !acl_reset.reviewed);
    }
}
