//! Recurses without end.
#[allow(unconditional_recursion)]
fn depth(n: u64) -> u64 {
    std::hint::black_box(depth(std::hint::black_box(n) + 1)) + 1
}

#[weft::flow]
fn overflows() -> u64 {
    depth(0)
}

fn main() {}
