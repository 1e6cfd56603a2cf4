//! The module graph reads bottom-up: no file imports, through `crate::<module>`, a file that
//! imports it back, directly or round a circle. The one allowed pair is `core` <-> `handle`,
//! two halves of one type. Test modules are left out (a test may reach anywhere).
//! `cargo test -p redis-db-core --lib layering -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};

const ALLOWED: [(&str, &str); 1] = [("core", "handle")];

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("the crate's src directory") {
        let path = entry.expect("a directory entry").path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            let text = std::fs::read_to_string(&path).expect("a source file");
            let code: String = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default()
                .lines()
                .map(|line| line.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            sources.insert(name.to_owned(), code);
        }
    }
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(name, code)| {
            let mut uses = BTreeSet::new();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                // `crate::name`, and each name of `crate::{a, b::c}`.
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .map(|item| item.trim().split("::").next().unwrap_or_default())
                        .collect(),
                    None => vec![rest
                        .split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or_default()],
                };
                for used in names {
                    if used != name && modules.contains(used) {
                        uses.insert(used.to_owned());
                    }
                }
            }
            (name.clone(), uses)
        })
        .collect()
}

/// Every module `from` reaches, itself included when it lies on a circle.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = graph[from].iter().map(String::as_str).collect();
    while let Some(module) = stack.pop() {
        if seen.insert(module.to_owned()) {
            stack.extend(graph[module].iter().map(String::as_str));
        }
    }
    seen
}

#[test]
fn no_module_imports_round_a_circle() {
    let mut graph = graph();
    for (name, uses) in &graph {
        let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
        println!("{name} -> {}", uses.join(" "));
    }
    assert!(
        graph.len() > 20 && graph["target"].contains("wire"),
        "{graph:?}"
    );
    for (a, b) in ALLOWED {
        graph.get_mut(b).expect("an allowed module").remove(a);
    }
    let circles: Vec<String> = graph
        .keys()
        .filter(|m| reachable(&graph, m).contains(*m))
        .cloned()
        .collect();
    assert!(
        circles.is_empty(),
        "modules on an import circle: {circles:?}"
    );
}
