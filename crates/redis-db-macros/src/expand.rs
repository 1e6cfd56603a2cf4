//! From attribute + enum + YAML to the generated items.
//!
//! [`expand`] is a plain function over token streams, so the unit tests below (and any
//! future tool) can run the whole macro without a compiler around it.

use std::path::{Component, Path, PathBuf};

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};
use redis_db_config::{Config, ConfigError, ConfigErrors};
use syn::Ident;

use crate::args::Args;
use crate::ast::{Input, Refused};
use crate::fallback;

/// The whole macro: `#[databases(<args>)] <item>` to the generated code, or to the errors
/// plus a fallback skeleton when the arguments, the item or the config are wrong.
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
    let (input, shape_error) = match Input::parse(item.clone()) {
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
            if let Err(args_error) = Args::parse(args) {
                error.combine(args_error);
            }
            return fallback::invalid_item(item, error);
        }
    };
    let args = match Args::parse(args) {
        Ok(args) => args,
        Err(error) => {
            let error = combine(shape_error, error);
            return fallback::expand(&input, None, String::new(), error);
        }
    };
    match Model::load(&input, &args, source_file.as_deref()) {
        Ok(model) => {
            let mut out = shape_error
                .map(|e| e.to_compile_error())
                .unwrap_or_default();
            out.extend(model.generate());
            out
        }
        Err(error) => {
            let error = combine(shape_error, error);
            fallback::expand(&input, args.client.as_ref(), args.config, error)
        }
    }
}

fn combine(first: Option<syn::Error>, second: syn::Error) -> syn::Error {
    match first {
        Some(mut first) => {
            first.combine(second);
            first
        }
        None => second,
    }
}

/// One database, ready to be turned into a variant and two accessor methods.
pub struct Db {
    /// The YAML name, also the accessor methods' name.
    pub name: String,
    /// `UpperCamelCase` of `name`.
    pub variant: Ident,
    /// `name` as an identifier.
    pub method: Ident,
    /// The Redis database number.
    pub db: u32,
    /// Empty when the YAML has none.
    pub description: String,
    /// The variant of the database this one is an alias of.
    pub alias_of: Option<(Ident, String)>,
}

/// Everything the generated code is made of.
pub struct Model<'a> {
    pub input: &'a Input,
    pub client: Ident,
    pub blocking: Ident,
    pub parse_error: Ident,
    pub databases: Vec<Db>,
    /// Absolute path of the YAML, embedded with `include_str!` (which makes cargo rebuild the
    /// crate when the file changes); `None` in the fallback skeleton.
    pub yaml_path: Option<String>,
    /// The path as written in the attribute.
    pub config_file: String,
    /// The YAML's directory, when the YAML names `tls` files by relative paths: the generated
    /// builder resolves them against it, so that the client reads the files the build checked.
    pub tls_base: Option<String>,
}

impl<'a> Model<'a> {
    /// A model without databases: the shape of the generated items, for the fallback.
    pub fn empty(input: &'a Input, client: Option<&Ident>, config_file: String) -> Self {
        let (client, blocking) = client_names(input, client);
        Self {
            input,
            client,
            blocking,
            parse_error: format_ident!("Parse{}Error", input.ident, span = input.ident.span()),
            databases: Vec::new(),
            yaml_path: None,
            config_file,
            tls_base: None,
        }
    }

    /// Reads and validates the YAML named by `args`; every config problem becomes one error
    /// spanned on the `config = "..."` literal.
    fn load(input: &'a Input, args: &Args, source_file: Option<&Path>) -> syn::Result<Self> {
        let (config, path) = read_config(args, source_file)?;
        let yaml_path = path.to_str().map(str::to_owned).ok_or_else(|| {
            syn::Error::new(
                args.config_span,
                format!("the config path `{}` is not valid UTF-8", path.display()),
            )
        })?;
        let mut model = Self::empty(input, args.client.as_ref(), args.config.clone());
        model.yaml_path = Some(yaml_path);
        if config.has_relative_tls_paths() {
            let dir = path.parent().unwrap_or(Path::new("/"));
            model.tls_base = Some(dir.to_str().map(str::to_owned).ok_or_else(|| {
                syn::Error::new(
                    args.config_span,
                    format!(
                        "the config directory `{}` is not valid UTF-8",
                        dir.display()
                    ),
                )
            })?);
        }
        model.databases = databases(&config, args.config_span)?;
        Ok(model)
    }

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

            impl ::core::fmt::Display for #error {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    ::core::write!(f, "unknown database `{}`; {}", self.0, #expected)
                }
            }

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
        let numbers = self.databases.iter().map(|d| Literal::u32_unsuffixed(d.db));
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
            impl ::core::str::FromStr for #ident {
                type Err = #error;

                fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                    match s {
                        #(#names => ::core::result::Result::Ok(Self::#variants),)*
                        _ => ::core::result::Result::Err(#error(::std::string::ToString::to_string(s))),
                    }
                }
            }

            impl ::core::fmt::Display for #ident {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(self.name())
                }
            }

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

            impl ::core::fmt::Debug for #name {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    let databases: &[&str] = &[#(#names),*];
                    f.debug_struct(#name_str).field("databases", &databases).finish()
                }
            }
        }
    }
}

/// `RedisDatabaseClient` and `RedisDatabaseBlockingClient`, or `Name` and `NameBlocking`.
fn client_names(input: &Input, client: Option<&Ident>) -> (Ident, Ident) {
    match client {
        Some(client) => (
            client.clone(),
            format_ident!("{}Blocking", client, span = client.span()),
        ),
        None => {
            let span = input.ident.span();
            (
                format_ident!("{}Client", input.ident, span = span),
                format_ident!("{}BlockingClient", input.ident, span = span),
            )
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
    let mut summary = format!(" `{}`: Redis database {}", d.name, d.db);
    if let Some((_, target)) = &d.alias_of {
        summary.push_str(&format!(", an alias of `{target}`"));
    }
    summary.push('.');
    docs.push(summary);
    docs
}

/// The YAML as `redis-db-config` reads it, and its resolved path.
///
/// The path is relative to `CARGO_MANIFEST_DIR`; when no file is there, the directory of the
/// source file holding the attribute is tried too (as `include_str!` would), which keeps tests
/// whose crate is generated elsewhere (trybuild's, under any `CARGO_TARGET_DIR`) independent
/// of where that is.
fn read_config(args: &Args, source_file: Option<&Path>) -> syn::Result<(Config, PathBuf)> {
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let mut path = resolve(&base.join(&args.config));
    let beside_source = source_file
        .and_then(Path::parent)
        .filter(|dir| dir.is_absolute())
        .map(|dir| resolve(&dir.join(&args.config)));
    let mut also_tried = None;
    match beside_source {
        Some(beside) if !path.is_file() && beside.is_file() => path = beside,
        Some(beside) if beside != path => also_tried = Some(beside),
        _ => {}
    }
    let result = match std::fs::read_to_string(&path) {
        // Errors name the file as written in the attribute, which is what the user knows.
        // `tls` files are checked against the disk here, relative to the YAML's directory.
        Ok(text) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            redis_db_config::parse_str_with_files(&text, &args.config, dir)
        }
        Err(error) => {
            // Missing or unreadable: show the resolved path, and what it is relative to.
            let help = match &also_tried {
                _ if Path::new(&args.config).is_absolute() => {
                    "fix the path or create the file".to_owned()
                }
                Some(beside) => format!(
                    "the path is relative to the crate's directory ({}), else to the directory of the source file ({} was tried too); fix the path or create the file",
                    base.display(),
                    beside.display()
                ),
                None => format!(
                    "the path is relative to the crate's directory ({}); fix the path or create the file",
                    base.display()
                ),
            };
            let error = ConfigError::new(
                &args.config,
                format!("cannot read config file {}: {error}", path.display()),
            )
            .with_help(help);
            Err(ConfigErrors::from(error))
        }
    };
    result
        .map(|config| (config, path))
        .map_err(|errors| config_error(args.config_span, &errors))
}

/// One compile error holding every config error (each with its file, line:column and help).
fn config_error(span: Span, errors: &ConfigErrors) -> syn::Error {
    let count = errors.len();
    let header = if count == 1 {
        "invalid Redis database config:".to_owned()
    } else {
        format!("invalid Redis database config ({count} errors):")
    };
    syn::Error::new(span, format!("{header}\n{errors}"))
}

/// The file's canonical path when it exists; else `path` with `.` and `..` resolved by hand,
/// so a message about a missing file shows a readable path.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The databases of a validated config, with their identifiers.
fn databases(config: &Config, span: Span) -> syn::Result<Vec<Db>> {
    let mut out: Vec<Db> = Vec::with_capacity(config.databases.len());
    for database in &config.databases {
        let variant = ident(
            &redis_db_config::variant_name(&database.name),
            &database.name,
            span,
        )?;
        let method = ident(&database.name, &database.name, span)?;
        out.push(Db {
            name: database.name.clone(),
            variant,
            method,
            db: database.db,
            description: database.description.clone(),
            alias_of: None,
        });
    }
    for (i, database) in config.databases.iter().enumerate() {
        if let Some(target) = &database.alias_of {
            let variant = out
                .iter()
                .find(|d| &d.name == target)
                .map(|d| d.variant.clone())
                .ok_or_else(|| {
                    // Unreachable after validation; an error rather than a panic all the same.
                    syn::Error::new(
                        span,
                        format!(
                            "database `{}` is an alias of `{target}`, which is not defined",
                            database.name
                        ),
                    )
                })?;
            out[i].alias_of = Some((variant, target.clone()));
        }
    }
    Ok(out)
}

/// An identifier, or an error (never a panic) when `text` is not one.
fn ident(text: &str, database: &str, span: Span) -> syn::Result<Ident> {
    let mut ident: Ident = syn::parse_str(text).map_err(|_| {
        syn::Error::new(
            span,
            format!("database `{database}`: `{text}` is not a valid Rust identifier"),
        )
    })?;
    ident.set_span(span);
    Ok(ident)
}

#[cfg(test)]
mod tests {
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
    fn the_seed_file_is_one_error_plus_a_skeleton() {
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
        // The skeleton: the enum and both clients exist, so user code type-checks.
        assert!(out.contains("pub enum RedisDatabase { }"), "{out}");
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
    fn a_missing_file_names_the_resolved_path() {
        let out = run(
            quote!(config = "no/such/redis-databases.yaml"),
            quote!(
                pub enum RedisDatabase {}
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
        let resolved = Path::new(env!("CARGO_MANIFEST_DIR")).join("no/such/redis-databases.yaml");
        assert!(out.contains(resolved.to_str().unwrap()), "{out}");
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
    fn a_path_not_under_the_manifest_dir_is_looked_for_beside_the_source_file() {
        let yaml = temp_yaml("beside.yaml", "redis_databases:\n  main:\n    db: 4\n");
        let dir = Path::new(&yaml).parent().unwrap().to_path_buf();
        let out = expand_in(
            quote!(config = "beside.yaml"),
            quote!(
                pub enum Db {}
            ),
            Some(dir.join("lib.rs")),
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            out.contains("Main = 0") && out.contains("Self :: Main => 4"),
            "{out}"
        );
        // Without the source file, the manifest dir alone counts (and has no such file).
        let out = run(
            quote!(config = "beside.yaml"),
            quote!(
                pub enum Db {}
            ),
        );
        assert!(out.contains("cannot read config file"), "{out}");
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

    #[test]
    fn resolve_handles_dot_dot_without_the_file() {
        assert_eq!(
            resolve(Path::new("/no-such-dir-x/a/../b/./c.yaml")),
            PathBuf::from("/no-such-dir-x/b/c.yaml")
        );
    }
}
