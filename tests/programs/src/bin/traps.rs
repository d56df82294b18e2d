//! Executes `unreachable` directly: a trap without a panic message.
#[weft::flow]
fn traps() -> u32 {
    core::arch::wasm32::unreachable()
}

fn main() {}
