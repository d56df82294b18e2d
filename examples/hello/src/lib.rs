//! The smallest useful flow: greets someone by name.

use serde::Deserialize;

/// Parameters of the hello flow.
#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    /// Who to greet.
    #[serde(default = "marvin")]
    name: String,
}

fn marvin() -> String {
    "Marvin".to_owned()
}

#[weft::flow]
fn hello(params: Params) -> String {
    let greeting = format!("Hello, {}!", params.name);
    weft::info!("{greeting}"; name = params.name);
    greeting
}
