//! The attribute's arguments: `config = "path.yaml"` and the optional `client = Name`.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::{Ident, LitStr};

/// The config file used when the attribute names none.
pub const DEFAULT_CONFIG: &str = "config/redis-databases.yaml";

/// What the attribute was given.
pub struct Args {
    /// The YAML path as written, relative to the invoking crate's `CARGO_MANIFEST_DIR`.
    pub config: String,
    /// Where errors about the config point: the literal, or the attribute when it was omitted.
    pub config_span: Span,
    /// `client = Name`: the async client's type name.
    pub client: Option<Ident>,
}

impl Args {
    /// Parses `config = "..."` and `client = Name`, in any order, each at most once.
    pub fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut config: Option<LitStr> = None;
        let mut client: Option<Ident> = None;
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("config") {
                if config.is_some() {
                    return Err(meta.error("duplicate `config` argument"));
                }
                let value = meta.value().map_err(|_| {
                    meta.error("expected `config = \"path/to/redis-databases.yaml\"`")
                })?;
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
                config = Some(lit);
                Ok(())
            } else if meta.path.is_ident("client") {
                if client.is_some() {
                    return Err(meta.error("duplicate `client` argument"));
                }
                let value = meta
                    .value()
                    .map_err(|_| meta.error("expected `client = TypeName`"))?;
                let ident: Ident = value.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected a type name (an identifier): `client = TypeName`",
                    )
                })?;
                client = Some(ident);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown argument; expected `config = \"path/to/redis-databases.yaml\"` \
                     and optionally `client = TypeName`",
                ))
            }
        });
        parser.parse2(tokens)?;
        Ok(match config {
            Some(lit) => Self {
                config: lit.value(),
                config_span: lit.span(),
                client,
            },
            None => Self {
                config: DEFAULT_CONFIG.to_owned(),
                config_span: Span::call_site(),
                client,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn config_and_client_in_any_order() {
        let args = Args::parse(quote!(client = ShopDb, config = "shop.yaml")).unwrap();
        assert_eq!(args.config, "shop.yaml");
        assert_eq!(args.client.unwrap().to_string(), "ShopDb");
    }

    #[test]
    fn config_defaults_to_the_conventional_path() {
        let args = Args::parse(quote!()).unwrap();
        assert_eq!(args.config, DEFAULT_CONFIG);
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
                Ok(_) => panic!("accepted `{tokens}`"),
                Err(e) => e.to_string(),
            };
            assert!(text.contains(expected), "`{tokens}`: {text}");
        }
    }
}
