//! Feature `metrics`: every database's figures through the `metrics` facade (0.24), to whatever
//! recorder the application installed (`metrics-exporter-prometheus`, an OpenTelemetry bridge,
//! ...). Without the feature every function here is an empty `#[inline(always)]` one on a
//! zero-sized type: the call path is the same as if this file did not exist.
//!
//! Every series carries `database` (the YAML name of the database that owns the number: calls
//! through an alias count under its target, as in `stats()`) and `db` (the number).
//!
//! | name | kind | extra labels | what |
//! | --- | --- | --- | --- |
//! | `db.client.operation.duration` | histogram, seconds | `db.system.name="redis"`, `db.namespace` (the number), `db.operation.name`, `error.type` on failure | one sample per call, retries and readiness waits included |
//! | `redis_db.commands` | counter | | calls made through handles |
//! | `redis_db.failures` | counter | `error.type` | of which failed, after retries |
//! | `redis_db.retries` | counter | | retry attempts (= `stats().retries`) |
//! | `redis_db.readiness.waits` | counter | | times a call waited for the server to finish loading |
//! | `redis_db.circuit.open` | gauge 0/1 | | 1 while the breaker refuses calls (open or half-open), summed over the process's clients |
//! | `redis_db.circuit.openings` | counter | | times the breaker opened (= `stats().circuit_openings`) |
//! | `redis_db.connections.created` | counter | | connections opened, shared and pooled (= `stats().connections_created`) |
//! | `redis_db.connections.closed` | counter | | connections closed (= `stats().connections_closed`) |
//! | `db.client.connection.count` | gauge | `db.client.connection.state` = `idle` \| `used` | the exclusive-connection pool's connections |
//! | `db.client.connection.max` | gauge | | the pool's largest size |
//! | `db.client.connection.pending_requests` | gauge | | callers waiting for a pooled connection |
//!
//! Per call (`Inner::run`): one histogram sample and one counter increment on handles looked up
//! in a per-thread cache (no lock, no allocation once warm), plus a failure counter on failure.
//! Connection, breaker and pool figures are sampled once a second by a background task from the
//! same sources `stats()` reads, so they cost the call path nothing; it hands the recorder the
//! differences since its last reading, so that two clients of one database in a process add up
//! (the gauges then are sums over them) and a dropped client takes its gauges' share back.
//!
//! Calls on an exclusive connection (`handle.connection()`) go round `Inner::run`: they are in
//! `stats()` but not here (yet). Handles are registered with the recorder installed when the
//! client connects: install the recorder first.

#[cfg(feature = "metrics")]
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::wire::Request;

/// The metric names (see the module documentation).
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) mod names {
    pub const OPERATION_DURATION: &str = "db.client.operation.duration";
    pub const COMMANDS: &str = "redis_db.commands";
    pub const FAILURES: &str = "redis_db.failures";
    pub const RETRIES: &str = "redis_db.retries";
    pub const READINESS_WAITS: &str = "redis_db.readiness.waits";
    pub const CIRCUIT_OPEN: &str = "redis_db.circuit.open";
    pub const CIRCUIT_OPENINGS: &str = "redis_db.circuit.openings";
    pub const CONNECTIONS_CREATED: &str = "redis_db.connections.created";
    pub const CONNECTIONS_CLOSED: &str = "redis_db.connections.closed";
    pub const CONNECTION_COUNT: &str = "db.client.connection.count";
    pub const CONNECTION_MAX: &str = "db.client.connection.max";
    pub const PENDING_REQUESTS: &str = "db.client.connection.pending_requests";
}

/// How often the background task (`stats.rs`) samples pool, breaker and connection figures.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The metric handles of one target (database number), built once at connect.
#[derive(Default)]
pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    series: Option<Arc<on::Series>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

#[cfg(not(feature = "metrics"))]
impl Metrics {
    #[inline(always)]
    pub fn new(_database: &str, _db: u32) -> Self {
        Self {}
    }

    #[inline(always)]
    pub fn call<T>(&self, _request: &Request<'_>, _elapsed: Duration, _result: &Result<T, Error>) {}

    #[inline(always)]
    pub fn retry(&self) {}

    #[inline(always)]
    pub fn readiness_wait(&self) {}
}

#[cfg(feature = "metrics")]
impl Metrics {
    /// Registers every series of the database with the current recorder.
    pub fn new(database: &str, db: u32) -> Self {
        Self {
            series: Some(Arc::new(on::Series::new(database, db))),
        }
    }

    /// One call: its latency under its command's name, and whether it failed.
    #[inline]
    pub fn call<T>(&self, request: &Request<'_>, elapsed: Duration, result: &Result<T, Error>) {
        if let Some(series) = &self.series {
            series.call(request, elapsed, result.as_ref().err());
        }
    }

    #[inline]
    pub fn retry(&self) {
        if let Some(series) = &self.series {
            series.retries.increment(1);
        }
    }

    #[inline]
    pub fn readiness_wait(&self) {
        if let Some(series) = &self.series {
            series.readiness_waits.increment(1);
        }
    }

    /// The stats sampler's reading of this database's pool, breaker and connections.
    pub fn sampled(&self, now: Sampled) {
        if let Some(series) = &self.series {
            series.sampled(now);
        }
    }
}

#[cfg(feature = "metrics")]
pub(crate) use on::Sampled;

/// A command's name as `db.operation.name` shows it, without allocating: the first argument
/// upper-cased (`GET`, `JSON.GET`; no subcommand, which keeps the label set small), `PIPELINE` or
/// `MULTI` for a pipeline, `_OTHER` for a name longer than 24 bytes or with other characters
/// than letters, digits and `._|-`.
#[cfg(any(feature = "metrics", feature = "otel-spans"))]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Operation([u8; Operation::MAX]);

#[cfg(any(feature = "metrics", feature = "otel-spans"))]
impl Operation {
    const MAX: usize = 24;

    pub fn of(request: &Request<'_>) -> Self {
        match request {
            Request::Command(cmd) => match cmd.args_iter().next() {
                Some(redis::Arg::Simple(name)) => Self::named(name),
                _ => Self::literal(b"_OTHER"),
            },
            Request::Pipeline { pipeline, .. } if pipeline.is_transaction() => {
                Self::literal(b"MULTI")
            }
            Request::Pipeline { .. } => Self::literal(b"PIPELINE"),
        }
    }

    fn named(name: &[u8]) -> Self {
        let valid = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'|' | b'-');
        if name.is_empty() || name.len() > Self::MAX || !name.iter().all(valid) {
            return Self::literal(b"_OTHER");
        }
        let mut bytes = [0; Self::MAX];
        for (to, from) in bytes.iter_mut().zip(name) {
            *to = from.to_ascii_uppercase();
        }
        Self(bytes)
    }

    fn literal(name: &[u8]) -> Self {
        let mut bytes = [0; Self::MAX];
        bytes[..name.len()].copy_from_slice(name);
        Self(bytes)
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(Self::MAX);
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.0[..len]).unwrap_or("_OTHER")
    }
}

/// `error.type` of a failed call: the server's error code for a command error (`WRONGTYPE`,
/// `NOSCRIPT`, ...; `ERR` for a plain one), else the kind of failure (`timeout`,
/// `unreachable`, `circuit_open`, ...). Never the message, which may quote the command.
#[cfg(any(feature = "metrics", feature = "otel-spans"))]
pub(crate) fn error_type(error: &Error) -> &str {
    match error {
        Error::Command { source, .. } => source
            .code()
            .filter(|code| {
                code.len() <= 32
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .unwrap_or("command"),
        Error::Timeout { .. } => "timeout",
        Error::Unreachable { .. } => "unreachable",
        Error::CircuitOpen { .. } => "circuit_open",
        Error::StillLoading { .. } => "still_loading",
        Error::PoolExhausted { .. } => "pool_exhausted",
        Error::Authentication { .. } => "authentication",
        Error::Tls { .. } => "tls",
        Error::DatabaseOutOfRange { .. } => "database_out_of_range",
        Error::NeedsExclusiveConnection { .. } => "needs_exclusive_connection",
        _ => "_OTHER",
    }
}

#[cfg(feature = "metrics")]
mod on {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::{BuildHasherDefault, Hasher};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use ::metrics::{Counter, Gauge, Histogram, Label, Unit};

    use super::{error_type, names, Operation};
    use crate::error::Error;
    use crate::lock::lock;
    use crate::wire::Request;

    /// Distinct operation names (and, on failures, name and error pairs) per database; past
    /// that, `_OTHER`, so that no workload can grow the label sets without bound.
    const MAX_OPERATIONS: usize = 128;
    const MAX_FAILURE_SERIES: usize = 256;
    /// Per-thread cache entries (all databases of all clients): cleared when full, which
    /// also forgets the handles of clients dropped since.
    const MAX_CACHED: usize = 4096;

    pub(super) struct Series {
        /// Tells this database's entries apart in the per-thread cache.
        id: usize,
        labels: Vec<Label>,
        commands: Counter,
        pub(super) retries: Counter,
        pub(super) readiness_waits: Counter,
        circuit_open: Gauge,
        circuit_openings: Counter,
        connections_created: Counter,
        connections_closed: Counter,
        idle: Gauge,
        used: Gauge,
        max: Gauge,
        pending: Gauge,
        /// The latency histograms of successful calls, by operation (slow path of the cache).
        durations: Mutex<HashMap<Operation, Histogram>>,
        /// Failures by operation and `error.type`: the counter and the latency histogram.
        failures: Mutex<HashMap<(Operation, String), (Counter, Histogram)>>,
        /// The sampler's last reading (its own; never touched by calls).
        last_sampled: Mutex<Sampled>,
    }

    thread_local! {
        /// (series id, operation) to its histogram: a call finds its handle here without a lock.
        static DURATIONS: RefCell<HashMap<(usize, Operation), Histogram, BuildHasherDefault<Fx>>> =
            RefCell::new(HashMap::default());
    }

    impl Series {
        pub fn new(database: &str, db: u32) -> Series {
            static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
            describe();
            let labels = vec![
                Label::new("database", database.to_owned()),
                Label::new("db", db.to_string()),
            ];
            let with = |key: &'static str, value: &'static str| {
                let mut labels = labels.clone();
                labels.push(Label::from_static_parts(key, value));
                labels
            };
            let state = "db.client.connection.state";
            Series {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                commands: ::metrics::counter!(names::COMMANDS, labels.clone()),
                retries: ::metrics::counter!(names::RETRIES, labels.clone()),
                readiness_waits: ::metrics::counter!(names::READINESS_WAITS, labels.clone()),
                circuit_open: ::metrics::gauge!(names::CIRCUIT_OPEN, labels.clone()),
                circuit_openings: ::metrics::counter!(names::CIRCUIT_OPENINGS, labels.clone()),
                connections_created: ::metrics::counter!(
                    names::CONNECTIONS_CREATED,
                    labels.clone()
                ),
                connections_closed: ::metrics::counter!(names::CONNECTIONS_CLOSED, labels.clone()),
                idle: ::metrics::gauge!(names::CONNECTION_COUNT, with(state, "idle")),
                used: ::metrics::gauge!(names::CONNECTION_COUNT, with(state, "used")),
                max: ::metrics::gauge!(names::CONNECTION_MAX, labels.clone()),
                pending: ::metrics::gauge!(names::PENDING_REQUESTS, labels.clone()),
                durations: Mutex::new(HashMap::new()),
                failures: Mutex::new(HashMap::new()),
                last_sampled: Mutex::new(Sampled::default()),
                labels,
            }
        }

        pub fn call(&self, request: &Request<'_>, elapsed: Duration, error: Option<&Error>) {
            let operation = Operation::of(request);
            self.commands.increment(1);
            let seconds = elapsed.as_secs_f64();
            match error {
                None => {
                    let cached = DURATIONS.try_with(|cache| {
                        let mut cache = cache.borrow_mut();
                        match cache.get(&(self.id, operation)) {
                            Some(histogram) => histogram.record(seconds),
                            None => {
                                let histogram = self.duration(operation);
                                histogram.record(seconds);
                                if cache.len() >= MAX_CACHED {
                                    cache.clear();
                                }
                                cache.insert((self.id, operation), histogram);
                            }
                        }
                    });
                    // A call made while this thread is being torn down: no cache any more.
                    if cached.is_err() {
                        self.duration(operation).record(seconds);
                    }
                }
                Some(error) => {
                    let (failures, histogram) = self.failure(operation, error_type(error));
                    failures.increment(1);
                    histogram.record(seconds);
                }
            }
        }

        /// The histogram of successful calls of `operation` (registered on first use).
        fn duration(&self, operation: Operation) -> Histogram {
            let mut durations = lock(&self.durations);
            let operation =
                if durations.len() < MAX_OPERATIONS || durations.contains_key(&operation) {
                    operation
                } else {
                    Operation::literal(b"_OTHER")
                };
            durations
                .entry(operation)
                .or_insert_with(|| {
                    ::metrics::histogram!(
                        names::OPERATION_DURATION,
                        self.operation_labels(operation, None)
                    )
                })
                .clone()
        }

        /// The failure counter and histogram of `operation` failing with `kind` (failures are
        /// rare: a lock, and an allocation the first time a pair is seen).
        fn failure(&self, operation: Operation, kind: &str) -> (Counter, Histogram) {
            let mut failures = lock(&self.failures);
            let key = match failures.get(&(operation, kind.to_owned())) {
                Some(handles) => return handles.clone(),
                None if failures.len() < MAX_FAILURE_SERIES => (operation, kind.to_owned()),
                None => (Operation::literal(b"_OTHER"), "_OTHER".to_owned()),
            };
            failures
                .entry(key)
                .or_insert_with_key(|(operation, kind)| {
                    let mut labels = self.labels.clone();
                    labels.push(Label::new("error.type", kind.clone()));
                    (
                        ::metrics::counter!(names::FAILURES, labels),
                        ::metrics::histogram!(
                            names::OPERATION_DURATION,
                            self.operation_labels(*operation, Some(kind))
                        ),
                    )
                })
                .clone()
        }

        fn operation_labels(&self, operation: Operation, error: Option<&str>) -> Vec<Label> {
            let db = self.labels[1].value().to_owned();
            let mut labels = self.labels.clone();
            labels.push(Label::from_static_parts("db.system.name", "redis"));
            labels.push(Label::new("db.namespace", db));
            labels.push(Label::new(
                "db.operation.name",
                operation.as_str().to_owned(),
            ));
            if let Some(error) = error {
                labels.push(Label::new("error.type", error.to_owned()));
            }
            labels
        }
    }

    /// What the sampler read last: it hands the recorder differences only, so that several
    /// clients of the same database in one process add up instead of overwriting each other
    /// (and a dropped client takes its gauges' share back).
    #[derive(Clone, Copy, Default)]
    pub(crate) struct Sampled {
        pub idle: u64,
        pub used: u64,
        pub max: u64,
        pub pending: u64,
        pub circuit_open: u64,
        pub circuit_openings: u64,
        pub connections_created: u64,
        pub connections_closed: u64,
    }

    impl Series {
        pub(super) fn sampled(&self, now: Sampled) {
            let mut last = lock(&self.last_sampled);
            let gauge = |gauge: &Gauge, was: u64, is: u64| {
                if is > was {
                    gauge.increment((is - was) as f64);
                } else if was > is {
                    gauge.decrement((was - is) as f64);
                }
            };
            gauge(&self.idle, last.idle, now.idle);
            gauge(&self.used, last.used, now.used);
            gauge(&self.max, last.max, now.max);
            gauge(&self.pending, last.pending, now.pending);
            gauge(&self.circuit_open, last.circuit_open, now.circuit_open);
            // Counters only grow: a figure read lower than before (two reads racing a
            // connection's close) waits for the next sample.
            let counter = |counter: &Counter, was: &mut u64, is: u64| {
                if is > *was {
                    counter.increment(is - *was);
                    *was = is;
                }
            };
            counter(
                &self.circuit_openings,
                &mut last.circuit_openings,
                now.circuit_openings,
            );
            counter(
                &self.connections_created,
                &mut last.connections_created,
                now.connections_created,
            );
            counter(
                &self.connections_closed,
                &mut last.connections_closed,
                now.connections_closed,
            );
            last.idle = now.idle;
            last.used = now.used;
            last.max = now.max;
            last.pending = now.pending;
            last.circuit_open = now.circuit_open;
        }
    }

    impl Drop for Series {
        /// The client is gone: its connections and breaker no longer count in the gauges.
        fn drop(&mut self) {
            let last = *lock(&self.last_sampled);
            self.idle.decrement(last.idle as f64);
            self.used.decrement(last.used as f64);
            self.max.decrement(last.max as f64);
            self.pending.decrement(last.pending as f64);
            self.circuit_open.decrement(last.circuit_open as f64);
        }
    }

    fn describe() {
        use ::metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_histogram!(
            names::OPERATION_DURATION,
            Unit::Seconds,
            "Duration of database client operations (one per call, retries included)"
        );
        describe_counter!(names::COMMANDS, "Calls made");
        describe_counter!(names::FAILURES, "Calls that failed after retries");
        describe_counter!(names::RETRIES, "Retry attempts made");
        describe_counter!(
            names::READINESS_WAITS,
            "Times a call waited for the server to finish loading"
        );
        describe_gauge!(
            names::CIRCUIT_OPEN,
            "1 while the circuit breaker refuses calls"
        );
        describe_counter!(names::CIRCUIT_OPENINGS, "Times the circuit breaker opened");
        describe_counter!(names::CONNECTIONS_CREATED, "Connections opened");
        describe_counter!(names::CONNECTIONS_CLOSED, "Connections closed");
        describe_gauge!(
            names::CONNECTION_COUNT,
            "Connections of the exclusive-connection pool, by state"
        );
        describe_gauge!(names::CONNECTION_MAX, "Largest size of the connection pool");
        describe_gauge!(
            names::PENDING_REQUESTS,
            "Callers waiting for a pooled connection"
        );
    }

    /// FxHash: the cache's keys are a small integer and 24 bytes; SipHash would cost more
    /// than the rest of the lookup.
    #[derive(Default)]
    pub(super) struct Fx(u64);

    impl Fx {
        fn add(&mut self, word: u64) {
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    impl Hasher for Fx {
        fn write(&mut self, bytes: &[u8]) {
            for chunk in bytes.chunks(8) {
                let mut word = [0; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                self.add(u64::from_le_bytes(word));
            }
        }

        fn write_usize(&mut self, n: usize) {
            self.add(n as u64);
        }

        fn finish(&self) -> u64 {
            self.0
        }
    }
}

#[cfg(all(test, any(feature = "metrics", feature = "otel-spans")))]
mod tests {
    use super::*;

    #[test]
    fn operations_are_upper_case_names_without_arguments() {
        let mut cmd = redis::cmd("get");
        cmd.arg("secret-key");
        assert_eq!(Operation::of(&Request::Command(&cmd)).as_str(), "GET");
        let mut cmd = redis::cmd("json.get");
        cmd.arg("k");
        assert_eq!(Operation::of(&Request::Command(&cmd)).as_str(), "JSON.GET");
        let cmd = redis::cmd("a-name-longer-than-any-command");
        assert_eq!(Operation::of(&Request::Command(&cmd)).as_str(), "_OTHER");
        let cmd = redis::cmd("GET\r\nX");
        assert_eq!(Operation::of(&Request::Command(&cmd)).as_str(), "_OTHER");
        let mut pipe = redis::pipe();
        pipe.get("a");
        let request = Request::Pipeline {
            pipeline: &pipe,
            offset: 0,
            count: 1,
        };
        assert_eq!(Operation::of(&request).as_str(), "PIPELINE");
        pipe.atomic();
        let request = Request::Pipeline {
            pipeline: &pipe,
            offset: 0,
            count: 1,
        };
        assert_eq!(Operation::of(&request).as_str(), "MULTI");
    }

    #[test]
    fn error_types_are_codes_or_kinds_never_messages() {
        let command = |error: redis::RedisError| Error::Command {
            database: "main".into(),
            db: 0,
            source: error,
        };
        let wrongtype = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ));
        let error = command(wrongtype);
        let kind = error_type(&error);
        assert!(!kind.contains(' '), "{kind}");
        let timeout = Error::Timeout {
            database: "main".into(),
            db: 0,
            address: "redis://127.0.0.1:6379".into(),
            timeout: Duration::from_secs(1),
            attempts: 1,
            may_resend: true,
        };
        assert_eq!(error_type(&timeout), "timeout");
    }
}
