//! Entry points for the compiled file: text or path in, validated [`Config`] or every error out.

use std::path::Path;

use crate::error::{ConfigError, ConfigErrors, Location, Sink};
use crate::locate::Locator;
use crate::model::Config;
use crate::node::Node;
use crate::read::{read, Mode};
use crate::{build, validate};

/// Parses and validates a `redis-databases.yaml` text. `file` is the name shown in messages.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let node = parse_node(text, file)?;
    let locator = Locator::new(text);
    let mut sink = Sink::new(file, Some(&locator));
    let raw = read(&node, Mode::Base, &mut sink);
    let mut cfg = build::defaults();
    build::apply_settings(&mut cfg, &raw, &mut sink);
    cfg.endpoints = build::endpoints(&raw, &mut sink);
    let mut broken = raw.broken_databases.clone();
    cfg.databases = build::databases(&raw, cfg.max_databases, &mut broken, &mut sink);
    validate::validate(&cfg, &broken, &raw.broken_endpoints, &mut sink);
    finish(cfg, sink.errors)
}

/// [`parse_str`] for the compiled file, plus the rule that needs the disk: every `tls` file
/// (`ca_file`, `cert_file`, `key_file`) exists, relative paths resolved against `base` (the
/// YAML's directory). The paths in the returned config stay as written.
pub fn parse_str_with_files(text: &str, file: &str, base: &Path) -> Result<Config, ConfigErrors> {
    let cfg = parse_str(text, file)?;
    let locator = Locator::new(text);
    let mut sink = Sink::new(file, Some(&locator));
    validate::tls_files_exist(&cfg, base, &mut sink);
    finish(cfg, sink.errors)
}

/// Reads and parses a file. A missing or unreadable file is an error showing its absolute path.
pub fn parse_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = read_file(path)?;
    parse_str(&text, &path.display().to_string())
}

/// The text of a config file, or an error naming its resolved path.
pub(crate) fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        // Relative paths are resolved against a working directory the user may not
        // expect (e.g. the crate root under cargo): showing the absolute path settles it.
        let resolved = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        ConfigError::new(
            path.display().to_string(),
            format!("cannot read config file {}: {e}", resolved.display()),
        )
        .with_help("check the path; a relative path is resolved from the current directory")
    })
}

/// YAML syntax check; the error carries serde_yaml's place.
pub(crate) fn parse_node(text: &str, file: &str) -> Result<Node, ConfigError> {
    serde_yaml::from_str::<Node>(text).map_err(|e| {
        let location = e.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        });
        ConfigError::new(file, format!("invalid YAML: {e}"))
            .at(location)
            .with_help("fix the YAML syntax at this place (indent with spaces, `key: value`)")
    })
}

/// `Ok` only when no rule reported anything.
pub(crate) fn finish(cfg: Config, errors: Vec<ConfigError>) -> Result<Config, ConfigErrors> {
    match ConfigErrors::from_vec(errors) {
        Some(errors) => Err(errors),
        None => Ok(cfg),
    }
}
