//! Calls a `#[task]` 1,000 times.
#[weft::task]
fn square(x: u64) -> u64 {
    x * x
}

#[weft::flow]
fn many_tasks() -> u64 {
    (0..1000).map(square).sum()
}

fn main() {}
