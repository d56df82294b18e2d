//! The `weft` command.

fn main() -> std::process::ExitCode {
    weft::cli::main()
}
