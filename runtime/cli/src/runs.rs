//! `weft runs`: list flow runs and show one.

use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::CommandError;
use super::store_args::StoreArgs;
use super::table::{OutputFormat, duration, render, time};
use weft::model::StateRecord;
use weft::model::{State, TaskRun};
use weft::store::{Cancelled, RunSummary};

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
#[command(after_help = "A run's task runs are counted by state, then listed in the order they began, \
    at most --tasks of them; a line says how many more there are.")]
pub struct ShowArgs {
    /// The flow run's id.
    #[arg(value_name = "ID")]
    id: String,
    /// Readable text for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// At most this many task runs, the first to begin.
    #[arg(long, value_name = "N", default_value_t = 100, conflicts_with = "all_tasks")]
    tasks: u64,
    /// Every task run, however many.
    #[arg(long)]
    all_tasks: bool,
    /// Only task runs in this state (Failed, Completed, Running, ...).
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    task_state: Option<State>,
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
    let result = store.read_result(&args.id).await?;
    let error = states
        .last()
        .filter(|(_, s)| matches!(s.state, State::Failed | State::Crashed))
        .and_then(|(_, s)| s.message.clone());
    // Counted first, then printed as they are read again: a run may have
    // millions of task runs, and only what is printed is held.
    let tasks = store.read_task_runs(&args.id).await?;
    let counts = tasks.counts();
    let most = if args.all_tasks { u64::MAX } else { args.tasks };
    let mut list = TaskList::new(args.output);
    if args.output == OutputFormat::Json {
        let head = serde_json::json!({
            "run": summary,
            "states": states.iter().map(|(_, s)| s).collect::<Vec<_>>(),
            "result": result,
            "error": error,
            "task_run_counts": counts,
        });
        let mut head = serde_json::to_string_pretty(&head)?;
        // Its closing brace goes after the task runs.
        head.truncate(head.trim_end().trim_end_matches('}').trim_end().len());
        list.write(format_args!("{head},\n  \"task_runs\": ["));
    } else {
        print_run(&summary, &states, result.as_ref(), error.as_deref());
        if counts.total() > 0 {
            println!("\nTask runs  {}: {counts}", counts.total());
        }
    }
    tasks
        .visit(|task| {
            if args.task_state.is_some_and(|s| s != task.state) {
                return ControlFlow::Continue(());
            }
            if list.shown >= most {
                return ControlFlow::Break(());
            }
            list.push(task)
        })
        .await?;
    list.print_held();
    let matching = args.task_state.map_or(counts.total(), |s| counts.get(s));
    let not_shown = matching.saturating_sub(list.shown);
    if args.output == OutputFormat::Json {
        list.write(format_args!(
            "{},\n  \"task_runs_not_shown\": {not_shown}\n}}\n",
            if list.shown > 0 { "\n  ]" } else { "]" }
        ));
    } else if not_shown > 0 {
        let which = args.task_state.map(|s| format!(" {s}")).unwrap_or_default();
        let failed = if args.task_state.is_none() && counts.get(State::Failed) > 0 {
            ", `--task-state failed` the failed ones"
        } else {
            ""
        };
        list.write(format_args!(
            "… and {not_shown} more{which} task runs not shown (`--tasks N` shows the first N, `--all-tasks` \
             every one{failed})\n"
        ));
    }
    list.flush();
    Ok(ExitCode::SUCCESS)
}

fn print_run(
    summary: &RunSummary,
    states: &[(u32, StateRecord)],
    result: Option<&serde_json::Value>,
    error: Option<&str>,
) {
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
    match (result, error) {
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
}

/// The task runs `runs show` prints, as they are read: JSON at once; a
/// table's rows held until there are enough to size its columns, then at
/// once, so that however many are shown, at most that many are held.
struct TaskList {
    format: OutputFormat,
    held: Vec<TaskRun>,
    /// The table's column widths, once sized.
    widths: Option<Vec<usize>>,
    shown: u64,
    /// Text not yet written to stdout.
    out: Vec<u8>,
    /// Whether stdout was closed (`| head`): nothing more is read.
    closed: bool,
}

/// Text buffered before it is written to stdout.
const WRITE_AT: usize = 64 << 10;

/// Task runs that size the table's columns; later rows keep those widths.
const SIZING_ROWS: usize = 1000;

const TASK_HEADERS: [&str; 7] = ["TASK", "STATE", "ATTEMPTS", "DURATION", "COMPONENT", "ID", "ERROR"];

impl TaskList {
    fn new(format: OutputFormat) -> Self {
        TaskList { format, held: Vec::new(), widths: None, shown: 0, out: Vec::new(), closed: false }
    }

    fn write(&mut self, text: std::fmt::Arguments) {
        let _ = self.out.write_fmt(text);
        if self.out.len() >= WRITE_AT {
            self.flush();
        }
    }

    /// Writes what is buffered to stdout.
    fn flush(&mut self) {
        let mut stdout = std::io::stdout().lock();
        self.closed |= stdout.write_all(&self.out).and_then(|()| stdout.flush()).is_err();
        self.out.clear();
    }

    fn push(&mut self, task: TaskRun) -> ControlFlow<()> {
        self.shown += 1;
        match (self.format, &self.widths) {
            (OutputFormat::Json, _) => match serde_json::to_string(&task) {
                Ok(json) => self.write(format_args!("{}\n    {json}", if self.shown > 1 { "," } else { "" })),
                Err(e) => tracing::warn!(task_run = %task.id, error = %e, "cannot print a task run as JSON"),
            },
            (OutputFormat::Table, Some(widths)) => {
                let line = row_text(widths, &task_row(&task));
                self.write(format_args!("{line}\n"));
            }
            (OutputFormat::Table, None) => {
                self.held.push(task);
                if self.held.len() >= SIZING_ROWS {
                    self.print_held();
                }
            }
        }
        if self.closed { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    /// Prints the table rows held, after the header if it is not printed yet.
    fn print_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let rows: Vec<Vec<String>> = self.held.drain(..).map(|t| task_row(&t)).collect();
        let first = self.widths.is_none();
        let widths = self
            .widths
            .get_or_insert_with(|| {
                let mut widths: Vec<usize> = TASK_HEADERS.iter().map(|h| h.chars().count()).collect();
                for row in &rows {
                    for (width, cell) in widths.iter_mut().zip(row) {
                        *width = (*width).max(cell.chars().count());
                    }
                }
                widths
            })
            .clone();
        if first {
            let bold = anstyle::Style::new().bold();
            let header = format!("{bold}{}{bold:#}\n", row_text(&widths, &TASK_HEADERS.map(str::to_owned)));
            // Its style is dropped where stdout is not a terminal.
            self.flush();
            self.closed |= anstream::stdout().lock().write_all(header.as_bytes()).is_err();
        }
        for row in &rows {
            self.write(format_args!("{}\n", row_text(&widths, row)));
        }
    }
}

fn task_row(t: &TaskRun) -> Vec<String> {
    let state = match (t.cached, t.attempts) {
        (true, _) => format!("{} (cached)", t.state),
        (false, n) if n > 1 => format!("{} (retried {}×)", t.state, n - 1),
        _ => t.state.to_string(),
    };
    let took = t.ended.and_then(|e| e.duration_since(t.started).ok()).map(duration).unwrap_or_default();
    // In-component tasks run in the flow's own component.
    let component = t.component.as_ref().map_or_else(|| "(flow)".to_owned(), short_digest);
    let error = t.error.as_deref().filter(|_| t.state != State::Completed).map(first_line);
    vec![t.name.clone(), state, t.attempts.to_string(), took, component, t.id.clone(), error.unwrap_or_default()]
}

fn row_text(widths: &[usize], cells: &[String]) -> String {
    let mut text = String::new();
    let last = cells.len().saturating_sub(1);
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i == last {
            text.push_str(cell);
        } else {
            text.push_str(&format!("{cell:<width$}  "));
        }
    }
    text.trim_end().to_owned()
}
