//! Links `weft` as a position-dependent executable on Linux with glibc.
//!
//! Every `weft run`, runner and CLI call is a new process, and a
//! position-independent `weft` spends about 4 ms of each start in the dynamic
//! loader, writing 2.3 MB of relocated pointers (some 600 page faults) before
//! `main`. Linked at a fixed address there is nothing to relocate. The cost
//! is address randomisation of the binary's own image (libraries, stacks,
//! heaps and guests' compiled code are still placed at random). Set
//! `WEFT_PIE=1` when building to keep a position-independent executable.
//! The static musl build (`make static`, the image) stays position
//! independent.

fn main() {
    println!("cargo::rerun-if-env-changed=WEFT_PIE");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && std::env::var_os("WEFT_PIE").is_none_or(|v| v.is_empty() || v == "0") {
        println!("cargo::rustc-link-arg-bin=weft=-no-pie");
    }
}
