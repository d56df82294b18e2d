//! `#[task(...)]`: wraps a function so that each call is a recorded task run,
//! retried and cached by the host.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, Pat, spanned::Spanned};

#[derive(Default)]
struct Options {
    retries: u32,
    retry_delays_ms: Vec<u64>,
    backoff: Option<Backoff>,
    timeout_ms: Option<u64>,
    cache_key: Option<Expr>,
    cache_expiration_ms: Option<u64>,
}

/// `retry_backoff(initial = "1s", factor = 2, max = "10m", jitter = 0.2)`.
struct Backoff {
    initial_ms: u64,
    factor: f64,
    max_ms: u64,
    jitter: f64,
}

fn float(expr: &Expr) -> syn::Result<f64> {
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Float(f), .. }) => f.base10_parse(),
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i.base10_parse::<u32>().map(f64::from),
        other => Err(syn::Error::new(other.span(), "expected a number such as 2 or 0.2")),
    }
}

fn parse_backoff(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Backoff> {
    let mut backoff = Backoff { initial_ms: 0, factor: 2.0, max_ms: 600_000, jitter: 0.2 };
    let mut initial = false;
    meta.parse_nested_meta(|inner| {
        let key = inner.path.get_ident().map(ToString::to_string).unwrap_or_default();
        let expr: Expr = inner.value()?.parse()?;
        match key.as_str() {
            "initial" => {
                backoff.initial_ms = duration_ms(&expr)?;
                initial = true;
            }
            "factor" => {
                backoff.factor = float(&expr)?;
                if backoff.factor < 1.0 {
                    return Err(syn::Error::new(expr.span(), "`factor` must be at least 1"));
                }
            }
            "max" => backoff.max_ms = duration_ms(&expr)?,
            "jitter" => {
                backoff.jitter = float(&expr)?;
                if !(0.0..=1.0).contains(&backoff.jitter) {
                    return Err(syn::Error::new(expr.span(), "`jitter` must be between 0 and 1, such as 0.2"));
                }
            }
            _ => {
                return Err(
                    inner.error("unknown retry_backoff option: expected `initial`, `factor`, `max` or `jitter`")
                );
            }
        }
        Ok(())
    })?;
    if !initial {
        return Err(meta.error("retry_backoff needs `initial`, the first wait: retry_backoff(initial = \"1s\")"));
    }
    Ok(backoff)
}

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
        match key.as_str() {
            "retries" => {
                let lit: syn::LitInt = meta.value()?.parse()?;
                options.retries = lit.base10_parse()?;
            }
            "retry_delay" => {
                let expr: Expr = meta.value()?.parse()?;
                options.retry_delays_ms = match &expr {
                    Expr::Array(array) => array.elems.iter().map(duration_ms).collect::<syn::Result<_>>()?,
                    other => vec![duration_ms(other)?],
                };
            }
            "retry_backoff" => options.backoff = Some(parse_backoff(&meta)?),
            "timeout" => {
                let expr: Expr = meta.value()?.parse()?;
                options.timeout_ms = Some(duration_ms(&expr)?);
            }
            "cache_key" => options.cache_key = Some(meta.value()?.parse()?),
            "cache_expiration" => {
                let expr: Expr = meta.value()?.parse()?;
                options.cache_expiration_ms = Some(duration_ms(&expr)?);
            }
            _ => {
                return Err(meta.error(
                    "unknown #[weft::task] option: expected `retries`, `retry_delay`, `retry_backoff`, `timeout`, \
                     `cache_key` or `cache_expiration`",
                ));
            }
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr.clone())?;
    if options.cache_expiration_ms.is_some() && options.cache_key.is_none() {
        return Err(syn::Error::new(
            attr.span(),
            "`cache_expiration` needs a `cache_key`: the results it expires are the ones cached under that key",
        ));
    }
    if options.backoff.is_some() && !options.retry_delays_ms.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "a task has either `retry_delay` (a wait or a list of waits) or `retry_backoff`, not both",
        ));
    }

    let mut func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if sig.asyncness.is_some() {
        return Err(syn::Error::new(sig.span(), "a weft task cannot be `async`: write a plain function"));
    }
    let name = sig.ident.to_string();
    let output = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };

    // A retried body runs more than once, so each attempt gets its own clone
    // of the arguments.
    let mut clones = Vec::new();
    if options.retries > 0 {
        for input in &sig.inputs {
            let FnArg::Typed(arg) = input else { continue };
            let Pat::Ident(ident) = &*arg.pat else {
                return Err(syn::Error::new(
                    arg.pat.span(),
                    "a retried task needs plain argument names (each attempt gets a clone of each argument)",
                ));
            };
            let mutability = &ident.mutability;
            let ident = &ident.ident;
            clones.push(quote!(let #mutability #ident = ::core::clone::Clone::clone(&#ident);));
        }
    }

    let retries = options.retries;
    let delays = &options.retry_delays_ms;
    let timeout = match options.timeout_ms {
        Some(ms) => quote!(::std::option::Option::Some(#ms)),
        None => quote!(::std::option::Option::None),
    };
    let cache_key = match &options.cache_key {
        Some(expr) => quote!(::std::option::Option::Some(::std::string::ToString::to_string(&(#expr)))),
        None => quote!(::std::option::Option::None),
    };
    let cache_expiration = match options.cache_expiration_ms {
        Some(ms) => quote!(::std::option::Option::Some(#ms)),
        None => quote!(::std::option::Option::None),
    };
    let body = &func.block;
    let runner = if crate::returns_result(&func.sig.output) {
        quote!(run_task_result)
    } else if options.retries > 0 {
        return Err(syn::Error::new(
            func.sig.output.span(),
            "only a task that returns `Result` can be retried: nothing else can fail",
        ));
    } else {
        quote!(run_task_value)
    };

    // Backoff waits are drawn afresh for each call, jitter included.
    let delays = match &options.backoff {
        Some(Backoff { initial_ms, factor, max_ms, jitter }) => {
            quote!(&::weft::__private::backoff_delays(#retries, #initial_ms, #factor, #max_ms, #jitter))
        }
        None => quote!(&[#(#delays),*]),
    };
    let block = quote! {{
        let __weft_options = ::weft::__private::task_options(#retries, #delays, #timeout, #cache_key, #cache_expiration);
        ::weft::__private::#runner(#name, __weft_options, move || -> #output {
            #(#clones)*
            #body
        })
    }};
    *func.block = syn::parse2(block)?;
    Ok(quote!(#func))
}

/// A duration literal in milliseconds: `"250ms"`, `"2s"`, `"1m"`, `"1h"`,
/// or an integer number of seconds.
fn duration_ms(expr: &Expr) -> syn::Result<u64> {
    let error = || {
        syn::Error::new(
            expr.span(),
            "expected a duration such as \"500ms\", \"2s\", \"1m\" or \"1h\", or an integer number of seconds",
        )
    };
    let Expr::Lit(ExprLit { lit, .. }) = expr else { return Err(error()) };
    match lit {
        Lit::Int(int) => int.base10_parse::<u64>().map(|s| s.saturating_mul(1000)),
        Lit::Str(text) => {
            let text = text.value();
            let text = text.trim();
            let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?;
            let (number, unit) = text.split_at(split);
            let number: u64 = number.parse().map_err(|_| error())?;
            let factor = match unit.trim() {
                "ms" => 1,
                "s" => 1000,
                "m" | "min" => 60_000,
                "h" => 3_600_000,
                _ => return Err(error()),
            };
            Ok(number.saturating_mul(factor))
        }
        _ => Err(error()),
    }
}
