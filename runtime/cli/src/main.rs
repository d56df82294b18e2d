//! The `weft` command: clap definitions and one file per command, each thin
//! over the [`weft`] library (parse, call, print).

mod agent;
mod component;
mod deploy;
mod deployment;
mod job_template;
mod limits;
mod logs;
mod params;
mod pool;
mod push;
mod run;
mod runner;
mod runs;
mod store_args;
mod table;
mod terminal;
mod ui;

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

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunArgs),
    Push(push::PushArgs),
    Deploy(deploy::DeployArgs),
    #[command(subcommand)]
    Deployment(deployment::DeploymentCommand),
    #[command(subcommand)]
    Pool(pool::PoolCommand),
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    Logs(logs::LogsArgs),
    Runner(runner::RunnerArgs),
    Agent(agent::AgentArgs),
    JobTemplate(job_template::JobTemplateArgs),
    #[command(subcommand)]
    Component(component::ComponentCommand),
    Ui(ui::UiArgs),
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
fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Agent(_)) {
        init_tracing("warn", false);
    }
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
            Command::Deploy(args) => deploy::deploy(args).await,
            Command::Deployment(command) => deployment::deployment(command).await,
            Command::Pool(command) => pool::pool(command).await,
            Command::Runner(args) => runner::runner(args).await,
            Command::Agent(args) => agent::agent(args).await,
            Command::JobTemplate(args) => job_template::job_template(args),
            Command::Component(command) => component::component(command),
            Command::Ui(args) => ui::ui(args).await,
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

/// Completes on SIGTERM (Kubernetes stopping a pod) or Ctrl-C.
pub(crate) async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Prints an error on stderr, `error:` in red on a terminal.
fn print_error(message: &str) {
    let style = anstyle::Style::new().bold().fg_color(Some(anstyle::AnsiColor::Red.into()));
    anstream::eprintln!("{style}error:{style:#} {message}");
}

/// weft's own diagnostics go to stderr, filtered by `WEFT_LOG` (default
/// `default`), so they never mix with a command's output on stdout. The
/// first call wins: commands that log more call it before `main` does.
fn init_tracing(default: &str, json: bool) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("weft={default},warn")));
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
        let _ = if json { builder.json().try_init() } else { builder.try_init() };
    });
}
