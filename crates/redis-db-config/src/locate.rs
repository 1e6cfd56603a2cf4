//! Finds where a key sits in the YAML text.
//!
//! serde_yaml 0.9 keeps no spans once a document is deserialized, yet rules that run after
//! parsing (duplicate names, shared numbers, aliases, ...) must still point at a line and
//! column. Config files are block-style YAML, so a small scan of indentation recovers the
//! key tree with places. Anything the scan does not understand (flow mappings, complex
//! keys) is simply not indexed: lookups then fall back to the nearest located parent.

use crate::error::Location;

/// A path of mapping keys from the document root, e.g. `redis_databases.monitoring.db`.
///
/// Each segment carries an occurrence index so that the second of two duplicate keys can
/// be told apart from the first.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyPath {
    segments: Vec<(String, usize)>,
}

impl KeyPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// The first occurrence of `key` under this path.
    pub fn key(&self, key: &str) -> Self {
        self.nth(key, 0)
    }

    /// The `nth` (0-based) occurrence of `key` under this path.
    pub fn nth(&self, key: &str, nth: usize) -> Self {
        let mut segments = self.segments.clone();
        segments.push((key.to_owned(), nth));
        Self { segments }
    }

    /// The path of the database `name` (its `nth` occurrence), under `redis_databases`.
    pub fn database(name: &str, nth: usize) -> Self {
        Self::root().key("redis_databases").nth(name, nth)
    }

    /// The path of the named endpoint `name` (its `nth` occurrence), under `endpoints`.
    pub fn endpoint(name: &str, nth: usize) -> Self {
        Self::root().key("endpoints").nth(name, nth)
    }

    fn parent(&self) -> Option<Self> {
        let mut segments = self.segments.clone();
        segments.pop()?;
        Some(Self { segments })
    }
}

struct Entry {
    key: String,
    parent: Option<usize>,
    key_at: Location,
    /// The start of a scalar value written on the key's own line.
    value_at: Option<Location>,
}

/// The key tree of a block-style YAML text, with places.
pub(crate) struct Locator {
    entries: Vec<Entry>,
}

impl Locator {
    /// Scans `text`; never fails (unrecognised lines are skipped).
    pub fn new(text: &str) -> Self {
        let mut entries: Vec<Entry> = Vec::new();
        // Open mappings: (indentation of their keys, entry index).
        let mut stack: Vec<(usize, usize)> = Vec::new();
        // While inside a block scalar (`|`, `>`), lines indented deeper than this are text.
        let mut block_scalar_indent: Option<usize> = None;

        // A byte-order mark is not part of the first key (and not a column either).
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (line_index, line) in text.lines().enumerate() {
            let indent = line.chars().take_while(|c| *c == ' ').count();
            let rest: &str = &line[indent..]; // spaces are one byte each
            if let Some(owner) = block_scalar_indent {
                if rest.trim().is_empty() || indent > owner {
                    continue;
                }
                block_scalar_indent = None;
            }
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            if rest.starts_with("---") || rest.starts_with("...") {
                stack.clear();
                continue;
            }
            // `- key: value`: the key sits after the dash, as if indented further.
            let (indent, rest) = strip_dashes(indent, rest);
            let Some((key, value_offset)) = split_key(rest) else {
                continue;
            };
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let parent = stack.last().map(|(_, e)| *e);
            let value_at = value_offset.map(|offset| Location {
                line: line_index + 1,
                column: indent + rest[..offset].chars().count() + 1,
            });
            if let Some(offset) = value_offset {
                let value = rest[offset..].trim_end();
                if value.starts_with('|') || value.starts_with('>') {
                    block_scalar_indent = Some(indent);
                }
            }
            entries.push(Entry {
                key,
                parent,
                key_at: Location {
                    line: line_index + 1,
                    column: indent + 1,
                },
                value_at,
            });
            stack.push((indent, entries.len() - 1));
        }
        Self { entries }
    }

    fn find(&self, path: &KeyPath) -> Option<usize> {
        let mut parent = None;
        for (key, nth) in &path.segments {
            parent = Some(
                self.entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.parent == parent && &e.key == key)
                    .nth(*nth)?
                    .0,
            );
        }
        parent
    }

    /// Whether the key at `path` itself is indexed (no fallback).
    pub fn has(&self, path: &KeyPath) -> bool {
        self.find(path).is_some()
    }

    /// The place of the key at `path`, else of its nearest located ancestor.
    pub fn key(&self, path: &KeyPath) -> Option<Location> {
        let mut path = path.clone();
        loop {
            if let Some(i) = self.find(&path) {
                return self.entries.get(i).map(|e| e.key_at);
            }
            path = path.parent()?;
            if path.segments.is_empty() {
                return None;
            }
        }
    }

    /// The place of the value at `path` when written on the key's line, else as [`Self::key`].
    pub fn value(&self, path: &KeyPath) -> Option<Location> {
        match self.find(path).and_then(|i| self.entries.get(i)) {
            Some(entry) => entry.value_at.or(Some(entry.key_at)),
            None => self.key(path),
        }
    }
}

fn strip_dashes(mut indent: usize, mut rest: &str) -> (usize, &str) {
    while let Some(after) = rest.strip_prefix("- ") {
        let spaces = after.chars().take_while(|c| *c == ' ').count();
        indent += 2 + spaces;
        rest = &after[spaces..];
    }
    (indent, rest)
}

/// Splits `key: value` into the key text and the byte offset of an inline value
/// (`None` when nothing but a comment follows the colon). `None` for non-key lines.
fn split_key(rest: &str) -> Option<(String, Option<usize>)> {
    let (key, after_key) = match rest.chars().next()? {
        '"' => quoted(rest, '"')?,
        '\'' => quoted(rest, '\'')?,
        // Flow collections, complex keys, anchors, tags and block indicators are not keys
        // we can index reliably.
        '{' | '[' | '?' | '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`' | '-' | '#' => return None,
        _ => {
            let colon = plain_key_end(rest)?;
            (rest[..colon].trim_end().to_owned(), colon)
        }
    };
    let tail = rest.get(after_key..)?;
    let tail_trimmed = tail.trim_start_matches(' ');
    let colon_rest = tail_trimmed.strip_prefix(':')?;
    if !(colon_rest.is_empty() || colon_rest.starts_with(' ')) {
        return None;
    }
    let value = colon_rest.trim_start_matches(' ');
    let value_offset = if value.is_empty() || value.starts_with('#') {
        None
    } else {
        Some(rest.len() - value.len())
    };
    Some((key, value_offset))
}

/// Byte offset of the `:` that ends a plain key (a colon followed by a space or the line end).
fn plain_key_end(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'#' if i > 0 && bytes[i - 1] == b' ' => return None,
            b':' if bytes.get(i + 1).is_none_or(|n| *n == b' ') => return Some(i),
            _ => {}
        }
    }
    None
}

/// A quoted key and the byte offset just after its closing quote.
fn quoted(rest: &str, quote: char) -> Option<(String, usize)> {
    let mut key = String::new();
    let mut chars = rest.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                if let Some((_, escaped)) = chars.next() {
                    key.push(escaped);
                }
            }
            '\'' if quote == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') => {
                chars.next();
                key.push('\'');
            }
            c if c == quote => return Some((key, i + c.len_utf8())),
            c => key.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
redis_databases:
  main:
    db: 0   # trailing
    description: |
      text: that looks like a key
  \"quoted\":
    db: 2
  main:
    db: 3
timeout: 5
readiness: {max_wait: 3}
";

    fn at(line: usize, column: usize) -> Option<Location> {
        Some(Location { line, column })
    }

    #[test]
    fn finds_keys_values_and_duplicates() {
        let l = Locator::new(TEXT);
        assert_eq!(l.key(&KeyPath::root().key("redis_databases")), at(2, 1));
        assert_eq!(l.key(&KeyPath::database("main", 0)), at(3, 3));
        assert_eq!(l.value(&KeyPath::database("main", 0).key("db")), at(4, 9));
        assert_eq!(l.key(&KeyPath::database("quoted", 0).key("db")), at(8, 5));
        assert_eq!(l.value(&KeyPath::database("main", 1).key("db")), at(10, 9));
        assert_eq!(l.value(&KeyPath::root().key("timeout")), at(11, 10));
        // Block scalar content is not mistaken for keys.
        assert_eq!(l.key(&KeyPath::database("main", 0).key("text")), at(3, 3));
    }

    #[test]
    fn falls_back_to_parent_then_none() {
        let l = Locator::new(TEXT);
        // Flow mapping: falls back to `readiness`.
        assert_eq!(
            l.key(&KeyPath::root().key("readiness").key("max_wait")),
            at(12, 1)
        );
        assert_eq!(l.key(&KeyPath::root().key("nothing")), None);
        assert_eq!(Locator::new("{a: 1}").key(&KeyPath::root().key("a")), None);
    }
}
