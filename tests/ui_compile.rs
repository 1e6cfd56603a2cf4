//! Compile-time behaviour of `#[redis_db::databases]`: invalid configs and misuse are one
//! clear compile error each (`tests/ui/*.stderr`), valid uses compile cleanly.
//!
//! The YAML paths in the cases are relative to trybuild's generated crate
//! (`target/tests/trybuild/redis-db`), hence `../../../../tests/...`.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui_compile`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
