//! Finding, reading and validating the YAML file the attribute names.
//!
//! Validation is `redis-db-config`'s, the same code the runtime runs, so the enum and the
//! runtime cannot disagree. When the file parsed but broke a rule, the names under
//! `redis_databases` are still handed back: the fallback generates their variants and
//! accessors, so that the config error is the only error.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use proc_macro2::Span;
use redis_db_config::{Config, ConfigError, ConfigErrors};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::args::ConfigPath;

/// A valid config and what the generated code needs to know of its file.
pub struct Loaded {
    pub config: Config,
    /// Absolute path of the YAML, embedded with `include_str!` (which makes cargo rebuild the
    /// crate when the file changes).
    pub yaml_path: String,
    /// The YAML's directory, when the YAML names `tls` files by relative paths: the generated
    /// builder resolves them against it, so that the client reads the files the build checked.
    pub tls_base: Option<String>,
}

/// Why there is no [`Loaded`], and the database names the file declares when it could be read
/// as YAML at all (in file order, duplicates and invalid names included).
pub struct Failed {
    pub error: syn::Error,
    pub names: Vec<String>,
}

impl Failed {
    fn without_names(error: syn::Error) -> Self {
        Self {
            error,
            names: Vec::new(),
        }
    }
}

/// Reads and validates the file; every config problem becomes one error spanned on the
/// `config = "..."` literal.
///
/// The path is relative to `CARGO_MANIFEST_DIR`; when no file is there, the directory of the
/// source file holding the attribute is tried too (as `include_str!` would), which keeps tests
/// whose crate is generated elsewhere (trybuild's, under any `CARGO_TARGET_DIR`) independent
/// of where that is.
pub fn load(config: &ConfigPath, source_file: Option<&Path>) -> Result<Loaded, Failed> {
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let mut path = resolve(&base.join(&config.path));
    let beside_source = source_file
        .and_then(Path::parent)
        .filter(|dir| dir.is_absolute())
        .map(|dir| resolve(&dir.join(&config.path)));
    let mut also_tried = None;
    match beside_source {
        Some(beside) if !path.is_file() && beside.is_file() => path = beside,
        Some(beside) if beside != path => also_tried = Some(beside),
        _ => {}
    }
    let text = std::fs::read_to_string(&path).map_err(|error| {
        Failed::without_names(config_error(
            config.span,
            &unreadable(config, &path, &base, also_tried.as_deref(), error),
        ))
    })?;
    // Errors name the file as written in the attribute, which is what the user knows.
    // `tls` files are checked against the disk here, relative to the YAML's directory.
    let dir = path.parent().unwrap_or(Path::new("/"));
    let parsed =
        redis_db_config::parse_str_with_files(&text, &config.path, dir).map_err(|errors| {
            Failed {
                error: config_error(config.span, &errors),
                names: database_names(&text),
            }
        })?;
    let utf8 = |what: &str, path: &Path| {
        path.to_str().map(str::to_owned).ok_or_else(|| Failed {
            error: syn::Error::new(
                config.span,
                format!("the config {what} `{}` is not valid UTF-8", path.display()),
            ),
            names: database_names(&text),
        })
    };
    let yaml_path = utf8("path", &path)?;
    let tls_base = match parsed.has_relative_tls_paths() {
        true => Some(utf8("directory", dir)?),
        false => None,
    };
    Ok(Loaded {
        config: parsed,
        yaml_path,
        tls_base,
    })
}

/// A missing or unreadable file: the resolved path, and what it is relative to.
fn unreadable(
    config: &ConfigPath,
    path: &Path,
    base: &Path,
    also_tried: Option<&Path>,
    error: std::io::Error,
) -> ConfigErrors {
    let help = match also_tried {
        _ if Path::new(&config.path).is_absolute() => "fix the path or create the file".to_owned(),
        Some(beside) => format!(
            "the path is relative to the crate's directory ({}), else to the directory of the source file ({} was tried too); fix the path or create the file",
            base.display(),
            beside.display()
        ),
        None => format!(
            "the path is relative to the crate's directory ({}); fix the path or create the file",
            base.display()
        ),
    };
    ConfigError::new(
        &config.path,
        format!("cannot read config file {}: {error}", path.display()),
    )
    .with_help(help)
    .into()
}

/// One compile error holding every config error (each with its file, line:column and help).
fn config_error(span: Span, errors: &ConfigErrors) -> syn::Error {
    let count = errors.len();
    let header = if count == 1 {
        "invalid Redis database config:".to_owned()
    } else {
        format!("invalid Redis database config ({count} errors):")
    };
    syn::Error::new(span, format!("{header}\n{errors}"))
}

/// The file's canonical path when it exists; else `path` with `.` and `..` resolved by hand,
/// so a message about a missing file shows a readable path.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The keys under `redis_databases`, in file order, whatever their values; empty when the
/// text is not YAML or has no such mapping. Only names are read: nothing runs from a build
/// that failed, so the fallback needs no numbers. A visitor rather than `serde_yaml::Value`,
/// which refuses a duplicate key, a mistake this must survive.
fn database_names(text: &str) -> Vec<String> {
    struct Top;
    struct Names;

    impl<'de> Visitor<'de> for Top {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut names = Vec::new();
            while let Some(key) = map.next_key::<serde_yaml::Value>()? {
                if key.as_str() == Some("redis_databases") {
                    names.extend(map.next_value_seed(Names)?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(names)
        }
    }

    impl<'de> serde::de::DeserializeSeed<'de> for Names {
        type Value = Vec<String>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Names {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping of database names")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut names = Vec::new();
            while let Some(key) = map.next_key::<serde_yaml::Value>()? {
                map.next_value::<IgnoredAny>()?;
                if let serde_yaml::Value::String(name) = key {
                    names.push(name);
                }
            }
            Ok(names)
        }
        // Any other shape declares no names (and was reported by the config's rules).
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }
    }

    serde_yaml::Deserializer::from_str(text)
        .deserialize_map(Top)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &str) -> ConfigPath {
        ConfigPath {
            path: path.to_owned(),
            span: Span::call_site(),
        }
    }

    fn error_text(result: Result<Loaded, Failed>) -> String {
        match result {
            Ok(_) => panic!("loaded"),
            Err(failed) => failed.error.to_string(),
        }
    }

    #[test]
    fn a_missing_file_names_the_resolved_path() {
        let text = error_text(load(&config("no/such/redis-databases.yaml"), None));
        let resolved = Path::new(env!("CARGO_MANIFEST_DIR")).join("no/such/redis-databases.yaml");
        assert!(text.contains(resolved.to_str().unwrap()), "{text}");
        assert!(text.contains("relative to the crate's directory"), "{text}");
    }

    #[test]
    fn a_path_not_under_the_manifest_dir_is_looked_for_beside_the_source_file() {
        let dir = std::env::temp_dir().join(format!("redis-db-macros-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("beside.yaml"),
            "redis_databases:\n  main:\n    db: 4\n",
        )
        .unwrap();
        let loaded = load(&config("beside.yaml"), Some(&dir.join("lib.rs")))
            .unwrap_or_else(|f| panic!("{}", f.error));
        assert_eq!(loaded.config.databases[0].db, 4);
        assert!(loaded.yaml_path.ends_with("beside.yaml"));
        // Without the source file, the manifest dir alone counts (and has no such file).
        let text = error_text(load(&config("beside.yaml"), None));
        assert!(text.contains("cannot read config file"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_survive_broken_rules_but_not_broken_yaml() {
        let text = "host: a\nredis_databases:\n  users:\n    db: 99\n    colour: blue\n  users:\n    db: 1\n  type: {}\n  Bad: 3\n  7: { db: 2 }\nredis_databases: []\n";
        assert_eq!(database_names(text), ["users", "users", "type", "Bad"]);
        assert!(database_names("redis_databases: [a, b]\n").is_empty());
        assert!(database_names("redis_databases:\n").is_empty());
        assert!(database_names("redis_databases: {a: [\n").is_empty());
        assert!(database_names("- a\n").is_empty());
    }

    #[test]
    fn a_rule_failure_hands_back_the_names() {
        let dir =
            std::env::temp_dir().join(format!("redis-db-macros-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.yaml");
        std::fs::write(
            &path,
            "redis_databases:\n  users:\n    db: 1\n    colour: blue\n  sessions:\n    db: 1\n",
        )
        .unwrap();
        match load(&config(path.to_str().unwrap()), None) {
            Ok(_) => panic!("loaded"),
            Err(failed) => {
                assert!(
                    failed.error.to_string().contains("(2 errors)"),
                    "{}",
                    failed.error
                );
                assert_eq!(failed.names, ["users", "sessions"]);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolve_handles_dot_dot_without_the_file() {
        assert_eq!(
            resolve(Path::new("/no-such-dir-x/a/../b/./c.yaml")),
            PathBuf::from("/no-such-dir-x/b/c.yaml")
        );
    }
}
