//! `weft logs`: a flow run's logs, from the store.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::CommandError;
use super::run::parse_level;
use super::store_args::StoreArgs;
use super::terminal::{LogFormat, TerminalLogs};
use weft::model::{Level, RunSink, State};
use weft::store::Store;

/// How often `--follow` looks for new log chunks and the run's state. A
/// local store is looked at every `FOLLOW_FIRST`: a look costs a few file
/// reads, and a run's end is reported that soon after. On an object store,
/// where each look costs requests, the wait grows to `FOLLOW_LONGEST`
/// while nothing changes.
const FOLLOW_FIRST: Duration = Duration::from_millis(50);
const FOLLOW_LONGEST: Duration = Duration::from_millis(500);

/// Print a flow run's logs, also after the process that ran it has exited.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The flow run's id.
    #[arg(value_name = "ID")]
    id: String,
    /// Keep printing new lines until the run reaches a final state.
    #[arg(short, long)]
    follow: bool,
    /// How log lines are printed.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// The least severe log level shown.
    #[arg(long, value_name = "LEVEL", default_value = "trace", value_parser = parse_level)]
    log_level: Level,
    #[command(flatten)]
    store: StoreArgs,
}

pub(super) async fn logs(args: LogsArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let Some(run) = store.read_run(&args.id).await? else {
        return Err(CommandError(format!("no flow run `{}` in store `{}` (see `weft runs ls`)", args.id, store.url())));
    };
    let printer = TerminalLogs::new(args.log_format, args.log_level, &run.flow_name).on_stdout();
    print_logs(&store, &args.id, &printer, args.follow).await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a run's log lines, a chunk at a time as each is read (only one
/// is held, however long the log); with `follow`, keeps printing new ones
/// until the run reaches a final state, and returns that state.
pub(super) async fn print_logs(
    store: &Store,
    id: &str,
    printer: &dyn RunSink,
    follow: bool,
) -> Result<Option<State>, CommandError> {
    let mut last_chunk: Option<String> = None;
    let mut seen_state = None;
    let mut wait = FOLLOW_FIRST;
    loop {
        // Read the state first: lines written before a final state are all
        // in chunks by the time the state is, so one more read gets them all.
        let state = store.latest_state(id).await?.map(|(_, s)| s.state);
        let finished = !follow || state.is_some_and(State::is_final);
        let last = store
            .visit_logs(id, last_chunk.as_deref(), |lines| {
                for line in lines {
                    printer.log(line);
                }
            })
            .await?;
        let changed = last != last_chunk || state != seen_state;
        (last_chunk, seen_state) = (last, state);
        if finished {
            return Ok(state);
        }
        wait = if changed || !store.is_cloud() { FOLLOW_FIRST } else { (wait * 2).min(FOLLOW_LONGEST) };
        tokio::time::sleep(wait).await;
    }
}
