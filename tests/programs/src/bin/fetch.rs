//! GETs `url` over `wasi:http` and returns the status and body, or the
//! error code the host gave (for the HTTP grant tests).
use serde::Deserialize;
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, OutgoingRequest, Scheme};

#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    /// `http://host:port/path`.
    url: String,
}

fn get(url: &str) -> Result<(u16, String), String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&if scheme == "https" { Scheme::Https } else { Scheme::Http })).map_err(|()| "scheme")?;
    request.set_authority(Some(authority)).map_err(|()| "authority")?;
    request.set_path_with_query(Some(&path)).map_err(|()| "path")?;
    let response = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    response.subscribe().block();
    let response = response.get().ok_or("no response")?.map_err(|()| "taken")?.map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.consume().map_err(|()| "body")?;
    let stream = body.stream().map_err(|()| "stream")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(_) => break,
        }
    }
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

#[weft::flow]
fn fetch(params: Params) -> serde_json::Value {
    match get(&params.url) {
        Ok((status, body)) => serde_json::json!({"status": status, "body": body}),
        Err(error) => serde_json::json!({"error": error}),
    }
}

fn main() {}
