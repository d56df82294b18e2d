//! `weft run`: run a flow component once, here, now.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;

use super::limits::OutputLimitArgs;
use super::params::ParamArgs;
use super::store_args::StoreArgs;
use super::terminal::LogArgs;
use super::{CommandError, EXIT_FAILED, EXIT_UNRECORDED};
use weft::engine::{Engine, EngineConfig, Limits, TaskComponents, inspect_flow, inspect_task};
use weft::model::{FlowRun, FlowRunOutcome, Level, RunSink, Sandbox, TaskComponentRef, TaskPolicy};
use weft::runner::{
    FlowRunRequest, HEARTBEAT_INTERVAL, OnSignal, RecordError, StopSignal, Supervisor, resolve_sandbox,
    run_request_recorded, with_shared_code,
};
use weft::store::{CodeKey, ComponentSource, Store};

/// Run a flow once, in this process, and print its result.
///
/// The run is recorded in the store (states, logs, task runs, result), and
/// a local component file is pushed there first. Logs stream to stderr as
/// the flow writes them; the result (JSON) is printed on stdout. Exit
/// status: 0 when the run Completed, 1 when it Failed, 2 on bad usage or bad
/// input (nothing was run), 3 when the run ended but the store could not
/// record it.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  weft run hello.wasm -p name=Arthur\n  weft run etl.wasm --params-file params.json --timeout 5m --memory 512MiB\n  weft run fan-out.wasm --task summarize=summarize.wasm --task-concurrency 4"
)]
pub struct RunArgs {
    /// The flow: a component file (`.wasm`), `sha256:<hex>` or a component
    /// URL in a store, or a name given with `weft push --name`.
    #[arg(value_name = "FLOW")]
    flow: String,

    #[command(flatten)]
    params: ParamArgs,

    /// Wall-clock limit for the run, such as 30s, 5m or 1h.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = weft::model::parse_duration)]
    timeout: Duration,

    /// Memory limit for the guest, such as 64MiB or 1GiB.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = weft::model::parse_memory)]
    memory: u64,

    /// Fuel limit (roughly, WebAssembly instructions executed). Off by default.
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,

    /// A task component the flow may call by NAME: a component file, or a
    /// reference as for FLOW. Repeat for each task.
    #[arg(long = "task", value_name = "NAME=COMPONENT", value_parser = parse_task)]
    tasks: Vec<(String, String)>,

    /// A host the flow and its tasks may reach over TCP and HTTP, as
    /// `host:port` (a name or an address). Repeatable; nothing else is reachable.
    #[arg(long = "allow-host", value_name = "HOST:PORT", value_parser = parse_host)]
    hosts: Vec<String>,

    /// At most this many task components at once [default: the core count].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    task_concurrency: Option<u32>,

    #[command(flatten)]
    output_limits: OutputLimitArgs,
    /// How long to keep trying to record the run's end while the store is
    /// unreachable, before giving up with exit status 3.
    #[arg(long, value_name = "DURATION", env = "WEFT_RECORD_PATIENCE", default_value = "5m", value_parser = weft::model::parse_duration)]
    record_patience: Duration,

    #[command(flatten)]
    logs: LogArgs,

    #[command(flatten)]
    store: StoreArgs,
}

pub(super) async fn run(args: RunArgs) -> Result<ExitCode, CommandError> {
    let source = ComponentSource::parse(&args.flow).map_err(CommandError)?;
    let store =
        match (&source, args.store.store.is_none() && std::env::var("WEFT_STORE").unwrap_or_default().is_empty()) {
            // `weft run s3://bucket/weft/artifacts/sha256/...` records the run
            // in the store the component came from.
            (ComponentSource::Url { store, .. }, true) => Store::open(store, &args.store.all_options()?)?,
            _ => args.store.open()?,
        };
    // Checked before it is stored or compiled: a core module or a command
    // is refused at once.
    let (bytes, digest) = store.component(&source, &args.store.all_options()?, inspect_flow).await?;
    let engine = Engine::new(&EngineConfig { fuel: args.fuel.is_some() })?;
    let cache = weft::store::weft_home().map(|home| home.join("cache/compiled"));
    let code_key = CodeKey::from_env()?;
    let load = || async {
        match &cache {
            Ok(dir) => engine.load_flow_cached(&bytes, &digest, &args.flow, dir),
            Err(_) => engine.load_flow(&bytes, &args.flow),
        }
    };
    let cache_dir = cache.as_ref().ok().map(PathBuf::as_path);
    let flow = with_shared_code(&engine, &store, &digest, cache_dir, code_key.as_ref(), load).await?;

    let parameters = args.params.collect(flow.name(), flow.parameters_schema().map(|s| s.schema()))?;
    // Checked before the run is created: bad parameters leave nothing behind.
    let mut request = FlowRunRequest::with_parameters(&flow, parameters)?;

    let mut tasks = BTreeMap::new();
    let mut components = TaskComponents::new();
    for (name, reference) in &args.tasks {
        let source = ComponentSource::parse(reference).map_err(|e| CommandError(format!("--task {name}: {e}")))?;
        let (bytes, digest) = store
            .component(&source, &args.store.all_options()?, inspect_task)
            .await
            .map_err(|e| CommandError(format!("--task {name}: {e}")))?;
        let policy = TaskPolicy::default();
        tasks.insert(name.clone(), TaskComponentRef { component: digest.clone(), policy: policy.clone() });
        components.insert_bytes(
            name.clone(),
            &engine,
            bytes.into(),
            digest,
            reference.clone(),
            policy,
            cache.as_ref().ok().cloned(),
        );
    }

    let mut sandbox =
        Sandbox { hosts: args.hosts.clone(), timeout: args.timeout, memory: args.memory, ..Sandbox::default() };
    args.output_limits.set(&mut sandbox);
    let (limits, grants, notes) = resolve_sandbox(&sandbox).await;
    let run = FlowRun {
        id: request.flow_run_id.clone(),
        flow_name: flow.name().to_owned(),
        deployment: None,
        component: digest.clone(),
        parameters: request.parameters().clone(),
        attempt: 1,
        created: SystemTime::now(),
        scheduled_for: None,
        sandbox: sandbox.clone(),
        tasks,
        task_concurrency: args.task_concurrency,
        work_pool: None,
        work_queue: None,
    };
    store.create_run(&run).await?;
    request.limits = Limits { fuel: args.fuel, ..limits };
    request.grants = grants;
    request.notes = notes;
    request.tasks = Arc::new(components);
    request.task_concurrency = args.task_concurrency.map(|n| n as usize);
    request.record_patience = args.record_patience;
    let logs: Arc<dyn RunSink> = Arc::new(args.logs.printer(flow.name()));
    // Heartbeats say the run is alive (a run whose process vanished is
    // reported stale); `weft runs cancel` reaches it; Ctrl-C and SIGTERM
    // stop it and record it Crashed before the process exits.
    let stop = Arc::new(StopSignal::default());
    request.stop = Some(stop.clone());
    let who = format!("weft run/{}", super::runner::runner_name());
    let supervisor = Supervisor::start(store.clone(), run.id.clone(), who, stop, HEARTBEAT_INTERVAL, OnSignal::Record);
    let result = run_request_recorded(&engine, &flow, &store, &run, request, Some(logs)).await;
    if let Some(signal) = supervisor.signal()
        && result.is_ok()
    {
        eprintln!("flow run `{}` stopped by {}: recorded Crashed", run.id, signal.name());
        return Ok(ExitCode::from(signal.exit_status()));
    }
    drop(supervisor);
    match result {
        Ok(report) => match report.outcome {
            FlowRunOutcome::Completed { result } => {
                println!("{result}");
                Ok(ExitCode::SUCCESS)
            }
            FlowRunOutcome::Failed { .. } | FlowRunOutcome::Cancelled { .. } => Ok(ExitCode::from(EXIT_FAILED)),
        },
        Err(error @ RecordError::Unrecorded { .. }) => {
            super::print_error(&error.to_string());
            Ok(ExitCode::from(EXIT_UNRECORDED))
        }
        Err(error) => Err(CommandError(error.to_string())),
    }
}

fn parse_task(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, component)) if !name.trim().is_empty() && !component.trim().is_empty() => {
            Ok((name.trim().to_owned(), component.trim().to_owned()))
        }
        _ => Err(format!("`{text}` is not NAME=COMPONENT: write `--task summarize=summarize.wasm`")),
    }
}

fn parse_host(text: &str) -> Result<String, String> {
    match text.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.parse::<u16>().is_ok() => Ok(text.to_owned()),
        _ => Err(format!("`{text}` needs a port: write `api.example.com:443` or `localhost:8080`")),
    }
}

pub(super) fn parse_level(text: &str) -> Result<Level, String> {
    serde_json::from_value(serde_json::Value::String(text.to_lowercase()))
        .map_err(|_| "expected one of trace, debug, info, warn, error".to_owned())
}
