//! Asking the servers, through the SDK's own runtime.
//!
//! `Core::connect` is all or nothing: one unreachable database would hide the state of every
//! other. So each pool target (a database and its aliases) gets a core of its own, built from
//! the same resolved config with only that target's databases; a connected core then gives
//! the SDK's own health report, and a failed one the SDK's own error.

use redis_db_config::Config;
use redis_db_core::{CircuitState, Core, Error, Handle, HealthState};

use crate::facts::{self, ServerFacts};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The databases that share one pool target: an owner and its aliases, in file order.
#[derive(Debug, Clone)]
pub struct Group {
    /// Positions in `config.databases`.
    pub members: Vec<usize>,
}

/// Groups `config.databases` by the database whose number (and pool) they use.
pub fn groups(config: &Config) -> Vec<Group> {
    let mut owners: Vec<&str> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for (position, database) in config.databases.iter().enumerate() {
        let owner = database.target(&config.databases).name.as_str();
        match owners.iter().position(|o| *o == owner) {
            Some(i) => groups[i].members.push(position),
            None => {
                owners.push(owner);
                groups.push(Group {
                    members: vec![position],
                });
            }
        }
    }
    groups
}

/// `config` with only `group`'s databases.
fn group_config(config: &Config, group: &Group) -> Config {
    let mut sub = config.clone();
    sub.databases = group
        .members
        .iter()
        .map(|&i| config.databases[i].clone())
        .collect();
    sub
}

/// One look, no waiting: `status` and `doctor` report a loading or unreachable server at once
/// (as the SDK's health check does, with one ping) instead of retrying it for seconds.
pub fn snapshot(mut config: Config) -> Config {
    config.retry.attempts = 0;
    config.readiness.max_wait = config.readiness.poll_interval;
    config.health_check_interval = None;
    config
}

/// Connects every group at once; results in the order of `groups`.
pub async fn connect_groups(config: &Config, groups: &[Group]) -> Vec<Result<Core, Error>> {
    // Concurrent on this task: the connects wait on the network, not on a CPU.
    futures_util::future::join_all(
        groups
            .iter()
            .map(|group| Core::connect(group_config(config, group))),
    )
    .await
}

/// The state the SDK's health check would give a database whose connect failed: loading is
/// degraded, everything else failed.
pub fn state_of(error: &Error) -> HealthState {
    match error {
        Error::StillLoading { .. } => HealthState::Degraded,
        _ => HealthState::Failed,
    }
}

/// The server refused the user a command the connect needs (`SELECT`, `PING`): an ACL matter,
/// which the SDK reports as a failed connection. Waiting will not cure it.
pub fn is_acl_denied(error: &Error) -> bool {
    let text = match error {
        Error::Unreachable { source, .. } | Error::Command { source, .. } => source.to_string(),
        _ => return false,
    };
    text.contains("NOPERM") || text.contains("no permissions")
}

/// One database's row.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseRow {
    #[serde(skip)]
    pub name: String,
    pub db: u32,
    pub alias_of: Option<String>,
    pub endpoint: String,
    pub address: String,
    pub state: HealthState,
    pub latency_ms: Option<f64>,
    /// `DBSIZE` of the database's number (an alias shows its target's).
    pub keys: Option<u64>,
    pub loading: Option<bool>,
    pub circuit: Option<CircuitState>,
    /// Why it is not healthy.
    pub detail: Option<String>,
}

/// Every database's row and every endpoint's facts.
#[derive(Debug, Serialize)]
pub struct Survey {
    #[serde(serialize_with = "by_name")]
    pub databases: Vec<DatabaseRow>,
    #[serde(serialize_with = "servers_by_name")]
    pub servers: Vec<ServerFacts>,
    #[serde(skip)]
    pub groups: Vec<Group>,
    #[serde(skip)]
    pub cores: Vec<Result<Core, Error>>,
}

fn by_name<S: Serializer>(rows: &[DatabaseRow], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(rows.len()))?;
    for row in rows {
        map.serialize_entry(&row.name, row)?;
    }
    map.end()
}

fn servers_by_name<S: Serializer>(servers: &[ServerFacts], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(servers.len()))?;
    for server in servers {
        map.serialize_entry(&server.endpoint, server)?;
    }
    map.end()
}

impl Survey {
    /// The handle of a connected database on `endpoint`, to ask its server.
    pub fn handle_on(&self, config: &Config, endpoint: &str) -> Option<Handle> {
        self.groups
            .iter()
            .zip(&self.cores)
            .find_map(|(group, core)| {
                let owner = &config.databases[group.members[0]];
                let core = core.as_ref().ok()?;
                (config.endpoint_name_of(owner) == endpoint).then(|| core.handle(0))
            })
    }
}

/// Connects, checks health, counts keys and reads each endpoint's facts.
pub async fn survey(config: &Config) -> Survey {
    let groups = groups(config);
    let cores = connect_groups(config, &groups).await;
    let mut survey = Survey {
        databases: Vec::new(),
        servers: Vec::new(),
        groups,
        cores,
    };
    survey.servers = servers(config, &survey).await;
    let mut rows: Vec<Option<DatabaseRow>> = config.databases.iter().map(|_| None).collect();
    for (group, core) in survey.groups.iter().zip(&survey.cores) {
        for row in group_rows(config, group, core, &survey.servers).await {
            if let Some(position) = config.databases.iter().position(|d| d.name == row.name) {
                rows[position] = Some(row);
            }
        }
    }
    survey.databases = rows.into_iter().flatten().collect();
    survey
}

async fn group_rows(
    config: &Config,
    group: &Group,
    core: &Result<Core, Error>,
    servers: &[ServerFacts],
) -> Vec<DatabaseRow> {
    let report = match core {
        Ok(core) => Some(core.health().await),
        Err(_) => None,
    };
    let keys = match core {
        Ok(core) => core
            .handle(0)
            .query::<u64>(&redis::cmd("DBSIZE"))
            .await
            .ok(),
        Err(_) => None,
    };
    group
        .members
        .iter()
        .map(|&position| {
            let database = &config.databases[position];
            let (connection, topology) = config.endpoint_of(database);
            let endpoint = config.endpoint_name_of(database).to_owned();
            let server_loading = servers
                .iter()
                .find(|s| s.endpoint == endpoint)
                .and_then(|s| s.loading);
            let mut row = DatabaseRow {
                name: database.name.clone(),
                db: database.db,
                alias_of: database.alias_of.clone(),
                endpoint,
                address: topology.display_endpoint(connection),
                state: HealthState::Failed,
                latency_ms: None,
                keys,
                loading: None,
                circuit: None,
                detail: None,
            };
            match (
                core,
                report.as_ref().and_then(|r| r.database(&database.name)),
            ) {
                (Ok(_), Some(health)) => {
                    row.state = health.state;
                    row.latency_ms = health.latency_ms;
                    row.circuit = Some(health.circuit);
                    row.detail.clone_from(&health.detail);
                    row.loading = server_loading;
                }
                (Err(error), _) => {
                    row.state = state_of(error);
                    row.loading = matches!(error, Error::StillLoading { .. }).then_some(true);
                    row.detail = Some(error.to_string());
                }
                (Ok(_), None) => {
                    row.detail = Some("missing from the health report".to_owned());
                }
            }
            row
        })
        .collect()
}

/// The endpoints in use, in the order their first database appears.
pub fn endpoints_in_use(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for database in &config.databases {
        let name = config.endpoint_name_of(database);
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

async fn servers(config: &Config, survey: &Survey) -> Vec<ServerFacts> {
    let mut out = Vec::new();
    for endpoint in endpoints_in_use(config) {
        let on_it: Vec<&redis_db_config::Database> = config
            .databases
            .iter()
            .filter(|d| config.endpoint_name_of(d) == endpoint)
            .collect();
        let (connection, topology) = config.endpoint_of(on_it[0]);
        let mut facts = ServerFacts {
            endpoint: endpoint.clone(),
            address: topology.display_endpoint(connection),
            highest_db: on_it.iter().map(|d| d.db).max().unwrap_or(0),
            max_databases: config.max_databases,
            ..ServerFacts::default()
        };
        match survey.handle_on(config, &endpoint) {
            Some(handle) => facts::read(&handle, &mut facts).await,
            None => {
                // Every database on it failed: the first failure says why.
                let failures: Vec<&Error> = survey
                    .groups
                    .iter()
                    .zip(&survey.cores)
                    .filter(|(g, _)| {
                        config.endpoint_name_of(&config.databases[g.members[0]]) == endpoint
                    })
                    .filter_map(|(_, core)| core.as_ref().err())
                    .collect();
                facts.error = failures.first().map(ToString::to_string);
                if failures
                    .iter()
                    .any(|e| matches!(e, Error::StillLoading { .. }))
                {
                    facts.loading = Some(true);
                }
            }
        }
        out.push(facts);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_join_their_targets_group() {
        let config = redis_db_config::parse_str(
            "redis_databases:\n  main:\n    db: 0\n  workflows:\n    db: 7\n  monitoring:\n    db: 7\n    alias_of: workflows\n",
            "x.yaml",
        )
        .unwrap();
        let groups = groups(&config);
        let members: Vec<Vec<usize>> = groups.iter().map(|g| g.members.clone()).collect();
        assert_eq!(members, vec![vec![0], vec![1, 2]]);
        let sub = group_config(&config, &groups[1]);
        let names: Vec<&str> = sub.databases.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["workflows", "monitoring"]);
    }
}
