//! Writes more than an operator wants kept: `lines` log lines of `line_kib`
//! KiB each (through `weft::info!`, or printed to stdout), then returns a
//! result of `result_kib` KiB, or fails with an error message that long.
use serde::Deserialize;

#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    lines: u32,
    line_kib: usize,
    #[serde(default)]
    stdout: bool,
    #[serde(default)]
    result_kib: usize,
    #[serde(default)]
    fail: bool,
}

#[weft::flow]
fn floods(params: Params) -> Result<String, weft::Error> {
    let line = "x".repeat(params.line_kib << 10);
    for _ in 0..params.lines {
        if params.stdout {
            println!("{line}");
        } else {
            weft::info!("{line}");
        }
    }
    let big = "y".repeat(params.result_kib << 10);
    if params.fail { Err(weft::Error::fatal(big)) } else { Ok(big) }
}

fn main() {}
