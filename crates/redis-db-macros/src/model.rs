//! What the generated code is made of: the enum as written, the client names and one entry
//! per database, from a valid config or, next to an error, from what could be salvaged.

use proc_macro2::Span;
use quote::format_ident;
use redis_db_config::Config;
use syn::Ident;

use crate::ast::Input;
use crate::load::Loaded;

/// One database, ready to be turned into a variant and two accessor methods.
pub struct Db {
    /// The YAML name, also the accessor methods' name.
    pub name: String,
    /// `UpperCamelCase` of `name`.
    pub variant: Ident,
    /// `name` as an identifier.
    pub method: Ident,
    /// The Redis database number; `None` next to an error.
    pub db: Option<u32>,
    /// Empty when the YAML has none.
    pub description: String,
    /// The variant and name of the database this one is an alias of.
    pub alias_of: Option<(Ident, String)>,
}

/// Everything the generated code is made of.
pub struct Model<'a> {
    pub input: &'a Input,
    pub client: Ident,
    pub blocking: Ident,
    pub parse_error: Ident,
    pub databases: Vec<Db>,
    /// Absolute path of the YAML for `include_str!`; `None` next to an error.
    pub yaml_path: Option<String>,
    /// The path as written in the attribute; empty when it could not be read.
    pub config_file: String,
    /// The YAML's directory, when the YAML names `tls` files by relative paths.
    pub tls_base: Option<String>,
}

impl<'a> Model<'a> {
    /// A model without databases: the shape of the generated items.
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

    /// The model of a valid config.
    pub fn from_config(
        input: &'a Input,
        client: Option<&Ident>,
        config_file: String,
        loaded: Loaded,
        span: Span,
    ) -> syn::Result<Self> {
        let mut model = Self::empty(input, client, config_file);
        model.databases = databases(&loaded.config, span)?;
        model.yaml_path = Some(loaded.yaml_path);
        model.tls_base = loaded.tls_base;
        Ok(model)
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

/// The databases of a validated config, with their identifiers.
fn databases(config: &Config, span: Span) -> syn::Result<Vec<Db>> {
    let mut out: Vec<Db> = Vec::with_capacity(config.databases.len());
    for database in &config.databases {
        let (variant, method) = idents(&database.name, span)?;
        out.push(Db {
            name: database.name.clone(),
            variant,
            method,
            db: Some(database.db),
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

/// The variant and the method identifier of a database name, or an error (never a panic)
/// when either is not an identifier.
pub fn idents(name: &str, span: Span) -> syn::Result<(Ident, Ident)> {
    let ident = |text: &str| -> syn::Result<Ident> {
        let mut ident: Ident = syn::parse_str(text).map_err(|_| {
            syn::Error::new(
                span,
                format!("database `{name}`: `{text}` is not a valid Rust identifier"),
            )
        })?;
        ident.set_span(span);
        Ok(ident)
    };
    Ok((ident(&redis_db_config::variant_name(name))?, ident(name)?))
}
