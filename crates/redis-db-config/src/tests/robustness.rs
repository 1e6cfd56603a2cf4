//! No input may panic: the macro turns every problem into a compile error.

use crate::parse_str;

const SEED: &str = include_str!("../../tests/fixtures/seed.yaml");

#[test]
fn every_prefix_and_every_dropped_line_of_the_seed_is_handled() {
    let mut cuts: Vec<String> = SEED
        .char_indices()
        .map(|(i, _)| SEED[..i].to_owned())
        .collect();
    let lines: Vec<&str> = SEED.lines().collect();
    for skip in 0..lines.len() {
        let kept: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        cuts.push(kept.join("\n"));
    }
    for text in &cuts {
        if let Err(errors) = parse_str(text, "cut.yaml") {
            for e in &errors {
                assert!(
                    e.help.is_some() || e.message.starts_with("invalid YAML"),
                    "{e}"
                );
            }
        }
    }
}

#[test]
fn odd_documents_are_errors() {
    for text in [
        "\u{feff}redis_databases:\n  Main:\n    db: 0\n",
        "redis_databases:\n  main: !custom {db: 0}\n",
        "redis_databases:\n  main: &a {db: 0}\n  other: *a\n",
        "redis_databases:\n  main:\n    <<: {db: 0}\n",
        "- a\n- b\n",
        "42",
        "redis_databases:\n  ? [complex]\n  : {db: 0}\n",
        "{redis_databases: {main: {db: 0}}, timeout: -1}",
        "---\nredis_databases: {}\n---\nother: 1\n",
        "redis_databases:\n  main:\n    db: 0\n    description: |\n      db: 99\n  x:\n\tdb: 1\n",
    ] {
        assert!(parse_str(text, "odd.yaml").is_err(), "{text:?}");
    }
    // BOM does not shift places.
    let e = parse_str("\u{feff}redis_databases:\n  Main:\n    db: 0\n", "b").expect_err("bad name");
    let loc = e.iter().next().and_then(|e| e.location).expect("placed");
    assert_eq!((loc.line, loc.column), (2, 3));
}

#[test]
fn flow_style_documents_are_accepted() {
    let cfg = parse_str(
        "{redis_databases: {main: {db: 0}}, readiness: {max_wait: 3}}",
        "f",
    )
    .expect("valid");
    assert_eq!(cfg.databases[0].name, "main");
}
