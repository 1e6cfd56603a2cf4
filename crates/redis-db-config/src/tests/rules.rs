use std::time::Duration;

use super::{error_at, errors, with};
use crate::{parse_file, parse_str, ConfigError, ConfigErrors, Location, LogLevel};

#[test]
fn minimal_file_gets_every_default() {
    let cfg = parse_str(&with(""), "t.yaml").expect("valid");
    assert_eq!(cfg.databases.len(), 1);
    assert_eq!(cfg.connection.display_address(), "redis://localhost:6379");
    assert_eq!(
        (
            cfg.connection.username.clone(),
            cfg.connection.password.clone()
        ),
        (None, None)
    );
    assert_eq!(cfg.timeout, Duration::from_secs(5));
    assert_eq!(cfg.connect_timeout, Duration::from_secs(5));
    assert_eq!(cfg.max_connections, 20);
    assert_eq!(cfg.retry.attempts, 3);
    assert_eq!(cfg.retry.delay, Duration::from_secs(1));
    assert_eq!(cfg.retry.max_delay, Duration::from_secs(30));
    assert_eq!(cfg.health_check_interval, Some(Duration::from_secs(30)));
    assert!(!cfg.log_commands);
    assert_eq!(cfg.log_level, LogLevel::Info);
    assert_eq!(cfg.max_databases, 16);
    assert_eq!(cfg.idle_timeout, Duration::from_secs(300));
    assert_eq!(cfg.readiness.max_wait, Duration::from_secs(60));
    assert_eq!(cfg.readiness.poll_interval, Duration::from_millis(250));
    assert_eq!(cfg.circuit_breaker.failure_threshold, 5);
    assert_eq!(cfg.circuit_breaker.reset_timeout, Duration::from_secs(60));
    assert_eq!(cfg.keepalive.idle, Duration::from_secs(60));
    assert_eq!(cfg.keepalive.interval, Duration::from_secs(10));
    assert_eq!(cfg.keepalive.count, 5);
}

#[test]
fn every_contract_key_is_read() {
    let cfg = parse_str(
        &with(
            "username: app\npassword: pw\nconnect_timeout: 2.5\nretry_max_delay: 9\n\
             log_level: warning\nmax_databases: 32\nidle_timeout: 12\n\
             readiness:\n  max_wait: 4\n  poll_interval: 0.5\n\
             circuit_breaker:\n  failure_threshold: 2\n  reset_timeout: 8\n\
             keepalive:\n  idle: 45\n  interval: 3\n  count: 2\n",
        ),
        "t.yaml",
    )
    .expect("valid");
    assert_eq!(cfg.connection.username.as_deref(), Some("app"));
    assert_eq!(
        cfg.connection.password.as_ref().map(|p| p.expose()),
        Some("pw")
    );
    assert_eq!(cfg.connect_timeout, Duration::from_millis(2500));
    assert_eq!(cfg.retry.max_delay, Duration::from_secs(9));
    assert_eq!(cfg.log_level, LogLevel::Warn);
    assert_eq!(cfg.max_databases, 32);
    assert_eq!(cfg.idle_timeout, Duration::from_secs(12));
    assert_eq!(cfg.readiness.max_wait, Duration::from_secs(4));
    assert_eq!(cfg.readiness.poll_interval, Duration::from_millis(500));
    assert_eq!(cfg.circuit_breaker.failure_threshold, 2);
    assert_eq!(cfg.circuit_breaker.reset_timeout, Duration::from_secs(8));
    assert_eq!(cfg.keepalive.idle, Duration::from_secs(45));
    assert_eq!(cfg.keepalive.interval, Duration::from_secs(3));
    assert_eq!(cfg.keepalive.count, 2);
}

#[test]
fn display_of_errors() {
    let located = ConfigError::new("f.yaml", "bad")
        .at(Some(Location { line: 3, column: 7 }))
        .with_help("fix");
    assert_eq!(located.to_string(), "f.yaml:3:7: bad\n  help: fix");
    let bare = ConfigError::new("f.yaml", "bad");
    assert_eq!(bare.to_string(), "f.yaml: bad");
    let all = ConfigErrors::from_vec(vec![located, bare]).expect("non-empty");
    assert_eq!(all.to_string(), "f.yaml: bad\nf.yaml:3:7: bad\n  help: fix");
    assert!(ConfigErrors::from_vec(Vec::new()).is_none());
}

#[test]
fn missing_file_shows_the_absolute_path() {
    let e = parse_file(std::path::Path::new("no/such/redis-databases.yaml")).expect_err("missing");
    let text = e.to_string();
    let abs = std::env::current_dir()
        .expect("cwd")
        .join("no/such/redis-databases.yaml");
    assert!(text.contains(&abs.display().to_string()), "{text}");
    assert!(text.contains("cannot read config file"), "{text}");
}

#[test]
fn yaml_syntax_error_has_serde_yaml_place() {
    let e = errors("redis_databases:\n  main:\n    db: 0\n  bad: [1, 2\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].message.starts_with("invalid YAML"), "{}", e[0]);
    assert!(e[0].location.is_some_and(|l| l.line >= 4), "{}", e[0]);
}

#[test]
fn unknown_top_level_key_is_named_with_valid_keys_and_a_suggestion() {
    let e = error_at(&with("timout: 5\n"), "unknown key `timout`", 4, 1);
    assert!(
        e.message
            .contains("valid keys: redis_databases, host, port"),
        "{e}"
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `timeout`?"));
}

#[test]
fn unknown_database_key_names_the_database() {
    let e = error_at(
        &with("    dbb: 1\n"),
        "unknown key `dbb` in database `main`",
        4,
        5,
    );
    assert!(
        e.message
            .contains("db, description, alias_of, max_connections, timeout_seconds"),
        "{e}"
    );
}

#[test]
fn unknown_keys_in_sections() {
    error_at(
        &with("readiness:\n  max_wait: 3\n  wait: 1\n"),
        "unknown key `wait` in `readiness`",
        6,
        3,
    );
    error_at(
        &with("keepalive:\n  probes: 1\n"),
        "unknown key `probes` in `keepalive`",
        5,
        3,
    );
}

#[test]
fn wrong_types_point_at_the_value() {
    let text = with("timeout: 5s\nport: \"6379\"\nlog_commands: yes\nreadiness: 3\n")
        .replace("db: 0", "db: zero");
    error_at(
        &text,
        "`db` of database `main` must be a whole number, found a string (\"zero\")",
        3,
        9,
    );
    error_at(
        &text,
        "`timeout` must be a number of seconds, found a string (\"5s\")",
        4,
        10,
    );
    error_at(&text, "`port` must be a whole number", 5, 7);
    error_at(&text, "`log_commands` must be true or false", 6, 15);
    error_at(&text, "`readiness` must be a mapping", 7, 12);
}

#[test]
fn missing_or_empty_databases() {
    let e = errors("host: localhost\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].message
            .contains("missing required key `redis_databases`"),
        "{}",
        e[0]
    );
    error_at(
        "redis_databases: {}\n",
        "`redis_databases` has no databases",
        1,
        1,
    );
    error_at(
        "redis_databases: [main]\n",
        "`redis_databases` must be a mapping",
        1,
        18,
    );
    let e = errors("");
    assert!(e[0].message.contains("must be a YAML mapping"), "{}", e[0]);
}

#[test]
fn database_without_db() {
    error_at(
        &with("  other:\n    description: x\n"),
        "database `other` has no `db`",
        4,
        3,
    );
    error_at(
        &with("  other: 3\n"),
        "database `other` must be a mapping",
        4,
        10,
    );
}

#[test]
fn duplicate_database_name_names_it_and_its_lines() {
    let e = error_at(
        &with("  main:\n    db: 1\n"),
        "duplicate database name `main`",
        4,
        3,
    );
    assert!(e.message.contains("first at line 2"), "{e}");
}

#[test]
fn duplicate_top_level_key() {
    error_at(
        &with("timeout: 1\ntimeout: 2\n"),
        "key `timeout` appears more than once",
        5,
        1,
    );
}

#[test]
fn db_outside_range() {
    let e = error_at(
        &with("  big:\n    db: 16\n"),
        "database `big` has db 16, outside 0..16",
        5,
        9,
    );
    assert!(
        e.help.as_deref().is_some_and(|h| h.contains("0 to 15")),
        "{e}"
    );
    error_at(
        &with("  neg:\n    db: -1\n"),
        "database `neg` has db -1, outside 0..16",
        5,
        9,
    );
    error_at(
        &with("max_databases: 4\n").replace("db: 0", "db: 5"),
        "has db 5, outside 0..4",
        3,
        9,
    );
    let cfg =
        parse_str(&with("max_databases: 32\n").replace("db: 0", "db: 31"), "t").expect("valid");
    assert_eq!(cfg.databases[0].db, 31);
}

#[test]
fn shared_number_needs_alias_of() {
    let e = error_at(
        &with("  other:\n    db: 0\n"),
        "databases `main` and `other` both use db 0",
        5,
        9,
    );
    assert!(e.message.contains("`alias_of: main` under `other`"), "{e}");
}

#[test]
fn alias_rules() {
    let base = "redis_databases:\n  a:\n    db: 1\n  b:\n    db: 1\n    alias_of: a\n";
    let cfg = parse_str(base, "t").expect("valid alias");
    assert_eq!(cfg.databases[1].alias_of.as_deref(), Some("a"));

    error_at(
        &format!("{base}  c:\n    db: 2\n    alias_of: nope\n"),
        "`alias_of: nope` of database `c` names an unknown database",
        9,
        15,
    );
    let e = error_at(
        &format!("{base}  c:\n    db: 1\n    alias_of: b\n"),
        "names `b`, which is itself an alias (of `a`)",
        9,
        15,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("aliases cannot chain: write `alias_of: a`")
    );
    error_at(
        &format!("{base}  c:\n    db: 2\n    alias_of: c\n"),
        "`alias_of: c` of database `c` makes it an alias of itself",
        9,
        15,
    );
    let e = error_at(
        &format!("{base}  c:\n    db: 2\n    alias_of: a\n"),
        "`c` has db 2 but `a` has db 1",
        9,
        15,
    );
    assert!(
        e.help
            .as_deref()
            .is_some_and(|h| h.contains("set `db: 1` under `c`")),
        "{e}"
    );
}

#[test]
fn names_must_be_snake_case_identifiers() {
    for (name, needle) in [
        ("Main", "not a snake_case identifier"),
        ("a__b", "not a snake_case identifier"),
        ("x_", "not a snake_case identifier"),
        ("9lives", "not a snake_case identifier"),
        ("\"with-dash\"", "not a snake_case identifier"),
        ("async", "is a Rust keyword"),
        ("type", "is a Rust keyword"),
        ("gen", "is a Rust keyword"),
        ("stats", "collides with the generated client method `stats`"),
        ("clone", "collides with the generated client method"),
    ] {
        let text = format!("redis_databases:\n  ok:\n    db: 0\n  {name}:\n    db: 1\n");
        error_at(&text, needle, 4, 3);
    }
    let e = errors("redis_databases:\n  12:\n    db: 0\n");
    assert!(
        e[0].message
            .contains("database name `12` is not a snake_case identifier"),
        "{}",
        e[0]
    );
}

#[test]
fn names_mapping_to_the_same_variant() {
    let text = "redis_databases:\n  a_b1:\n    db: 0\n  a_b_1:\n    db: 1\n";
    error_at(
        text,
        "databases `a_b1` and `a_b_1` both map to the enum variant `AB1`",
        4,
        3,
    );
}

#[test]
fn zero_and_negative_sizes_and_durations() {
    let text = with(
        "timeout: 0\nconnect_timeout: -1\nmax_connections: 0\nmax_databases: 0\nidle_timeout: -0.5\n\
         circuit_breaker:\n  failure_threshold: -2\n  reset_timeout: 0\nkeepalive:\n  count: 0\n",
    )
    .replace("    db: 0\n", "    db: 0\n    max_connections: 0\n    timeout_seconds: 0.0\n");
    error_at(&text, "`timeout` must be greater than 0, found 0", 6, 10);
    error_at(
        &text,
        "`connect_timeout` must be a positive, finite number of seconds, found -1",
        7,
        18,
    );
    error_at(
        &text,
        "`max_connections` must be a positive whole number, found 0",
        8,
        18,
    );
    error_at(
        &text,
        "`max_databases` must be a positive whole number, found 0",
        9,
        16,
    );
    error_at(
        &text,
        "`idle_timeout` must be a positive, finite number of seconds, found -0.5",
        10,
        15,
    );
    error_at(
        &text,
        "`circuit_breaker.failure_threshold` must be a positive whole number, found -2",
        12,
        22,
    );
    error_at(
        &text,
        "`circuit_breaker.reset_timeout` must be greater than 0",
        13,
        18,
    );
    error_at(
        &text,
        "`keepalive.count` must be a positive whole number",
        15,
        10,
    );
    error_at(
        &text,
        "`max_connections` of database `main` must be a positive whole number",
        4,
        22,
    );
    error_at(
        &text,
        "`timeout_seconds` of database `main` must be greater than 0",
        5,
        22,
    );
}

#[test]
fn zero_retries_and_zero_health_interval_are_valid() {
    let cfg =
        parse_str(&with("retry_attempts: 0\nhealth_check_interval: 0\n"), "t").expect("valid");
    assert_eq!(cfg.retry.attempts, 0);
    assert_eq!(cfg.health_check_interval, None);
    error_at(
        &with("retry_attempts: -1\n"),
        "`retry_attempts` must be 0 or a positive whole number",
        4,
        17,
    );
    error_at(
        &with("health_check_interval: -3\n"),
        "`health_check_interval` must be a positive, finite",
        4,
        24,
    );
}

#[test]
fn non_finite_and_huge_values_are_errors_not_panics() {
    for value in [
        ".nan",
        ".inf",
        "-.inf",
        "1e300",
        "18446744073709551616",
        "99999999999999999999999999999999999999999",
        "0.0000000000001",
    ] {
        let e = error_at(
            &with(&format!("timeout: {value}\n")),
            "`timeout` must be",
            4,
            10,
        );
        assert!(e.help.is_some());
    }
    // Beyond u64, YAML integers arrive as floats: still an error, not a wrap-around.
    for value in [
        "4294967296",
        "99999999999999999999999999999999999999999",
        "-5",
    ] {
        error_at(
            &with(&format!("max_databases: {value}\n")),
            "`max_databases` must be a",
            4,
            16,
        );
    }
    error_at(
        &with("port: 70000\n"),
        "`port` must be a TCP port between 1 and 65535, found 70000",
        4,
        7,
    );
    let e = error_at(
        &with("  big:\n    db: 99999999999999999999\n"),
        "database `big` has db 99999999999999999999",
        5,
        9,
    );
    assert!(e.message.contains("outside 0..16"));
}

#[test]
fn log_level_is_case_insensitive() {
    for (text, level) in [
        ("trace", LogLevel::Trace),
        ("Debug", LogLevel::Debug),
        ("WARNING", LogLevel::Warn),
        ("error", LogLevel::Error),
    ] {
        let cfg = parse_str(&with(&format!("log_level: {text}\n")), "t").expect("valid");
        assert_eq!(cfg.log_level, level);
    }
    error_at(
        &with("log_level: LOUD\n"),
        "`log_level` must be one of TRACE, DEBUG, INFO, WARN, WARNING, ERROR, found `LOUD`",
        4,
        12,
    );
}

#[test]
fn url_sets_the_connection_and_excludes_host_port() {
    let cfg = parse_str(&with("url: rediss://app:pw@cache.example:6380\n"), "t").expect("valid");
    assert_eq!(
        cfg.connection.display_address(),
        "rediss://cache.example:6380"
    );
    assert_eq!(cfg.connection.username.as_deref(), Some("app"));
    assert_eq!(
        cfg.connection.password.as_ref().map(|p| p.expose()),
        Some("pw")
    );
    assert!(cfg.connection.tls);
    let e = error_at(
        &with("url: redis://h:1\nhost: other\n"),
        "use either url or host/port",
        4,
        1,
    );
    assert!(e.message.contains("`url` and `host`/`port`"));
    let e = error_at(
        &with("url: http://user:hunter2@h\n"),
        "`url` is not a usable Redis URL",
        4,
        6,
    );
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn retry_max_delay_below_retry_delay() {
    error_at(
        &with("retry_delay: 5\nretry_max_delay: 2\n"),
        "`retry_max_delay` (2s) is shorter than `retry_delay` (5s)",
        5,
        18,
    );
}

#[test]
fn all_errors_are_reported_together_in_file_order() {
    let text = "redis_databases:\n  Main:\n    db: 0\n  other:\n    db: 0\n  far:\n    db: 40\ntimeout: x\nbogus: 1\n";
    let e = errors(text);
    let lines: Vec<usize> = e
        .iter()
        .filter_map(|e| e.location.map(|l| l.line))
        .collect();
    assert_eq!(lines, [2, 5, 7, 8, 9], "{e:#?}");
}
