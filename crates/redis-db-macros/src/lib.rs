#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod ast;
mod expand;
mod fallback;

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
///   (default `config/redis-databases.yaml`);
/// - `client = Name` (optional): the client type's name (default: the enum's name followed by
///   `Client`); the blocking client is `Name` followed by `Blocking`.
///
/// An invalid config is a compile error listing every problem with its `file:line:column`
/// and how to fix it. See the crate documentation for everything that is generated.
#[proc_macro_attribute]
pub fn databases(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
