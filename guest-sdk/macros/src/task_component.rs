//! `#[task_component]`: the export of a task component, which flows call by
//! name (`weft::call_task`, `weft::submit_task`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn, spanned::Spanned};

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "#[weft::task_component] takes no arguments: retries, timeouts and limits are set where the task is \
             registered (the deployment's `tasks:`)",
        ));
    }
    let func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if sig.asyncness.is_some() {
        return Err(syn::Error::new(sig.span(), "a weft task component cannot be `async`: write a plain function"));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(sig.generics.span(), "a weft task component cannot be generic"));
    }
    let name = &sig.ident;
    let (decode, call) = match sig.inputs.len() {
        0 => (quote!(), quote!(#name())),
        1 => match &sig.inputs[0] {
            FnArg::Typed(arg) => {
                let ty = &arg.ty;
                (
                    quote!(let __weft_input: #ty = ::weft::__private::task_input(&__weft_json)?;),
                    quote!(#name(__weft_input)),
                )
            }
            FnArg::Receiver(r) => {
                return Err(syn::Error::new(r.span(), "a weft task component is a free function, not a method"));
            }
        },
        _ => {
            return Err(syn::Error::new(
                sig.inputs.span(),
                "a weft task component takes at most one argument: its input, decoded from JSON",
            ));
        }
    };
    let respond = crate::respond(&sig.output, call);

    Ok(quote! {
        #func

        const _: () = {
            struct __WeftTask;

            impl ::weft::__private::TaskEntry for __WeftTask {
                fn run(
                    __weft_json: ::std::string::String,
                ) -> ::std::result::Result<::std::string::String, ::weft::__private::WitError> {
                    let __weft_response = (|| {
                        let _ = &__weft_json;
                        #decode
                        #respond
                    })();
                    ::weft::__private::flush_output();
                    __weft_response
                }
            }

            ::weft::__private::task_bindings::__export_task!(__WeftTask with_types_in ::weft::__private::task_bindings);
        };
    })
}
