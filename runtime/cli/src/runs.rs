//! `weft runs`: list flow runs and show one.

use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::CommandError;
use super::store_args::StoreArgs;
use super::table::{OutputFormat, duration, render, time};
use weft::model::State;
use weft::store::Cancelled;

/// Inspect flow runs recorded in the store.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List flow runs, newest first.
    Ls(LsArgs),
    /// Show one flow run: states, parameters, result or error, task runs.
    Show(ShowArgs),
    /// Cancel a flow run: a scheduled run never starts; a running one is
    /// stopped by its runner and ends Cancelled.
    Cancel(CancelArgs),
}

/// `weft runs cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The flow run's id.
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// `weft runs ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only runs whose latest state is this one (Completed, Failed, Running, ...).
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    state: Option<State>,
    /// Only runs of this flow.
    #[arg(long, value_name = "FLOW")]
    flow: Option<String>,
    /// At most this many runs.
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: usize,
    /// Table for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArgs,
}

/// `weft runs show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The flow run's id.
    #[arg(value_name = "ID")]
    id: String,
    /// Readable text for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArgs,
}

fn parse_state(text: &str) -> Result<State, String> {
    text.parse()
}

pub(super) async fn runs(command: RunsCommand) -> Result<ExitCode, CommandError> {
    match command {
        RunsCommand::Ls(args) => ls(args).await,
        RunsCommand::Show(args) => show(args).await,
        RunsCommand::Cancel(args) => cancel(args).await,
    }
}

async fn cancel(args: CancelArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let id = &args.id;
    match store.cancel_run(id, "cli").await? {
        None => Err(CommandError(format!("no flow run `{id}` in store `{}` (see `weft runs ls`)", store.url()))),
        Some(Cancelled::BeforeStart) => {
            println!("Cancelled flow run `{id}` before it started");
            Ok(ExitCode::SUCCESS)
        }
        Some(Cancelled::Stale) => {
            println!("Flow run `{id}` had no live process (stale): recorded Crashed");
            Ok(ExitCode::SUCCESS)
        }
        Some(Cancelled::Requested) => {
            println!("Cancelling flow run `{id}`: its runner stops it and records Cancelled");
            Ok(ExitCode::SUCCESS)
        }
        Some(Cancelled::AlreadyEnded(state)) => {
            let state = state.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
            Err(CommandError(format!(
                "flow run `{id}` is {state} already; only a run that has not ended can be cancelled"
            )))
        }
    }
}

async fn ls(args: LsArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let mut found = Vec::new();
    let mut below: Option<String> = None;
    // Newest first, a batch at a time: only as much history as the
    // filters need is read.
    'batches: loop {
        let batch = args.limit.clamp(1, 200);
        let ids = store.newest_run_ids(below.as_deref(), batch).await?;
        for id in &ids {
            if found.len() >= args.limit {
                break 'batches;
            }
            let Some(summary) = store.run_summary(id).await? else { continue };
            if args.state.is_some_and(|s| summary.state != Some(s))
                || args.flow.as_ref().is_some_and(|f| &summary.run.flow_name != f)
            {
                continue;
            }
            found.push(summary);
        }
        match ids.last() {
            Some(last) if ids.len() == batch && found.len() < args.limit => below = Some(last.clone()),
            _ => break,
        }
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = found
                .iter()
                .map(|s| {
                    vec![
                        s.run.id.clone(),
                        s.run.flow_name.clone(),
                        s.run.deployment.clone().unwrap_or_else(|| "-".into()),
                        s.state_text(),
                        s.started.map_or_else(|| "-".into(), time),
                        s.elapsed_text(SystemTime::now()),
                    ]
                })
                .collect();
            anstream::print!("{}", render(&["ID", "FLOW", "DEPLOYMENT", "STATE", "STARTED", "DURATION"], &rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sha256:` and the first 12 hex digits: enough to tell components apart.
fn short_digest(digest: &weft::model::Digest) -> String {
    format!("sha256:{}", &digest.hex()[..12])
}

/// The first line of an error, at most 80 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(79) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

async fn show(args: ShowArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let Some(summary) = store.run_summary(&args.id).await? else {
        return Err(CommandError(format!("no flow run `{}` in store `{}` (see `weft runs ls`)", args.id, store.url())));
    };
    let states = store.states(&args.id).await?;
    let tasks = store.task_runs(&args.id).await?;
    let result = store.read_result(&args.id).await?;
    let error = states
        .last()
        .filter(|(_, s)| matches!(s.state, State::Failed | State::Crashed))
        .and_then(|(_, s)| s.message.clone());
    if args.output == OutputFormat::Json {
        let json = serde_json::json!({
            "run": summary,
            "states": states.iter().map(|(_, s)| s).collect::<Vec<_>>(),
            "result": result,
            "error": error,
            "task_runs": tasks,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let run = &summary.run;
    println!("Flow run   {}", run.id);
    println!("Flow       {}", run.flow_name);
    if let Some(deployment) = &run.deployment {
        println!("Deployment {deployment}");
    }
    if let Some(pool) = &run.work_pool {
        let queue = run.work_queue.as_deref().unwrap_or(weft::model::DEFAULT_QUEUE);
        println!("Work pool  {pool} (queue {queue})");
    }
    println!("Component  {}", run.component);
    println!("Attempt    {}", run.attempt);
    println!("State      {}", summary.state_text());
    if let Some(since) = summary.stale_since {
        let silent = SystemTime::now().duration_since(since).unwrap_or_default();
        println!(
            "           no sign of life from its process for {}: it was most likely killed; \
             `weft runs cancel {}` ends it",
            duration(silent),
            run.id
        );
    }
    println!("Duration   {}", summary.elapsed_text(SystemTime::now()));
    println!("Parameters {}", serde_json::Value::Object(run.parameters.clone()));
    match (&result, &error) {
        (Some(result), _) => println!("Result     {result}"),
        (None, Some(error)) => println!("Error      {error}"),
        _ => {}
    }
    println!("\nStates");
    let rows: Vec<Vec<String>> = states
        .iter()
        .map(|(_, s)| vec![time(s.time), s.state.to_string(), s.message.clone().unwrap_or_default()])
        .collect();
    anstream::print!("{}", render(&["TIME", "STATE", "MESSAGE"], &rows));
    if !tasks.is_empty() {
        println!("\nTask runs");
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|t| {
                let state = match (t.cached, t.attempts) {
                    (true, _) => format!("{} (cached)", t.state),
                    (false, n) if n > 1 => format!("{} (retried {}×)", t.state, n - 1),
                    _ => t.state.to_string(),
                };
                let took = t.ended.and_then(|e| e.duration_since(t.started).ok()).map(duration).unwrap_or_default();
                // In-component tasks run in the flow's own component.
                let component = t.component.as_ref().map_or_else(|| "(flow)".to_owned(), short_digest);
                let error = t.error.as_deref().filter(|_| t.state != State::Completed).map(first_line);
                vec![
                    t.name.clone(),
                    state,
                    t.attempts.to_string(),
                    took,
                    component,
                    t.id.clone(),
                    error.unwrap_or_default(),
                ]
            })
            .collect();
        anstream::print!("{}", render(&["TASK", "STATE", "ATTEMPTS", "DURATION", "COMPONENT", "ID", "ERROR"], &rows));
    }
    Ok(ExitCode::SUCCESS)
}
