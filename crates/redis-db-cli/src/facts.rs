//! What a server says about itself (`INFO`, `CONFIG GET`), asked through an SDK handle so
//! that credentials, TLS, Sentinel and Cluster routing are the application's own.

use std::collections::HashMap;

use redis_db_core::{Error, Handle};
use serde::Serialize;

/// What one endpoint's server says about itself.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFacts {
    #[serde(skip)]
    pub endpoint: String,
    pub address: String,
    /// Why nothing could be asked, when no database on it connected.
    pub error: Option<String>,
    pub version: Option<String>,
    pub role: Option<String>,
    pub loading: Option<bool>,
    /// The server's `databases` setting.
    pub databases: Option<u32>,
    /// The highest number configured on this endpoint.
    pub highest_db: u32,
    /// `max_databases` of the config, which should equal `databases`.
    pub max_databases: u32,
    pub notify_keyspace_events: Option<String>,
    pub cluster_enabled: Option<bool>,
    pub cluster_state: Option<String>,
    /// What could not be read (`CONFIG GET` refused by the ACL, ...).
    pub unreadable: Vec<String>,
}

/// `INFO` and `CONFIG GET`, each optional: a restricted ACL user may read some and not others.
pub async fn read(handle: &Handle, facts: &mut ServerFacts) {
    match handle.query::<redis::Value>(&redis::cmd("INFO")).await {
        Ok(reply) => {
            let info = text_of(reply);
            let field = |name: &str| info_field(&info, name);
            facts.version = field("valkey_version").or_else(|| field("redis_version"));
            facts.role = field("role");
            facts.loading = field("loading").map(|v| v == "1");
            facts.cluster_enabled = field("cluster_enabled").map(|v| v == "1");
        }
        Err(e) => facts.unreadable.push(format!("INFO: {e}")),
    }
    match config_get(handle, "databases").await {
        Ok(value) => facts.databases = value.and_then(|v| v.parse().ok()),
        Err(e) => facts.unreadable.push(format!("CONFIG GET databases: {e}")),
    }
    match config_get(handle, "notify-keyspace-events").await {
        Ok(value) => facts.notify_keyspace_events = value,
        Err(e) => facts
            .unreadable
            .push(format!("CONFIG GET notify-keyspace-events: {e}")),
    }
    if facts.cluster_enabled == Some(true) {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("INFO");
        match handle.query::<redis::Value>(&cmd).await {
            Ok(reply) => facts.cluster_state = info_field(&text_of(reply), "cluster_state"),
            Err(e) => facts.unreadable.push(format!("CLUSTER INFO: {e}")),
        }
    }
}

/// The text of an `INFO`-like reply. Through a cluster endpoint the SDK asks every node and
/// answers a map of node to text: the first node's stands for the rest.
pub fn text_of(reply: redis::Value) -> String {
    use redis::Value;
    match reply {
        Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => text,
        Value::Map(pairs) => pairs
            .into_iter()
            .next()
            .map(|(_, value)| text_of(value))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// One parameter's value; `Ok(None)` when the server does not know it.
pub async fn config_get(handle: &Handle, name: &str) -> Result<Option<String>, Error> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg(name);
    // RESP2 answers a flat list, RESP3 a map: both read as a map.
    let map: HashMap<String, String> = handle.query(&cmd).await?;
    Ok(map.get(name).cloned())
}

/// A `field:value` line of an `INFO` reply.
pub fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read_by_exact_name() {
        let info = "# Server\r\nredis_version:7.0.15\r\nloading:0\r\nloading_eta_seconds:3\r\n";
        assert_eq!(info_field(info, "redis_version").as_deref(), Some("7.0.15"));
        assert_eq!(info_field(info, "loading").as_deref(), Some("0"));
        assert_eq!(info_field(info, "role"), None);
    }
}
