use std::collections::HashMap;

use super::with;
use crate::{parse_str, Config, ConfigErrors};

fn base() -> Config {
    parse_str(&with("password: compiled\n"), "t.yaml").expect("valid")
}

fn env(vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    base().overlay_env(|name| map.get(name).cloned())
}

#[test]
fn no_variables_change_nothing() {
    assert_eq!(env(&[]).expect("valid"), base());
    assert_eq!(
        env(&[("REDIS_HOST", ""), ("REDIS_PORT", "")]).expect("empty = unset"),
        base()
    );
}

#[test]
fn each_variable_sets_its_field() {
    let cfg = env(&[("REDIS_HOST", "h1")]).expect("valid");
    assert_eq!(cfg.connection.host, "h1");
    let cfg = env(&[("REDIS_PORT", "6390")]).expect("valid");
    assert_eq!(cfg.connection.port, 6390);
    let cfg = env(&[("REDIS_USERNAME", "app")]).expect("valid");
    assert_eq!(cfg.connection.username.as_deref(), Some("app"));
    let cfg = env(&[("REDIS_PASSWORD", "envpw")]).expect("valid");
    assert_eq!(
        cfg.connection.password.as_ref().map(|p| p.expose()),
        Some("envpw")
    );
}

#[test]
fn redis_url_sets_everything_then_single_fields_win() {
    let cfg = env(&[("REDIS_URL", "rediss://u:p%40ss@[::1]:7001")]).expect("valid");
    assert_eq!(cfg.connection.host, "::1");
    assert_eq!(cfg.connection.port, 7001);
    assert!(cfg.connection.tls);
    assert_eq!(cfg.connection.username.as_deref(), Some("u"));
    assert_eq!(
        cfg.connection.password.as_ref().map(|p| p.expose()),
        Some("p@ss")
    );

    // A URL without credentials describes an endpoint without them.
    let cfg = env(&[("REDIS_URL", "redis://10.0.0.1")]).expect("valid");
    assert_eq!(cfg.connection.display_address(), "redis://10.0.0.1:6379");
    assert_eq!(cfg.connection.password, None);

    let cfg = env(&[
        ("REDIS_URL", "redis://a:1/"),
        ("REDIS_HOST", "b"),
        ("REDIS_PASSWORD", "x"),
    ])
    .expect("valid");
    assert_eq!(cfg.connection.display_address(), "redis://b:1");
    assert_eq!(
        cfg.connection.password.as_ref().map(|p| p.expose()),
        Some("x")
    );
}

#[test]
fn malformed_redis_port_names_the_variable_and_value() {
    for bad in ["abc", "0", "70000", "-1", " 6379"] {
        let e = env(&[("REDIS_PORT", bad)]).expect_err("malformed");
        let text = e.to_string();
        assert!(
            text.starts_with("environment: REDIS_PORT must be a TCP port"),
            "{text}"
        );
        assert!(text.contains(&format!("found `{bad}`")), "{text}");
    }
}

#[test]
fn malformed_redis_url_names_the_variable_without_the_password() {
    for bad in [
        "http://user:hunter2@host:1",
        "redis://user:hunter2@host:notaport",
        "redis://user:hunter2@host:1/3",
        "redis://user:hunter2@:1",
        "hunter2",
    ] {
        let e = env(&[("REDIS_URL", bad)]).expect_err("malformed");
        let text = format!("{e} {e:?}");
        assert!(text.contains("REDIS_URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    // Both problems at once.
    let e = env(&[("REDIS_URL", "nope"), ("REDIS_PORT", "x")]).expect_err("malformed");
    assert_eq!(e.len(), 2);
}

#[test]
fn password_never_shows_in_debug_or_display() {
    let cfg = env(&[("REDIS_PASSWORD", "topsecret")]).expect("valid");
    assert!(!format!("{cfg:?}").contains("topsecret"));
    assert!(!format!("{cfg:#?}").contains("topsecret"));
    let pw = cfg.connection.password.expect("set");
    assert_eq!(pw.to_string(), "***");
}
