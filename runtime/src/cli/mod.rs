//! The `weft` command line: clap definitions and one file per command, each
//! thin over the library (parse, call, print).

mod logs;
mod push;
mod run;
mod runs;
mod store_args;
mod table;
mod terminal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status of a command whose input or usage was wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit status of a flow run that ended Failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status of a flow run that ended but could not be recorded.
pub const EXIT_UNRECORDED: u8 = 3;

/// weft runs workflows whose flows and tasks are WebAssembly components,
/// each in a sandbox with no files, environment or network unless granted,
/// and with time and memory limits.
#[derive(Debug, Parser)]
#[command(name = "weft", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunArgs),
    Push(push::PushArgs),
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    Logs(logs::LogsArgs),
}

/// An error that ends a command: printed as one message, exit status 2.
#[derive(Debug)]
pub struct CommandError(pub String);

impl<E: std::fmt::Display> From<E> for CommandError {
    fn from(error: E) -> Self {
        CommandError(error.to_string())
    }
}

/// Parses the command line, runs the command, and returns its exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Push(args) => push::push(args).await,
            Command::Runs(command) => runs::runs(command).await,
            Command::Logs(args) => logs::logs(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(CommandError(message)) => {
            print_error(&message);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Prints an error on stderr, `error:` in red on a terminal.
fn print_error(message: &str) {
    let style = anstyle::Style::new().bold().fg_color(Some(anstyle::AnsiColor::Red.into()));
    anstream::eprintln!("{style}error:{style:#} {message}");
}

/// weft's own diagnostics go to stderr, filtered by `WEFT_LOG` (default
/// `warn`), so they never mix with a command's output on stdout.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
