//! Feature `otel-spans`: one span per call, with the OpenTelemetry database-client fields and
//! never an argument, seen by a capturing `tracing` layer.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use redis_db::redis::AsyncCommands;
use support::client::OnTestServer;
use support::RedisServer;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[redis_db::databases(config = "config/redis-databases.yaml")]
pub enum Db {}

/// A closed span: its name and every field recorded on it, as text.
#[derive(Debug, Clone)]
struct Captured {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

#[derive(Default, Clone)]
struct Capture {
    closed: Arc<Mutex<Vec<Captured>>>,
}

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        let span = ctx.span(id).expect("a new span is in the registry");
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a recorded span is in the registry");
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<Fields>() {
            values.record(fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).expect("a closing span is in the registry");
        let fields = span
            .extensions_mut()
            .remove::<Fields>()
            .map(|f| f.0)
            .unwrap_or_default();
        self.closed.lock().unwrap().push(Captured {
            name: span.name(),
            fields,
        });
    }
}

// Current-thread runtime: the scoped subscriber sees everything the client does.
#[tokio::test]
async fn one_span_per_call_with_the_semantic_convention_fields_and_no_arguments() {
    let server = RedisServer::start(&[]);
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let db = Db::builder().on(&server).connect().await.expect("connect");
    let connect_spans = calls(&capture).len();

    let mut knowledge = db.knowledge();
    let _: () = knowledge
        .set("secret-key-1234", "secret-value-5678")
        .await
        .unwrap();
    let _: String = knowledge.get("secret-key-1234").await.unwrap();
    let _: (i64, i64) = redis_db::redis::pipe()
        .incr("secret-counter", 1)
        .incr("secret-counter", 1)
        .query_async(&mut db.knowledge_reader())
        .await
        .unwrap();
    let refused: Result<i64, _> = knowledge.lpush("secret-key-1234", "secret-item").await;
    assert!(refused.is_err());
    let _: () = db
        .sessions()
        .set("secret-session", "secret-token")
        .await
        .unwrap();
    drop(db);

    let spans = calls(&capture);
    assert_eq!(connect_spans, 0, "connect's own PINGs are not calls");
    assert_eq!(spans.len(), 5, "one span per call: {spans:#?}");
    let operations: Vec<&str> = spans
        .iter()
        .map(|s| s.fields["db.operation.name"].as_str())
        .collect();
    assert_eq!(operations, ["SET", "GET", "PIPELINE", "LPUSH", "SET"]);
    let port = server.port().to_string();
    for (span, namespace) in spans.iter().zip(["1", "1", "1", "1", "6"]) {
        assert_eq!(span.fields["db.system.name"], "redis", "{span:?}");
        assert_eq!(span.fields["db.namespace"], namespace, "{span:?}");
        assert_eq!(span.fields["server.address"], "127.0.0.1", "{span:?}");
        assert_eq!(span.fields["server.port"], port, "{span:?}");
        assert_eq!(span.fields["otel.kind"], "client", "{span:?}");
        let failed = span.fields["db.operation.name"] == "LPUSH";
        assert_eq!(
            span.fields.get("error.type").map(String::as_str),
            failed.then_some("WRONGTYPE"),
            "{span:?}"
        );
        for value in span.fields.values() {
            assert!(!value.contains("secret"), "an argument leaked: {span:?}");
        }
    }
    assert_eq!(spans[2].fields["redis_db.database"], "knowledge_reader");
    assert_eq!(spans[3].fields["otel.status_code"], "ERROR");
}

fn calls(capture: &Capture) -> Vec<Captured> {
    capture
        .closed
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.name == "redis_db.call")
        .cloned()
        .collect()
}
