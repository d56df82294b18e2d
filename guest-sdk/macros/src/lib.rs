//! The procedural macros of `weft-sdk`: `#[flow]`, `#[task]`,
//! `#[task_component]` and `#[derive(JsonSchema)]`. Guests use them through `weft::flow`,
//! `weft::task` and `weft::JsonSchema`; the code they generate calls
//! `weft::__private`, never wit-bindgen directly.

use proc_macro::TokenStream;

mod flow;
mod schema;
mod task;
mod task_component;

/// Marks the flow function of a component: see the `weft` crate docs.
#[proc_macro_attribute]
pub fn flow(attr: TokenStream, item: TokenStream) -> TokenStream {
    flow::expand(attr.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Marks a function as a task: see the `weft` crate docs.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(attr.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Marks the entry point of a task component: see the `weft` crate docs.
#[proc_macro_attribute]
pub fn task_component(attr: TokenStream, item: TokenStream) -> TokenStream {
    task_component::expand(attr.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Derives `weft::JsonSchema` for a struct with named fields, a newtype
/// struct, or an enum of unit variants, following serde's attributes.
#[proc_macro_derive(JsonSchema, attributes(serde))]
pub fn derive_json_schema(item: TokenStream) -> TokenStream {
    schema::expand(item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Whether a return type is `Result<..>` (by its last path segment).
fn returns_result(output: &syn::ReturnType) -> bool {
    match output {
        syn::ReturnType::Type(_, ty) => match &**ty {
            syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        syn::ReturnType::Default => false,
    }
}

/// The body that turns the entry function's return value into the WIT
/// result: `Result` as it is, a plain value as `Ok`, encoded as JSON.
fn respond(output: &syn::ReturnType, call: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    if returns_result(output) {
        quote::quote! {
            match #call {
                ::std::result::Result::Ok(value) => ::weft::__private::result(&value),
                ::std::result::Result::Err(error) => ::std::result::Result::Err(::weft::__private::to_wit_error(&error)),
            }
        }
    } else {
        quote::quote!(::weft::__private::result(&#call))
    }
}
