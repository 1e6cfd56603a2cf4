use std::time::Duration;

use super::with;
use crate::{parse_str, Config, ConfigError, Location};

const BASE: &str = "redis_databases:\n  main:\n    db: 0\n  knowledge:\n    db: 1\n  mirror:\n    db: 1\n    alias_of: knowledge\n";

fn base() -> Config {
    parse_str(BASE, "base.yaml").expect("valid base")
}

fn overlay_errors(text: &str) -> Vec<ConfigError> {
    match base().overlay_str(text, "/etc/app/runtime.yaml") {
        Ok(cfg) => panic!("expected errors, got {cfg:#?}"),
        Err(e) => e.into_vec(),
    }
}

fn one(text: &str, needle: &str, line: usize, column: usize) -> ConfigError {
    let all = overlay_errors(text);
    let found: Vec<&ConfigError> = all.iter().filter(|e| e.message.contains(needle)).collect();
    assert_eq!(found.len(), 1, "{needle:?} in {all:#?}");
    assert_eq!(
        found[0].location,
        Some(Location { line, column }),
        "{}",
        found[0]
    );
    assert_eq!(found[0].file, "/etc/app/runtime.yaml");
    found[0].clone()
}

#[test]
fn empty_overlay_changes_nothing() {
    assert_eq!(base().overlay_str("", "r.yaml").expect("valid"), base());
    assert_eq!(
        base()
            .overlay_str("# only a comment\n", "r.yaml")
            .expect("valid"),
        base()
    );
}

#[test]
fn settings_change_field_by_field() {
    let cfg = base()
        .overlay_str(
            "timeout: 2\nmax_connections: 50\nretry_attempts: 0\nhealth_check_interval: 0\n\
             circuit_breaker:\n  reset_timeout: 5\nkeepalive:\n  idle: 30\nport: 6390\n",
            "r.yaml",
        )
        .expect("valid");
    assert_eq!(cfg.timeout, Duration::from_secs(2));
    assert_eq!(cfg.max_connections, 50);
    assert_eq!(cfg.retry.attempts, 0);
    assert_eq!(cfg.health_check_interval, None);
    assert_eq!(cfg.circuit_breaker.reset_timeout, Duration::from_secs(5));
    assert_eq!(
        cfg.circuit_breaker.failure_threshold, 5,
        "untouched field keeps its value"
    );
    assert_eq!(cfg.keepalive.idle, Duration::from_secs(30));
    assert_eq!(cfg.keepalive.count, 5);
    assert_eq!(cfg.connection.display_address(), "redis://localhost:6390");
}

#[test]
fn per_database_settings_may_change() {
    let cfg = base()
        .overlay_str(
            "redis_databases:\n  main:\n    db: 0\n    max_connections: 3\n    timeout_seconds: 0.5\n    description: new\n\
             \x20 knowledge:\n    db: 1\n  mirror:\n    db: 1\n    alias_of: knowledge\n",
            "r.yaml",
        )
        .expect("valid");
    assert_eq!(cfg.databases[0].max_connections, Some(3));
    assert_eq!(cfg.databases[0].timeout, Some(Duration::from_millis(500)));
    assert_eq!(cfg.databases[0].description, "new");
    assert_eq!(cfg.databases[1].max_connections, None);
}

#[test]
fn renumbering_is_rejected() {
    let e = one(
        "redis_databases:\n  main:\n    db: 0\n  knowledge:\n    db: 3\n  mirror:\n    db: 1\n    alias_of: knowledge\n",
        "database `knowledge` has db 1 in the compiled config but 3 in /etc/app/runtime.yaml: a runtime file may not renumber databases",
        5,
        9,
    );
    assert_eq!(
        e.help.as_deref(),
        Some("set `db: 1` under `knowledge` in /etc/app/runtime.yaml")
    );
}

#[test]
fn new_and_removed_names_are_rejected() {
    let text =
        "redis_databases:\n  main:\n    db: 0\n  knowledge:\n    db: 1\n  extra:\n    db: 2\n";
    one(
        text,
        "database `extra` is not in the compiled config: a runtime file may not add databases",
        6,
        3,
    );
    one(
        text,
        "database `mirror` of the compiled config is missing from /etc/app/runtime.yaml: a runtime file may not remove databases",
        1,
        1,
    );
}

#[test]
fn alias_changes_are_rejected() {
    let text = "redis_databases:\n  main:\n    db: 0\n  knowledge:\n    db: 1\n    alias_of: mirror\n  mirror:\n    db: 1\n";
    one(
        text,
        "database `knowledge` is not an alias in the compiled config but an alias of `mirror` in /etc/app/runtime.yaml",
        6,
        15,
    );
    let all = overlay_errors(text);
    assert!(
        all.iter().any(|e| e.message.contains(
            "database `mirror` is an alias of `knowledge` in the compiled config but not an alias"
        )),
        "{all:#?}"
    );
}

#[test]
fn overlay_has_the_same_key_and_type_checks() {
    one(
        "timeout: soon\n",
        "`timeout` must be a number of seconds",
        1,
        10,
    );
    one("sentinal: {}\n", "unknown key `sentinal`", 1, 1);
    one(
        "url: redis://h:1\nport: 2\n",
        "use either url or host/port",
        1,
        1,
    );
    let e = overlay_errors("a: [\n");
    assert!(e[0].message.starts_with("invalid YAML"), "{}", e[0]);
}

#[test]
fn values_are_revalidated_after_the_overlay() {
    one(
        "max_databases: 1\n",
        "database `knowledge` has db 1, outside 0..1",
        1,
        16,
    );
    one(
        "retry_max_delay: 0.5\n",
        "`retry_max_delay` (0.5s) is shorter than `retry_delay` (1s)",
        1,
        18,
    );
}

#[test]
fn overlay_url_then_explicit_fields_win() {
    let base = parse_str(&with("username: old\npassword: oldpw\n"), "b").expect("valid");
    let cfg = base
        .overlay_str(
            "url: rediss://u:p@remote:7000\nusername: explicit\n",
            "r.yaml",
        )
        .expect("valid");
    assert_eq!(cfg.connection.display_address(), "rediss://remote:7000");
    assert_eq!(cfg.connection.username.as_deref(), Some("explicit"));
    assert_eq!(
        cfg.connection.password.as_ref().map(|p| p.expose()),
        Some("p")
    );
}

#[test]
fn overlay_file_reads_a_file_and_reports_missing_ones() {
    let missing = base()
        .overlay_file(std::path::Path::new("does/not/exist.yaml"))
        .expect_err("missing");
    let abs = std::env::current_dir()
        .expect("cwd")
        .join("does/not/exist.yaml");
    assert!(
        missing.to_string().contains(&abs.display().to_string()),
        "{missing}"
    );

    let dir = std::env::temp_dir().join(format!("redis-db-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("runtime.yaml");
    std::fs::write(&path, "redis_databases:\n  main:\n    db: 5\n").expect("write");
    let e = base().overlay_file(&path).expect_err("renumbered");
    assert!(
        e.to_string()
            .contains(&format!("but 5 in {}", path.display())),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
