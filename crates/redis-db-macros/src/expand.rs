//! From attribute + enum + YAML to the generated items: the pipeline, and the generation.
//!
//! parse (`args`, `ast`) -> load and validate (`load`) -> model (`model`) -> generate (here),
//! or, when a step fails, its error plus the items generated from what could be read
//! (`fallback`). [`expand`] is a plain function over token streams, so the unit tests below
//! (and any future tool) can run the whole macro without a compiler around it.

use std::path::PathBuf;

use proc_macro2::{Literal, TokenStream};
use quote::quote;
use syn::Ident;

use crate::args::Args;
use crate::ast::{Input, Refused};
use crate::fallback;
use crate::load::{self, Failed};
use crate::model::{Db, Model};
use crate::push_error;

/// The whole macro: `#[databases(<args>)] <item>` to the generated code, or to the errors
/// plus the items generated from what could be read.
#[cfg(test)]
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_in(args, item, None)
}

/// [`expand`], told the file that holds the attribute (`None` when the compiler does not
/// know it): a config path that names no file under `CARGO_MANIFEST_DIR` is then also looked
/// for next to that file.
pub fn expand_in(
    args: TokenStream,
    item: TokenStream,
    source_file: Option<PathBuf>,
) -> TokenStream {
    let (input, mut errors) = match Input::parse(item.clone()) {
        Ok(input) => (input, None),
        // An enum of the wrong shape (generic, with variants): report it, and generate from
        // the config all the same so that it is the only error.
        Err(Refused {
            error,
            salvaged: Some(input),
        }) => (input, Some(error)),
        Err(Refused {
            mut error,
            salvaged: None,
        }) => {
            if let (_, Some(args_error)) = Args::parse(args) {
                error.combine(args_error);
            }
            return fallback::invalid_item(item, error);
        }
    };
    let (args, args_error) = Args::parse(args);
    if let Some(error) = args_error {
        push_error(&mut errors, error);
    }
    let client = args.client.as_ref();
    let model = match &args.config {
        None => Model::empty(&input, client, String::new()),
        Some(config) => {
            let file = config.path.clone();
            let model = load::load(config, source_file.as_deref()).and_then(|loaded| {
                Model::from_config(&input, client, file.clone(), loaded, config.span).map_err(
                    |error| Failed {
                        error,
                        names: Vec::new(),
                    },
                )
            });
            match model {
                Ok(model) => model,
                Err(Failed { error, names }) => {
                    push_error(&mut errors, error);
                    fallback::salvage(&input, client, file, &names, config.span)
                }
            }
        }
    };
    let mut out = errors.map(|e| e.to_compile_error()).unwrap_or_default();
    out.extend(model.generate());
    out
}

impl Model<'_> {
    /// The enum, its impls, the parse error and both clients.
    pub fn generate(&self) -> TokenStream {
        let enum_ = self.enum_();
        let parse_error = self.parse_error();
        let inherent = self.inherent();
        let traits = self.traits();
        let client = self.client(false);
        let blocking = self.client(true);
        quote! {
            #enum_
            #parse_error
            #inherent
            #traits
            #client
            #blocking
        }
    }

    fn variants(&self) -> impl Iterator<Item = &Ident> + Clone {
        self.databases.iter().map(|d| &d.variant)
    }

    fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.databases.iter().map(|d| d.name.as_str())
    }

    fn positions(&self) -> impl Iterator<Item = Literal> + Clone {
        (0..self.databases.len()).map(Literal::usize_unsuffixed)
    }

    fn enum_(&self) -> TokenStream {
        let Input { attrs, vis, ident } = self.input;
        let variants = self.databases.iter().enumerate().map(|(position, d)| {
            let docs = variant_docs(d);
            let variant = &d.variant;
            let discriminant = Literal::usize_unsuffixed(position);
            quote! {
                #(#[doc = #docs])*
                #variant = #discriminant
            }
        });
        quote! {
            #(#attrs)*
            #[derive(
                ::core::fmt::Debug,
                ::core::clone::Clone,
                ::core::marker::Copy,
                ::core::cmp::PartialEq,
                ::core::cmp::Eq,
                ::core::hash::Hash
            )]
            #vis enum #ident {
                #(#variants,)*
            }
        }
    }

    fn parse_error(&self) -> TokenStream {
        let Input { vis, ident, .. } = self.input;
        let error = &self.parse_error;
        let doc = format!(
            " The error of parsing a [`{ident}`] from a string that is not one of its database \
             names."
        );
        let expected = if self.databases.is_empty() {
            "no databases are defined".to_owned()
        } else {
            format!(
                "expected one of: {}",
                self.names().collect::<Vec<_>>().join(", ")
            )
        };
        quote! {
            #[doc = #doc]
            #[derive(
                ::core::fmt::Debug,
                ::core::clone::Clone,
                ::core::cmp::PartialEq,
                ::core::cmp::Eq
            )]
            #vis struct #error(::std::string::String);

            impl #error {
                /// The name that matched no database.
                pub fn name(&self) -> &str {
                    &self.0
                }
            }

            #[automatically_derived]
            impl ::core::fmt::Display for #error {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    ::core::write!(f, "unknown database `{}`; {}", self.0, #expected)
                }
            }

            #[automatically_derived]
            impl ::std::error::Error for #error {}
        }
    }

    fn inherent(&self) -> TokenStream {
        let ident = &self.input.ident;
        let client = &self.client;
        let blocking = &self.blocking;
        let variants = self.variants();
        let v1 = variants.clone();
        let v2 = variants.clone();
        let v3 = variants.clone();
        let v4 = variants.clone();
        let names = self.names();
        // Next to an error no number is known; nothing runs from a failed build.
        let numbers = self
            .databases
            .iter()
            .map(|d| Literal::u32_unsuffixed(d.db.unwrap_or_default()));
        let descriptions = self.databases.iter().map(|d| d.description.as_str());
        let aliases = self.databases.iter().map(|d| match &d.alias_of {
            Some((target, _)) => quote!(::core::option::Option::Some(Self::#target)),
            None => quote!(::core::option::Option::None),
        });
        // Relative `tls` files of the compiled YAML are the YAML directory's (first of the
        // builder's changes, so a runtime file's or the application's own come after it).
        let resolve_tls = self.tls_base.as_ref().map(|dir| {
            quote! {
                .configure(|config: &mut ::redis_db::config::Config| {
                    config.resolve_tls_paths(::std::path::Path::new(#dir))
                })
            }
        });
        let file = &self.config_file;
        let all_doc = if file.is_empty() {
            " Every database, in file order.".to_owned()
        } else {
            format!(" Every database of `{file}`, in file order.")
        };
        quote! {
            impl #ident {
                #[doc = #all_doc]
                pub const ALL: &'static [Self] = &[#(Self::#variants),*];

                /// The database's name in the YAML config (`snake_case`).
                pub const fn name(self) -> &'static str {
                    match self {
                        #(Self::#v1 => #names,)*
                    }
                }

                /// The Redis database number (the `db:` of the YAML config).
                pub const fn index(self) -> u32 {
                    match self {
                        #(Self::#v2 => #numbers,)*
                    }
                }

                /// The YAML `description`; empty when there is none.
                pub const fn description(self) -> &'static str {
                    match self {
                        #(Self::#v3 => #descriptions,)*
                    }
                }

                /// The database this one is declared an alias of (`alias_of:`): both share one
                /// Redis database number, pool and circuit breaker.
                pub const fn alias_of(self) -> ::core::option::Option<Self> {
                    match self {
                        #(Self::#v4 => #aliases,)*
                    }
                }

                /// A builder to override the compiled configuration (URL, runtime config file)
                /// before connecting. Builder settings beat the environment, which beats the
                /// runtime config file, which beats the compiled YAML.
                pub fn builder() -> ::redis_db::Builder<Self> {
                    ::redis_db::Builder::<Self>::new() #resolve_tls
                }

                /// Connects with the compiled configuration plus the `REDIS_*` environment
                /// overrides; returns once every database answers.
                ///
                /// # Errors
                ///
                /// When the environment or runtime configuration is invalid, or a database
                /// cannot be reached in time.
                pub async fn connect() -> ::core::result::Result<#client, ::redis_db::Error> {
                    Self::builder().connect().await
                }

                /// Like [`connect`](Self::connect), for code that does not run inside an
                /// async runtime.
                ///
                /// # Errors
                ///
                /// As [`connect`](Self::connect); also when called from inside an async runtime.
                pub fn connect_blocking() -> ::core::result::Result<#blocking, ::redis_db::Error> {
                    Self::builder().connect_blocking()
                }
            }
        }
    }

    fn traits(&self) -> TokenStream {
        let ident = &self.input.ident;
        let error = &self.parse_error;
        let client = &self.client;
        let blocking = &self.blocking;
        let variants = self.variants();
        let names = self.names();
        let file = &self.config_file;
        let yaml = match &self.yaml_path {
            Some(path) => quote!(::core::include_str!(#path)),
            None => quote!(""),
        };
        quote! {
            #[automatically_derived]
            impl ::core::str::FromStr for #ident {
                type Err = #error;

                fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                    match s {
                        #(#names => ::core::result::Result::Ok(Self::#variants),)*
                        _ => ::core::result::Result::Err(#error(::std::string::ToString::to_string(s))),
                    }
                }
            }

            #[automatically_derived]
            impl ::core::fmt::Display for #ident {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(self.name())
                }
            }

            #[automatically_derived]
            impl ::redis_db::__private::DatabaseEnum for #ident {
                type Client = #client;
                type BlockingClient = #blocking;
                const CONFIG_YAML: &'static str = #yaml;
                const CONFIG_FILE: &'static str = #file;

                fn wrap(inner: ::redis_db::__private::Core) -> Self::Client {
                    #client { core: inner }
                }

                fn wrap_blocking(inner: ::redis_db::__private::BlockingCore) -> Self::BlockingClient {
                    #blocking { core: inner }
                }
            }
        }
    }

    fn client(&self, is_blocking: bool) -> TokenStream {
        let Input { vis, ident, .. } = self.input;
        let (name, core, handle) = if is_blocking {
            (
                &self.blocking,
                quote!(::redis_db::__private::BlockingCore),
                quote!(::redis_db::blocking::Handle),
            )
        } else {
            (
                &self.client,
                quote!(::redis_db::__private::Core),
                quote!(::redis_db::Handle),
            )
        };
        let doc = if is_blocking {
            format!(
                " Blocking access to the databases of [`{ident}`]: from [`{ident}::connect_blocking`]. \
                 Cheap to clone; every clone shares one set of connection pools."
            )
        } else {
            format!(
                " Access to the databases of [`{ident}`]: from [`{ident}::connect`] or \
                 [`{ident}::builder`]. Cheap to clone; every clone shares one set of connection \
                 pools."
            )
        };
        let methods = self.databases.iter().enumerate().map(|(position, d)| {
            let docs = variant_docs(d);
            let method = &d.method;
            let position = Literal::usize_unsuffixed(position);
            quote! {
                #(#[doc = #docs])*
                pub fn #method(&self) -> #handle {
                    self.core.handle(#position)
                }
            }
        });
        let variants = self.variants();
        let positions = self.positions();
        let names = self.names();
        let name_str = name.to_string();
        let health = if is_blocking {
            quote! {
                /// Pings every database now and reports its state.
                pub fn health(&self) -> ::redis_db::HealthReport {
                    self.core.health()
                }
            }
        } else {
            quote! {
                /// Pings every database now and reports its state.
                pub async fn health(&self) -> ::redis_db::HealthReport {
                    self.core.health().await
                }
            }
        };
        quote! {
            #[doc = #doc]
            #[derive(::core::clone::Clone)]
            #vis struct #name {
                core: #core,
            }

            impl #name {
                #(#methods)*

                /// The handle of any database, chosen at run time.
                pub fn database(&self, db: #ident) -> #handle {
                    match db {
                        #(#ident::#variants => self.core.handle(#positions),)*
                    }
                }

                /// A snapshot of the per-database figures (commands, failures, retries,
                /// circuit state, pool, latency) and totals.
                pub fn stats(&self) -> ::redis_db::Stats {
                    self.core.stats()
                }

                #health
            }

            #[automatically_derived]
            impl ::core::fmt::Debug for #name {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    let databases: &[&str] = &[#(#names),*];
                    f.debug_struct(#name_str).field("databases", &databases).finish()
                }
            }
        }
    }
}

/// The doc lines of a database's variant and accessor methods.
fn variant_docs(d: &Db) -> Vec<String> {
    let mut docs = Vec::new();
    for line in d.description.lines() {
        docs.push(format!(" {line}"));
    }
    if !docs.is_empty() {
        docs.push(String::new());
    }
    let mut summary = match d.db {
        Some(db) => format!(" `{}`: Redis database {db}", d.name),
        None => format!(" `{}`: its config has errors", d.name),
    };
    if let Some((_, target)) = &d.alias_of {
        summary.push_str(&format!(", an alias of `{target}`"));
    }
    summary.push('.');
    docs.push(summary);
    docs
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture(name: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name)
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn run(args: TokenStream, item: TokenStream) -> String {
        let out = expand(args, item);
        // The output must always be valid Rust items.
        syn::parse2::<syn::File>(out.clone()).expect("expansion is not a list of items");
        out.to_string()
    }

    fn temp_yaml(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("redis-db-macros-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[test]
    fn generates_every_item() {
        let path = fixture("shop.yaml");
        let out = run(
            quote!(config = #path, client = ShopDb),
            quote! {
                /// Shop databases.
                #[allow(dead_code)]
                pub(crate) enum Shop {}
            },
        );
        for expected in [
            "# [doc = r\" Shop databases.\"]",
            "# [allow (dead_code)]",
            "pub (crate) enum Shop",
            "Orders = 0",
            "Carts = 1",
            "CartsMirror = 2",
            "pub const ALL : & 'static [Self] = & [Self :: Orders , Self :: Carts , Self :: CartsMirror]",
            "Self :: Carts => 3",
            "Self :: CartsMirror => :: core :: option :: Option :: Some (Self :: Carts)",
            "\"carts_mirror\" => :: core :: result :: Result :: Ok (Self :: CartsMirror)",
            "pub (crate) struct ParseShopError",
            "expected one of: orders, carts, carts_mirror",
            "pub (crate) struct ShopDb",
            "pub (crate) struct ShopDbBlocking",
            "pub fn carts (& self) -> :: redis_db :: Handle { self . core . handle (1) }",
            "pub fn carts_mirror (& self) -> :: redis_db :: blocking :: Handle { self . core . handle (2) }",
            "pub async fn health (& self) -> :: redis_db :: HealthReport",
            "pub fn health (& self) -> :: redis_db :: HealthReport",
            "type Client = ShopDb",
            "type BlockingClient = ShopDbBlocking",
            "const CONFIG_FILE : & 'static str = ",
            ":: core :: include_str !",
        ] {
            assert!(out.contains(expected), "missing `{expected}` in\n{out}");
        }
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn default_client_names() {
        let path = fixture("shop.yaml");
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum RedisDatabase {}
            ),
        );
        assert!(out.contains("pub struct RedisDatabaseClient"), "{out}");
        assert!(
            out.contains("pub struct RedisDatabaseBlockingClient"),
            "{out}"
        );
        assert!(out.contains("pub struct ParseRedisDatabaseError"), "{out}");
    }

    #[test]
    fn includes_the_yaml_by_absolute_path() {
        let path = fixture("shop.yaml");
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum Db {}
            ),
        );
        let canonical = Path::new(&path).canonicalize().unwrap();
        let needle = format!("include_str ! ({:?})", canonical.to_str().unwrap());
        assert!(out.contains(&needle), "missing `{needle}` in\n{out}");
    }

    #[test]
    fn the_seed_file_is_one_error_plus_its_items() {
        let path = fixture("seed-app-redis-databases.yaml");
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum RedisDatabase {}
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("alias_of"), "{out}");
        assert!(out.contains("seed-app-redis-databases.yaml:"), "{out}");
        // The items, from the names the file declares: user code type-checks.
        assert!(
            out.contains(
                "pub enum RedisDatabase { # [doc = \" `main`: its config has errors.\"] Main = 0"
            ),
            "{out}"
        );
        assert!(out.contains("Codebase = 13"), "{out}");
        assert!(out.contains("pub fn monitoring (& self)"), "{out}");
        assert!(out.contains("pub struct RedisDatabaseClient"), "{out}");
        assert!(
            out.contains("pub struct RedisDatabaseBlockingClient"),
            "{out}"
        );
        assert!(out.contains("pub async fn connect ()"), "{out}");
        assert!(!out.contains("include_str"), "{out}");
    }

    #[test]
    fn the_seed_file_with_its_aliases_is_accepted() {
        let path = fixture("seed-with-aliases.yaml");
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum RedisDatabase {}
            ),
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("Codebase = 13"), "{out}");
        assert!(
            out.contains(
                "Self :: Monitoring => :: core :: option :: Option :: Some (Self :: Workflows)"
            ),
            "{out}"
        );
    }

    #[test]
    fn every_config_error_is_in_one_message() {
        let path = temp_yaml(
            "two-errors.yaml",
            "redis_databases:\n  main:\n    db: 99\n  cache:\n    db: 1\n    colour: blue\n",
        );
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum RedisDatabase {}
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("(2 errors)"), "{out}");
        assert!(out.contains("colour"), "{out}");
        assert!(out.contains("99"), "{out}");
    }

    #[test]
    fn bad_arguments_keep_the_skeleton() {
        let out = run(
            quote!(path = "x.yaml"),
            quote!(
                pub enum RedisDatabase {}
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("unknown argument"), "{out}");
        assert!(out.contains("pub struct RedisDatabaseClient"), "{out}");
        assert!(out.contains("pub enum RedisDatabase { }"), "{out}");
    }

    #[test]
    fn a_wrong_argument_keeps_the_client_name_and_the_config() {
        let path = fixture("shop.yaml");
        let out = run(
            quote!(config = #path, colour = blue, client = ShopDb),
            quote!(
                pub enum Shop {}
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("unknown argument"), "{out}");
        assert!(out.contains("pub struct ShopDb "), "{out}");
        assert!(out.contains("pub struct ShopDbBlocking "), "{out}");
        assert!(out.contains("pub fn carts_mirror (& self)"), "{out}");
        assert!(out.contains(":: core :: include_str !"), "{out}");

        // A malformed client name: the config is read all the same, under the default names.
        let out = run(
            quote!(config = #path, client = "ShopDb"),
            quote!(
                pub enum Shop {}
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("pub struct ShopClient "), "{out}");
        assert!(out.contains("pub fn carts (& self)"), "{out}");
    }

    #[test]
    fn a_file_that_breaks_rules_keeps_every_usable_name() {
        // The case: a misspelt key, a shared number without `alias_of`, a negative
        // timeout; then names the fallback must leave out, or it would add errors of its own.
        let path = temp_yaml(
            "broken-rules.yaml",
            "redis_databases:\n  users:\n    db: 1\n    descripton: people\n  sessions:\n    db: 1\n  cache:\n    db: 2\n    timeout_seconds: -3\n  type:\n    db: 3\n  stats:\n    db: 4\n  cache:\n    db: 5\n  Bad:\n    db: 6\n",
        );
        let out = run(
            quote!(config = #path, client = App),
            quote!(
                pub enum Db {}
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("descripton"), "{out}");
        let enum_body = out
            .split("pub enum Db {")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .unwrap_or_default();
        for variant in ["] Users = 0 ,", "] Sessions = 1 ,", "] Cache = 2 ,"] {
            assert!(enum_body.contains(variant), "missing `{variant}` in\n{out}");
        }
        assert_eq!(enum_body.matches(" , ").count(), 3, "{out}");
        for method in ["users", "sessions", "cache"] {
            let needle = format!("pub fn {method} (& self) -> :: redis_db :: Handle");
            assert!(out.contains(&needle), "missing `{needle}` in\n{out}");
        }
        assert_eq!(out.matches("pub fn stats (& self)").count(), 2, "{out}");
        assert!(!out.contains("fn r#type"), "{out}");
        assert!(out.contains("pub struct App "), "{out}");
    }

    #[test]
    fn trait_impls_are_marked_automatically_derived() {
        let path = fixture("shop.yaml");
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum Shop {}
            ),
        );
        // Display and Error of the parse error, FromStr, Display, DatabaseEnum, and Debug of
        // both clients: every trait impl, and no inherent one (rustc refuses it there).
        assert_eq!(out.matches("impl :: ").count(), 7, "{out}");
        assert_eq!(
            out.matches("# [automatically_derived] impl :: ").count(),
            7,
            "{out}"
        );
        assert!(
            !out.contains("# [automatically_derived] impl Shop"),
            "{out}"
        );
    }

    #[test]
    fn generated_code_names_the_sdk_only_through_redis_db() {
        let path = fixture("shop.yaml");
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum Shop {}
            ),
        );
        for internal in [
            "redis_db_core",
            "redis_db_config",
            "redis_db_macros",
            ":: redis ::",
        ] {
            assert!(!out.contains(internal), "`{internal}` in\n{out}");
        }
        for private in ["Core", "BlockingCore", "DatabaseEnum"] {
            let public = format!(":: redis_db :: {private} ");
            assert!(
                !out.contains(&public),
                "`{public}` outside __private in\n{out}"
            );
            let hidden = format!(":: redis_db :: __private :: {private}");
            assert!(out.contains(&hidden), "missing `{hidden}` in\n{out}");
        }
    }

    #[test]
    fn a_bad_item_is_kept_as_written() {
        let out = run(
            quote!(config = "x.yaml"),
            quote!(
                pub struct RedisDatabase;
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("not a struct"), "{out}");
        assert!(out.contains("pub struct RedisDatabase ;"), "{out}");
    }

    #[test]
    fn a_misshapen_enum_still_gets_its_items() {
        let path = fixture("shop.yaml");
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum Shop<T> {
                    Main,
                }
            ),
        );
        // Two shape problems, two errors; nothing else.
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(out.contains("cannot be generic"), "{out}");
        assert!(out.contains("must be empty"), "{out}");
        assert!(out.contains("pub enum Shop {"), "{out}");
        assert!(out.contains("CartsMirror = 2"), "{out}");
        assert!(!out.contains("Main ,") && !out.contains("Main }"), "{out}");
    }

    #[test]
    fn relative_tls_files_are_checked_and_resolved_against_the_yaml_dir() {
        let dir = std::env::temp_dir().join(format!("redis-db-macros-tls-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        std::fs::write(dir.join("certs/ca.pem"), "ca").unwrap();
        let yaml = dir.join("tls.yaml");
        std::fs::write(
            &yaml,
            "redis_databases:\n  main:\n    db: 0\nhost: cache\ntls:\n  ca_file: certs/ca.pem\n  cert_file: certs/client.pem\n  key_file: certs/client.key\n",
        )
        .unwrap();
        let path = yaml.to_str().unwrap().to_owned();
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum Db {}
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("(2 errors)"), "{out}");
        assert!(
            out.contains("tls.yaml:7:14: `tls.cert_file` names"),
            "{out}"
        );
        assert!(out.contains("tls.yaml:8:13: `tls.key_file` names"), "{out}");
        assert!(
            out.contains(dir.join("certs/client.pem").to_str().unwrap()),
            "{out}"
        );

        std::fs::write(dir.join("certs/client.pem"), "cert").unwrap();
        std::fs::write(dir.join("certs/client.key"), "key").unwrap();
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum Db {}
            ),
        );
        assert!(!out.contains("compile_error"), "{out}");
        let needle = format!(
            "config . resolve_tls_paths (:: std :: path :: Path :: new ({:?}))",
            dir.canonicalize().unwrap().to_str().unwrap()
        );
        assert!(out.contains(&needle), "missing `{needle}` in\n{out}");
        std::fs::remove_dir_all(&dir).unwrap();

        // Without relative tls paths the builder is the plain one.
        let path = fixture("shop.yaml");
        let out = run(
            quote!(config = #path),
            quote!(
                pub enum Db {}
            ),
        );
        assert!(!out.contains("resolve_tls_paths"), "{out}");
    }
}
