//! `redis-db doctor`: the checks an operator would otherwise run by hand with `redis-cli`,
//! each ending in a verdict and, when it is not a pass, what to change.

use clap::{Args, ValueEnum};
use redis_db_config::{Config, Topology};
use redis_db_core::Error;
use serde::Serialize;

use crate::facts;
use crate::keepalive;
use crate::output::{self, Paint, Tone};
use crate::probe::{self, Survey};
use crate::settings::{self, Target};

/// Arguments of `redis-db doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    #[command(flatten)]
    target: Target,
    /// text: one verdict per check; json: the same as a document
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    format: DoctorFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DoctorFormat {
    Text,
    Json,
}

/// A check's outcome. `Skip` means it could not be verified from here (said why); it does not
/// fail the run, since nothing is known to be wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

/// One check, its findings and the fix.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub summary: String,
    pub findings: Vec<String>,
    pub fix: Option<String>,
}

impl Check {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            verdict: Verdict::Pass,
            summary: String::new(),
            findings: Vec::new(),
            fix: None,
        }
    }

    /// Records a finding; the worst verdict of its findings is the check's.
    fn found(&mut self, verdict: Verdict, finding: String) {
        self.verdict = match (self.verdict, verdict) {
            (Verdict::Fail, _) | (_, Verdict::Fail) => Verdict::Fail,
            (Verdict::Skip, _) | (_, Verdict::Skip) => Verdict::Skip,
            _ => Verdict::Pass,
        };
        self.findings.push(finding);
    }
}

/// Exit 0 when no check fails, 1 otherwise.
pub async fn run(args: DoctorArgs) -> u8 {
    let resolved = match settings::resolve_or_report(&args.target) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let config = probe::snapshot(resolved.config);
    let survey = probe::survey(&config).await;
    let checks = vec![
        databases_setting(&config, &survey),
        select_access(&config, &survey),
        keepalive(&config, &survey).await,
        cluster_numbers(&config, &survey).await,
    ];
    match args.format {
        DoctorFormat::Text => output::out(&text(&checks, Paint::stdout())),
        DoctorFormat::Json => {
            let json = serde_json::json!({ "checks": checks });
            output::out(&format!("{json:#}\n"));
        }
    }
    u8::from(checks.iter().any(|c| c.verdict == Verdict::Fail))
}

fn text(checks: &[Check], paint: Paint) -> String {
    let mut out = String::new();
    for check in checks {
        let (label, tone) = match check.verdict {
            Verdict::Pass => ("PASS", Tone::Good),
            Verdict::Fail => ("FAIL", Tone::Bad),
            Verdict::Skip => ("SKIP", Tone::Warn),
        };
        out.push_str(&format!(
            "{}  {:<18} {}\n",
            paint.tone(label, tone),
            check.name,
            check.summary
        ));
        for finding in &check.findings {
            out.push_str(&format!("      - {finding}\n"));
        }
        if let Some(fix) = &check.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    out
}

fn is_cluster(config: &Config, endpoint: &str) -> bool {
    let topology = match config.endpoint(endpoint) {
        Some(named) => &named.topology,
        None => &config.topology,
    };
    matches!(topology, Topology::Cluster(_))
}

/// The server's `databases` covers every configured number, on each non-cluster endpoint.
fn databases_setting(config: &Config, survey: &Survey) -> Check {
    let mut check = Check::new("databases setting");
    let mut out_of_range = false;
    for server in survey
        .servers
        .iter()
        .filter(|s| !is_cluster(config, &s.endpoint))
    {
        let who = format!("endpoint {} ({})", server.endpoint, server.address);
        match server.databases {
            Some(n) if n > server.highest_db => check.found(
                Verdict::Pass,
                format!("{who}: `databases {n}` covers db 0..={}", server.highest_db),
            ),
            Some(n) => {
                out_of_range = true;
                check.found(
                    Verdict::Fail,
                    format!(
                        "{who}: `databases {n}` but db {} is configured",
                        server.highest_db
                    ),
                );
            }
            None => check.found(
                Verdict::Skip,
                format!(
                    "{who}: cannot read `databases` ({})",
                    server
                        .error
                        .clone()
                        .or_else(|| server.unreadable.first().cloned())
                        .unwrap_or_else(|| "no answer".to_owned())
                ),
            ),
        }
    }
    // A rejected SELECT says the same even when CONFIG GET is not allowed.
    for error in survey.cores.iter().filter_map(|c| c.as_ref().err()) {
        if let Error::DatabaseOutOfRange { .. } = error {
            out_of_range = true;
            check.found(Verdict::Fail, error.to_string());
        }
    }
    check.summary = match check.verdict {
        Verdict::Pass if check.findings.is_empty() => {
            "no standalone or Sentinel endpoint".to_owned()
        }
        Verdict::Pass => "the server's `databases` covers every configured number".to_owned(),
        Verdict::Fail => "a configured number is beyond the server's `databases`".to_owned(),
        Verdict::Skip => "could not read the server's `databases` setting".to_owned(),
    };
    if out_of_range {
        check.fix = Some(format!(
            "raise `databases` in redis.conf (at least the highest db + 1) and restart the server, or renumber the databases; keep `max_databases` ({}) equal to it",
            config.max_databases
        ));
    } else if check.verdict == Verdict::Skip {
        check.fix = Some(
            "allow `CONFIG GET` for this user, or compare `redis-cli CONFIG GET databases` with the highest db by hand".to_owned(),
        );
    }
    check
}

/// The configured user can connect to and `SELECT` every database.
fn select_access(config: &Config, survey: &Survey) -> Check {
    let mut check = Check::new("select access");
    let user = config
        .connection
        .username
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let mut fixes: Vec<String> = Vec::new();
    // One line for every database that is fine: the failures are what the reader looks for.
    let mut answered: Vec<String> = Vec::new();
    for (group, core) in survey.groups.iter().zip(&survey.cores) {
        let owner = &config.databases[group.members[0]];
        match core {
            Ok(_) => answered.push(format!("{} (db {})", owner.name, owner.db)),
            Err(error @ Error::StillLoading { .. }) => {
                check.found(Verdict::Skip, error.to_string());
                push_once(&mut fixes, "the server is loading its dataset: run `redis-db wait-ready`, then `redis-db doctor` again".to_owned());
            }
            Err(error) => {
                check.found(Verdict::Fail, error.to_string());
                push_once(&mut fixes, fix_for(error, &user, owner.db));
            }
        }
    }
    if !answered.is_empty() {
        check.found(
            Verdict::Pass,
            format!("selected and answered: {}", answered.join(", ")),
        );
    }
    check.summary = match check.verdict {
        Verdict::Pass => format!("user `{user}` may SELECT every database"),
        Verdict::Fail => format!("user `{user}` cannot use every database"),
        Verdict::Skip => "could not be verified while the server is loading".to_owned(),
    };
    if !fixes.is_empty() {
        check.fix = Some(fixes.join("; "));
    }
    check
}

fn push_once(fixes: &mut Vec<String>, fix: String) {
    if !fixes.contains(&fix) {
        fixes.push(fix);
    }
}

fn fix_for(error: &Error, user: &str, db: u32) -> String {
    if probe::is_acl_denied(error) {
        return format!(
            "let the user select databases and run the application's commands, e.g. `ACL SETUSER {user} +select +ping`; verify with `ACL DRYRUN {user} SELECT {db}`"
        );
    }
    match error {
        Error::Authentication { .. } => "check the username and password (YAML, REDIS_URL, REDIS_USERNAME/REDIS_PASSWORD, --url)".to_owned(),
        Error::DatabaseOutOfRange { .. } => "raise `databases` in redis.conf, or renumber the database".to_owned(),
        Error::Tls { .. } => "check the endpoint's `tls:` keys: `ca_file` must hold the CA that signed the server's certificate, the certificate must name the host you connect to, and a server with `tls-auth-clients yes` needs `cert_file` + `key_file`".to_owned(),
        Error::Command { .. } => format!(
            "let the user select databases and run the application's commands, e.g. `ACL SETUSER {user} +select +ping`; verify with `ACL DRYRUN {user} SELECT {db}`"
        ),
        _ => "make sure the server runs and is reachable at the configured address (host/port, REDIS_URL, --url)".to_owned(),
    }
}

/// Keepalive as configured, compared with what the SDK's socket to each server shows.
async fn keepalive(config: &Config, survey: &Survey) -> Check {
    let mut check = Check::new("keepalive");
    let k = config.keepalive;
    let configured = format!(
        "idle {} s, interval {} s, count {}",
        k.idle.as_secs_f64(),
        k.interval.as_secs_f64(),
        k.count
    );
    for server in &survey.servers {
        let who = format!("endpoint {}", server.endpoint);
        let Some(handle) = survey.handle_on(config, &server.endpoint) else {
            check.found(Verdict::Skip, format!("{who}: no connection to look at"));
            continue;
        };
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("INFO");
        let local = match handle.query::<String>(&cmd).await {
            Ok(info) => keepalive::client_addr(&info),
            Err(e) => {
                check.found(Verdict::Skip, format!("{who}: CLIENT INFO: {e}"));
                continue;
            }
        };
        let Some(local) = local else {
            check.found(Verdict::Skip, format!("{who}: CLIENT INFO has no addr"));
            continue;
        };
        match keepalive::socket_keepalive(&local) {
            Ok(timer) if keepalive::carries(timer, k.idle) => check.found(
                Verdict::Pass,
                format!(
                    "{who}: socket {local} has its keepalive timer at {:.0} s (idle {} s)",
                    timer.as_secs_f64(),
                    k.idle.as_secs_f64()
                ),
            ),
            Ok(timer) => check.found(
                Verdict::Fail,
                format!(
                    "{who}: socket {local} has its keepalive timer at {:.0} s, longer than the configured idle {} s",
                    timer.as_secs_f64(),
                    k.idle.as_secs_f64()
                ),
            ),
            Err(why) => check.found(Verdict::Skip, format!("{who}: {why}")),
        }
    }
    check.summary = match check.verdict {
        Verdict::Pass => format!("sockets carry the configured keepalive ({configured})"),
        Verdict::Fail => format!("a socket does not carry the configured keepalive ({configured})"),
        Verdict::Skip => {
            format!("configured: {configured}; the sockets could not be inspected here")
        }
    };
    check.fix = match check.verdict {
        Verdict::Fail => Some("the SDK sets TCP keepalive on every connection it opens: make sure nothing in between (a proxy, a sidecar) terminates the TCP connection, and report it if not".to_owned()),
        Verdict::Skip => Some("inspect the sockets by hand: `ss -tno state established dst HOST:PORT` shows `timer:(keepalive,..)`".to_owned()),
        Verdict::Pass => None,
    };
    check
}

/// On a cluster endpoint every database is db 0 unless the servers serve numbered databases
/// in cluster mode (`numbered_databases: true`, Valkey 9+ with `cluster-databases`).
async fn cluster_numbers(config: &Config, survey: &Survey) -> Check {
    let mut check = Check::new("cluster databases");
    let mut fix = None;
    for server in &survey.servers {
        let who = format!("endpoint {}", server.endpoint);
        let topology = match config.endpoint(&server.endpoint) {
            Some(named) => &named.topology,
            None => &config.topology,
        };
        match topology {
            Topology::Cluster(cluster) if !cluster.numbered_databases => {
                if server.highest_db == 0 {
                    check.found(Verdict::Pass, format!("{who}: every database is db 0"));
                } else {
                    check.found(
                        Verdict::Fail,
                        format!(
                            "{who}: db {} on a cluster without numbered databases",
                            server.highest_db
                        ),
                    );
                    fix = Some("give each database its own endpoint with db 0, or set `numbered_databases: true` on servers that support it (Valkey 9+, `cluster-databases`)".to_owned());
                }
                if server.cluster_enabled == Some(false) {
                    check.found(
                        Verdict::Fail,
                        format!(
                            "{who}: configured as `cluster:` but the server is not in cluster mode"
                        ),
                    );
                    fix = Some("configure this endpoint as a standalone server (`url:` or `host`/`port`), or point `cluster.nodes` at cluster nodes".to_owned());
                }
            }
            Topology::Cluster(_) => {
                let Some(handle) = survey.handle_on(config, &server.endpoint) else {
                    check.found(Verdict::Skip, format!("{who}: not reachable"));
                    continue;
                };
                let highest = server.highest_db;
                match facts::config_get(&handle, "cluster-databases").await {
                    Ok(Some(n)) if n.parse::<u32>().is_ok_and(|n| n > highest) => check.found(
                        Verdict::Pass,
                        format!("{who}: `cluster-databases {n}` covers db 0..={highest}"),
                    ),
                    Ok(Some(n)) => {
                        check.found(
                            Verdict::Fail,
                            format!(
                                "{who}: `cluster-databases {n}` but db {highest} is configured"
                            ),
                        );
                        fix = Some(format!(
                            "start every node with `--cluster-databases {}` or more",
                            highest + 1
                        ));
                    }
                    Ok(None) => {
                        check.found(
                            Verdict::Fail,
                            format!("{who}: `numbered_databases: true`, but the servers have no `cluster-databases` setting (numbered databases in cluster mode need Valkey 9+)"),
                        );
                        fix = Some("set `numbered_databases: false` and give each database its own endpoint with db 0".to_owned());
                    }
                    Err(e) => check.found(
                        Verdict::Skip,
                        format!("{who}: cannot read `cluster-databases` ({e})"),
                    ),
                }
            }
            _ if server.cluster_enabled == Some(true) && server.highest_db > 0 => {
                check.found(
                    Verdict::Fail,
                    format!("{who}: the server is in cluster mode, which serves db 0 only, but db {} is configured", server.highest_db),
                );
                fix = Some("configure the endpoint with `cluster:` and db 0 per database (own endpoint each), or use a server in standalone mode".to_owned());
            }
            _ => {}
        }
    }
    check.summary = match check.verdict {
        Verdict::Pass if check.findings.is_empty() => "no cluster endpoint".to_owned(),
        Verdict::Pass => "cluster endpoints use only the numbers their servers serve".to_owned(),
        Verdict::Fail => "a cluster endpoint uses a number its servers do not serve".to_owned(),
        Verdict::Skip => "could not be verified".to_owned(),
    };
    check.fix = fix;
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_finding_decides() {
        let mut check = Check::new("x");
        check.found(Verdict::Pass, "a".into());
        check.found(Verdict::Skip, "b".into());
        assert_eq!(check.verdict, Verdict::Skip);
        check.found(Verdict::Fail, "c".into());
        check.found(Verdict::Pass, "d".into());
        assert_eq!(check.verdict, Verdict::Fail);
    }

    #[test]
    fn a_tls_refusal_points_at_the_tls_keys() {
        let refused = Error::Tls {
            database: "main".to_owned(),
            db: 0,
            address: "127.0.0.1:6380".to_owned(),
            detail: "invalid peer certificate: UnknownIssuer".to_owned(),
        };
        let fix = fix_for(&refused, "default", 0);
        assert!(fix.contains("`tls:`") && fix.contains("ca_file"), "{fix}");
    }
}
