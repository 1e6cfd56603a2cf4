//! How a client comes to be: layered configuration, then connect.

use std::marker::PhantomData;
use std::path::PathBuf;

use redis_db_config::{Config, Secret};

use crate::blocking;
use crate::core::Core;
use crate::error::Error;

/// Implemented by the enum that `#[redis_db::databases]` generates; ties the enum to its
/// compiled YAML and its client types. Not meant to be implemented by hand.
pub trait DatabaseEnum: Copy + Send + Sync + 'static {
    /// The async client type (`RedisDatabaseClient`).
    type Client;
    /// The blocking client type (`RedisDatabaseBlockingClient`).
    type BlockingClient;
    /// The YAML text the enum was generated from.
    const CONFIG_YAML: &'static str;
    /// The YAML file's path as written in the attribute (used in messages).
    const CONFIG_FILE: &'static str;
    /// Wraps a connected core into the generated client.
    fn wrap(core: Core) -> Self::Client;
    /// Wraps a connected blocking core into the generated blocking client.
    fn wrap_blocking(core: blocking::BlockingCore) -> Self::BlockingClient;
}

/// A change to the resolved configuration, applied last (`Builder::configure`).
type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

/// Settings that beat the environment, which beats the runtime config file, which beats the
/// compiled YAML. Obtained from the generated `RedisDatabase::builder()`.
#[must_use = "a builder does nothing until `connect` is called"]
pub struct Builder<E: DatabaseEnum> {
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    username: Option<String>,
    password: Option<Secret>,
    config_file: Option<PathBuf>,
    use_environment: bool,
    tune: Vec<ConfigChange>,
    _enum: PhantomData<E>,
}

impl<E: DatabaseEnum> std::fmt::Debug for Builder<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &E::CONFIG_FILE)
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("config_file", &self.config_file)
            .field("use_environment", &self.use_environment)
            .finish_non_exhaustive()
    }
}

impl<E: DatabaseEnum> Default for Builder<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: DatabaseEnum> Builder<E> {
    /// A builder over the compiled YAML, reading the environment.
    pub fn new() -> Self {
        Self {
            url: None,
            host: None,
            port: None,
            username: None,
            password: None,
            config_file: None,
            use_environment: true,
            tune: Vec::new(),
            _enum: PhantomData,
        }
    }

    /// Server URL (`redis://[user:pass@]host:port`, `rediss://` for TLS); sets host, port,
    /// credentials and TLS together.
    pub fn url(mut self, url: impl AsRef<str>) -> Self {
        self.url = Some(url.as_ref().to_owned());
        self
    }

    /// A runtime YAML file laid over the compiled one (instead of `REDIS_DB_CONFIG`).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Server host.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Server port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// ACL user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Password (never shown in `Debug`, errors or logs).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(Secret::new(password));
        self
    }

    /// Ignore `REDIS_*` variables and `REDIS_DB_CONFIG` (useful in tests and tools).
    pub fn ignore_environment(mut self) -> Self {
        self.use_environment = false;
        self
    }

    /// Adjusts any setting of the resolved configuration last, e.g.
    /// `.configure(|c| c.retry.attempts = 0)`. The result is checked like a file; changing
    /// database names, numbers or aliases is an error (the enum is compiled from them).
    pub fn configure(mut self, change: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.tune.push(Box::new(change));
        self
    }

    /// Resolves the layers into one validated configuration.
    pub fn resolve(self) -> Result<Config, Error> {
        let mut config = redis_db_config::parse_str(E::CONFIG_YAML, E::CONFIG_FILE)?;
        let env = |name: &str| -> Option<String> {
            if self.use_environment {
                std::env::var(name).ok().filter(|v| !v.is_empty())
            } else {
                None
            }
        };
        let runtime_file = self
            .config_file
            .clone()
            .or_else(|| env("REDIS_DB_CONFIG").map(PathBuf::from));
        if let Some(path) = runtime_file {
            config = config.overlay_file(&path)?;
        }
        if self.use_environment {
            config = config.overlay_env(|name| env(name))?;
        }
        if let Some(url) = &self.url {
            config
                .connection
                .apply_url(url)
                .map_err(|message| builder_error(format!("builder .url(): {message}")))?;
        }
        if let Some(host) = self.host {
            config.connection.host = host;
        }
        if let Some(port) = self.port {
            config.connection.port = port;
        }
        if let Some(username) = self.username {
            config.connection.username = Some(username);
        }
        if let Some(password) = self.password {
            config.connection.password = Some(password);
        }
        if !self.tune.is_empty() {
            let identity = |c: &Config| -> Vec<(String, u32, Option<String>)> {
                c.databases
                    .iter()
                    .map(|d| (d.name.clone(), d.db, d.alias_of.clone()))
                    .collect()
            };
            let compiled = identity(&config);
            for change in self.tune {
                change(&mut config);
            }
            if identity(&config) != compiled {
                // The enum was compiled from these: changing them would make it lie.
                return Err(builder_error(
                    "builder .configure() changed database names, numbers or aliases; those come from the compiled YAML only".to_owned(),
                ));
            }
            config = config.check("builder .configure()")?;
        }
        Ok(config)
    }

    /// Connects every database, waiting out `LOADING` up to `readiness.max_wait`.
    pub async fn connect(self) -> Result<E::Client, Error> {
        let config = self.resolve()?;
        let core = Core::connect(config).await?;
        Ok(E::wrap(core))
    }

    /// The blocking client: connects on a runtime of its own. Fails (never panics) when called
    /// from inside an async runtime.
    pub fn connect_blocking(self) -> Result<E::BlockingClient, Error> {
        blocking::BlockingCore::refuse_inside_runtime()?;
        let config = self.resolve()?;
        let core = blocking::BlockingCore::connect(config)?;
        Ok(E::wrap_blocking(core))
    }
}

fn builder_error(message: String) -> Error {
    Error::Config(redis_db_config::ConfigError::new("builder", message).into())
}
