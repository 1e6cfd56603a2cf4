//! The item the attribute is written on: an empty, non-generic enum.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Attribute, Ident, Item, Visibility};

/// The enum as the user wrote it.
pub struct Input {
    /// Attributes and doc comments, kept on the generated enum.
    pub attrs: Vec<Attribute>,
    /// Visibility, shared by the enum, its clients and its parse error.
    pub vis: Visibility,
    /// The enum's name.
    pub ident: Ident,
}

const SHAPE: &str = "write `pub enum RedisDatabase {}`";

/// Why the item was refused, and the enum's outline when it is an enum all the same (generic
/// or with variants): the macro then still generates from the config, so that the shape error
/// is the only one.
pub struct Refused {
    pub error: syn::Error,
    pub salvaged: Option<Input>,
}

impl From<syn::Error> for Refused {
    fn from(error: syn::Error) -> Self {
        Self {
            error,
            salvaged: None,
        }
    }
}

impl Input {
    /// Accepts `[attrs] [vis] enum Name {}`; anything else is an error spanned on the culprit.
    pub fn parse(item: TokenStream) -> Result<Self, Refused> {
        let item: Item = syn::parse2(item).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("#[databases] applies to an empty enum: {SHAPE}"),
            )
        })?;
        let item = match item {
            Item::Enum(item) => item,
            Item::Struct(item) => {
                return Err(syn::Error::new_spanned(
                    item.struct_token,
                    format!("#[databases] applies to an empty enum, not a struct: {SHAPE}"),
                )
                .into())
            }
            Item::Union(item) => {
                return Err(syn::Error::new_spanned(
                    item.union_token,
                    format!("#[databases] applies to an empty enum, not a union: {SHAPE}"),
                )
                .into())
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    format!("#[databases] applies to an empty enum: {SHAPE}"),
                )
                .into())
            }
        };

        let mut errors: Vec<syn::Error> = Vec::new();
        if !item.generics.params.is_empty() {
            errors.push(syn::Error::new_spanned(
                &item.generics,
                "the database enum cannot be generic: remove the generic parameters",
            ));
        }
        if let Some(clause) = &item.generics.where_clause {
            errors.push(syn::Error::new_spanned(
                clause,
                "the database enum cannot have a where clause: remove it",
            ));
        }
        if !item.variants.is_empty() {
            let names: Vec<String> = item.variants.iter().map(|v| v.ident.to_string()).collect();
            errors.push(syn::Error::new_spanned(
                item.variants.to_token_stream(),
                format!(
                    "the database enum must be empty: its variants are generated from the YAML \
                     config; remove {} and declare the databases under `redis_databases:` instead",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ));
        }
        let input = Self {
            attrs: item.attrs,
            vis: item.vis,
            ident: item.ident,
        };
        match errors.into_iter().reduce(|mut all, e| {
            all.combine(e);
            all
        }) {
            Some(error) => Err(Refused {
                error,
                salvaged: Some(input),
            }),
            None => Ok(input),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn error(tokens: TokenStream) -> String {
        match Input::parse(tokens) {
            Ok(_) => panic!("accepted"),
            Err(refused) => refused.error.to_string(),
        }
    }

    #[test]
    fn a_misshapen_enum_is_salvaged() {
        for tokens in [
            quote!(
                pub enum Db<T> {}
            ),
            quote!(
                pub enum Db {
                    Main,
                }
            ),
        ] {
            let salvaged = match Input::parse(tokens) {
                Ok(_) => panic!("accepted"),
                Err(refused) => refused.salvaged.expect("not salvaged"),
            };
            assert_eq!(salvaged.ident.to_string(), "Db");
        }
        let refused = Input::parse(quote!(
            struct Db;
        ))
        .err()
        .unwrap();
        assert!(refused.salvaged.is_none());
    }

    #[test]
    fn keeps_attributes_and_visibility() {
        let input = Input::parse(quote! {
            /// Docs.
            #[allow(dead_code)]
            pub(crate) enum Db {}
        })
        .ok()
        .expect("refused");
        assert_eq!(input.ident.to_string(), "Db");
        assert_eq!(input.attrs.len(), 2);
        assert_eq!(input.vis.to_token_stream().to_string(), "pub (crate)");
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(error(quote!(
            pub struct Db;
        ))
        .contains("not a struct"));
        assert!(error(quote!(union Db { a: u8 })).contains("not a union"));
        assert!(error(quote!(
            fn db() {}
        ))
        .contains("applies to an empty enum"));
        assert!(error(quote!(
            enum Db<T> {}
        ))
        .contains("cannot be generic"));
        assert!(error(quote!(
            enum Db
            where
                u8: Copy, {}
        ))
        .contains("where clause"));
        let text = error(quote!(
            enum Db {
                Main,
                Cache,
            }
        ));
        assert!(
            text.contains("must be empty") && text.contains("`Main`, `Cache`"),
            "{text}"
        );
    }
}
