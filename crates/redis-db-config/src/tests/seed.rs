use std::time::Duration;

use crate::{parse_file, parse_str, LogLevel};

const SEED: &str = include_str!("../../tests/fixtures/seed.yaml");

fn seed_with_aliases() -> String {
    SEED.replace(
        "    description: \"Infrastructure monitoring data (alias for workflows DB)\"\n",
        "    description: \"Infrastructure monitoring data (alias for workflows DB)\"\n    alias_of: workflows\n",
    )
    .replace(
        "    description: \"Codebase analytics (alias for analytics DB)\"\n",
        "    description: \"Codebase analytics (alias for analytics DB)\"\n    alias_of: analytics\n",
    )
}

#[test]
fn seed_as_is_is_rejected_naming_both_aliases_at_once() {
    let errors = parse_str(SEED, "seed.yaml").expect_err("shared numbers without alias_of");
    assert_eq!(
        errors.to_string(),
        "seed.yaml:30:9: databases `workflows` and `monitoring` both use db 7; declare the intended one as an alias: `alias_of: workflows` under `monitoring`\n  \
         help: add `alias_of: workflows` under `monitoring` if they are meant to share db 7, else give `monitoring` a free number\n\
         seed.yaml:47:9: databases `analytics` and `codebase` both use db 11; declare the intended one as an alias: `alias_of: analytics` under `codebase`\n  \
         help: add `alias_of: analytics` under `codebase` if they are meant to share db 11, else give `codebase` a free number"
    );
    assert_eq!(errors.len(), 2);
}

#[test]
fn seed_file_on_disk_is_rejected_too() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed.yaml");
    let errors = parse_file(&path).expect_err("rejected");
    assert!(errors.iter().all(|e| e.file.ends_with("seed.yaml")));
    assert_eq!(errors.len(), 2);
}

#[test]
fn seed_with_aliases_is_accepted_and_every_key_takes_effect() {
    let cfg = parse_str(&seed_with_aliases(), "seed.yaml").expect("valid");
    let numbers: Vec<(&str, u32)> = cfg
        .databases
        .iter()
        .map(|d| (d.name.as_str(), d.db))
        .collect();
    assert_eq!(
        numbers,
        [
            ("main", 0),
            ("knowledge", 1),
            ("prompts", 2),
            ("agents", 3),
            ("metrics", 4),
            ("cache", 5),
            ("sessions", 6),
            ("workflows", 7),
            ("monitoring", 7),
            ("logs", 8),
            ("temp", 9),
            ("audit", 10),
            ("analytics", 11),
            ("codebase", 11),
        ]
    );
    let by = |n: &str| cfg.databases.iter().find(|d| d.name == n).expect(n);
    assert_eq!(by("monitoring").alias_of.as_deref(), Some("workflows"));
    assert_eq!(by("codebase").alias_of.as_deref(), Some("analytics"));
    assert_eq!(by("monitoring").target(&cfg.databases).name, "workflows");
    assert_eq!(by("audit").max_connections, Some(15));
    assert_eq!(by("audit").timeout, Some(Duration::from_secs(3)));
    assert_eq!(by("main").max_connections, None);
    assert_eq!(by("prompts").description, "Prompt templates and management");
    assert_eq!(cfg.connection.host, "localhost");
    assert_eq!(cfg.connection.port, 6379);
    assert_eq!(cfg.connection.password, None);
    assert_eq!(cfg.timeout, Duration::from_secs(5));
    assert_eq!(cfg.retry.attempts, 3);
    assert_eq!(cfg.retry.delay, Duration::from_secs(1));
    assert_eq!(cfg.max_connections, 20);
    assert_eq!(cfg.health_check_interval, Some(Duration::from_secs(30)));
    assert!(!cfg.log_commands);
    assert_eq!(cfg.log_level, LogLevel::Info);
}

#[test]
fn seed_keys_are_not_just_defaults() {
    // Changing each seed value changes the result: no key is silently ignored.
    let text = seed_with_aliases()
        .replace("host: localhost", "host: redis.internal")
        .replace("port: 6379", "port: 6380")
        .replace("password: null", "password: s3cret")
        .replace("timeout: 5", "timeout: 7")
        .replace("retry_attempts: 3", "retry_attempts: 4")
        .replace("retry_delay: 1", "retry_delay: 2")
        .replace("max_connections: 20", "max_connections: 21")
        .replace("health_check_interval: 30", "health_check_interval: 31")
        .replace("log_commands: false", "log_commands: true")
        .replace("log_level: INFO", "log_level: debug");
    let cfg = parse_str(&text, "seed.yaml").expect("valid");
    assert_eq!(cfg.connection.host, "redis.internal");
    assert_eq!(cfg.connection.port, 6380);
    assert_eq!(
        cfg.connection.password.as_ref().map(|p| p.expose()),
        Some("s3cret")
    );
    assert_eq!(cfg.timeout, Duration::from_secs(7));
    assert_eq!(cfg.retry.attempts, 4);
    assert_eq!(cfg.retry.delay, Duration::from_secs(2));
    assert_eq!(cfg.max_connections, 21);
    assert_eq!(cfg.health_check_interval, Some(Duration::from_secs(31)));
    assert!(cfg.log_commands);
    assert_eq!(cfg.log_level, LogLevel::Debug);
}
