//! Work pools: what an operator configures once for many deployments and
//! agents. A pool has a type (where its runs execute), a base job template
//! for Kubernetes pools, a concurrency limit shared by every agent that
//! serves it, and a paused flag. Deployments name a pool; agents serve
//! pools. One default pool per type, named after the type, exists without
//! anyone creating it, so `infrastructure: kubernetes` means the pool
//! `kubernetes`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Where a pool's runs execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// A child process of the agent.
    Process,
    /// A Kubernetes Job per run.
    Kubernetes,
}

impl PoolKind {
    /// Every kind, in the order `weft pool ls` shows the default pools.
    pub const ALL: [PoolKind; 2] = [PoolKind::Process, PoolKind::Kubernetes];

    /// `process` or `kubernetes`: also the name of the kind's default pool.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Process => "process",
            PoolKind::Kubernetes => "kubernetes",
        }
    }

    /// The kind whose default pool is called `name`, if it is one.
    pub fn of_default(name: &str) -> Option<PoolKind> {
        PoolKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for PoolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PoolKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        PoolKind::of_default(text).ok_or_else(|| format!("unknown pool type `{text}`: write `process` or `kubernetes`"))
    }
}

/// A work pool (`pools/<name>/<revision>.json` in the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPool {
    /// Its name: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Where its runs execute.
    #[serde(rename = "type")]
    pub kind: PoolKind,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The text of its base job template (Kubernetes pools); none: weft's
    /// base template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_job_template: Option<String>,
    /// Runs of the pool at once, at most, across every agent serving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<u32>,
    /// A paused pool's runs stay Scheduled: no agent claims them.
    #[serde(default)]
    pub paused: bool,
    /// Its queues besides `default`, and `default` when edited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<WorkQueue>,
    /// When it was last written.
    #[serde(with = "super::rfc3339")]
    pub updated: SystemTime,
}

impl WorkPool {
    /// A new pool with nothing set but its name and kind.
    pub fn new(name: &str, kind: PoolKind) -> Self {
        WorkPool {
            name: name.to_owned(),
            kind,
            description: None,
            base_job_template: None,
            concurrency_limit: None,
            paused: false,
            queues: Vec::new(),
            updated: SystemTime::UNIX_EPOCH,
        }
    }

    /// A queue of the pool by name; `default` always exists.
    pub fn queue(&self, name: &str) -> Option<WorkQueue> {
        self.queues
            .iter()
            .find(|q| q.name == name)
            .cloned()
            .or_else(|| (name == DEFAULT_QUEUE).then(WorkQueue::default_queue))
    }

    /// Every queue, `default` included, highest priority first.
    pub fn all_queues(&self) -> Vec<WorkQueue> {
        let mut queues = self.queues.clone();
        if !queues.iter().any(|q| q.name == DEFAULT_QUEUE) {
            queues.push(WorkQueue::default_queue());
        }
        queues.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.name.cmp(&b.name)));
        queues
    }

    /// The default pool of `kind`, as it is until someone edits it.
    pub fn default_for(kind: PoolKind) -> Self {
        let mut pool = WorkPool::new(kind.as_str(), kind);
        pool.description = Some(format!("the default {kind} pool"));
        pool
    }

    /// Whether it is one of the default pools.
    pub fn is_default(&self) -> bool {
        PoolKind::of_default(&self.name) == Some(self.kind)
    }
}

/// The queue every pool has, where runs go that name no queue.
pub const DEFAULT_QUEUE: &str = "default";

/// A queue inside a work pool, as in Prefect: runs of higher-priority
/// queues (a lower number, 1 the highest) are claimed first, and a queue may
/// have a concurrency limit of its own within the pool's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkQueue {
    /// Its name: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// 1 is claimed first.
    pub priority: u32,
    /// Runs of the queue at once, at most, across every agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<u32>,
}

impl WorkQueue {
    /// The `default` queue as it is until edited: priority 1, no limit.
    pub fn default_queue() -> Self {
        WorkQueue { name: DEFAULT_QUEUE.to_owned(), priority: 1, concurrency_limit: None }
    }
}

/// Checks a pool name: what deployments and agents write must also be a
/// store path segment and a Kubernetes label value.
pub fn check_pool_name(name: &str) -> Result<(), String> {
    check_name("pool", name)
}

/// Checks a queue name, as pool names are checked.
pub fn check_queue_name(name: &str) -> Result<(), String> {
    check_name("queue", name)
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 63 || !name.chars().all(fine) || name.starts_with(['.', '-']) {
        return Err(format!(
            "{what} name `{name}` is not usable: write 1 to 63 letters, digits, `-`, `_` or `.`, starting with a \
             letter or digit"
        ));
    }
    Ok(())
}

/// A deployment's pool, as `work_pool:` in a deployment file names it (as
/// in Prefect's `prefect.yaml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPoolSpec {
    /// The pool's name.
    pub name: String,
    /// The queue within the pool; default `default`. `work_queue_name`, as
    /// `prefect.yaml` writes it, is the same.
    #[serde(default, alias = "work_queue_name")]
    pub queue: Option<String>,
    /// Values for the pool's job template variables (Kubernetes pools).
    #[serde(default)]
    pub job_variables: std::collections::BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pools_are_named_after_their_kind_and_names_are_checked() {
        assert_eq!(PoolKind::of_default("kubernetes"), Some(PoolKind::Kubernetes));
        assert_eq!(PoolKind::of_default("gpu"), None);
        assert!(WorkPool::default_for(PoolKind::Process).is_default());
        assert!(!WorkPool::new("process", PoolKind::Kubernetes).is_default());
        assert!(check_pool_name("gpu-eu.1").is_ok());
        assert!(check_queue_name("a~b").is_err_and(|e| e.starts_with("queue name `a~b`")));
        for bad in ["", "-gpu", "a/b", "späti", &"x".repeat(64)] {
            assert!(check_pool_name(bad).is_err(), "{bad}");
        }
        let mut pool = WorkPool::new("gpu", PoolKind::Kubernetes);
        assert_eq!(pool.queue(DEFAULT_QUEUE), Some(WorkQueue::default_queue()), "`default` always exists");
        pool.queues.push(WorkQueue { name: "low".into(), priority: 9, concurrency_limit: Some(1) });
        pool.queues.push(WorkQueue { name: "high".into(), priority: 1, concurrency_limit: None });
        let order: Vec<String> = pool.all_queues().into_iter().map(|q| q.name).collect();
        assert_eq!(order, ["default", "high", "low"], "by priority, then name");
        assert!("lambda".parse::<PoolKind>().expect_err("not a kind").contains("`process` or `kubernetes`"));
    }
}
