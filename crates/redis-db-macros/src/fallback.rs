//! What is emitted next to an error, so that one mistake gives one message.
//!
//! As in `thiserror-impl`: when the config (or the attribute) is wrong, the error comes with
//! the generated items all the same: the enum as written, its impls, both clients and, when
//! the file could be read as YAML, a variant and an accessor for every database name in it.
//! User code naming `RedisDatabase`, `RedisDatabaseClient` or calling `db.users()` then adds
//! no errors of its own.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use syn::Ident;

use crate::ast::Input;
use crate::model::{self, Db, Model};

/// The items for the database names of a file that broke a rule: each name that makes a
/// distinct, valid variant and method. The rest (a keyword, a duplicate, a clash with a
/// generated method) is left out: generating it would be an error of its own, on top of the
/// config error that already names it. Numbers are not read: nothing runs from a failed build.
pub fn salvage<'a>(
    input: &'a Input,
    client: Option<&Ident>,
    config_file: String,
    names: &[String],
    span: Span,
) -> Model<'a> {
    let mut model = Model::empty(input, client, config_file);
    let mut variants = HashSet::new();
    for name in names {
        let generatable = redis_db_config::is_snake_case(name)
            && !redis_db_config::is_keyword(name)
            && !redis_db_config::is_reserved(name);
        let Some((variant, method)) = generatable
            .then(|| model::idents(name, span).ok())
            .flatten()
        else {
            continue;
        };
        if variants.insert(variant.to_string()) {
            model.databases.push(Db {
                name: name.clone(),
                variant,
                method,
                db: None,
                description: String::new(),
                alias_of: None,
            });
        }
    }
    model
}

/// The error, then the item as written: it is not an enum we can generate for, but keeping
/// it keeps its name defined.
pub fn invalid_item(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut out = error.to_compile_error();
    out.extend(item);
    out
}
