//! Loops forever without calling the host.
#[weft::flow]
fn loops() -> u64 {
    let mut i: u64 = 0;
    loop {
        i = std::hint::black_box(i.wrapping_add(1));
    }
}

fn main() {}
