//! Allocates 1 MiB blocks without bound, touching each.
#[weft::flow]
fn allocates() -> usize {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&blocks);
    }
}

fn main() {}
