//! `#[flow]`: the component's export, parameter decoding, and the custom
//! sections that carry the parameter schema and the flow's name.

use proc_macro2::{Literal, TokenStream};
use quote::quote;
use syn::{FnArg, ItemFn, spanned::Spanned};

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(attr.span(), "#[weft::flow] takes no arguments"));
    }
    let func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if sig.asyncness.is_some() {
        return Err(syn::Error::new(sig.span(), "a weft flow cannot be `async`: write a plain function"));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(sig.generics.span(), "a weft flow cannot be generic"));
    }
    let name = &sig.ident;
    let params_ty = match sig.inputs.len() {
        0 => None,
        1 => match &sig.inputs[0] {
            FnArg::Typed(arg) => Some(arg.ty.clone()),
            FnArg::Receiver(r) => {
                return Err(syn::Error::new(r.span(), "a weft flow is a free function, not a method"));
            }
        },
        _ => {
            return Err(syn::Error::new(
                sig.inputs.span(),
                "a weft flow takes at most one argument: a struct of all its parameters",
            ));
        }
    };

    let (decode, call, schema) = match &params_ty {
        Some(ty) => (
            quote!(let __weft_parameters: #ty = ::weft::__private::parameters(&__weft_json)?;),
            quote!(#name(__weft_parameters)),
            quote!(<#ty as ::weft::JsonSchema>::SCHEMA),
        ),
        None => (
            quote!(let _: ::weft::__private::NoParameters = ::weft::__private::parameters(&__weft_json)?;),
            quote!(#name()),
            quote!(::weft::__private::NO_PARAMETERS),
        ),
    };
    let respond = crate::respond(&sig.output, call);

    let flow_name = name.to_string();
    let flow_name_len = flow_name.len();
    let flow_name_bytes = Literal::byte_string(flow_name.as_bytes());

    Ok(quote! {
        #func

        const _: () = {
            struct __WeftFlow;

            impl ::weft::__private::FlowEntry for __WeftFlow {
                fn run(
                    __weft_json: ::std::string::String,
                ) -> ::std::result::Result<::std::string::String, ::weft::__private::WitError> {
                    let __weft_response = (|| {
                        #decode
                        #respond
                    })();
                    ::weft::__private::flush_output();
                    __weft_response
                }
            }

            ::weft::__private::bindings::__export_flow!(__WeftFlow with_types_in ::weft::__private::bindings);

            #[cfg_attr(target_family = "wasm", unsafe(link_section = "weft:parameters-schema"))]
            #[used]
            static PARAMETERS_SCHEMA: [u8; ::weft::__private::json_len(&#schema)] =
                ::weft::__private::json_bytes(&#schema);

            #[cfg_attr(target_family = "wasm", unsafe(link_section = "weft:flow-name"))]
            #[used]
            static FLOW_NAME: [u8; #flow_name_len] = *#flow_name_bytes;
        };
    })
}
