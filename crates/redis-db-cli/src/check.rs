//! `redis-db check FILE...`: the build's validation, without a build.
//!
//! The rules and messages are redis-db-config's, the very ones the macro turns into compile
//! errors, so a file that passes here compiles and one that fails here fails the same way.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use redis_db_config::{Config, ConfigError, ConfigErrors};

use crate::output;
use serde::Serialize;

/// Arguments of `redis-db check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The redis-databases.yaml files to validate
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// text: the compiler's wording; json: one document for CI tooling; github: workflow
    /// annotations (`::error file=..,line=..`)
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
    Github,
}

/// What one file holds, for the summary line.
#[derive(Debug, Serialize)]
struct Summary {
    databases: usize,
    aliases: usize,
    endpoints: usize,
}

impl Summary {
    fn of(config: &Config) -> Self {
        Self {
            databases: config.databases.len(),
            aliases: config
                .databases
                .iter()
                .filter(|d| d.alias_of.is_some())
                .count(),
            // The default endpoint always exists; `endpoints:` adds named ones.
            endpoints: 1 + config.endpoints.len(),
        }
    }

    fn line(&self) -> String {
        format!(
            "{} {}, {} {}, {} {}",
            self.databases,
            plural(self.databases, "database", "databases"),
            self.aliases,
            plural(self.aliases, "alias", "aliases"),
            self.endpoints,
            plural(self.endpoints, "endpoint", "endpoints"),
        )
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[derive(Debug, Serialize)]
struct JsonError<'a> {
    file: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    message: &'a str,
    help: Option<&'a str>,
}

impl<'a> From<&'a ConfigError> for JsonError<'a> {
    fn from(e: &'a ConfigError) -> Self {
        Self {
            file: &e.file,
            line: e.location.map(|l| l.line),
            column: e.location.map(|l| l.column),
            message: &e.message,
            help: e.help.as_deref(),
        }
    }
}

/// One file, as the macro validates it: `parse_str_with_files` with the YAML's own directory
/// as the base of relative `tls` paths, made absolute as the macro's is.
fn validate(path: &Path) -> Result<Config, ConfigErrors> {
    let Ok(text) = std::fs::read_to_string(path) else {
        // `parse_file` words the unreadable-file error as the runtime does.
        return Err(redis_db_config::parse_file(path).err().unwrap_or_else(|| {
            ConfigError::new(
                path.display().to_string(),
                "the file changed while it was read",
            )
            .into()
        }));
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    redis_db_config::parse_str_with_files(&text, &path.display().to_string(), &dir)
}

/// Validates every file (all errors of all files, not just the first) and prints them.
/// Exit 0 when every file is valid, 1 otherwise.
pub fn run(args: &CheckArgs) -> u8 {
    let results: Vec<(String, Result<Config, ConfigErrors>)> = args
        .files
        .iter()
        .map(|path| (path.display().to_string(), validate(path)))
        .collect();
    let valid = results.iter().all(|(_, r)| r.is_ok());
    match args.format {
        CheckFormat::Text => output::out(&text(&results)),
        CheckFormat::Github => output::out(&github(&results)),
        CheckFormat::Json => output::out(&format!("{}\n", json(&results))),
    }
    u8::from(!valid)
}

fn text(results: &[(String, Result<Config, ConfigErrors>)]) -> String {
    let mut out = String::new();
    let mut errors = 0;
    let mut invalid_files = 0;
    for (file, result) in results {
        match result {
            Ok(config) => out.push_str(&format!("{file}: valid: {}\n", Summary::of(config).line())),
            Err(e) => {
                errors += e.len();
                invalid_files += 1;
                // ConfigErrors' Display is the text inside the macro's compile error.
                out.push_str(&format!("{e}\n"));
            }
        }
    }
    if invalid_files > 0 {
        out.push_str(&format!(
            "{errors} {} in {invalid_files} of {} {}\n",
            plural(errors, "error", "errors"),
            results.len(),
            plural(results.len(), "file", "files"),
        ));
    }
    out
}

fn json(results: &[(String, Result<Config, ConfigErrors>)]) -> serde_json::Value {
    let files: Vec<serde_json::Value> = results
        .iter()
        .map(|(file, result)| match result {
            Ok(config) => serde_json::json!({
                "file": file,
                "valid": true,
                "summary": Summary::of(config),
                "errors": [],
            }),
            Err(errors) => serde_json::json!({
                "file": file,
                "valid": false,
                "summary": null,
                "errors": errors.iter().map(JsonError::from).collect::<Vec<_>>(),
            }),
        })
        .collect();
    serde_json::json!({
        "valid": results.iter().all(|(_, r)| r.is_ok()),
        "files": files,
    })
}

fn github(results: &[(String, Result<Config, ConfigErrors>)]) -> String {
    let mut out = String::new();
    for (file, result) in results {
        match result {
            Ok(config) => out.push_str(&format!(
                "::notice file={}::{}\n",
                property(file),
                data(&format!("valid: {}", Summary::of(config).line()))
            )),
            Err(errors) => {
                for e in errors {
                    let mut props = format!("file={}", property(&e.file));
                    if let Some(at) = e.location {
                        props.push_str(&format!(",line={},col={}", at.line, at.column));
                    }
                    let mut message = e.message.clone();
                    if let Some(help) = &e.help {
                        message.push_str(&format!("\nhelp: {help}"));
                    }
                    out.push_str(&format!(
                        "::error {props},title=redis-db check::{}\n",
                        data(&message)
                    ));
                }
            }
        }
    }
    out
}

/// Workflow-command escaping of a message.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command escaping of a property value (also `:` and `,`).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(text: &str) -> Vec<(String, Result<Config, ConfigErrors>)> {
        vec![(
            "x.yaml".to_owned(),
            redis_db_config::parse_str(text, "x.yaml"),
        )]
    }

    #[test]
    fn summary_counts_databases_aliases_and_endpoints() {
        let r = results(
            "redis_databases:\n  a:\n    db: 7\n  b:\n    db: 7\n    alias_of: a\nendpoints:\n  other:\n    url: redis://h:1\n",
        );
        assert_eq!(
            text(&r),
            "x.yaml: valid: 2 databases, 1 alias, 2 endpoints\n"
        );
    }

    #[test]
    fn github_annotations_carry_place_and_help() {
        let r = results("redis_databases:\n  main:\n    db: 0\n  type:\n    db: 1\n");
        let out = github(&r);
        assert!(
            out.starts_with(
                "::error file=x.yaml,line=4,col=3,title=redis-db check::database name `type`"
            ),
            "{out}"
        );
        assert!(out.contains("%0Ahelp: "), "{out}");
    }
}
