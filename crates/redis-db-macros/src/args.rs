//! The attribute's arguments: `config = "path.yaml"` and the optional `client = Name`.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Ident, LitStr, Token};

use crate::push_error;

/// The config file used when the attribute names none.
pub const DEFAULT_CONFIG: &str = "config/redis-databases.yaml";

/// The YAML file to read.
pub struct ConfigPath {
    /// As written, relative to the invoking crate's `CARGO_MANIFEST_DIR`.
    pub path: String,
    /// Where errors about the config point: the literal, or the attribute when it was omitted.
    pub span: Span,
}

/// What could be read of the attribute's arguments.
///
/// A wrong argument does not lose the others: `client = ShopDb` next to a misspelt argument
/// still names the client, so code using `ShopDb` adds no errors of its own.
pub struct Args {
    /// `None` when the file to read is unknown: `config` was malformed, or absent next to an
    /// unknown argument that may have been meant as it (reading the default file would then
    /// add a second error about a file the user never named).
    pub config: Option<ConfigPath>,
    /// `client = Name`: the async client's type name.
    pub client: Option<Ident>,
}

impl Args {
    /// Parses `config = "..."` and `client = Name`, in any order, each at most once; returns
    /// what was readable and, when something was not, one error holding every problem.
    pub fn parse(tokens: TokenStream) -> (Self, Option<syn::Error>) {
        let mut config: Option<LitStr> = None;
        let mut config_malformed = false;
        let mut client: Option<Ident> = None;
        let mut unknown = false;
        let mut errors: Option<syn::Error> = None;
        let parser = syn::meta::parser(|meta| {
            let outcome = if meta.path.is_ident("config") {
                let parsed = config_value(&meta, config.is_some());
                config_malformed |= parsed.is_err() && config.is_none();
                parsed.map(|lit| config = Some(lit))
            } else if meta.path.is_ident("client") {
                client_value(&meta, client.is_some()).map(|ident| client = Some(ident))
            } else {
                unknown = true;
                Err(meta.error(
                    "unknown argument; expected `config = \"path/to/redis-databases.yaml\"` \
                     and optionally `client = TypeName`",
                ))
            };
            if let Err(error) = outcome {
                push_error(&mut errors, error);
                skip_to_next_argument(&meta)?;
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(tokens) {
            // Not even `name = value, ...`: nothing after this point can be trusted.
            push_error(&mut errors, error);
            unknown = true;
        }
        let config = match config {
            Some(lit) => Some(ConfigPath {
                path: lit.value(),
                span: lit.span(),
            }),
            None if config_malformed || unknown => None,
            None => Some(ConfigPath {
                path: DEFAULT_CONFIG.to_owned(),
                span: Span::call_site(),
            }),
        };
        (Self { config, client }, errors)
    }
}

/// The literal of `config = "..."`.
fn config_value(meta: &ParseNestedMeta<'_>, duplicate: bool) -> syn::Result<LitStr> {
    if duplicate {
        return Err(meta.error("duplicate `config` argument"));
    }
    let value = meta
        .value()
        .map_err(|_| meta.error("expected `config = \"path/to/redis-databases.yaml\"`"))?;
    let lit: LitStr = value.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a string literal: `config = \"path/to/redis-databases.yaml\"`",
        )
    })?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "the config path is empty: `config = \"path/to/redis-databases.yaml\"`",
        ));
    }
    Ok(lit)
}

/// The identifier of `client = Name`.
fn client_value(meta: &ParseNestedMeta<'_>, duplicate: bool) -> syn::Result<Ident> {
    if duplicate {
        return Err(meta.error("duplicate `client` argument"));
    }
    let value = meta
        .value()
        .map_err(|_| meta.error("expected `client = TypeName`"))?;
    value.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a type name (an identifier): `client = TypeName`",
        )
    })
}

/// Consumes what is left of a refused argument, so that the next one is read normally.
fn skip_to_next_argument(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(tokens: TokenStream) -> Args {
        match Args::parse(tokens.clone()) {
            (args, None) => args,
            (_, Some(error)) => panic!("refused `{tokens}`: {error}"),
        }
    }

    #[test]
    fn config_and_client_in_any_order() {
        let args = parse_ok(quote!(client = ShopDb, config = "shop.yaml"));
        assert_eq!(args.config.unwrap().path, "shop.yaml");
        assert_eq!(args.client.unwrap().to_string(), "ShopDb");
    }

    #[test]
    fn config_defaults_to_the_conventional_path() {
        let args = parse_ok(quote!());
        assert_eq!(args.config.unwrap().path, DEFAULT_CONFIG);
        assert!(args.client.is_none());
    }

    #[test]
    fn rejects_bad_arguments() {
        let cases = [
            (quote!(conf = "x.yaml"), "unknown argument"),
            (quote!(config = x), "expected a string literal"),
            (quote!(config = ""), "the config path is empty"),
            (quote!(config), "expected `config = "),
            (quote!(config = "a", config = "b"), "duplicate `config`"),
            (quote!(client = "Name"), "expected a type name"),
            (quote!(client = A, client = B), "duplicate `client`"),
        ];
        for (tokens, expected) in cases {
            let text = match Args::parse(tokens.clone()) {
                (_, None) => panic!("accepted `{tokens}`"),
                (_, Some(e)) => e.to_string(),
            };
            assert!(text.contains(expected), "`{tokens}`: {text}");
        }
    }

    #[test]
    fn a_wrong_argument_keeps_the_others() {
        let (args, error) =
            Args::parse(quote!(colour = blue, client = ShopDb, config = "shop.yaml"));
        let error = error.expect("accepted an unknown argument");
        assert_eq!(error.into_iter().count(), 1);
        assert_eq!(args.client.unwrap().to_string(), "ShopDb");
        assert_eq!(args.config.unwrap().path, "shop.yaml");

        let (args, error) = Args::parse(quote!(config = shop, client = ShopDb));
        assert!(error.is_some());
        assert!(args.config.is_none(), "a malformed path is not read");
        assert_eq!(args.client.unwrap().to_string(), "ShopDb");

        // A duplicate keeps the first.
        let (args, _) = Args::parse(quote!(client = A, client = B));
        assert_eq!(args.client.unwrap().to_string(), "A");
    }

    #[test]
    fn the_default_file_is_read_unless_an_unknown_argument_may_have_meant_another() {
        let (args, error) = Args::parse(quote!(path = "other.yaml"));
        assert!(error.is_some());
        assert!(args.config.is_none());

        let (args, error) = Args::parse(quote!(client = "ShopDb"));
        assert!(error.is_some());
        assert_eq!(args.config.unwrap().path, DEFAULT_CONFIG);

        // A well-formed path before a syntax error is still the file the user named.
        let (args, error) = Args::parse(quote!(config = "a.yaml" "b.yaml"));
        assert!(error.is_some());
        assert_eq!(args.config.unwrap().path, "a.yaml");
    }

    #[test]
    fn each_problem_is_reported_once() {
        let (_, error) = Args::parse(quote!(colour = blue, client = "X", size = 3));
        let messages: Vec<String> = error.unwrap().into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
    }
}
