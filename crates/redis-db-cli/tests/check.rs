//! `redis-db check`: the build's rules and messages, without a build.

mod common;

use std::path::Path;

use common::{json, redis_db, workspace_root, Scratch};

/// The trybuild cases name their YAML relative to trybuild's generated crate.
const TRYBUILD_PREFIX: &str = "../../../../";

/// The config path a `tests/ui/*.rs` case passes to the macro, relative to the repository
/// root: either through trybuild's generated crate, or relative to the case's own directory.
fn config_of_case(source: &str) -> Option<String> {
    let start = source.find("config = \"")? + "config = \"".len();
    let end = start + source[start..].find('"')?;
    let path = &source[start..end];
    Some(match path.strip_prefix(TRYBUILD_PREFIX) {
        Some(from_root) => from_root.to_owned(),
        None => format!("tests/ui/{path}"),
    })
}

/// The config errors inside a `.stderr` file: the lines between the `invalid Redis database
/// config` header and rustc's ` --> ` span, without rustc's indentation.
fn expected_errors(stderr: &str) -> Option<Vec<String>> {
    let mut lines = stderr.lines();
    lines.find(|l| l.starts_with("error: invalid Redis database config"))?;
    Some(
        lines
            .take_while(|l| !l.starts_with(" --> "))
            .map(|l| l.strip_prefix("       ").unwrap_or(l).to_owned())
            .collect(),
    )
}

/// A message line without the file's name as the caller wrote it (`../../../../tests/ui/x.yaml`
/// for the macro, `tests/ui/x.yaml` here): from `:line:column: message` on.
fn without_file(line: &str, file_name: &str) -> String {
    if line.starts_with("  help: ") {
        return line.to_owned();
    }
    match line.find(file_name) {
        Some(i) => line[i + file_name.len()..].to_owned(),
        None => line.to_owned(),
    }
}

#[test]
fn every_ui_case_gets_the_compile_errors_messages() {
    let root = workspace_root();
    let ui = root.join("tests/ui");
    let mut cases = 0;
    let mut yaml_checked = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&ui)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for source in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let Some(config) = config_of_case(&std::fs::read_to_string(source).unwrap()) else {
            continue;
        };
        let Ok(stderr) = std::fs::read_to_string(source.with_extension("stderr")) else {
            continue;
        };
        let Some(expected) = expected_errors(&stderr) else {
            continue;
        };
        cases += 1;
        let run = redis_db(&root, &["check", &config]);
        assert_eq!(run.code, 1, "{config}: {run:?}");
        let file_name = config.rsplit('/').next().unwrap_or(&config);
        let mut got: Vec<String> = run
            .stdout
            .lines()
            .map(|l| without_file(l, file_name))
            .collect();
        let summary = got.pop().unwrap_or_default();
        assert!(summary.ends_with("in 1 of 1 file"), "{summary}");
        // trybuild shows the repository root as `$DIR`.
        let dir = root.display().to_string();
        let expected: Vec<String> = expected
            .iter()
            .map(|l| without_file(&l.replace("$DIR", &dir), file_name))
            .collect();
        if root.join(&config).exists() {
            yaml_checked.push(config.clone());
            assert_eq!(got, expected, "{config}: check vs {}", source.display());
        } else {
            // A missing file: the same message; the help differs on purpose, a path being
            // relative to the crate at compile time and to the working directory here.
            for lines in [&got, &expected] {
                assert!(
                    lines[0].starts_with(": cannot read config file "),
                    "{lines:?}"
                );
                assert!(
                    lines[0].ends_with(&format!(
                        "{file_name}: No such file or directory (os error 2)"
                    )),
                    "{lines:?}"
                );
                assert!(lines[1].starts_with("  help: "), "{lines:?}");
            }
        }
    }
    assert!(
        cases >= 7,
        "only {cases} ui cases with a config error found"
    );
    // Every YAML of tests/ui whose case has an expected compile error was compared. (A case
    // still without its `.stderr` fails trybuild itself until it has one.)
    for yaml in std::fs::read_dir(&ui).unwrap().map(|e| e.unwrap().path()) {
        if yaml.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let relative = yaml.strip_prefix(&root).unwrap().display().to_string();
        let has_expected_errors = entries.iter().any(|source| {
            std::fs::read_to_string(source)
                .ok()
                .and_then(|text| config_of_case(&text))
                .is_some_and(|config| config == relative)
                && std::fs::read_to_string(source.with_extension("stderr"))
                    .is_ok_and(|stderr| expected_errors(&stderr).is_some())
        });
        if has_expected_errors {
            assert!(
                yaml_checked.contains(&relative),
                "{relative} was not compared"
            );
        }
    }
}

#[test]
fn valid_files_get_one_summary_line_each_and_exit_0() {
    let root = workspace_root();
    let run = redis_db(
        &root,
        &[
            "check",
            "config/redis-databases.yaml",
            "tests/fixtures/seed-with-aliases.yaml",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "config/redis-databases.yaml: valid: 14 databases, 2 aliases, 1 endpoint\n\
         tests/fixtures/seed-with-aliases.yaml: valid: 14 databases, 2 aliases, 1 endpoint\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn every_error_of_every_file_is_reported_at_once() {
    let scratch = Scratch::new();
    let many = scratch.write(
        "many.yaml",
        "redis_databases:\n  main:\n    db: 0\n  type:\n    db: 1\n  archive:\n    db: 99\ntimeout: -1\nbogus: 1\n",
    );
    let good = scratch.write("good.yaml", "redis_databases:\n  main:\n    db: 0\n");
    let run = redis_db(scratch.path(), &["check", &many, &good, "missing.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    for needle in [
        ":4:3: database name `type` is a Rust keyword",
        ":7:9: database `archive` has db 99",
        ":8:",
        ":9:1: unknown key `bogus`",
        "good.yaml: valid: 1 database, 0 aliases, 1 endpoint",
        "missing.yaml: cannot read config file",
    ] {
        assert!(run.stdout.contains(needle), "{needle}\n{}", run.stdout);
    }
    assert!(
        run.stdout.ends_with("5 errors in 2 of 3 files\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_format_gives_places_messages_and_help() {
    let root = workspace_root();
    let run = redis_db(
        &root,
        &[
            "check",
            "--format",
            "json",
            "tests/ui/alias_to_unknown.yaml",
            "config/redis-databases.yaml",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let doc = json(&run.stdout);
    assert_eq!(doc["valid"], false);
    let bad = &doc["files"][0];
    assert_eq!(bad["file"], "tests/ui/alias_to_unknown.yaml");
    assert_eq!(bad["valid"], false);
    let error = &bad["errors"][0];
    assert_eq!(error["line"], 6);
    assert_eq!(error["column"], 15);
    assert_eq!(
        error["message"],
        "`alias_of: workflow` of database `monitoring` names an unknown database"
    );
    assert_eq!(
        error["help"],
        "alias_of must name one of: workflows, monitoring"
    );
    let good = &doc["files"][1];
    assert_eq!(good["valid"], true);
    assert_eq!(good["summary"]["databases"], 14);
    assert_eq!(good["summary"]["aliases"], 2);
    assert_eq!(good["summary"]["endpoints"], 1);

    let run = redis_db(
        &root,
        &["check", "--format", "json", "config/redis-databases.yaml"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(json(&run.stdout)["valid"], true);
}

#[test]
fn github_format_annotates_the_place() {
    let root = workspace_root();
    let run = redis_db(
        &root,
        &["check", "--format", "github", "tests/ui/unknown_key.yaml"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.starts_with(
            "::error file=tests/ui/unknown_key.yaml,line=6,col=5,title=redis-db check::unknown key `max_conections`"
        ),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("%0Ahelp: did you mean `max_connections`?"));
}

#[test]
fn a_bad_command_line_is_a_usage_error_not_a_panic() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = redis_db(here, &["check"]);
    assert_eq!(run.code, 64, "{run:?}");
    assert!(run.stderr.contains("FILE"), "{}", run.stderr);
    let run = redis_db(here, &["check", "--format", "xml", "x.yaml"]);
    assert_eq!(run.code, 64, "{run:?}");
    let run = redis_db(here, &["frobnicate", "redis://user:hunter2@host:1"]);
    assert_eq!(run.code, 64, "{run:?}");
    assert!(!run.all().contains("hunter2"), "{run:?}");
    assert!(!run.all().contains("panicked"), "{run:?}");
    let run = redis_db(here, &["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("wait-ready"), "{}", run.stdout);
}
