//! Compile-time behaviour of `#[redis_db::databases]`: invalid configs and misuse are one
//! clear compile error each (`tests/ui/*.stderr`), valid uses compile cleanly.
//!
//! The YAML paths in the cases are relative to the case's own file (`tests/ui/`): trybuild's
//! generated crate, which is `CARGO_MANIFEST_DIR` during the build, lives in the target dir, and
//! a path the macro does not find there is looked for next to the source file holding the
//! attribute. So the cases pass with any `CARGO_TARGET_DIR`.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui_compile`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
