//! `weft deployment`: list, show, delete and run deployments.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::logs::print_logs;
use super::params::ParamArgs;
use super::store_args::StoreArgs;
use super::table::{ListArgs, OutputFormat, render, time};
use super::terminal::LogArgs;
use super::{CommandError, EXIT_FAILED};
use weft::model::{Deployment, RunSink, State};
use weft::store::Store;

/// Manage the deployments applied to the store.
#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// List deployments.
    Ls(ListArgs),
    /// Show one deployment.
    Show(NameArgs),
    /// Delete a deployment (its runs stay).
    Delete(NameArgs),
    /// Schedule a run of a deployment now.
    Run(RunArgs),
}

/// A deployment by name.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The deployment's name.
    #[arg(value_name = "NAME")]
    name: String,
    /// Text for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArgs,
}

/// `weft deployment run`.
#[derive(Debug, Args)]
#[command(after_help = "An agent (`weft agent`) must be running for the run to start.")]
pub struct RunArgs {
    /// The deployment's name.
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    params: ParamArgs,
    /// Stream the run's logs until it ends, and exit with its outcome (0
    /// Completed, 1 otherwise).
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    logs: LogArgs,
    #[command(flatten)]
    store: StoreArgs,
}

pub(super) async fn deployment(command: DeploymentCommand) -> Result<ExitCode, CommandError> {
    match command {
        DeploymentCommand::Ls(args) => ls(args).await,
        DeploymentCommand::Show(args) => show(args).await,
        DeploymentCommand::Delete(args) => delete(args).await,
        DeploymentCommand::Run(args) => run(args).await,
    }
}

async fn find(store: &Store, name: &str) -> Result<Deployment, CommandError> {
    store.deployment(name).await?.ok_or_else(|| {
        CommandError(format!(
            "no deployment `{name}` in store `{}` (see `weft deployment ls`; apply one with `weft deploy`)",
            store.url()
        ))
    })
}

async fn ls(args: ListArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let deployments = store.deployments().await?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&deployments)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = deployments
        .iter()
        .map(|d| {
            let schedules: Vec<String> = d
                .schedule
                .iter()
                .map(|s| {
                    let what = match (&s.cron, &s.interval) {
                        (Some(cron), _) => {
                            format!("cron `{cron}`{}", s.timezone.as_ref().map(|t| format!(" {t}")).unwrap_or_default())
                        }
                        (None, Some(every)) => format!("every {}", humantime::format_duration(*every)),
                        _ => String::new(),
                    };
                    if s.active { what } else { format!("{what} (paused)") }
                })
                .collect();
            vec![
                d.name.clone(),
                d.flow_name.clone(),
                if schedules.is_empty() { "-".into() } else { schedules.join(", ") },
                d.infrastructure.kind().to_owned(),
                match d.queue_name() {
                    weft::model::DEFAULT_QUEUE => d.pool_name().to_owned(),
                    queue => format!("{}/{queue}", d.pool_name()),
                },
                time(d.updated),
            ]
        })
        .collect();
    anstream::print!("{}", render(&["NAME", "FLOW", "SCHEDULE", "INFRASTRUCTURE", "POOL", "UPDATED"], &rows));
    Ok(ExitCode::SUCCESS)
}

async fn show(args: NameArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let deployment = find(&store, &args.name).await?;
    // The applied deployment is JSON already; people get it indented.
    let _ = args.output;
    println!("{}", serde_json::to_string_pretty(&deployment)?);
    Ok(ExitCode::SUCCESS)
}

async fn delete(args: NameArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    if !store.delete_deployment(&args.name).await? {
        return Err(CommandError(format!("no deployment `{}` in store `{}`", args.name, store.url())));
    }
    println!("Deleted deployment `{}`; its runs remain", args.name);
    Ok(ExitCode::SUCCESS)
}

async fn run(args: RunArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let deployment = find(&store, &args.name).await?;
    let parameters = args.params.collect(&deployment.name, deployment.parameters_schema.as_ref())?;
    store.check_job(&deployment).await.map_err(|reason| {
        CommandError(format!(
            "deployment `{}` cannot make its runs' Job: {reason}; fix its job variables and `weft deploy` it again",
            deployment.name
        ))
    })?;
    let run = store
        .schedule_run(&deployment, parameters, SystemTime::now(), None, 1)
        .await?
        .ok_or_else(|| CommandError("a run with a fresh id exists already".into()))?;
    if !args.watch {
        println!("{}", run.id);
        eprintln!("Scheduled flow run `{}` of deployment `{}`; an agent will start it", run.id, deployment.name);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("Scheduled flow run `{}` of deployment `{}`; waiting for an agent to start it", run.id, deployment.name);
    let printer: Arc<dyn RunSink> = Arc::new(args.logs.printer(&deployment.flow_name));
    let state = print_logs(&store, &run.id, printer.as_ref(), true).await?;
    match state {
        Some(State::Completed) => {
            if let Some(result) = store.read_result(&run.id).await? {
                println!("{result}");
            }
            Ok(ExitCode::SUCCESS)
        }
        other => {
            let message = store.latest_state(&run.id).await?.and_then(|(_, r)| r.message).unwrap_or_default();
            let state = other.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
            eprintln!(
                "flow run `{}` ended {state}{}",
                run.id,
                if message.is_empty() { String::new() } else { format!(": {message}") }
            );
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}
