//! What is emitted next to an error, so that one mistake gives one message.
//!
//! As in `thiserror-impl`: when the config (or the attribute) is wrong, the error comes with
//! a skeleton of the generated items (the enum as written, with no variants, its impls and
//! both clients without per-database methods), so that user code naming `RedisDatabase`,
//! `RedisDatabase::connect()` or `RedisDatabaseClient` does not add errors of its own.

use proc_macro2::TokenStream;
use syn::Ident;

use crate::ast::Input;
use crate::expand::Model;

/// The error, then the skeleton of the items for `input`.
pub fn expand(
    input: &Input,
    client: Option<&Ident>,
    config_file: String,
    error: syn::Error,
) -> TokenStream {
    let mut out = error.to_compile_error();
    out.extend(Model::empty(input, client, config_file).generate());
    out
}

/// The error, then the item as written: it is not an enum we can generate for, but keeping
/// it keeps its name defined.
pub fn invalid_item(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut out = error.to_compile_error();
    out.extend(item);
    out
}
