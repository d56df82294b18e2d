//! `weft agent`: the long-running process that runs deployments' flow runs.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::CommandError;
use super::store_args::StoreArgs;
use super::terminal::LogFormat;
use weft::agent::kubernetes::{InstallOptions, JobTemplate, install_manifests};
use weft::agent::{Agent, AgentConfig, KubernetesInfrastructure, ProcessInfrastructure, RateLimit};

/// A Kubernetes client from the usual places: a kubeconfig file given or in
/// $KUBECONFIG or ~/.kube/config, else the pod's service account.
async fn kube_client(
    kubeconfig: Option<&std::path::Path>,
    context: Option<String>,
) -> Result<kube::Client, CommandError> {
    let options = kube::config::KubeConfigOptions { context, ..Default::default() };
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| CommandError(format!("cannot read kubeconfig `{}`: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| CommandError(format!("kubeconfig `{}`: {e}", path.display())))?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| CommandError(format!("kubeconfig: {e}")))?,
        None => kube::Config::infer().await.map_err(|e| {
            CommandError(format!("no Kubernetes configuration found ({e}): pass --kubeconfig, set KUBECONFIG, or run the agent in a cluster"))
        })?,
    };
    // Every request is counted, by verb and answer, for `/metrics`.
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| CommandError(format!("cannot build a Kubernetes client: {e}")))?;
    Ok(builder.with_layer(&weft::agent::kubernetes::Metered).build())
}

/// Where the agent runs flow runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Infra {
    /// Each run is a `weft runner` child process of the agent.
    Process,
    /// Each run is a Kubernetes Job whose pod runs `weft runner`.
    Kubernetes,
}

/// Run deployments' flow runs: turn schedules into runs, claim due runs,
/// launch a runner for each, watch them, retry failed runs as the
/// deployment says, and mark crashed the runs whose runner vanished.
///
/// Any number of agents may share a store. On SIGTERM or Ctrl-C the agent
/// stops claiming and gives running runs --grace to finish.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    action: Option<AgentAction>,
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
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = weft::model::parse_duration)]
    poll_interval: Duration,
    /// On shutdown, how long running runs get to finish before they are killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = weft::model::parse_duration)]
    grace: Duration,
    /// A run whose runner sent no heartbeat for this long has crashed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = weft::model::parse_duration)]
    heartbeat_timeout: Duration,
    /// How long a cancelled run's runner gets to stop before it is killed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = weft::model::parse_duration)]
    cancel_grace: Duration,
    /// How the agent's own log is written (stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// A work pool whose runs this agent takes (repeatable); every pool
    /// must be of the --infra type. Default: the pool named after --infra,
    /// which deployments that name no pool use.
    #[arg(long = "pool", value_name = "NAME", env = "WEFT_POOLS", value_delimiter = ',')]
    pools: Vec<String>,
    /// A queue of its pools whose runs this agent takes (repeatable).
    /// Default: every queue, the higher-priority queues' runs first.
    #[arg(long = "queue", value_name = "NAME", env = "WEFT_QUEUES", value_delimiter = ',')]
    queues: Vec<String>,
    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this
    /// address, such as 0.0.0.0:9090.
    #[arg(long, value_name = "ADDR", env = "WEFT_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Kubernetes: the kubeconfig file. Default: $KUBECONFIG, ~/.kube/config,
    /// or the pod's service account when the agent runs in a cluster.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<std::path::PathBuf>,
    /// Kubernetes: the kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Kubernetes: requests per second to the API server, on average (a
    /// run costs one, its Job's creation, plus one to read a crashed pod's
    /// log and one to delete a cancelled run's Job; watches are not counted).
    #[arg(long, value_name = "QPS", default_value_t = 20.0)]
    kube_qps: f64,
    /// Kubernetes: requests the agent may make at once above --kube-qps.
    #[arg(long, value_name = "N", default_value_t = 40)]
    kube_burst: u32,
    /// Kubernetes: the agent's default job template (default: the base
    /// template that `weft job-template` prints).
    #[arg(long, value_name = "FILE")]
    job_template: Option<std::path::PathBuf>,
    /// Kubernetes: a default job variable, as KEY=VALUE (the value in JSON
    /// or plain text); deployments' job variables override it. Repeatable.
    #[arg(long = "job-variable", value_name = "KEY=VALUE")]
    job_variables: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// Other things to do with agents.
#[derive(Debug, clap::Subcommand)]
pub enum AgentAction {
    /// Print the manifests that run an agent in a cluster, for `kubectl apply -f -`.
    Install(InstallArgs),
    /// List the agents that use the store: what they serve, and whether they
    /// are at work (each writes a record every 10 s).
    Ls(super::table::ListArgs),
}

/// `weft agent install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The agent's namespace.
    #[arg(long, value_name = "NAMESPACE")]
    namespace: String,
    /// The store URL the agent and its runs use.
    #[arg(long, value_name = "URL")]
    store: String,
    /// A store option the agent and its runs need, as KEY=VALUE (endpoint,
    /// region, allow_http, ...): put in the agent's Deployment, and passed
    /// on to every run's Job. Credentials are refused here: they belong in
    /// --store-secret. Repeatable.
    #[arg(long = "store-option", value_name = "KEY=VALUE", value_parser = super::store_args::parse_option)]
    store_options: Vec<(String, String)>,
    /// The weft image.
    #[arg(long, value_name = "IMAGE", default_value = "ghcr.io/weft-dev/weft:0.1.0")]
    image: String,
    /// Also print the Role (with only the verbs the agent needs) and the RoleBinding.
    #[arg(long)]
    rbac: bool,
    /// A namespace the agent creates Jobs in (repeatable; default: its own).
    #[arg(long = "job-namespace", value_name = "NAMESPACE")]
    job_namespaces: Vec<String>,
    /// A Secret with the store's credentials (AWS_*, GOOGLE_*, AZURE_*
    /// variables), given to the agent and to every run.
    #[arg(long, value_name = "NAME")]
    store_secret: Option<String>,
    /// A work pool the agent serves (repeatable; default: the `kubernetes` pool).
    #[arg(long = "pool", value_name = "NAME")]
    pools: Vec<String>,
}

async fn ls(args: super::table::ListArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let records = store.agent_records().await?;
    if args.output == super::table::OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now();
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let pools = if r.queues.is_empty() {
                r.pools.join(",")
            } else {
                format!("{} (queues {})", r.pools.join(","), r.queues.join(","))
            };
            vec![
                r.name.clone(),
                r.status(now).to_string(),
                r.infrastructure.clone(),
                pools,
                format!("{}/{}", r.runs_in_hand, r.limit),
                r.host.clone(),
                super::table::time(r.time),
            ]
        })
        .collect();
    anstream::print!(
        "{}",
        super::table::render(&["NAME", "STATUS", "INFRASTRUCTURE", "POOLS", "RUNS", "HOST", "LAST SEEN"], &rows)
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn agent(args: AgentArgs) -> Result<ExitCode, CommandError> {
    if let Some(AgentAction::Ls(list)) = args.action {
        return ls(list).await;
    }
    if let Some(AgentAction::Install(install)) = args.action {
        let options = InstallOptions {
            namespace: install.namespace,
            store: install.store,
            store_options: install.store_options,
            image: install.image,
            rbac: install.rbac,
            job_namespaces: install.job_namespaces,
            store_secret: install.store_secret,
            pools: install.pools,
        };
        print!("{}", install_manifests(&options).map_err(CommandError)?);
        return Ok(ExitCode::SUCCESS);
    }
    super::init_tracing("info", args.log_format == LogFormat::Json);
    let store = args.store.open()?;
    store.check().await?;
    let exe = std::env::current_exe().map_err(|e| CommandError(format!("cannot find the weft executable: {e}")))?;
    let config = AgentConfig {
        name: args.name.unwrap_or_else(weft::runner::host_name),
        limit: args.limit.max(1),
        poll_interval: args.poll_interval,
        grace: args.grace,
        heartbeat_timeout: args.heartbeat_timeout,
        cancel_grace: args.cancel_grace,
        pools: args.pools.clone(),
        queues: args.queues.clone(),
    };
    let kind = match args.infra {
        Infra::Process => weft::model::PoolKind::Process,
        Infra::Kubernetes => weft::model::PoolKind::Kubernetes,
    };
    for name in &args.pools {
        let (_, pool) = store.pool_or_suggest(name).await?;
        if pool.kind != kind {
            return Err(CommandError(format!(
                "work pool `{name}` is a {} pool and this agent runs {kind} infrastructure: start it with \
                 `--infra {}`, or serve a {kind} pool",
                pool.kind, pool.kind
            )));
        }
    }
    let shutdown = super::terminated();
    let store_url = store.url().to_owned();
    let store_options = args.store.all_options()?;
    // Bound before anything runs, so that a port in use fails at once.
    let endpoints = match args.metrics_listen {
        Some(address) => {
            let listener = weft::agent::endpoints::bind(address).await.map_err(CommandError)?;
            let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| CommandError(format!("cannot record metrics: {e}")))?;
            Some((listener, metrics))
        }
        None => None,
    };
    let serve = |liveness, kube: Option<kube::Client>| {
        if let Some((listener, metrics)) = endpoints {
            let stalled_after = (config.poll_interval * 10).max(Duration::from_secs(60));
            let endpoints =
                weft::agent::endpoints::Endpoints::new(metrics, liveness, stalled_after, store.clone(), kube);
            tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /metrics, /healthz and /readyz");
            tokio::spawn(weft::agent::endpoints::serve(listener, std::sync::Arc::new(endpoints)));
        }
    };
    match args.infra {
        Infra::Process => {
            let infra = ProcessInfrastructure::new(exe, store_url, store_options);
            let agent = Agent::new(store.clone(), infra, config.clone());
            serve(agent.liveness(), None);
            agent.run(shutdown).await;
        }
        Infra::Kubernetes => {
            let client = kube_client(args.kubeconfig.as_deref(), args.context.clone()).await?;
            let template = match &args.job_template {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| CommandError(format!("cannot read job template `{}`: {e}", path.display())))?;
                    JobTemplate::parse(&text, &path.display().to_string())?
                }
                None => JobTemplate::base(),
            };
            let mut defaults = std::collections::BTreeMap::new();
            for assignment in &args.job_variables {
                let (key, value) = assignment.split_once('=').ok_or_else(|| {
                    CommandError(format!(
                        "--job-variable `{assignment}` is not KEY=VALUE (for example namespace=flows)"
                    ))
                })?;
                let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
                defaults.insert(key.to_owned(), value);
            }
            let limit = RateLimit::new(args.kube_qps, args.kube_burst);
            let infra =
                KubernetesInfrastructure::new(client.clone(), store_url, store_options, template, defaults, limit);
            let agent = Agent::new(store.clone(), infra, config.clone());
            serve(agent.liveness(), Some(client));
            agent.run(shutdown).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
