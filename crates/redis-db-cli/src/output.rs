//! Rendering shared by the commands: aligned tables, optional colour, redaction.

use std::io::{IsTerminal, Write};

/// Writes to stdout. A reader that went away (`redis-db status | head`) is no reason to
/// panic, and the exit code still tells the outcome; so write errors are ignored.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// [`out`] for stderr.
pub fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// Colour for a terminal only: piped output (CI logs, `grep`, files) stays plain, and
/// `NO_COLOR` turns it off everywhere.
#[derive(Clone, Copy, Debug)]
pub struct Paint {
    enabled: bool,
}

/// What a piece of text means, which picks its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Warn,
    Bad,
    Plain,
}

impl Paint {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset.
    pub fn stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            enabled: std::io::stdout().is_terminal() && !no_color,
        }
    }

    /// `text` in the colour of `tone`.
    pub fn tone(self, text: &str, tone: Tone) -> String {
        let code = match tone {
            Tone::Good => "32",
            Tone::Warn => "33",
            Tone::Bad => "31",
            Tone::Plain => return text.to_owned(),
        };
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// `text` in bold (headers).
    pub fn bold(self, text: &str) -> String {
        if self.enabled {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// One cell: its text and how it is coloured.
#[derive(Clone, Debug)]
pub struct Cell {
    text: String,
    tone: Tone,
    right: bool,
}

impl Cell {
    /// Left-aligned, plain.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: Tone::Plain,
            right: false,
        }
    }

    /// Right-aligned (numbers).
    pub fn right(mut self) -> Self {
        self.right = true;
        self
    }

    /// Coloured by `tone`.
    pub fn tone(mut self, tone: Tone) -> Self {
        self.tone = tone;
        self
    }
}

/// Columns padded to their widest cell. Padding is computed on the plain text, colour is
/// added after, so escape codes never skew the alignment.
pub fn table(headers: &[&str], rows: &[Vec<Cell>], paint: Paint) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.text.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers
        .iter()
        .zip(&widths)
        .map(|(h, w)| format!("{h:<w$}"))
        .collect();
    out.push_str(&paint.bold(header.join("  ").trim_end()));
    out.push('\n');
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = w.saturating_sub(cell.text.chars().count());
            let last = i + 1 == row.len();
            if cell.right {
                line.push_str(&" ".repeat(pad));
                line.push_str(&paint.tone(&cell.text, cell.tone));
            } else {
                line.push_str(&paint.tone(&cell.text, cell.tone));
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A latency for people: `0.21 ms`, `12 ms`, `1.4 s`.
pub fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// Replaces the password of every `scheme://user:password@` in `text` with `***`.
///
/// For text this program does not compose itself (a rejected command line echoed by clap):
/// everything it composes shows addresses through `Connection::display_address`, which has no
/// credentials at all.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let authority_end = rest
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    // `redis://secret@host` puts a password-only credential here.
                    None if !userinfo.is_empty() => out.push_str("***"),
                    None => {}
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls_only() {
        assert_eq!(
            redact_urls("error: 'redis://app:hunter2@h:1/0' and rediss://:pw@h x"),
            "error: 'redis://app:***@h:1/0' and rediss://:***@h x"
        );
        assert_eq!(redact_urls("redis://tok@h"), "redis://***@h");
        assert_eq!(redact_urls("redis://h:6379 ok"), "redis://h:6379 ok");
        assert_eq!(redact_urls("no url: a@b"), "no url: a@b");
    }

    #[test]
    fn table_aligns_columns_without_colour() {
        let paint = Paint { enabled: false };
        let rows = vec![
            vec![
                Cell::new("main"),
                Cell::new("0").right(),
                Cell::new("healthy"),
            ],
            vec![
                Cell::new("knowledge"),
                Cell::new("11").right(),
                Cell::new("failed"),
            ],
        ];
        let out = table(&["NAME", "DB", "STATE"], &rows, paint);
        assert_eq!(
            out,
            "NAME       DB  STATE\nmain        0  healthy\nknowledge  11  failed\n"
        );
    }

    #[test]
    fn colour_does_not_change_alignment() {
        let paint = Paint { enabled: true };
        let rows = vec![vec![Cell::new("a").tone(Tone::Good), Cell::new("b")]];
        let out = table(&["XX", "Y"], &rows, paint);
        assert!(out.contains("\x1b[32ma\x1b[0m   b"), "{out:?}");
    }
}
