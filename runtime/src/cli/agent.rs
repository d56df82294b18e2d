//! `weft agent`: the long-running process that runs deployments' flow runs.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::CommandError;
use super::store_args::StoreArgs;
use super::terminal::LogFormat;
use crate::agent::{Agent, AgentConfig, ProcessInfrastructure};

/// Where the agent runs flow runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Infra {
    /// Each run is a `weft runner` child process of the agent.
    Process,
}

/// Run deployments' flow runs: turn schedules into runs, claim due runs,
/// launch a runner for each, watch them, retry failed runs as the
/// deployment says, and mark crashed the runs whose runner vanished.
///
/// Any number of agents may share a store. On SIGTERM or Ctrl-C the agent
/// stops claiming and gives running runs --grace to finish.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Where runs execute.
    #[arg(long, value_enum, default_value_t = Infra::Process)]
    infra: Infra,
    /// The agent's name. Its claims are recorded under it, so a restarted
    /// agent of the same name finds and adopts its runs. Default: the host name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// At most this many runs at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    limit: usize,
    /// How often to look for due runs and finished ones.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
    /// On shutdown, how long running runs get to finish before they are killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// A run whose runner sent no heartbeat for this long has crashed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    heartbeat_timeout: Duration,
    /// How long a cancelled run's runner gets to stop before it is killed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    cancel_grace: Duration,
    /// How the agent's own log is written (stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(flatten)]
    store: StoreArgs,
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".into())
}

pub(super) async fn agent(args: AgentArgs) -> Result<ExitCode, CommandError> {
    super::init_tracing("info", args.log_format == LogFormat::Json);
    let store = args.store.open()?;
    store.check().await?;
    let exe = std::env::current_exe().map_err(|e| CommandError(format!("cannot find the weft executable: {e}")))?;
    let infra = match args.infra {
        Infra::Process => ProcessInfrastructure {
            exe,
            store_url: store.url().to_owned(),
            store_options: args.store.all_options()?,
        },
    };
    let config = AgentConfig {
        name: args.name.unwrap_or_else(host_name),
        limit: args.limit.max(1),
        poll_interval: args.poll_interval,
        grace: args.grace,
        heartbeat_timeout: args.heartbeat_timeout,
        cancel_grace: args.cancel_grace,
    };
    let shutdown = async {
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
    };
    Agent::new(store, infra, config).run(shutdown).await;
    Ok(ExitCode::SUCCESS)
}
