//! Behaviour tests, one per rule of CONTRACT section 3 and 4.

mod env;
mod overlay;
mod robustness;
mod rules;
mod seed;
mod tls;
mod topology;

use crate::{parse_str, ConfigError, Location};

/// The errors of a text that must be rejected.
fn errors(text: &str) -> Vec<ConfigError> {
    match parse_str(text, "t.yaml") {
        Ok(cfg) => panic!("expected errors, got {cfg:#?}"),
        Err(e) => e.into_vec(),
    }
}

/// The one error whose message contains `needle`, asserting its place.
fn error_at(text: &str, needle: &str, line: usize, column: usize) -> ConfigError {
    let all = errors(text);
    let found: Vec<&ConfigError> = all.iter().filter(|e| e.message.contains(needle)).collect();
    assert_eq!(
        found.len(),
        1,
        "one error containing {needle:?} in {all:#?}"
    );
    let e = found[0].clone();
    assert_eq!(e.location, Some(Location { line, column }), "{e}");
    assert!(e.help.is_some(), "every error has help: {e}");
    e
}

/// A valid file with the given extra top-level text.
fn with(extra: &str) -> String {
    format!("redis_databases:\n  main:\n    db: 0\n{extra}")
}
