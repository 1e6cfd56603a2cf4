//! `redis-db wait-ready`: for container entrypoints and init containers, which used to loop
//! over `redis-cli PING`. Each round is the SDK's own connect (handshake, `SELECT`, readiness
//! wait on `LOADING`), so "ready" here means the application's `connect()` will succeed.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;
use redis_db_config::Config;
use redis_db_core::Error;

use crate::output;
use crate::probe::{self, Group};
use crate::settings::{self, Target};

/// The longest one round waits on a loading server before the progress line is redrawn.
const ROUND: Duration = Duration::from_secs(1);

/// Arguments of `redis-db wait-ready`.
#[derive(Args, Debug)]
pub struct WaitArgs {
    #[command(flatten)]
    target: Target,
    /// Give up after this many seconds [default: readiness.max_wait of the config]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    timeout: Option<Duration>,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds, e.g. 30 or 2.5".to_owned())?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a positive number of seconds".to_owned())
}

/// Errors that waiting cannot cure: reported at once instead of after the timeout.
fn is_permanent(error: &Error) -> bool {
    probe::is_acl_denied(error)
        || matches!(
            error,
            Error::Authentication { .. }
                | Error::DatabaseOutOfRange { .. }
                | Error::Config(_)
                | Error::Command { .. }
                | Error::Tls { .. }
        )
}

/// One round's connect settings: no retries of its own (the rounds are the retries), and no
/// wait longer than the time left.
fn round_config(config: &Config, left: Duration) -> Config {
    let mut config = config.clone();
    let floor = Duration::from_millis(1);
    config.retry.attempts = 0;
    config.readiness.max_wait = left.min(ROUND).max(floor);
    config.connect_timeout = config.connect_timeout.min(left).max(floor);
    config.health_check_interval = None;
    config
}

/// Exit 0 once every database answers; 1 with the reasons when `--timeout` passes or a
/// failure cannot heal by waiting (wrong password, database number out of range).
pub async fn run(args: WaitArgs) -> u8 {
    let resolved = match settings::resolve_or_report(&args.target) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let config = resolved.config;
    let timeout = args.timeout.unwrap_or(config.readiness.max_wait);
    let started = Instant::now();
    let deadline = started + timeout;
    let progress = std::io::stderr().is_terminal();
    let all = probe::groups(&config);
    let mut pending: Vec<Group> = all.clone();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let round = round_config(&config, left);
        let results = probe::connect_groups(&round, &pending).await;
        let mut still: Vec<(Group, Error)> = Vec::new();
        for (group, result) in pending.into_iter().zip(results) {
            if let Err(error) = result {
                if is_permanent(&error) {
                    clear_progress(progress);
                    output::err(&format!(
                        "redis-db wait-ready: will not become ready: {error}\n"
                    ));
                    return 1;
                }
                still.push((group, error));
            }
        }
        if still.is_empty() {
            clear_progress(progress);
            let n = config.databases.len();
            output::out(&format!(
                "ready: {n} {} after {:.1} s\n",
                if n == 1 {
                    "database answers"
                } else {
                    "databases answer"
                },
                started.elapsed().as_secs_f64()
            ));
            return 0;
        }
        if Instant::now() >= deadline {
            clear_progress(progress);
            output::err(&format!(
                "redis-db wait-ready: not ready after {:.1} s (--timeout):\n",
                timeout.as_secs_f64()
            ));
            output::err(&reasons(&config, &still));
            return 1;
        }
        if progress {
            let waiting: usize = still.iter().map(|(g, _)| g.members.len()).sum();
            let (_, first) = &still[0];
            let why = match first {
                Error::StillLoading { .. } => "loading its dataset",
                _ => "not answering",
            };
            let name = first.database().unwrap_or("?");
            output::err(&format!(
                "\r\x1b[2Kwaiting for {waiting} of {} databases ({name}: {why}) {:.0}/{:.0} s",
                config.databases.len(),
                started.elapsed().as_secs_f64(),
                timeout.as_secs_f64()
            ));
        }
        // A loading server already took the round's time in the SDK's readiness wait; a
        // refused or failed connect returns at once, and would spin without this pause.
        let waited = still
            .iter()
            .any(|(_, e)| matches!(e, Error::StillLoading { .. }));
        if !waited {
            let pause = config
                .readiness
                .poll_interval
                .min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
        pending = still.into_iter().map(|(g, _)| g).collect();
    }
}

/// One reason per endpoint: a server that is down would otherwise repeat itself for every
/// database on it.
fn reasons(config: &Config, still: &[(Group, Error)]) -> String {
    let mut out = String::new();
    let mut shown: Vec<&str> = Vec::new();
    for (group, error) in still {
        let endpoint = config.endpoint_name_of(&config.databases[group.members[0]]);
        if shown.contains(&endpoint) {
            continue;
        }
        shown.push(endpoint);
        let waiting: usize = still
            .iter()
            .filter(|(g, _)| config.endpoint_name_of(&config.databases[g.members[0]]) == endpoint)
            .map(|(g, _)| g.members.len())
            .sum();
        out.push_str(&format!(
            "  endpoint {endpoint}: {waiting} {} not ready: {error}\n",
            if waiting == 1 {
                "database"
            } else {
                "databases"
            }
        ));
    }
    out
}

fn clear_progress(progress: bool) {
    if progress {
        output::err("\r\x1b[2K");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_must_be_a_positive_number_of_seconds() {
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert!(seconds("0").is_err());
        assert!(seconds("-1").is_err());
        assert!(seconds("soon").is_err());
        assert!(seconds("inf").is_err());
    }

    #[test]
    fn a_round_never_waits_past_the_deadline() {
        let config =
            redis_db_config::parse_str("redis_databases:\n  main:\n    db: 0\n", "x.yaml").unwrap();
        let round = round_config(&config, Duration::from_millis(300));
        assert_eq!(round.readiness.max_wait, Duration::from_millis(300));
        assert_eq!(round.connect_timeout, Duration::from_millis(300));
        assert_eq!(round.retry.attempts, 0);
        let round = round_config(&config, Duration::from_secs(30));
        assert_eq!(round.readiness.max_wait, ROUND);
    }
}
