//! A plain WASI command: a component, but not a weft flow.
fn main() {
    println!("hello from a command");
}
