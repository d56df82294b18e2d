//! Calls a `#[task]` `count` times (1,000 unless given) and returns the sum
//! of the squares.
use serde::Deserialize;

#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    count: Option<u64>,
}

#[weft::task]
fn square(x: u64) -> u64 {
    x * x
}

#[weft::flow]
fn many_tasks(params: Params) -> u64 {
    (0..params.count.unwrap_or(1000)).map(square).fold(0u64, |sum, x| sum.wrapping_add(x))
}

fn main() {}
