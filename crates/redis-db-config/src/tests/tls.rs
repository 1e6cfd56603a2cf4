//! CONTRACT section 11: the `tls:` keys of an endpoint.

use std::path::{Path, PathBuf};

use super::{error_at, errors, with};
use crate::{parse_str, parse_str_with_files, Config, TlsOptions};

fn valid(text: &str) -> Config {
    match parse_str(text, "t.yaml") {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

#[test]
fn tls_keys_turn_tls_on_at_the_top_level_and_per_endpoint() {
    let cfg = valid(&with(
        "host: cache\ntls:\n  ca_file: certs/ca.pem\n  cert_file: certs/client.pem\n  key_file: /etc/redis/client.key\nendpoints:\n  vectors:\n    url: redis://vectors:6380\n    tls: { insecure: true }\n  plain:\n    url: redis://plain:6379\n",
    ));
    assert!(cfg.connection.tls);
    assert_eq!(cfg.connection.display_address(), "rediss://cache:6379");
    assert_eq!(
        cfg.connection.tls_options,
        TlsOptions {
            ca_file: Some(PathBuf::from("certs/ca.pem")),
            cert_file: Some(PathBuf::from("certs/client.pem")),
            key_file: Some(PathBuf::from("/etc/redis/client.key")),
            insecure: false,
        }
    );
    let vectors = cfg.endpoint("vectors").unwrap();
    // Any tls key turns TLS on, even under a redis:// URL.
    assert!(vectors.connection.tls);
    assert!(vectors.connection.tls_options.insecure);
    assert!(!cfg.endpoint("plain").unwrap().connection.tls);
    // An empty section is a tls key too.
    assert!(valid(&with("tls: {}\n")).connection.tls);
    // rediss:// alone: TLS with the built-in roots.
    let cfg = valid(&with("url: rediss://cache:6380\n"));
    assert!(cfg.connection.tls);
    assert_eq!(cfg.connection.tls_options, TlsOptions::default());
}

#[test]
fn cert_file_and_key_file_go_together() {
    let e = error_at(
        &with("tls:\n  cert_file: client.pem\n"),
        "`tls.cert_file` is set without `tls.key_file`",
        5,
        14,
    );
    assert!(e.help.unwrap().contains("key_file"));
    let e = error_at(
        &with("endpoints:\n  vectors:\n    host: v\n    tls:\n      key_file: client.key\n"),
        "`tls.key_file` of endpoint `vectors` is set without `tls.cert_file`",
        8,
        17,
    );
    assert!(
        e.help.as_ref().unwrap().contains("`endpoints.vectors.tls`"),
        "{e:?}"
    );
}

#[test]
fn insecure_with_a_ca_is_contradictory() {
    let e = error_at(
        &with("tls:\n  ca_file: ca.pem\n  insecure: true\n"),
        "`tls.insecure: true` skips every check",
        6,
        13,
    );
    assert!(e.message.contains("`tls.ca_file` would be ignored"), "{e}");
}

#[test]
fn tls_values_are_type_checked() {
    let all = errors(&with(
        "tls:\n  ca_file: 3\n  insecure: \"yes\"\n  cafile: x.pem\n",
    ));
    let text: Vec<String> = all.iter().map(ToString::to_string).collect();
    let text = text.join("\n");
    assert!(text.contains("`tls.ca_file` must be a string"), "{text}");
    assert!(
        text.contains("`tls.insecure` must be true or false"),
        "{text}"
    );
    assert!(text.contains("unknown key `cafile`"), "{text}");
    assert!(text.contains("did you mean `ca_file`?"), "{text}");
    let e = error_at(&with("tls: true\n"), "`tls` must be a mapping", 4, 6);
    assert!(
        e.message.contains("ca_file, cert_file, key_file, insecure"),
        "{e}"
    );
}

#[test]
fn the_insecure_url_fragment_points_at_the_tls_key() {
    let e = error_at(
        &with("url: rediss://cache:6380/#insecure\n"),
        "`#insecure` fragment is not supported",
        4,
        6,
    );
    assert!(e.message.contains("tls: { insecure: true }"), "{e}");
}

#[test]
fn compile_time_check_finds_missing_files_at_their_line() {
    let dir = std::env::temp_dir().join(format!("redis-db-config-tls-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/ca.pem"), "x").unwrap();
    let text = with("tls:\n  ca_file: certs/ca.pem\n  cert_file: certs/client.pem\n  key_file: certs/client.key\n");
    let e = parse_str_with_files(&text, "t.yaml", &dir)
        .unwrap_err()
        .into_vec();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].location.unwrap().to_string(), "6:14");
    assert!(
        e[0].message.contains("`tls.cert_file` names")
            && e[0]
                .message
                .contains(&dir.join("certs/client.pem").display().to_string()),
        "{}",
        e[0]
    );
    assert!(e[0].help.as_ref().unwrap().contains("YAML's directory"));
    assert!(e[1].message.contains("`tls.key_file`"), "{}", e[1]);
    // The paths of the config stay as written; parse_str alone does not look at the disk.
    std::fs::write(dir.join("certs/client.pem"), "x").unwrap();
    std::fs::write(dir.join("certs/client.key"), "x").unwrap();
    let cfg = parse_str_with_files(&text, "t.yaml", &dir).expect("all files exist");
    assert_eq!(
        cfg.connection.tls_options.ca_file.as_deref(),
        Some(Path::new("certs/ca.pem"))
    );
    // A directory is not a file.
    let e = parse_str_with_files(&with("tls:\n  ca_file: certs\n"), "t.yaml", &dir).unwrap_err();
    assert!(e.to_string().contains("it is not a file"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compiled_relative_paths_resolve_against_a_base_and_runtime_files_against_the_cwd() {
    let mut cfg = valid(&with(
        "tls:\n  ca_file: certs/ca.pem\nendpoints:\n  v:\n    host: v\n    tls: { ca_file: /abs/ca.pem }\n",
    ));
    assert!(cfg.has_relative_tls_paths());
    cfg.resolve_tls_paths(Path::new("/app/config"));
    assert!(!cfg.has_relative_tls_paths());
    assert_eq!(
        cfg.connection.tls_options.ca_file.as_deref(),
        Some(Path::new("/app/config/certs/ca.pem"))
    );
    assert_eq!(
        cfg.endpoint("v")
            .unwrap()
            .connection
            .tls_options
            .ca_file
            .as_deref(),
        Some(Path::new("/abs/ca.pem"))
    );

    // A runtime file may add or change tls keys field by field; its relative paths are the
    // working directory's.
    let cwd = std::env::current_dir().unwrap();
    let cfg = valid(&with("tls:\n  ca_file: ca.pem\n"))
        .overlay_str(
            "tls:\n  cert_file: client.pem\n  key_file: /run/client.key\n",
            "runtime.yaml",
        )
        .expect("valid overlay");
    let tls = &cfg.connection.tls_options;
    assert_eq!(tls.ca_file.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(tls.cert_file, Some(cwd.join("client.pem")));
    assert_eq!(tls.key_file.as_deref(), Some(Path::new("/run/client.key")));
    // ... and the pairing rule runs on the result.
    let e = valid(&with("host: h\n"))
        .overlay_str("tls:\n  cert_file: client.pem\n", "runtime.yaml")
        .unwrap_err();
    assert!(
        e.to_string().contains("runtime.yaml:2:14: `tls.cert_file`"),
        "{e}"
    );
}

#[test]
fn a_url_layer_sets_tls_on_or_off_and_keeps_the_files() {
    let base = valid(&with("tls:\n  ca_file: /ca.pem\n"));
    let cfg = base
        .clone()
        .overlay_env(|n| (n == "REDIS_URL").then(|| "rediss://other:6390".to_owned()))
        .unwrap();
    assert!(cfg.connection.tls);
    assert_eq!(
        cfg.connection.tls_options.ca_file.as_deref(),
        Some(Path::new("/ca.pem"))
    );
    let cfg = base
        .overlay_env(|n| (n == "REDIS_URL").then(|| "redis://other:6390".to_owned()))
        .unwrap();
    assert!(
        !cfg.connection.tls,
        "a redis:// URL sets TLS off, as it sets everything else"
    );
}

#[test]
fn debug_shows_paths_never_contents() {
    let cfg = valid(&with(
        "tls:\n  key_file: /secret/dir/client.key\n  cert_file: c.pem\n",
    ));
    let debug = format!("{:?}", cfg.connection);
    assert!(debug.contains("client.key"), "{debug}");
}
