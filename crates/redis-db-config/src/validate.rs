//! Rules that relate values to each other: names, duplicates, numbers, aliases.
//!
//! They run on the resolved [`Config`] so that they can run again after every layer
//! (runtime file, environment): a layer may change `max_databases`, for example.

use std::collections::HashMap;

use crate::error::Sink;
use crate::locate::KeyPath;
use crate::model::Config;
use crate::names;

/// Checks `cfg`; problems go to `sink`. `broken` names entries that were reported and
/// dropped earlier, so that references to them do not raise follow-on errors.
pub(crate) fn validate(cfg: &Config, broken: &[String], sink: &mut Sink<'_>) {
    let dbs = &cfg.databases;
    // Occurrence index of each entry's name, to place duplicates at their own line.
    let mut nth_of = Vec::with_capacity(dbs.len());
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, db) in dbs.iter().enumerate() {
        nth_of.push(dbs[..i].iter().filter(|d| d.name == db.name).count());
        first_of.entry(db.name.as_str()).or_insert(i);
    }
    let place = |sink: &Sink<'_>, i: usize| sink.key(&KeyPath::database(&dbs[i].name, nth_of[i]));

    let mut variants: HashMap<String, &str> = HashMap::new();
    for (i, db) in dbs.iter().enumerate() {
        if nth_of[i] > 0 {
            let first = sink.key(&KeyPath::database(&db.name, 0));
            let first = first.map_or(String::new(), |at| format!(" (first at line {})", at.line));
            sink.push(
                place(sink, i),
                format!("duplicate database name `{}`{first}", db.name),
                "each name may appear once; rename or remove one of them",
            );
            continue;
        }
        if let Some((message, help)) = names::check(&db.name) {
            sink.push(place(sink, i), message, help);
            continue;
        }
        let variant = names::variant_name(&db.name);
        match variants.get(&variant) {
            Some(other) => sink.push(
                place(sink, i),
                format!(
                    "databases `{other}` and `{}` both map to the enum variant `{variant}`",
                    db.name
                ),
                format!(
                    "rename `{}` so that its UpperCamelCase form differs",
                    db.name
                ),
            ),
            None => {
                variants.insert(variant, &db.name);
            }
        }
    }

    for (i, db) in dbs.iter().enumerate() {
        if db.db >= cfg.max_databases {
            db_out_of_range(sink, &db.name, nth_of[i], db.db.into(), cfg.max_databases);
        }
    }

    for (i, db) in dbs.iter().enumerate() {
        let Some(target_name) = &db.alias_of else {
            continue;
        };
        let at = sink.value(&KeyPath::database(&db.name, nth_of[i]).key("alias_of"));
        let line = format!("`alias_of: {target_name}` of database `{}`", db.name);
        if target_name == &db.name {
            sink.push(
                at,
                format!("{line} makes it an alias of itself"),
                "remove `alias_of`",
            );
            continue;
        }
        let Some(&t) = first_of.get(target_name.as_str()) else {
            if !broken.contains(target_name) {
                let valid: Vec<&str> = dbs.iter().map(|d| d.name.as_str()).collect();
                sink.push(
                    at,
                    format!("{line} names an unknown database"),
                    format!("alias_of must name one of: {}", valid.join(", ")),
                );
            }
            continue;
        };
        let target = &dbs[t];
        if let Some(next) = &target.alias_of {
            sink.push(
                at,
                format!("{line} names `{target_name}`, which is itself an alias (of `{next}`)"),
                format!("aliases cannot chain: write `alias_of: {next}`"),
            );
        } else if target.db != db.db {
            sink.push(
                at,
                format!(
                    "{line}: `{}` has db {} but `{target_name}` has db {}",
                    db.name, db.db, target.db
                ),
                format!(
                    "an alias shares its target's number: set `db: {}` under `{}`",
                    target.db, db.name
                ),
            );
        }
    }

    // Two names on one number must be declared: an accidental clash would mix two
    // components' keys in one Redis database.
    let mut owner_of: HashMap<u32, usize> = HashMap::new();
    for (i, db) in dbs.iter().enumerate() {
        if db.alias_of.is_some() || nth_of[i] > 0 {
            continue;
        }
        match owner_of.get(&db.db) {
            Some(&o) => {
                let owner = &dbs[o].name;
                sink.push(
                    sink.value(&KeyPath::database(&db.name, nth_of[i]).key("db")),
                    format!(
                        "databases `{owner}` and `{}` both use db {}; declare the intended one as an alias: `alias_of: {owner}` under `{}`",
                        db.name, db.db, db.name
                    ),
                    format!(
                        "add `alias_of: {owner}` under `{}` if they are meant to share db {}, else give `{}` a free number",
                        db.name, db.db, db.name
                    ),
                );
            }
            None => {
                owner_of.insert(db.db, i);
            }
        }
    }

    if cfg.retry.max_delay < cfg.retry.delay {
        sink.push(
            sink.value(&KeyPath::root().key("retry_max_delay")),
            format!(
                "`retry_max_delay` ({}s) is shorter than `retry_delay` ({}s)",
                cfg.retry.max_delay.as_secs_f64(),
                cfg.retry.delay.as_secs_f64()
            ),
            "make `retry_max_delay` at least `retry_delay`",
        );
    }
}

/// `db` outside `0..max_databases`; placed at the number, else at `max_databases`.
pub(crate) fn db_out_of_range(sink: &mut Sink<'_>, name: &str, nth: usize, db: i128, max: u32) {
    let at = sink
        .locator
        .and_then(|l| {
            let db_path = KeyPath::database(name, nth).key("db");
            // Only an exact hit counts here: the fallback chain would land on `redis_databases`.
            l.value(&db_path).filter(|_| l.has(&db_path))
        })
        .or_else(|| sink.value(&KeyPath::root().key("max_databases")));
    sink.push(
        at,
        format!("database `{name}` has db {db}, outside 0..{max} (max_databases: {max})"),
        format!(
            "use a number from 0 to {} for `{name}`, or raise `max_databases` to the server's `databases` setting",
            max.saturating_sub(1)
        ),
    );
}
