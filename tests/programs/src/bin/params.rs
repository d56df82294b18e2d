//! Typed parameters: `name` (string, required), `n` (u8, even: the check
//! lives in the guest, past what the schema says), `tag` (optional).
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Deserialize, Serialize, weft::JsonSchema)]
struct Params {
    name: String,
    #[serde(deserialize_with = "even")]
    n: u8,
    tag: Option<String>,
}

fn even<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let n = u8::deserialize(d)?;
    if n % 2 == 0 { Ok(n) } else { Err(serde::de::Error::custom(format!("{n} is odd, expected an even number"))) }
}

#[weft::flow]
fn params(params: Params) -> Params {
    weft::info!("got parameters"; name = params.name, n = params.n);
    params
}

fn main() {}
