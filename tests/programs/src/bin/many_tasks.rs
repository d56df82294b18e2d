//! Calls a `#[task]` `count` times (default 1,000).
#[derive(serde::Deserialize, weft::JsonSchema)]
struct Params {
    count: Option<u64>,
}

#[weft::task]
fn square(x: u64) -> u64 {
    x * x
}

#[weft::flow]
fn many_tasks(params: Params) -> u64 {
    (0..params.count.unwrap_or(1000)).map(square).fold(0, u64::wrapping_add)
}

fn main() {}
