#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod ast;
mod expand;
mod fallback;
mod load;
mod model;

use proc_macro::TokenStream;

/// Generates a typed enum of Redis databases and its clients from a YAML config.
///
/// ```ignore
/// #[redis_db::databases(config = "config/redis-databases.yaml")]
/// pub enum RedisDatabase {}
///
/// let db = RedisDatabase::connect().await?;
/// let v: Option<String> = db.knowledge().get("doc:1").await?;
/// ```
///
/// Arguments:
/// - `config = "path"`: the YAML file, relative to the invoking crate's `CARGO_MANIFEST_DIR`
///   (default `config/redis-databases.yaml`); when no file is there, relative to the directory
///   of the source file holding the attribute (as with `include_str!`);
/// - `client = Name` (optional): the client type's name (default: the enum's name followed by
///   `Client`); the blocking client is `Name` followed by `Blocking`.
///
/// An invalid config is a compile error listing every problem with its `file:line:column`
/// and how to fix it. See the crate documentation for everything that is generated.
#[proc_macro_attribute]
pub fn databases(args: TokenStream, item: TokenStream) -> TokenStream {
    // The file holding the attribute: a config path not found under `CARGO_MANIFEST_DIR` is
    // looked for next to it.
    let source_file = proc_macro::Span::call_site().local_file();
    expand::expand_in(args.into(), item.into(), source_file).into()
}

/// Adds `error` to the ones collected so far: the macro reports every problem it can see
/// in one go.
fn push_error(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(all) => all.combine(error),
        None => *errors = Some(error),
    }
}
