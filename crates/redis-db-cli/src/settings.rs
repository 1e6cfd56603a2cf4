//! Which config file, and the layers laid over it: the same layers, in the same order and
//! with the same rules, as the SDK's builder, so the command and the application agree.

use std::path::{Path, PathBuf};

use clap::Args;
use redis_db_config::{Config, ConfigError, ConfigErrors, Topology};

/// Where the config comes from and which server to ask (status, wait-ready, doctor).
#[derive(Args, Debug, Clone, Default)]
pub struct Target {
    /// The redis-databases.yaml to use [default: $REDIS_DB_CONFIG, then
    /// ./config/redis-databases.yaml, then /app/config/redis-databases.yaml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The default endpoint's server (redis://[user:password@]host:port, rediss:// for TLS);
    /// beats the YAML and REDIS_* variables, like the builder's `.url()`
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// The places tried after `--config` and `REDIS_DB_CONFIG`: the application's own relative
/// path, then the seed application's container path.
pub const DEFAULT_PATHS: [&str; 2] = [
    "config/redis-databases.yaml",
    "/app/config/redis-databases.yaml",
];

/// The variable that names the runtime file, as the SDK reads it.
const RUNTIME_FILE_VAR: &str = "REDIS_DB_CONFIG";

/// A config with every layer applied, and where it came from.
#[derive(Debug)]
pub struct Resolved {
    /// The validated configuration.
    pub config: Config,
    /// The base file (what the application compiles in).
    pub file: PathBuf,
    /// `REDIS_DB_CONFIG` laid over `file`, when it names another file.
    pub overlay: Option<PathBuf>,
}

/// [`resolve_with`] on the process environment.
pub fn resolve(target: &Target) -> Result<Resolved, String> {
    resolve_with(target, |name| std::env::var(name).ok(), Path::exists)
}

/// [`resolve`], or the message printed on stderr and the exit code every command returns for a
/// configuration it cannot use.
pub fn resolve_or_report(target: &Target) -> Result<Resolved, u8> {
    resolve(target).map_err(|message| {
        crate::output::err(&format!("redis-db: {message}\n"));
        crate::EXIT_CONFIG
    })
}

/// The base file, then `REDIS_DB_CONFIG`, then `REDIS_*`, then `--url`: later wins, as in
/// `Builder::resolve`. `env` reads a variable; `exists` tells whether a default path exists.
/// The error text is ready to print and never holds a password.
pub fn resolve_with(
    target: &Target,
    env: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Resolved, String> {
    // The SDK treats an empty variable as unset; so does everything here.
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let runtime_file = var(RUNTIME_FILE_VAR).map(PathBuf::from);
    let file = locate(target.config.as_deref(), runtime_file.as_deref(), exists)?;
    let mut config = redis_db_config::parse_file(&file).map_err(invalid)?;
    let overlay = runtime_file.filter(|runtime| !same_file(runtime, &file));
    if let Some(runtime) = &overlay {
        config = config.overlay_file(runtime).map_err(invalid)?;
    }
    config = config.overlay_env(|name| var(name)).map_err(invalid)?;
    if let Some(url) = &target.url {
        apply_url(&mut config, url).map_err(invalid)?;
    }
    Ok(Resolved {
        config,
        file,
        overlay,
    })
}

/// `--config`, else `REDIS_DB_CONFIG`, else the first default path that exists.
fn locate(
    flag: Option<&Path>,
    runtime_file: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    if let Some(path) = flag.or(runtime_file) {
        return Ok(path.to_path_buf());
    }
    DEFAULT_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| exists(p))
        .ok_or_else(|| {
            format!(
                "no config file: --config is not given, {RUNTIME_FILE_VAR} is not set, and neither {} exists\n  help: pass --config FILE or set {RUNTIME_FILE_VAR}",
                DEFAULT_PATHS.join(" nor ")
            )
        })
}

/// Laying a file over itself changes nothing but costs a second read: skipped when
/// `REDIS_DB_CONFIG` is also the base file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `--url` as the builder's `.url()` applies it; on a Sentinel or Cluster default endpoint it
/// would connect somewhere the operator did not ask for, so it is refused (as `REDIS_URL` is).
fn apply_url(config: &mut Config, url: &str) -> Result<(), ConfigErrors> {
    if !matches!(config.topology, Topology::Standalone) {
        return Err(ConfigError::new(
            "--url",
            format!(
                "the default endpoint is {}; --url cannot apply to it",
                config.topology.describe()
            ),
        )
        .with_help(format!(
            "drop --url and change `{}.nodes` in the config file",
            config.topology.kind()
        ))
        .into());
    }
    // `apply_url` never echoes the URL, so a password in it cannot reach the message.
    config.connection.apply_url(url).map_err(|message| {
        ConfigError::new("--url", message)
            .with_help("pass --url redis://[user:password@]host:port (rediss:// for TLS)")
            .into()
    })
}

fn invalid(errors: ConfigErrors) -> String {
    format!("invalid redis-db configuration:\n{errors}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "redis-db-cli-settings-{}-{tag}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const BASE: &str =
        "redis_databases:\n  main:\n    db: 0\n  cache:\n    db: 5\nport: 6379\ntimeout: 5\n";

    #[test]
    fn layers_apply_in_the_builders_order() {
        let dir = temp_dir("layers");
        let base = write(&dir, "base.yaml", BASE);
        let runtime = write(&dir, "runtime.yaml", "timeout: 2\nport: 7000\n");
        let env: HashMap<&str, String> = [
            ("REDIS_DB_CONFIG", runtime.display().to_string()),
            ("REDIS_PORT", "7001".to_owned()),
            ("REDIS_PASSWORD", "hunter2".to_owned()),
        ]
        .into();
        let target = Target {
            config: Some(base.clone()),
            url: None,
        };
        let get = |name: &str| env.get(name).cloned();
        let resolved = resolve_with(&target, get, |_| false).unwrap();
        assert_eq!(resolved.overlay.as_deref(), Some(runtime.as_path()));
        assert_eq!(resolved.config.timeout, std::time::Duration::from_secs(2));
        assert_eq!(resolved.config.connection.port, 7001);
        assert_eq!(
            resolved
                .config
                .connection
                .password
                .as_ref()
                .map(|p| p.expose()),
            Some("hunter2")
        );

        // --url beats REDIS_*, and clears the password the URL does not carry.
        let target = Target {
            config: Some(base),
            url: Some("redis://127.0.0.1:7002".to_owned()),
        };
        let resolved = resolve_with(&target, get, |_| false).unwrap();
        assert_eq!(resolved.config.connection.port, 7002);
        assert!(resolved.config.connection.password.is_none());
    }

    #[test]
    fn config_defaults_to_the_runtime_file_then_the_default_paths() {
        let dir = temp_dir("locate");
        let runtime = write(&dir, "only.yaml", BASE);
        let env: HashMap<&str, String> =
            [("REDIS_DB_CONFIG", runtime.display().to_string())].into();
        let resolved =
            resolve_with(&Target::default(), |n| env.get(n).cloned(), |_| false).unwrap();
        // The runtime file is the base here: it is not laid over itself.
        assert_eq!(resolved.file, runtime);
        assert_eq!(resolved.overlay, None);

        let app = Path::new(DEFAULT_PATHS[1]);
        assert_eq!(
            locate(None, None, |p| p == app).unwrap(),
            PathBuf::from(DEFAULT_PATHS[1])
        );
        assert_eq!(
            locate(None, None, |_| true).unwrap(),
            PathBuf::from(DEFAULT_PATHS[0])
        );
        let error = locate(None, None, |_| false).unwrap_err();
        assert!(
            error.contains("REDIS_DB_CONFIG") && error.contains("--config"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_url_or_variable_is_named_without_its_secret() {
        let dir = temp_dir("bad");
        let base = write(&dir, "base.yaml", BASE);
        let target = Target {
            config: Some(base.clone()),
            url: Some("http://user:s3cret@host:1".to_owned()),
        };
        let error = resolve_with(&target, |_| None, |_| false).unwrap_err();
        assert!(
            error.contains("--url") && !error.contains("s3cret"),
            "{error}"
        );

        let target = Target {
            config: Some(base),
            url: None,
        };
        let error = resolve_with(
            &target,
            |n| (n == "REDIS_PORT").then(|| "high".to_owned()),
            |_| false,
        )
        .unwrap_err();
        assert!(error.contains("REDIS_PORT"), "{error}");
    }

    #[test]
    fn url_is_refused_on_a_cluster_default_endpoint() {
        let dir = temp_dir("cluster");
        let base = write(
            &dir,
            "cluster.yaml",
            "redis_databases:\n  main:\n    db: 0\ncluster:\n  nodes: [\"127.0.0.1:7000\"]\n",
        );
        let target = Target {
            config: Some(base),
            url: Some("redis://127.0.0.1:7000".to_owned()),
        };
        let error = resolve_with(&target, |_| None, |_| false).unwrap_err();
        assert!(error.contains("a Redis Cluster"), "{error}");
    }
}
