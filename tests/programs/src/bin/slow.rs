//! Logs `tick N` every `interval_ms`, `ticks` times: a run that stays live
//! long enough to be watched.
use serde::Deserialize;

#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    ticks: u32,
    interval_ms: u64,
}

#[weft::flow]
fn slow(params: Params) -> u32 {
    for tick in 1..=params.ticks {
        weft::info!("tick {tick}");
        std::thread::sleep(std::time::Duration::from_millis(params.interval_ms));
    }
    params.ticks
}

fn main() {}
