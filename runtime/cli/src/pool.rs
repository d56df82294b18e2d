//! `weft pool`: work pools, kept in the store and shared by every agent
//! that serves them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::CommandError;
use super::store_args::StoreArgs;
use super::table::{ListArgs, OutputFormat, render, time};
use weft::model::job_template::{BASE_JOB_TEMPLATE, JobTemplate};
use weft::model::{PoolKind, WorkPool, WorkQueue};
use weft::store::Store;

/// Manage work pools: where deployments' runs execute, with what job
/// template, how many at once, and whether agents take them now.
///
/// The pools `process` and `kubernetes` always exist: deployments that say
/// only `infrastructure: process|kubernetes` use them.
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Create a work pool.
    Create(CreateArgs),
    /// List work pools.
    Ls(ListArgs),
    /// Show one work pool, its base job template included.
    Show(NameArgs),
    /// Change a work pool: only what is given changes.
    Update(UpdateArgs),
    /// Pause a work pool: its runs stay Scheduled until it is resumed.
    Pause(NameArgs),
    /// Resume a paused work pool.
    Resume(NameArgs),
    /// Delete a work pool no deployment uses.
    Delete(NameArgs),
    /// Print the default base job template of a pool type, to start from.
    DefaultTemplate(DefaultTemplateArgs),
    /// Manage a pool's queues: the higher-priority queues' runs are claimed
    /// first, and a queue may have a concurrency limit of its own.
    #[command(subcommand)]
    Queue(QueueCommand),
}

/// `weft pool queue`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Add a queue to a pool.
    Create(QueueArgs),
    /// Change a queue's priority or limit.
    Update(QueueArgs),
    /// Delete a queue no deployment uses.
    Delete(QueueArgs),
}

/// A queue of a pool, and what to set.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// The pool's name.
    #[arg(value_name = "POOL")]
    pool: String,
    /// The queue's name.
    #[arg(value_name = "QUEUE")]
    queue: String,
    /// 1 is claimed first; default for a new queue: after the others.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    priority: Option<u32>,
    /// At most this many of the queue's runs at once, across every agent.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency_limit: Option<u32>,
    /// Remove the queue's concurrency limit.
    #[arg(long, conflicts_with = "concurrency_limit")]
    no_concurrency_limit: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// `weft pool create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The pool's name: letters, digits, `-`, `_`, `.`.
    #[arg(value_name = "NAME")]
    name: String,
    /// Where its runs execute.
    #[arg(long = "type", value_name = "TYPE")]
    kind: PoolKind,
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    store: StoreArgs,
}

/// What `create` and `update` set.
#[derive(Debug, Args)]
pub struct Settings {
    /// A base job template file (Kubernetes pools): weft's format, as
    /// `weft pool default-template --type kubernetes` prints it.
    #[arg(long, value_name = "FILE")]
    base_job_template: Option<PathBuf>,
    /// At most this many of the pool's runs at once, across every agent.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency_limit: Option<u32>,
    /// What the pool is for.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

/// `weft pool update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The pool's name.
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    settings: Settings,
    /// Remove the concurrency limit.
    #[arg(long, conflicts_with = "concurrency_limit")]
    no_concurrency_limit: bool,
    /// Go back to weft's base job template.
    #[arg(long, conflicts_with = "base_job_template")]
    default_job_template: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// A pool by name.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The pool's name.
    #[arg(value_name = "NAME")]
    name: String,
    /// Text for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArgs,
}

/// `weft pool default-template`.
#[derive(Debug, Args)]
pub struct DefaultTemplateArgs {
    /// The pool type.
    #[arg(long = "type", value_name = "TYPE")]
    kind: PoolKind,
}

pub(super) async fn pool(command: PoolCommand) -> Result<ExitCode, CommandError> {
    match command {
        PoolCommand::Create(args) => create(args).await,
        PoolCommand::Ls(args) => ls(args).await,
        PoolCommand::Show(args) => show(args).await,
        PoolCommand::Update(args) => update(args).await,
        PoolCommand::Pause(args) => set_paused(args, true).await,
        PoolCommand::Resume(args) => set_paused(args, false).await,
        PoolCommand::Delete(args) => delete(args).await,
        PoolCommand::DefaultTemplate(args) => default_template(&args),
        PoolCommand::Queue(command) => queue(command).await,
    }
}

async fn queue(command: QueueCommand) -> Result<ExitCode, CommandError> {
    match command {
        QueueCommand::Create(args) => {
            let store = args.store.open()?;
            let (_, pool) = store.pool_or_suggest(&args.pool).await?;
            let lowest = pool.all_queues().iter().map(|q| q.priority).max().unwrap_or(1);
            let queue = WorkQueue {
                name: args.queue.clone(),
                priority: args.priority.unwrap_or(lowest + 1),
                concurrency_limit: args.concurrency_limit,
            };
            store.create_queue(&args.pool, queue).await?;
            eprintln!("Created queue `{}` in work pool `{}`", args.queue, args.pool);
        }
        QueueCommand::Update(args) => {
            let store = args.store.open()?;
            store
                .update_pool(&args.pool, |pool| {
                    let mut queue = pool.queue(&args.queue).ok_or_else(|| {
                        format!(
                            "work pool `{}` has no queue `{}` (`weft pool queue create {} {}` adds it)",
                            pool.name, args.queue, pool.name, args.queue
                        )
                    })?;
                    if let Some(priority) = args.priority {
                        queue.priority = priority;
                    }
                    if let Some(limit) = args.concurrency_limit {
                        queue.concurrency_limit = Some(limit);
                    }
                    if args.no_concurrency_limit {
                        queue.concurrency_limit = None;
                    }
                    pool.queues.retain(|q| q.name != queue.name);
                    pool.queues.push(queue);
                    Ok(())
                })
                .await?;
            eprintln!("Updated queue `{}` of work pool `{}`", args.queue, args.pool);
        }
        QueueCommand::Delete(args) => {
            let store = args.store.open()?;
            store.delete_queue(&args.pool, &args.queue).await?;
            eprintln!("Deleted queue `{}` of work pool `{}`", args.queue, args.pool);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads and checks a base job template file for a pool of `kind`.
fn read_template(path: &Path, kind: PoolKind) -> Result<String, CommandError> {
    if kind != PoolKind::Kubernetes {
        return Err(CommandError(format!(
            "--base-job-template is for kubernetes pools; a {kind} pool's runs are processes on the agent's host"
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| CommandError(format!("cannot read base job template `{}`: {e}", path.display())))?;
    JobTemplate::parse(&text, &path.display().to_string())?;
    Ok(text)
}

impl Settings {
    /// Applies what was given to `pool`.
    fn apply(&self, pool: &mut WorkPool, template: Option<&String>) {
        if let Some(text) = template {
            pool.base_job_template = Some(text.clone());
        }
        if let Some(limit) = self.concurrency_limit {
            pool.concurrency_limit = Some(limit);
        }
        if let Some(description) = &self.description {
            pool.description = Some(description.clone());
        }
    }
}

async fn create(args: CreateArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let template = args.settings.base_job_template.as_deref().map(|p| read_template(p, args.kind)).transpose()?;
    let mut pool = WorkPool::new(&args.name, args.kind);
    args.settings.apply(&mut pool, template.as_ref());
    let pool = store.create_pool(pool).await?;
    eprintln!(
        "Created {} work pool `{}`; serve it with `weft agent --infra {} --pool {}`",
        pool.kind, pool.name, pool.kind, pool.name
    );
    Ok(ExitCode::SUCCESS)
}

async fn update(args: UpdateArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let (_, current) = store.pool_or_suggest(&args.name).await?;
    let template = args.settings.base_job_template.as_deref().map(|p| read_template(p, current.kind)).transpose()?;
    let (revision, _) = store
        .update_pool(&args.name, |pool| {
            args.settings.apply(pool, template.as_ref());
            if args.no_concurrency_limit {
                pool.concurrency_limit = None;
            }
            if args.default_job_template {
                pool.base_job_template = None;
            }
            Ok(())
        })
        .await?;
    eprintln!(
        "Updated work pool `{}` (revision {revision}); agents serving it apply the change on their next poll",
        args.name
    );
    Ok(ExitCode::SUCCESS)
}

async fn set_paused(args: NameArgs, paused: bool) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    store
        .update_pool(&args.name, |pool| {
            pool.paused = paused;
            Ok(())
        })
        .await?;
    if paused {
        eprintln!("Paused work pool `{}`: its runs stay Scheduled until `weft pool resume {}`", args.name, args.name);
    } else {
        eprintln!("Resumed work pool `{}`", args.name);
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(args: NameArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    store.delete_pool(&args.name).await?;
    eprintln!("Deleted work pool `{}`", args.name);
    Ok(ExitCode::SUCCESS)
}

/// The deployments that send their runs to each pool.
async fn users(store: &Store) -> Result<std::collections::BTreeMap<String, usize>, CommandError> {
    let mut users = std::collections::BTreeMap::new();
    for deployment in store.deployments().await? {
        *users.entry(deployment.pool_name().to_owned()).or_insert(0) += 1;
    }
    Ok(users)
}

async fn ls(args: ListArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let pools = store.pools().await?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&pools)?);
        return Ok(ExitCode::SUCCESS);
    }
    let users = users(&store).await?;
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.kind.to_string(),
                if p.paused { "paused".into() } else { "ready".into() },
                p.concurrency_limit.map_or_else(|| "-".into(), |l| l.to_string()),
                if p.base_job_template.is_some() { "own".into() } else { "default".into() },
                users.get(&p.name).copied().unwrap_or(0).to_string(),
                if p.updated == std::time::UNIX_EPOCH { "-".into() } else { time(p.updated) },
            ]
        })
        .collect();
    anstream::print!("{}", render(&["NAME", "TYPE", "STATUS", "LIMIT", "TEMPLATE", "DEPLOYMENTS", "UPDATED"], &rows));
    Ok(ExitCode::SUCCESS)
}

async fn show(args: NameArgs) -> Result<ExitCode, CommandError> {
    let store = args.store.open()?;
    let (revision, pool) = store.pool_or_suggest(&args.name).await?;
    if args.output == OutputFormat::Json {
        let mut json = serde_json::to_value(&pool)?;
        json["revision"] = revision.into();
        json["queues"] = serde_json::to_value(pool.all_queues())?;
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("name:              {}", pool.name);
    println!("type:              {}", pool.kind);
    println!("revision:          {revision}");
    if let Some(description) = &pool.description {
        println!("description:       {description}");
    }
    println!("status:            {}", if pool.paused { "paused" } else { "ready" });
    println!("concurrency limit: {}", pool.concurrency_limit.map_or_else(|| "none".into(), |l| l.to_string()));
    println!("deployments:       {}", users(&store).await?.get(&pool.name).copied().unwrap_or(0));
    println!("queues:");
    for queue in pool.all_queues() {
        let limit = queue.concurrency_limit.map_or_else(|| "no limit".into(), |l| format!("limit {l}"));
        println!("  {} (priority {}, {limit})", queue.name, queue.priority);
    }
    if pool.kind == PoolKind::Kubernetes {
        match &pool.base_job_template {
            Some(text) => println!("base job template:\n{text}"),
            None => println!("base job template: weft's default (`weft pool default-template --type kubernetes`)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn default_template(args: &DefaultTemplateArgs) -> Result<ExitCode, CommandError> {
    match args.kind {
        PoolKind::Kubernetes => print!("{BASE_JOB_TEMPLATE}"),
        PoolKind::Process => {
            return Err(CommandError(
                "a process pool has no job template: its runs are `weft runner` processes on the agent's host".into(),
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
