//! `#[derive(JsonSchema)]`: a `const` schema that follows serde's attributes,
//! so the schema accepts exactly what `Deserialize` accepts.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr, spanned::Spanned};

/// The serde attributes that change what JSON a type accepts.
#[derive(Default)]
struct Serde {
    rename: Option<String>,
    rename_all: Option<String>,
    default: bool,
    skip: bool,
    flatten: bool,
}

fn serde_attrs(attrs: &[Attribute]) -> syn::Result<Serde> {
    let mut serde = Serde::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            match key.as_str() {
                "rename" => serde.rename = Some(string_value(&meta)?),
                "rename_all" => serde.rename_all = Some(string_value(&meta)?),
                "default" => {
                    serde.default = true;
                    if meta.input.peek(syn::Token![=]) {
                        let _: LitStr = meta.value()?.parse()?;
                    }
                }
                "skip" | "skip_deserializing" => serde.skip = true,
                "flatten" => serde.flatten = true,
                _ => {
                    // Other serde attributes do not change the accepted
                    // shape; skip their values.
                    if meta.input.peek(syn::Token![=]) {
                        let _: syn::Expr = meta.value()?.parse()?;
                    } else if meta.input.peek(syn::token::Paren) {
                        let _ = meta.parse_nested_meta(|inner| {
                            if inner.input.peek(syn::Token![=]) {
                                let _: syn::Expr = inner.value()?.parse()?;
                            }
                            Ok(())
                        });
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(serde)
}

fn string_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<String> {
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error("weft::JsonSchema supports only the `rename = \"...\"` form of this attribute"));
    }
    let lit: LitStr = meta.value()?.parse()?;
    Ok(lit.value())
}

/// The doc comment, lines joined, or `None`.
fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn option_str(text: Option<String>) -> TokenStream {
    match text {
        Some(t) => quote!(::std::option::Option::Some(#t)),
        None => quote!(::std::option::Option::None),
    }
}

/// Splits an identifier into lower-case words: `user_name` and `UserName`
/// both give `["user", "name"]`.
fn words(ident: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in ident.chars() {
        if c == '_' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        } else if c.is_uppercase() && !current.is_empty() {
            words.push(std::mem::take(&mut current));
            current.extend(c.to_lowercase());
        } else {
            current.extend(c.to_lowercase());
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Applies serde's `rename_all` rule to a field or variant name.
fn rename(ident: &str, rule: &str, span: proc_macro2::Span) -> syn::Result<String> {
    let w = words(ident);
    Ok(match rule {
        "lowercase" => ident.to_lowercase(),
        "UPPERCASE" => ident.to_uppercase(),
        "PascalCase" => w.iter().map(|x| capitalize(x)).collect(),
        "camelCase" => {
            let mut out = w.first().cloned().unwrap_or_default();
            out.extend(w.iter().skip(1).map(|x| capitalize(x)));
            out
        }
        "snake_case" => w.join("_"),
        "SCREAMING_SNAKE_CASE" => w.join("_").to_uppercase(),
        "kebab-case" => w.join("-"),
        "SCREAMING-KEBAB-CASE" => w.join("-").to_uppercase(),
        other => return Err(syn::Error::new(span, format!("unknown serde rename_all rule `{other}`"))),
    })
}

pub fn expand(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    let container = serde_attrs(&input.attrs)?;
    let description = option_str(doc(&input.attrs));
    let name = &input.ident;

    let schema = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => {
                let mut out = Vec::new();
                for field in &fields.named {
                    let attrs = serde_attrs(&field.attrs)?;
                    if attrs.skip {
                        continue;
                    }
                    if attrs.flatten {
                        return Err(syn::Error::new(
                            field.span(),
                            "weft::JsonSchema does not support #[serde(flatten)]",
                        ));
                    }
                    let ident = field.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
                    let ident = ident.strip_prefix("r#").unwrap_or(&ident).to_owned();
                    let json_name = match (&attrs.rename, &container.rename_all) {
                        (Some(renamed), _) => renamed.clone(),
                        (None, Some(rule)) => rename(&ident, rule, input.span())?,
                        (None, None) => ident,
                    };
                    let ty = &field.ty;
                    let has_default = attrs.default || container.default;
                    let field_doc = option_str(doc(&field.attrs));
                    out.push(quote! {
                        ::weft::Field {
                            name: #json_name,
                            schema: &<#ty as ::weft::JsonSchema>::SCHEMA,
                            required: !#has_default && !<#ty as ::weft::JsonSchema>::SCHEMA.is_optional(),
                            description: #field_doc,
                        }
                    });
                }
                quote!(::weft::Schema::Object { fields: &[#(#out),*], description: #description })
            }
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => {
                let ty = &fields.unnamed[0].ty;
                quote!(<#ty as ::weft::JsonSchema>::SCHEMA)
            }
            _ => {
                return Err(syn::Error::new(
                    input.span(),
                    "weft::JsonSchema derives for structs with named fields and newtype structs",
                ));
            }
        },
        Data::Enum(data) => {
            let mut names = Vec::new();
            for variant in &data.variants {
                if !matches!(variant.fields, Fields::Unit) {
                    return Err(syn::Error::new(
                        variant.span(),
                        "weft::JsonSchema derives for enums whose variants are all units (they are strings in JSON)",
                    ));
                }
                let attrs = serde_attrs(&variant.attrs)?;
                if attrs.skip {
                    continue;
                }
                let ident = variant.ident.to_string();
                names.push(match (&attrs.rename, &container.rename_all) {
                    (Some(renamed), _) => renamed.clone(),
                    (None, Some(rule)) => rename(&ident, rule, input.span())?,
                    (None, None) => ident,
                });
            }
            quote!(::weft::Schema::Enum(&[#(#names),*]))
        }
        Data::Union(_) => return Err(syn::Error::new(input.span(), "weft::JsonSchema does not derive for unions")),
    };

    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(syn::parse_quote!(::weft::JsonSchema));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::weft::JsonSchema for #name #ty_generics #where_clause {
            const SCHEMA: ::weft::Schema = #schema;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_like_serde() {
        let span = proc_macro2::Span::call_site();
        assert_eq!(rename("user_name", "camelCase", span).ok().as_deref(), Some("userName"));
        assert_eq!(rename("user_name", "kebab-case", span).ok().as_deref(), Some("user-name"));
        assert_eq!(rename("UserName", "snake_case", span).ok().as_deref(), Some("user_name"));
        assert_eq!(rename("UserName", "SCREAMING_SNAKE_CASE", span).ok().as_deref(), Some("USER_NAME"));
        assert_eq!(rename("user_name", "PascalCase", span).ok().as_deref(), Some("UserName"));
        assert_eq!(rename("Red", "lowercase", span).ok().as_deref(), Some("red"));
        assert!(rename("x", "Title Case", span).is_err());
    }
}
