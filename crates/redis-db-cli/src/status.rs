//! `redis-db status`: every database's state now, and the server facts that explain it.

use clap::{Args, ValueEnum};
use redis_db_core::{CircuitState, HealthState};
use serde::Serialize;

use crate::facts::ServerFacts;
use crate::output::{self, Cell, Paint, Tone};
use crate::probe::{self, DatabaseRow, Survey};
use crate::settings::{self, Target};

/// Arguments of `redis-db status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// table: aligned, for people; json: `{"databases": {"<name>": {"db": n, "state": ..}}}`
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    format: StatusFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StatusFormat {
    Table,
    Json,
}

/// Exit 0 when every database is healthy, 1 when any is degraded (and none failed), 2 when
/// any failed.
pub async fn run(args: StatusArgs) -> u8 {
    let resolved = match settings::resolve_or_report(&args.target) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let config = probe::snapshot(resolved.config);
    let survey = probe::survey(&config).await;
    let source = Source {
        file: resolved.file.display().to_string(),
        overlay: resolved.overlay.map(|p| p.display().to_string()),
    };
    match args.format {
        StatusFormat::Table => {
            output::out(&table(&survey, Paint::stdout()));
            output::out(&format!("\n{}\n", source.line()));
        }
        StatusFormat::Json => match serde_json::to_string_pretty(&Json {
            config: &source,
            survey: &survey,
        }) {
            Ok(json) => output::out(&format!("{json}\n")),
            Err(e) => {
                output::err(&format!("redis-db: cannot render JSON: {e}\n"));
                return crate::EXIT_INTERNAL;
            }
        },
    }
    exit_code(&survey.databases)
}

/// Which files the answer is for.
#[derive(Debug, Serialize)]
struct Source {
    file: String,
    overlay: Option<String>,
}

impl Source {
    fn line(&self) -> String {
        match &self.overlay {
            Some(overlay) => format!("config: {} with REDIS_DB_CONFIG {overlay}", self.file),
            None => format!("config: {}", self.file),
        }
    }
}

#[derive(Serialize)]
struct Json<'a> {
    config: &'a Source,
    #[serde(flatten)]
    survey: &'a Survey,
}

fn exit_code(rows: &[DatabaseRow]) -> u8 {
    if rows.iter().any(|r| r.state == HealthState::Failed) {
        2
    } else if rows.iter().any(|r| r.state == HealthState::Degraded) {
        1
    } else {
        0
    }
}

fn state_cell(state: HealthState) -> Cell {
    let (text, tone) = match state {
        HealthState::Healthy => ("healthy", Tone::Good),
        HealthState::Degraded => ("degraded", Tone::Warn),
        HealthState::Failed => ("failed", Tone::Bad),
    };
    Cell::new(text).tone(tone)
}

fn circuit_cell(circuit: Option<CircuitState>) -> Cell {
    match circuit {
        Some(CircuitState::Closed) => Cell::new("closed"),
        Some(CircuitState::Open) => Cell::new("open").tone(Tone::Bad),
        Some(CircuitState::HalfOpen) => Cell::new("half-open").tone(Tone::Warn),
        None => Cell::new("-"),
    }
}

fn yes_no(value: Option<bool>) -> Cell {
    match value {
        Some(true) => Cell::new("yes").tone(Tone::Warn),
        Some(false) => Cell::new("no"),
        None => Cell::new("-"),
    }
}

fn table(survey: &Survey, paint: Paint) -> String {
    let rows: Vec<Vec<Cell>> = survey
        .databases
        .iter()
        .map(|r| {
            vec![
                Cell::new(&r.name),
                Cell::new(r.db.to_string()).right(),
                Cell::new(r.alias_of.as_deref().unwrap_or("-")),
                Cell::new(&r.endpoint),
                state_cell(r.state),
                Cell::new(r.latency_ms.map_or_else(|| "-".to_owned(), output::millis)).right(),
                Cell::new(r.keys.map_or_else(|| "-".to_owned(), |k| k.to_string())).right(),
                yes_no(r.loading),
                circuit_cell(r.circuit),
            ]
        })
        .collect();
    let mut out = output::table(
        &[
            "DATABASE", "DB", "ALIAS OF", "ENDPOINT", "STATE", "LATENCY", "KEYS", "LOADING",
            "CIRCUIT",
        ],
        &rows,
        paint,
    );
    for row in &survey.databases {
        // Nothing on the endpoint answered: its one reason is shown with the endpoint below,
        // instead of once per database.
        let endpoint_down = survey
            .servers
            .iter()
            .any(|s| s.endpoint == row.endpoint && s.error.is_some());
        // An alias shares its target's connection, and so its target's reason.
        if endpoint_down || row.alias_of.is_some() {
            continue;
        }
        if let Some(detail) = &row.detail {
            out.push_str(&format!("{}: {detail}\n", row.name));
        }
    }
    for server in &survey.servers {
        out.push('\n');
        out.push_str(&server_facts(server, paint));
    }
    out
}

fn server_facts(s: &ServerFacts, paint: Paint) -> String {
    let mut out = paint.bold(&format!("endpoint {} ({})", s.endpoint, s.address));
    out.push('\n');
    if let Some(error) = &s.error {
        out.push_str(&format!("  no database answered: {error}\n"));
        return out;
    }
    let unknown = || "unknown".to_owned();
    out.push_str(&format!(
        "  server:                 version {}, role {}\n",
        s.version.clone().unwrap_or_else(unknown),
        s.role.clone().unwrap_or_else(unknown)
    ));
    let databases = match s.databases {
        Some(n) if n > s.highest_db => paint.tone(
            &format!("{n} (highest db used: {})", s.highest_db),
            Tone::Good,
        ),
        Some(n) => paint.tone(
            &format!(
                "{n}, but db {} is configured: raise `databases` in redis.conf",
                s.highest_db
            ),
            Tone::Bad,
        ),
        None => format!("unknown (highest db used: {})", s.highest_db),
    };
    out.push_str(&format!("  databases:              {databases}\n"));
    if s.databases.is_some_and(|n| n != s.max_databases) {
        out.push_str(&format!(
            "  max_databases (YAML):   {} (differs from the server's setting)\n",
            s.max_databases
        ));
    }
    let events = match s.notify_keyspace_events.as_deref() {
        Some("") => "\"\" (keyspace notifications off)".to_owned(),
        Some(flags) => format!("\"{flags}\""),
        None => unknown(),
    };
    out.push_str(&format!("  notify-keyspace-events: {events}\n"));
    let cluster = match (s.cluster_enabled, &s.cluster_state) {
        (Some(false), _) => "disabled".to_owned(),
        (Some(true), Some(state)) => format!("enabled, cluster_state:{state}"),
        (Some(true), None) => "enabled, state unknown".to_owned(),
        (None, _) => unknown(),
    };
    out.push_str(&format!("  cluster:                {cluster}\n"));
    if s.loading == Some(true) {
        out.push_str("  loading:                yes (the dataset is being loaded)\n");
    }
    for what in &s.unreadable {
        out.push_str(&format!("  unreadable:             {what}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: HealthState) -> DatabaseRow {
        DatabaseRow {
            name: "main".to_owned(),
            db: 0,
            alias_of: None,
            endpoint: "default".to_owned(),
            address: "redis://h:1".to_owned(),
            state,
            latency_ms: None,
            keys: None,
            loading: None,
            circuit: None,
            detail: None,
        }
    }

    #[test]
    fn worst_state_decides_the_exit_code() {
        use HealthState::*;
        assert_eq!(exit_code(&[row(Healthy), row(Healthy)]), 0);
        assert_eq!(exit_code(&[row(Healthy), row(Degraded)]), 1);
        assert_eq!(exit_code(&[row(Degraded), row(Failed)]), 2);
    }
}
