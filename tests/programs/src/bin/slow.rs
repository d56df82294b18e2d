//! Logs `tick N` every `interval_ms`, `ticks` times: a run that stays live
//! long enough to be watched. With `grow_mib`, each tick also takes and
//! touches that many more MiB of memory, to outgrow a pod's memory limit.
use serde::Deserialize;

#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    ticks: u32,
    interval_ms: u64,
    #[serde(default)]
    grow_mib: usize,
}

#[weft::flow]
fn slow(params: Params) -> u32 {
    let mut held: Vec<Vec<u8>> = Vec::new();
    for tick in 1..=params.ticks {
        if params.grow_mib > 0 {
            held.push(vec![1u8; params.grow_mib << 20]);
            weft::info!("tick {tick}, holding {} MiB", held.len() * params.grow_mib);
        } else {
            weft::info!("tick {tick}");
        }
        std::thread::sleep(std::time::Duration::from_millis(params.interval_ms));
    }
    std::hint::black_box(&held);
    params.ticks
}

fn main() {}
