//! Feature `otel-spans`: one `tracing` span per call, named `redis_db.call` at level INFO, with
//! the OpenTelemetry database-client fields, so that `tracing-opentelemetry` exports it as a
//! client span unchanged:
//!
//! | field | value |
//! | --- | --- |
//! | `db.system.name` | `redis` |
//! | `db.namespace` | the database number |
//! | `db.operation.name` | the command's name (`GET`; `PIPELINE`, `MULTI` for pipelines) |
//! | `server.address`, `server.port` | the endpoint (a cluster's or sentinel's first node) |
//! | `error.type` | on failure: the server's error code or the kind of failure |
//! | `redis_db.database` | the YAML name the call was made through (an alias's own name) |
//! | `otel.name`, `otel.kind`, `otel.status_code` | the span's name (the operation), `client`, `ERROR` on failure |
//!
//! Never an argument: keys and values may be secrets or personal data. The span opens when the
//! call starts and closes when it ends (its parent is the caller's current span); it is not
//! entered while the call awaits, which would make every call's future carry it twice, so the
//! SDK's own debug events during the call are not its children.
//!
//! Without the feature every function here is an empty `#[inline(always)]` one on a zero-sized
//! type; with it, a call made while INFO is filtered out everywhere costs one load of
//! tracing's level filter.

use crate::database::Database;
use crate::error::Error;
use crate::target::Target;
use crate::wire::Request;

/// The span of one call (nothing without the feature).
pub(crate) struct CallSpan {
    #[cfg(feature = "otel-spans")]
    span: tracing::Span,
}

/// Opens the span of a recorded call (`record`: not the SDK's own connect-time calls).
#[cfg(not(feature = "otel-spans"))]
#[inline(always)]
pub(crate) fn start(
    _record: bool,
    _database: &Database,
    _target: &Target,
    _request: &Request<'_>,
) -> CallSpan {
    CallSpan {}
}

/// Closes the span, with `error.type` on failure.
#[cfg(not(feature = "otel-spans"))]
#[inline(always)]
pub(crate) fn finish<T>(_span: CallSpan, _result: &Result<T, Error>) {}

#[cfg(feature = "otel-spans")]
pub(crate) fn start(
    record: bool,
    database: &Database,
    target: &Target,
    request: &Request<'_>,
) -> CallSpan {
    let span = if record && tracing::level_enabled!(tracing::Level::INFO) {
        open(database, target, request)
    } else {
        tracing::Span::none()
    };
    CallSpan { span }
}

#[cfg(feature = "otel-spans")]
fn open(database: &Database, target: &Target, request: &Request<'_>) -> tracing::Span {
    use tracing::field::Empty;
    let operation = crate::metrics::Operation::of(request);
    let operation = operation.as_str();
    let (address, port) = endpoint(target.address());
    tracing::info_span!(
        "redis_db.call",
        otel.name = operation,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = "redis",
        db.namespace = %target.db(),
        db.operation.name = operation,
        server.address = address,
        server.port = port,
        error.type = Empty,
        redis_db.database = database.name(),
    )
}

#[cfg(feature = "otel-spans")]
#[inline]
pub(crate) fn finish<T>(span: CallSpan, result: &Result<T, Error>) {
    if let Err(error) = result {
        if !span.span.is_disabled() {
            span.span
                .record("error.type", crate::metrics::error_type(error));
            span.span.record("otel.status_code", "ERROR");
        }
    }
}

/// Host and port out of the target's description (`redis://host:port`, `rediss://...`,
/// `cluster h:p,...`, ``sentinel master `m` via h:p,...``): the first node for the latter two.
#[cfg(any(feature = "otel-spans", test))]
fn endpoint(address: &str) -> (&str, u16) {
    let nodes = address
        .strip_prefix("redis://")
        .or_else(|| address.strip_prefix("rediss://"))
        .or_else(|| address.strip_prefix("cluster "))
        .or_else(|| address.split_once(" via ").map(|(_, nodes)| nodes))
        .unwrap_or(address);
    let first = nodes.split(',').next().unwrap_or_default().trim();
    match first.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_matches(|c| c == '[' || c == ']'),
            port.parse().unwrap_or(0),
        ),
        None => (first, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn endpoints_of_every_topology() {
        assert_eq!(endpoint("redis://127.0.0.1:6380"), ("127.0.0.1", 6380));
        assert_eq!(
            endpoint("rediss://cache.example:6379"),
            ("cache.example", 6379)
        );
        assert_eq!(endpoint("redis://[::1]:6379"), ("::1", 6379));
        assert_eq!(endpoint("cluster a:7000,b:7001"), ("a", 7000));
        assert_eq!(
            endpoint("sentinel master `mymaster` via s1:26379,s2:26379"),
            ("s1", 26379)
        );
    }
}
