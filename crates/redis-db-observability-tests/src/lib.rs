//! Nothing to use: this crate only holds the tests of redis-db's `metrics` and `otel-spans`
//! features (see `tests/`), so that `cargo test --workspace` builds redis-db with them and runs
//! them.
