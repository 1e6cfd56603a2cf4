//! Typed reading of one YAML value, with an error that names the key and shows a fix.

use std::time::Duration;

use crate::error::Sink;
use crate::locate::KeyPath;
use crate::model::{LogLevel, NodeAddress, ReadFrom};
use crate::node::Node;
use crate::read::section;

/// One value with what is needed to report on it.
pub(crate) struct Value<'a> {
    /// How messages name it, e.g. "`timeout_seconds` of database `audit`".
    pub label: &'a str,
    pub key: &'a str,
    pub path: &'a KeyPath,
    pub node: &'a Node,
}

impl Value<'_> {
    fn wrong(&self, sink: &mut Sink<'_>, expected: &str, example: &str) {
        sink.push(
            sink.value(self.path),
            format!(
                "{} must be {expected}, found {}",
                self.label,
                self.node.describe()
            ),
            format!("write e.g. `{}: {example}`", self.key),
        );
    }

    pub fn subsection(&self, valid: &[&str], sink: &mut Sink<'_>) -> Vec<(&str, KeyPath, &Node)> {
        match self.node {
            Node::Map(map) => section(map, self.path, self.label, valid, sink),
            _ => {
                self.wrong(
                    sink,
                    &format!("a mapping with keys {}", valid.join(", ")),
                    "{ ... }",
                );
                Vec::new()
            }
        }
    }

    pub fn non_empty_string(&self, sink: &mut Sink<'_>) -> Option<String> {
        match self.node {
            Node::Str(s) if !s.trim().is_empty() => Some(s.clone()),
            Node::Str(_) => {
                sink.push(
                    sink.value(self.path),
                    format!("{} is empty", self.label),
                    format!("give `{}` a value or remove it", self.key),
                );
                None
            }
            _ => {
                self.wrong(sink, "a string", "\"...\"");
                None
            }
        }
    }

    /// `Some(None)` for an explicit `null`.
    pub fn nullable_string(&self, sink: &mut Sink<'_>) -> Option<Option<String>> {
        match self.node {
            Node::Null => Some(None),
            Node::Str(s) => Some(Some(s.clone())),
            _ => {
                self.wrong(sink, "a string or null", "\"...\"");
                None
            }
        }
    }

    pub fn boolean(&self, sink: &mut Sink<'_>) -> Option<bool> {
        match self.node {
            Node::Bool(b) => Some(*b),
            _ => {
                self.wrong(sink, "true or false", "false");
                None
            }
        }
    }

    pub fn log_level(&self, sink: &mut Sink<'_>) -> Option<LogLevel> {
        const EXPECTED: &str = "one of TRACE, DEBUG, INFO, WARN, WARNING, ERROR";
        match self.node {
            Node::Str(s) => {
                let level = s.parse().ok();
                if level.is_none() {
                    sink.push(
                        sink.value(self.path),
                        format!("{} must be {EXPECTED}, found `{s}`", self.label),
                        "write e.g. `log_level: INFO`",
                    );
                }
                level
            }
            _ => {
                self.wrong(sink, EXPECTED, "INFO");
                None
            }
        }
    }

    pub fn read_from(&self, sink: &mut Sink<'_>) -> Option<ReadFrom> {
        const EXPECTED: &str = "`master` or `replica`";
        match self.node {
            Node::Str(s) => {
                let read_from = s.parse().ok();
                if read_from.is_none() {
                    sink.push(
                        sink.value(self.path),
                        format!("{} must be {EXPECTED}, found `{s}`", self.label),
                        "write `read_from: master` (everything on the master) or `read_from: replica` (read-only commands on replicas)",
                    );
                }
                read_from
            }
            _ => {
                self.wrong(sink, EXPECTED, "master");
                None
            }
        }
    }

    /// A non-empty list of `host:port` strings. Every bad entry is reported.
    pub fn nodes(&self, sink: &mut Sink<'_>, example_port: u16) -> Option<Vec<NodeAddress>> {
        let example = format!(
            "[\"127.0.0.1:{example_port}\", \"127.0.0.1:{}\"]",
            example_port + 1
        );
        let Node::Seq(items) = self.node else {
            self.wrong(sink, "a list of `host:port` strings", &example);
            return None;
        };
        if items.is_empty() {
            sink.push(
                sink.value(self.path),
                format!("{} is empty", self.label),
                format!("list at least one node, e.g. `{}: {example}`", self.key),
            );
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let parsed = match item {
                Node::Str(s) => s.parse::<NodeAddress>(),
                other => Err(format!("found {}", other.describe())),
            };
            match parsed {
                Ok(node) => out.push(node),
                Err(why) => {
                    ok = false;
                    sink.push(
                        sink.value(self.path),
                        format!(
                            "entry {} of {} is not a `host:port` address: {why}",
                            i + 1,
                            self.label
                        ),
                        format!(
                            "write each node as a quoted `host:port` string, e.g. \"127.0.0.1:{example_port}\" (IPv6: \"[::1]:{example_port}\")"
                        ),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    pub fn integer(&self, sink: &mut Sink<'_>, example: &str) -> Option<i128> {
        match self.node {
            Node::Int(i) => Some(*i),
            _ => {
                self.wrong(sink, "a whole number", example);
                None
            }
        }
    }

    /// A size that must be at least 1.
    pub fn positive<T: TryFrom<i128>>(&self, sink: &mut Sink<'_>) -> Option<T> {
        let i = self.integer(sink, "5")?;
        let fitted = if i > 0 { T::try_from(i).ok() } else { None };
        if fitted.is_none() {
            sink.push(
                sink.value(self.path),
                format!("{} must be a positive whole number, found {i}", self.label),
                format!("use a value of at least 1 for `{}`", self.key),
            );
        }
        fitted
    }

    /// A count where 0 is meaningful (`retry_attempts: 0` = no retries).
    pub fn count(&self, sink: &mut Sink<'_>) -> Option<u32> {
        let i = self.integer(sink, "3")?;
        let fitted = u32::try_from(i).ok();
        if fitted.is_none() {
            sink.push(
                sink.value(self.path),
                format!(
                    "{} must be 0 or a positive whole number, found {i}",
                    self.label
                ),
                format!("use 0 (none) or more for `{}`", self.key),
            );
        }
        fitted
    }

    pub fn port(&self, sink: &mut Sink<'_>) -> Option<u16> {
        let i = self.integer(sink, "6379")?;
        let fitted = u16::try_from(i).ok().filter(|p| *p > 0);
        if fitted.is_none() {
            sink.push(
                sink.value(self.path),
                format!(
                    "{} must be a TCP port between 1 and 65535, found {i}",
                    self.label
                ),
                "write e.g. `port: 6379`",
            );
        }
        fitted
    }

    /// Seconds (integer or decimal) as a duration; `Ok(None)` for exactly 0.
    fn seconds(&self, sink: &mut Sink<'_>, zero_help: &str) -> Option<Option<Duration>> {
        let secs = match self.node {
            Node::Int(i) => *i as f64,
            Node::Float(f) => *f,
            _ => {
                self.wrong(sink, "a number of seconds", "5");
                return None;
            }
        };
        if secs == 0.0 {
            return Some(None);
        }
        // `try_from_secs_f64` rejects NaN, infinities, negatives and overflow without panicking.
        match Duration::try_from_secs_f64(secs) {
            Ok(d) if secs > 0.0 && !d.is_zero() => Some(Some(d)),
            _ => {
                sink.push(
                    sink.value(self.path),
                    format!(
                        "{} must be a positive, finite number of seconds, found {secs}",
                        self.label
                    ),
                    zero_help.to_owned(),
                );
                None
            }
        }
    }

    pub fn duration(&self, sink: &mut Sink<'_>) -> Option<Duration> {
        let help = format!("use a number of seconds greater than 0 for `{}`", self.key);
        match self.seconds(sink, &help)? {
            Some(d) => Some(d),
            None => {
                sink.push(
                    sink.value(self.path),
                    format!("{} must be greater than 0, found 0", self.label),
                    help,
                );
                None
            }
        }
    }

    /// `0` switches the feature off (`health_check_interval: 0`).
    pub fn duration_or_off(&self, sink: &mut Sink<'_>) -> Option<Option<Duration>> {
        let help = format!(
            "use a number of seconds greater than 0 for `{}`, or 0 to switch it off",
            self.key
        );
        self.seconds(sink, &help)
    }
}
