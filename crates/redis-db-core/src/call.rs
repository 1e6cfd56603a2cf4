//! The policies every call passes, as one loop over its attempts: the circuit breaker's permit,
//! the readiness gate (waiting out `LOADING`), retries with backoff that never re-send a write
//! that may have reached the server, and the errors that name the database. It knows nothing of
//! connections: an attempt and a readiness probe are closures, so the loop runs alone in tests.

use std::future::Future;
use std::time::{Duration, Instant};

use redis::RedisError;
use redis_db_config::{Readiness as ReadinessSettings, Retry};

use crate::breaker::{log_transition, Breaker, Permit};
use crate::counters::Counters;
use crate::error::Error;
use crate::readiness::Readiness;
use crate::retry::{self, Stage, Verdict};

/// Why one attempt failed.
pub(crate) enum Failure {
    /// A Redis-level failure, for the classifier.
    Redis(RedisError, Stage),
    /// Already the caller's answer: no retry, and nothing learned about the server's health.
    Final(Error),
}

/// What the loop of one database works with: its gates, counters and settings, and how its
/// errors name it.
pub(crate) struct Policies<'a> {
    pub database: &'a str,
    pub db: u32,
    pub address: &'a str,
    pub readiness: &'a Readiness,
    pub counters: &'a Counters,
    pub retry: &'a Retry,
    pub waiting: ReadinessSettings,
    /// One readiness probe's limit: the database's command timeout.
    pub probe_timeout: Duration,
}

/// The circuit breaker's admission of one call (or checkout).
pub(crate) fn admit<'b>(
    breaker: &'b Breaker,
    database: &str,
    db: u32,
) -> Result<Permit<'b>, Error> {
    let (permit, transition) =
        breaker
            .try_acquire(Instant::now)
            .map_err(|rejected| Error::CircuitOpen {
                database: database.to_owned(),
                db,
                failures: rejected.failures,
                retry_in: rejected.retry_in,
            })?;
    log_transition(database, transition);
    Ok(permit)
}

/// The readiness gate and the attempt loop under an admitted `permit`, which it settles exactly
/// once (dropped unsettled, e.g. when the caller drops the future, it settles itself: see
/// `Permit`). `read_only` decides whether a failure after sending may be retried; `timeout` is
/// one attempt's limit (for messages); `first` is the failure of an attempt already made (the
/// call's first, on the fast path); `probe` pings the server while it is loading.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn policy_loop<T, Attempt, Fut, Probe, ProbeFut>(
    policies: &Policies<'_>,
    read_only: bool,
    timeout: Option<Duration>,
    permit: Permit<'_>,
    first: Option<Failure>,
    mut probe: Probe,
    mut attempt: Attempt,
) -> Result<T, Error>
where
    Attempt: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
    Probe: FnMut() -> ProbeFut,
    ProbeFut: Future<Output = Result<(), RedisError>>,
{
    let p = policies;
    let mut loading_deadline: Option<Instant> = None;
    // Built on the first retry only (and boxed, to keep the future small): a call that
    // succeeds pays nothing for it.
    let mut backoff: Option<Box<dyn Iterator<Item = Duration> + Send>> = None;
    let mut attempts = u32::from(first.is_some());
    let mut pending = first;
    loop {
        let failure = match pending.take() {
            Some(failure) => failure,
            None => {
                if p.readiness.is_loading() {
                    let deadline = *loading_deadline
                        .get_or_insert_with(|| Instant::now() + p.waiting.max_wait);
                    // Cold paths (this wait, the retry sleep, reconnects, exclusive
                    // checkouts) are boxed: inline, their futures made every call's future
                    // 11 KB to allocate and move (docs/PERFORMANCE.md).
                    p.counters.metrics.readiness_wait();
                    let wait = p.readiness.wait(
                        &mut probe,
                        p.waiting.poll_interval,
                        p.probe_timeout,
                        deadline,
                    );
                    if Box::pin(wait).await.is_err() {
                        permit.neutral();
                        return Err(still_loading(p));
                    }
                }
                attempts += 1;
                match attempt().await {
                    Ok(reply) => {
                        log_transition(p.database, permit.succeeded());
                        return Ok(reply);
                    }
                    Err(failure) => failure,
                }
            }
        };
        let (error, stage) = match failure {
            Failure::Redis(error, stage) => (error, stage),
            Failure::Final(error) => {
                permit.neutral();
                return Err(error);
            }
        };
        let verdict = retry::classify(&error, stage);
        match verdict {
            Verdict::WaitForLoading => {
                // LOADING means the server did not run the command: waiting is not a retry.
                attempts -= 1;
                p.readiness.mark_loading();
                if loading_deadline.is_some_and(|d| Instant::now() >= d) {
                    permit.neutral();
                    return Err(still_loading(p));
                }
            }
            Verdict::CommandError => {
                log_transition(p.database, permit.succeeded());
                return Err(Error::Command {
                    database: p.database.to_owned(),
                    db: p.db,
                    source: error,
                });
            }
            Verdict::Authentication => {
                permit.neutral();
                return Err(Error::Authentication {
                    database: p.database.to_owned(),
                    db: p.db,
                    address: p.address.to_owned(),
                    detail: error.to_string(),
                });
            }
            Verdict::TlsRefused => {
                permit.neutral();
                return Err(Error::Tls {
                    database: p.database.to_owned(),
                    db: p.db,
                    address: p.address.to_owned(),
                    detail: crate::tls::refused(&error).unwrap_or_default().to_owned(),
                });
            }
            Verdict::DatabaseOutOfRange => {
                permit.neutral();
                return Err(Error::DatabaseOutOfRange {
                    database: p.database.to_owned(),
                    db: p.db,
                    address: p.address.to_owned(),
                    detail: error.to_string(),
                });
            }
            Verdict::RetryAny | Verdict::RetryIfReadOnly => {
                let may_resend = verdict == Verdict::RetryAny || read_only;
                if may_resend {
                    let delays = backoff.get_or_insert_with(|| Box::new(retry::backoff(p.retry)));
                    if let Some(delay) = delays.next() {
                        p.counters.record_retry();
                        tracing::debug!(database = %p.database, attempt = attempts, ?delay, error = %error, "redis-db: retrying");
                        Box::pin(tokio::time::sleep(delay)).await;
                        continue;
                    }
                }
                log_transition(p.database, permit.failed(Instant::now()));
                return Err(connection_failure(p, error, attempts, timeout, may_resend));
            }
        }
    }
}

fn still_loading(p: &Policies<'_>) -> Error {
    Error::StillLoading {
        database: p.database.to_owned(),
        db: p.db,
        address: p.address.to_owned(),
        waited: p.waiting.max_wait,
    }
}

fn connection_failure(
    p: &Policies<'_>,
    error: RedisError,
    attempts: u32,
    timeout: Option<Duration>,
    may_resend: bool,
) -> Error {
    match timeout {
        Some(timeout) if error.is_timeout() => Error::Timeout {
            database: p.database.to_owned(),
            db: p.db,
            address: p.address.to_owned(),
            timeout,
            attempts,
            may_resend,
        },
        _ => Error::Unreachable {
            database: p.database.to_owned(),
            db: p.db,
            address: p.address.to_owned(),
            attempts,
            source: error,
        },
    }
}

#[cfg(test)]
mod tests {
    //! The loop alone: a fake attempt and probe, paused tokio time (every backoff sleep and
    //! readiness poll completes at once, in virtual time).

    use std::cell::{Cell, RefCell};
    use std::io;

    use redis_db_config::CircuitBreaker;

    use super::*;
    use crate::breaker::CircuitState;

    fn io_error(kind: io::ErrorKind) -> RedisError {
        RedisError::from(io::Error::new(kind, "fake"))
    }

    fn loading() -> RedisError {
        match redis::parse_redis_value(b"-LOADING Redis is loading the dataset in memory\r\n") {
            Ok(redis::Value::ServerError(error)) => error.into(),
            other => panic!("not a server error: {other:?}"),
        }
    }

    /// A database's gates as the loop sees them.
    struct Fixture {
        breaker: Breaker,
        readiness: Readiness,
        counters: Counters,
        retry: Retry,
    }

    impl Fixture {
        fn new(retries: u32, delay: Duration, max_delay: Duration) -> Self {
            Fixture {
                breaker: Breaker::new(CircuitBreaker {
                    failure_threshold: 2,
                    reset_timeout: Duration::ZERO,
                }),
                readiness: Readiness::default(),
                counters: Counters::new(),
                retry: Retry {
                    attempts: retries,
                    delay,
                    max_delay,
                },
            }
        }

        fn policies(&self) -> Policies<'_> {
            Policies {
                database: "main",
                db: 0,
                address: "redis://fake:6379",
                readiness: &self.readiness,
                counters: &self.counters,
                retry: &self.retry,
                waiting: ReadinessSettings {
                    max_wait: Duration::from_secs(60),
                    poll_interval: Duration::from_millis(250),
                },
                probe_timeout: Duration::from_secs(1),
            }
        }

        /// One call whose attempts answer `outcomes` in turn (then `Ok`); returns the result and
        /// how many attempts were made.
        async fn call(
            &self,
            read_only: bool,
            outcomes: Vec<Failure>,
        ) -> (Result<&'static str, Error>, usize) {
            let made = Cell::new(0);
            let outcomes = RefCell::new(outcomes.into_iter());
            let permit = admit(&self.breaker, "main", 0).expect("circuit closed");
            let result = policy_loop(
                &self.policies(),
                read_only,
                Some(Duration::from_secs(1)),
                permit,
                None,
                || async { Ok(()) },
                || {
                    made.set(made.get() + 1);
                    let outcome = outcomes.borrow_mut().next();
                    async move { outcome.map_or(Ok("OK"), Err) }
                },
            )
            .await;
            (result, made.get())
        }
    }

    fn sent_and_lost() -> Failure {
        Failure::Redis(io_error(io::ErrorKind::ConnectionReset), Stage::Command)
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_is_never_resent_once_it_may_have_been_sent() {
        let fixture = Fixture::new(3, Duration::from_millis(10), Duration::from_millis(40));
        let (result, attempts) = fixture.call(false, vec![sent_and_lost()]).await;
        assert_eq!(attempts, 1, "the write was sent again");
        assert!(
            matches!(result, Err(Error::Unreachable { attempts: 1, .. })),
            "{result:?}"
        );
        // The same failure on a read is retried, and the read then succeeds.
        let (result, attempts) = fixture.call(true, vec![sent_and_lost()]).await;
        assert_eq!((result.ok(), attempts), (Some("OK"), 2));
        // Refused before sending (a connect failure): a write may be sent on a new connection.
        let refused = Failure::Redis(io_error(io::ErrorKind::ConnectionRefused), Stage::Connect);
        let (result, attempts) = fixture.call(false, vec![refused]).await;
        assert_eq!((result.ok(), attempts), (Some("OK"), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn loading_does_not_use_up_an_attempt() {
        // No retries at all: only LOADING answers may be followed by another attempt.
        let fixture = Fixture::new(0, Duration::from_millis(10), Duration::from_millis(40));
        let loading = || Failure::Redis(loading(), Stage::Command);
        let (result, attempts) = fixture
            .call(false, vec![loading(), loading(), loading()])
            .await;
        assert_eq!((result.ok(), attempts), (Some("OK"), 4));
        assert!(
            !fixture.readiness.is_loading(),
            "the probe cleared the gate"
        );
        // After two LOADING answers a connection failure is the call's first counted attempt.
        let (result, _) = fixture
            .call(false, vec![loading(), loading(), sent_and_lost()])
            .await;
        assert!(
            matches!(result, Err(Error::Unreachable { attempts: 1, .. })),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_is_settled_once_per_call_not_per_attempt() {
        // Threshold 2: a call that fails after all its retries counts one failure.
        let fixture = Fixture::new(3, Duration::from_millis(10), Duration::from_millis(40));
        let failures = || (0..4).map(|_| sent_and_lost()).collect::<Vec<_>>();
        let (result, attempts) = fixture.call(true, failures()).await;
        assert_eq!(attempts, 4);
        assert!(result.is_err());
        assert_eq!(
            fixture.breaker.state(),
            CircuitState::Closed,
            "one call, one failure"
        );
        let (result, _) = fixture.call(true, failures()).await;
        assert!(result.is_err());
        assert_eq!(
            fixture.breaker.state(),
            CircuitState::Open,
            "two calls, two failures"
        );
        assert_eq!(fixture.breaker.openings(), 1);
        // A command error is an answer: it closes the circuit (the reset timeout is zero, so
        // this call is the half-open probe).
        let wrongtype = Failure::Redis(
            RedisError::from((redis::ErrorKind::Client, "fake command error")),
            Stage::Command,
        );
        let (result, attempts) = fixture.call(false, vec![wrongtype]).await;
        assert!(matches!(result, Err(Error::Command { .. })), "{result:?}");
        assert_eq!(attempts, 1, "a command error is never retried");
        assert_eq!(fixture.breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_mid_retry_settles_the_breaker_once() {
        let fixture = Fixture::new(3, Duration::from_secs(10), Duration::from_secs(10));
        for _ in 0..2 {
            let _ = fixture.call(false, vec![sent_and_lost()]).await;
        }
        assert_eq!(fixture.breaker.state(), CircuitState::Open);
        // The next call is the half-open probe; it fails, and its caller gives up while it
        // sleeps before retrying.
        let failures = (0..4).map(|_| sent_and_lost()).collect();
        let dropped = tokio::time::timeout(Duration::from_secs(1), fixture.call(true, failures));
        assert!(dropped.await.is_err(), "the call was still retrying");
        assert_eq!(
            fixture.breaker.state(),
            CircuitState::Open,
            "not wedged half-open"
        );
        assert_eq!(
            fixture.breaker.openings(),
            1,
            "a dropped call is not a failure"
        );
        let (result, _) = fixture.call(true, Vec::new()).await;
        assert_eq!(
            result.ok(),
            Some("OK"),
            "the next probe is let through at once"
        );
        assert_eq!(fixture.breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_and_the_backoff_cap_hold() {
        let (delay, cap) = (Duration::from_millis(100), Duration::from_millis(300));
        let fixture = Fixture::new(5, delay, cap);
        let made = RefCell::new(Vec::new());
        let permit = admit(&fixture.breaker, "main", 0).unwrap();
        let result: Result<(), Error> = policy_loop(
            &fixture.policies(),
            true,
            Some(Duration::from_secs(1)),
            permit,
            None,
            || async { Ok(()) },
            || {
                made.borrow_mut().push(tokio::time::Instant::now());
                async { Err(sent_and_lost()) }
            },
        )
        .await;
        let made = made.into_inner();
        assert_eq!(made.len(), 6, "the first attempt and 5 retries");
        assert!(
            matches!(result, Err(Error::Unreachable { attempts: 6, .. })),
            "{result:?}"
        );
        for gap in made.windows(2).map(|w| w[1] - w[0]) {
            assert!(gap <= cap, "a backoff of {gap:?} is over the cap {cap:?}");
        }
        assert!(made[1] - made[0] >= delay / 2, "the first backoff waited");
    }
}
