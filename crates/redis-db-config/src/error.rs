//! Configuration errors: each one names its file, its place in it when it has one, and a fix.

use std::fmt;

/// A 1-based place in a YAML file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, starting at 1.
    pub line: usize,
    /// Column (in characters), starting at 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem with a configuration.
///
/// `Display` renders `file:line:column: message` (or `file: message` without a place),
/// followed by `\n  help: ...` when there is a suggested fix; `Debug` reads the same.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Display name of the source: the file name, or `environment` for `REDIS_*` variables.
    pub file: String,
    /// Where in the file, when the problem has a place there.
    pub location: Option<Location>,
    /// What is wrong; names the database or key concerned.
    pub message: String,
    /// What to change.
    pub help: Option<String>,
}

impl ConfigError {
    /// An error without place or help; see the `at` and `with_help` builders.
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            location: None,
            message: message.into(),
            help: None,
        }
    }

    /// Sets the place.
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    /// Sets the suggested fix.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(at) => write!(f, "{}:{}: {}", self.file, at, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

// `fn main() -> Result<(), Box<dyn Error>>` and `unwrap()` print `Debug`: the message with its
// place and fix reads better there than a dump of the fields.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one pass (never empty): a user fixes them all at once
/// instead of discovering them one build at a time. `Display` (and `Debug`) is one error a line.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// `None` when `errors` is empty, so a `ConfigErrors` always holds at least one error.
    pub fn from_vec(mut errors: Vec<ConfigError>) -> Option<Self> {
        if errors.is_empty() {
            return None;
        }
        // Reading order: file-level problems first, then by place (stable, so errors
        // at the same place keep the order in which the rules found them).
        errors.sort_by_key(|e| e.location);
        Some(Self(errors))
    }

    /// The errors, in reading order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// The errors, in reading order.
    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }

    /// How many errors (at least 1).
    #[allow(clippy::len_without_is_empty)] // never empty by construction
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors of one source (file name + locator) while the rules run.
pub(crate) struct Sink<'a> {
    pub file: &'a str,
    pub locator: Option<&'a crate::locate::Locator>,
    pub errors: Vec<ConfigError>,
}

impl<'a> Sink<'a> {
    pub fn new(file: &'a str, locator: Option<&'a crate::locate::Locator>) -> Self {
        Self {
            file,
            locator,
            errors: Vec::new(),
        }
    }

    /// The place of a key (or, falling back, of its nearest located parent).
    pub fn key(&self, path: &crate::locate::KeyPath) -> Option<Location> {
        self.locator.and_then(|l| l.key(path))
    }

    /// The place of a key's value when it is on the key's line, else of the key.
    pub fn value(&self, path: &crate::locate::KeyPath) -> Option<Location> {
        self.locator.and_then(|l| l.value(path))
    }

    pub fn push(
        &mut self,
        at: Option<Location>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.errors
            .push(ConfigError::new(self.file, message).at(at).with_help(help));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_reads_like_display_and_shows_no_secret() {
        const SECRET: &str = "s3cret-never-in-debug";
        let errors = crate::parse_str(
            "redis_databases:\n  main:\n    db: 0\n    colour: 1\n",
            "app.yaml",
        )
        .unwrap_err();
        let one = errors.iter().next().unwrap();
        assert_eq!(format!("{one:?}"), one.to_string());
        assert_eq!(
            format!("{one:?}"),
            "app.yaml:4:5: unknown key `colour` in database `main` (valid keys: db, description, alias_of, max_connections, timeout_seconds, endpoint)\n  help: remove `colour`"
        );

        let config =
            crate::parse_str("redis_databases:\n  main:\n    db: 0\n", "app.yaml").unwrap();
        let errors = config
            .overlay_env(|name| match name {
                "REDIS_URL" => Some(format!("redis://:{SECRET}@cache:not-a-port")),
                "REDIS_PORT" => Some("0".to_owned()),
                "REDIS_PASSWORD" => Some(SECRET.to_owned()),
                _ => None,
            })
            .unwrap_err();
        let debug = format!("{errors:?}");
        assert_eq!(debug, errors.to_string());
        assert_eq!(
            debug
                .lines()
                .filter(|l| l.starts_with("environment: "))
                .count(),
            2,
            "{debug}"
        );
        for dump in ["ConfigError", "location:", "Some(", SECRET] {
            assert!(!debug.contains(dump), "`{dump}` in {debug}");
        }
    }
}
