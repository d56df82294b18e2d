//! Writes to stdout and stderr, inside and outside a task.
#[weft::task]
fn shout() {
    println!("from a task");
}

#[weft::flow]
fn prints() -> Result<(), weft::Error> {
    println!("to stdout");
    eprintln!("to stderr");
    shout();
    print!("no newline at the end");
    Err(weft::Error::fatal("done printing"))
}

fn main() {}
