//! Rules for database names: each becomes a client method (as written) and an enum
//! variant (UpperCamelCase), so it must be a usable Rust identifier in both roles.

/// Database names that would collide with a method the generated client already has
/// (its own API, or methods of traits every type or the client implements).
pub const RESERVED_NAMES: &[&str] = &[
    "database",
    "stats",
    "health",
    "clone",
    "clone_from",
    "to_owned",
    "fmt",
    "into",
    "try_into",
    "from",
    "try_from",
    "borrow",
    "borrow_mut",
    "type_id",
    "core",
    "connection",
];

/// Rust keywords: strict, reserved and edition-2018+ ones (`async`, `await`, `dyn`, `try`,
/// `gen`). `Self` can never pass the snake_case rule but is listed for completeness.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// The enum variant of a snake_case name: `knowledge_base` -> `KnowledgeBase`.
pub fn variant_name(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// `[a-z][a-z0-9]*(_[a-z0-9]+)*`: no leading, doubled or trailing underscore, so that
/// [`variant_name`] is a plain UpperCamelCase identifier.
pub fn is_snake_case(name: &str) -> bool {
    let mut parts = name.split('_');
    let first_ok = parts.next().is_some_and(|p| {
        p.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && is_lower_alnum(p)
    });
    first_ok && parts.all(|p| !p.is_empty() && is_lower_alnum(p))
}

fn is_lower_alnum(part: &str) -> bool {
    part.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Whether `name` is a Rust keyword (and so cannot be a method name).
pub fn is_keyword(name: &str) -> bool {
    KEYWORDS.contains(&name)
}

/// Whether `name` collides with a method of the generated client.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name)
}

/// A problem with one name on its own: (message, help).
pub(crate) fn check(name: &str) -> Option<(String, String)> {
    if !is_snake_case(name) {
        return Some((
            format!("database name `{name}` is not a snake_case identifier"),
            "use lowercase ASCII letters, digits and single underscores, starting with a letter (e.g. `knowledge_base`)".to_owned(),
        ));
    }
    if is_keyword(name) {
        return Some((
            format!("database name `{name}` is a Rust keyword and cannot name a client method"),
            format!("choose another name, e.g. `{name}_db`"),
        ));
    }
    if is_reserved(name) {
        return Some((
            format!("database name `{name}` collides with the generated client method `{name}`"),
            format!(
                "choose another name, e.g. `{name}_db` (reserved names: {})",
                RESERVED_NAMES.join(", ")
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names() {
        assert_eq!(variant_name("knowledge_base"), "KnowledgeBase");
        assert_eq!(variant_name("main"), "Main");
        assert_eq!(variant_name("a_b1"), variant_name("a_b_1"));
    }

    #[test]
    fn snake_case_rule() {
        for ok in ["main", "knowledge_base", "db_1", "a1"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in [
            "",
            "Main",
            "1db",
            "_x",
            "x_",
            "a__b",
            "kebab-case",
            "ünï",
            "a b",
        ] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }

    #[test]
    fn keywords_and_reserved() {
        for k in [
            "async", "await", "dyn", "try", "gen", "self", "super", "crate", "type",
        ] {
            assert!(check(k).is_some_and(|(m, _)| m.contains("keyword")), "{k}");
        }
        for r in RESERVED_NAMES {
            assert!(check(r).is_some_and(|(m, _)| m.contains("collides")), "{r}");
        }
        assert_eq!(check("union"), None, "weak keywords are valid identifiers");
    }
}
