//! Panics with "boom".
#[weft::flow]
fn panics() -> Result<(), String> {
    weft::info!("about to panic");
    panic!("boom")
}

fn main() {}
