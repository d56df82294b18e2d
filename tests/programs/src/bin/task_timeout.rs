//! A task that spins past its 200ms timeout.
#[weft::task(timeout = "200ms")]
fn spin() -> u64 {
    let mut i: u64 = 0;
    loop {
        i = std::hint::black_box(i.wrapping_add(1));
    }
}

#[weft::flow]
fn task_timeout() -> u64 {
    spin()
}

fn main() {}
