//! Recurses without end with a large local in every frame: the stack in
//! linear memory runs out long before wasm's own call stack does.
#[allow(unconditional_recursion)]
fn deep(n: u64) -> u64 {
    let mut local = [0u8; 16 * 1024];
    local[(n % 1024) as usize] = n as u8;
    std::hint::black_box(&mut local);
    std::hint::black_box(deep(std::hint::black_box(n) + 1)) + u64::from(local[0])
}

#[weft::flow]
fn overflows_memory() -> u64 {
    deep(0)
}

fn main() {}
